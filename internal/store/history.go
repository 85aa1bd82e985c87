package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// HistoryFile is the in-root path of the change history: one JSON object a
// line, appended, never rewritten.
const HistoryFile = rootfs.StateDir + "/history.jsonl"

// Who made a change.
const (
	HistoryByCLI    = "cli"
	HistoryByDaemon = "daemon"
)

// Results of a change.
const (
	HistoryOK         = "ok"
	HistoryFailed     = "failed"
	HistoryRolledBack = "rolled-back"
)

// maxHistoryLine bounds one entry (the error text is cut to fit), and with
// it the buffer a reader needs.
const maxHistoryLine = 16 << 10

// HistoryEntry is one change to one extension.
type HistoryEntry struct {
	Time   time.Time `json:"time"`
	Verb   string    `json:"verb"`           // the command: install, update, auto, rollback...
	By     string    `json:"by"`             // HistoryByCLI or HistoryByDaemon
	Name   string    `json:"name"`           // manifest key
	Op     string    `json:"op"`             // what the step did: install, update, remove
	From   string    `json:"from,omitempty"` // version before
	To     string    `json:"to,omitempty"`   // version after (or attempted)
	Result string    `json:"result"`         // HistoryOK, HistoryFailed, HistoryRolledBack
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
	Phase  string    `json:"phase,omitempty"` // the phase that failed
}

// AppendHistory appends e as one line to the history file (created 0644:
// history is as public as state.json). The line is written with a single
// write(2) on an O_APPEND descriptor and fsynced, so a crash loses at most
// the line being written; when the previous writer died mid-line, the new
// line starts on a line of its own, so a torn line never swallows the
// next one. The caller holds the lock.
func (s Store) AppendHistory(e HistoryEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Second)
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding history entry: %w", err)
	}
	if over := len(line) - maxHistoryLine; over > 0 && len(e.Error) > over+3 {
		e.Error = e.Error[:len(e.Error)-over-3] + "..."
		line, _ = json.Marshal(e)
	}
	if err := s.mkdir(rootfs.StateDir, 0o755); err != nil {
		return fmt.Errorf("appending to %s: %w", HistoryFile, err)
	}
	r, err := s.Root.Open()
	if err != nil {
		return fmt.Errorf("appending to %s: %w", HistoryFile, err)
	}
	defer r.Close()
	f, err := r.OpenFile(rootfs.InRoot(HistoryFile), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("appending to %s: %w", HistoryFile, err)
	}
	defer f.Close()
	if torn, err := endsMidLine(f); err != nil {
		return fmt.Errorf("appending to %s: %w", HistoryFile, err)
	} else if torn {
		line = append([]byte{'\n'}, line...)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("appending to %s: %w", HistoryFile, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("appending to %s: %w", HistoryFile, err)
	}
	return nil
}

// endsMidLine reports whether the file's last byte is not a newline (f is
// open for reading: O_APPEND still makes every write go to the end).
func endsMidLine(f *os.File) (bool, error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false, err
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], fi.Size()-1); err != nil {
		return false, err
	}
	return b[0] != '\n', nil
}

// History returns the entries for name ("" for every extension), oldest
// first. Lines that cannot be read (torn by a crash) are skipped: use
// ReadHistory to learn about them.
func (s Store) History(name string) ([]HistoryEntry, error) {
	entries, _, err := s.ReadHistory(name)
	return entries, err
}

// ReadHistory is History plus one warning for every line it skipped,
// naming the file and line. A missing file is an empty history.
func (s Store) ReadHistory(name string) (entries []HistoryEntry, warnings []string, err error) {
	path := s.Root.Path(HistoryFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading history: %w", err)
	}
	defer f.Close()
	entries, warnings, err = parseHistory(f, path, name)
	if err != nil {
		return nil, nil, fmt.Errorf("reading history: %w", err)
	}
	return entries, warnings, nil
}

// parseHistory reads JSON lines from r; file names it in warnings.
func parseHistory(r io.Reader, file, name string) ([]HistoryEntry, []string, error) {
	var entries []HistoryEntry
	var warnings []string
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if len(bytes.TrimSpace(line)) > 0 {
			var e HistoryEntry
			if jerr := json.Unmarshal(line, &e); jerr != nil || e.Time.IsZero() {
				if jerr == nil {
					jerr = errors.New("no time")
				}
				warnings = append(warnings, fmt.Sprintf("%s:%d: skipping unreadable entry (torn by a crash?): %v", file, n, jerr))
			} else if name == "" || e.Name == name {
				entries = append(entries, e)
			}
		}
		if err == io.EOF {
			return entries, warnings, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// readLine reads one line without its newline. A line longer than any
// entry AppendHistory writes is consumed to its end and returned cut, so
// that it fails to parse and is reported, rather than stop the reader.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(out) <= 2*maxHistoryLine {
			out = append(out, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(out, []byte{'\n'}), err
	}
}
