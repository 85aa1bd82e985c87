package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// serveAPI serves the fixture's root on a socket that sysextctl finds
// through SYSEXTD_SOCKET, as root.
func (f *fixture) serveAPI() {
	f.t.Helper()
	sock := filepath.Join(f.t.TempDir(), "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	srv := &api.Server{
		Root: f.root,
		Open: func(ctx context.Context, onProgress func(string, int64, int64)) (*api.Session, error) {
			a, err := app.New(ctx, app.Config{Root: f.root, GitHubAPI: f.gh.URL(), OnProgress: onProgress})
			if err != nil {
				return nil, err
			}
			return &api.Session{Engine: a.Engine, ManifestErr: a.ManifestErr, Close: a.Close}, nil
		},
		AdminGroup: func() string { return "" },
		Status: func(ctx context.Context, s *api.Session, refresh bool) (*status.Report, error) {
			v, _, err := status.Make(ctx, f.root, s.Engine, refresh, time.Now())
			return v, err
		},
		Peer: func(net.Conn) (api.Peer, error) { return api.Peer{}, nil },
	}
	go srv.Serve(ctx, l)
	f.t.Setenv("SYSEXTD_SOCKET", sock)
}

// runClient runs sysextctl without --root: through the daemon.
func (f *fixture) runClient(args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &out, &errb)
	f.t.Logf("sysextctl (client) %v -> %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// TestClientKeepsOutputAndExitCodes: through the daemon, sysextctl's
// --json output and exit codes are those of the in-process run.
func TestClientKeepsOutputAndExitCodes(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.publish(release.Ext{Package: "hello", Version: "1.0-1", Repo: "sysext-template"})
	f.gh.SetAPIFault(fakegithub.FaultServerError)
	// In-process first, then the same through the daemon.
	type run struct {
		out  string
		code int
	}
	cases := [][]string{
		{"install", "nope"},
		{"--json", "install", "qemu-guest-agent"},
		{"hold", "hello"},
		{"rollback", "hello"},
		{"--json", "recover"},
		// The refresh fails on the network: exit 4 either way.
		{"status", "--refresh"},
	}
	var local []run
	for _, args := range cases {
		out, _, code := f.run(args...)
		local = append(local, run{out, code})
	}
	f.serveAPI()
	for i, args := range cases {
		out, stderr, code := f.runClient(args...)
		if code != local[i].code {
			t.Errorf("%v through the daemon: exit %d, in-process %d (%s)", args, code, local[i].code, stderr)
		}
		if out != local[i].out {
			t.Errorf("%v through the daemon printed\n%s\nin-process\n%s", args, out, local[i].out)
		}
	}
	if _, stderr, code := f.runClient("status", "--refresh"); code != ExitNetwork || !strings.Contains(stderr, "hello") {
		t.Errorf("status --refresh through the daemon with GitHub failing: exit %d, stderr %q; want %d naming hello", code, stderr, ExitNetwork)
	}
	// status answers through the daemon, with GitHub failing.
	out, _, code := f.runClient("status", "--json")
	var v status.Report
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v.Extensions) == 0 {
		t.Errorf("status --json through the daemon: exit %d, %v\n%s", code, err, out)
	}
}

// TestClientWaitsWhileBusy: a change while another holds the lock waits,
// as the in-process verb waits for the lock; --no-block fails at once.
func TestClientWaitsWhileBusy(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.serveAPI()
	release, err := store.Store{Root: f.root}.Lock(context.Background(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := f.runClient("hold", "--no-block", "hello")
	if code != ExitFailure || !strings.Contains(stderr, store.ErrLocked.Error()) {
		t.Errorf("hold --no-block while busy: exit %d, %q", code, stderr)
	}
	time.AfterFunc(700*time.Millisecond, release)
	t0 := time.Now()
	_, stderr, code = f.runClient("recover")
	if code != 0 || !strings.Contains(stderr, "waiting for another sysextctl or sysextd") || time.Since(t0) < 600*time.Millisecond {
		t.Errorf("recover while busy: exit %d after %v, %q; want a wait, then success", code, time.Since(t0), stderr)
	}
}

// TestProgressBar: a download draws a bar only once it has run 2 s, ends
// its line at the next phase, and --json or a pipe never get one.
func TestProgressBar(t *testing.T) {
	var w bytes.Buffer
	o := &options{stderr: &w, isTerminal: true}
	b := o.progressBar()
	b.update(api.Progress{Name: "hello", Phase: "download"})
	b.update(api.Progress{Name: "hello", Phase: "download", Done: 1 << 20, Total: 4 << 20})
	if w.Len() != 0 {
		t.Fatalf("a download younger than 2 s drew %q", w.String())
	}
	b.started = b.started.Add(-3 * time.Second)
	b.update(api.Progress{Name: "hello", Phase: "download", Done: 2 << 20, Total: 4 << 20})
	b.update(api.Progress{Name: "hello", Phase: "verify"})
	if got := w.String(); !strings.Contains(got, "\rhello [") || !strings.Contains(got, " 50% 2.0/4.0 MiB") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar drew %q, want the bar at 50%% and the line ended at verify", got)
	}
	for _, o := range []*options{{stderr: &w, isTerminal: true, json: true}, {stderr: &w, isTerminal: false}, {stderr: &w, isTerminal: true, quiet: true}} {
		if o.progressBar() != nil {
			t.Errorf("a bar for %+v", o)
		}
	}
}
