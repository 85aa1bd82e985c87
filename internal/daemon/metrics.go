package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/store"
)

// MetricsFile is the in-root path of the node-exporter textfile: Debian's
// prometheus-node-exporter reads *.prom in that directory. It is written
// only when the directory exists (the exporter is installed).
const MetricsFile = "/var/lib/prometheus/node-exporter/sysextd.prom"

// Metrics is what the textfile describes.
type Metrics struct {
	Items          []engine.Item // from the cached release data
	LastCheck      int64         // unix seconds; 0: never
	LastCheckOK    bool
	RebootRequired bool
	Rollbacks      int // history entries that rolled back
}

// Format renders m in the Prometheus text exposition format.
func (m Metrics) Format() []byte {
	var b bytes.Buffer
	items := append([]engine.Item(nil), m.Items...)
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	fmt.Fprintln(&b, "# HELP sysextd_extension_info An extension sysextd knows of (manifest or installed); the value is always 1.")
	fmt.Fprintln(&b, "# TYPE sysextd_extension_info gauge")
	for _, it := range items {
		fmt.Fprintf(&b, "sysextd_extension_info{name=%s,version=%s,status=%s,source=%s,signed_by=%s} 1\n",
			label(it.Name), label(it.InstalledVersion), label(it.Status), label(it.Source), label(it.SignedBy))
	}
	fmt.Fprintln(&b, "# HELP sysextd_update_available 1 when update would install a newer release of the extension (from the cached release data).")
	fmt.Fprintln(&b, "# TYPE sysextd_update_available gauge")
	for _, it := range items {
		fmt.Fprintf(&b, "sysextd_update_available{name=%s} %d\n", label(it.Name), b2i(it.UpdateAvailable))
	}
	fmt.Fprintln(&b, "# HELP sysextd_last_check_timestamp_seconds When sysextd's last update check ended (0: never).")
	fmt.Fprintln(&b, "# TYPE sysextd_last_check_timestamp_seconds gauge")
	fmt.Fprintf(&b, "sysextd_last_check_timestamp_seconds %d\n", m.LastCheck)
	fmt.Fprintln(&b, "# HELP sysextd_last_check_success 1 when sysextd's last update check succeeded.")
	fmt.Fprintln(&b, "# TYPE sysextd_last_check_success gauge")
	fmt.Fprintf(&b, "sysextd_last_check_success %d\n", b2i(m.LastCheckOK))
	fmt.Fprintln(&b, "# HELP sysextd_reboot_required 1 when an installed extension's update asked for a reboot.")
	fmt.Fprintln(&b, "# TYPE sysextd_reboot_required gauge")
	fmt.Fprintf(&b, "sysextd_reboot_required %d\n", b2i(m.RebootRequired))
	fmt.Fprintln(&b, "# HELP sysextd_rollbacks_total Steps rolled back, and rollbacks run, as the history records them.")
	fmt.Fprintln(&b, "# TYPE sysextd_rollbacks_total counter")
	fmt.Fprintf(&b, "sysextd_rollbacks_total %d\n", m.Rollbacks)
	return b.Bytes()
}

// label quotes a label value as the text format wants it.
func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Rollbacks counts the history entries that rolled a change back: a failed
// step undone, or a rollback that succeeded.
func Rollbacks(entries []store.HistoryEntry) int {
	n := 0
	for _, e := range entries {
		if e.Result == store.HistoryRolledBack || (e.Verb == "rollback" && e.Result == store.HistoryOK) {
			n++
		}
	}
	return n
}

// writeMetrics writes the textfile from e's cached view, the daemon's
// status and the history. A failure is logged, never fatal.
func (d *Daemon) writeMetrics(ctx context.Context, e *engine.Engine) {
	if !d.metricsWanted() {
		return
	}
	items, _, err := e.ListWith(ctx, engine.ListOptions{Offline: true})
	if err != nil {
		d.Log.Warn("writing metrics: listing: "+err.Error(), "err", err)
		return
	}
	m := Metrics{Items: items, RebootRequired: status.PendingReboot(d.Root).Required}
	d.statusMu.Lock()
	if st := d.status; st.LastCheck != nil {
		m.LastCheck, m.LastCheckOK = st.LastCheck.Unix(), st.LastCheckOK
	}
	d.statusMu.Unlock()
	entries, _, err := store.Store{Root: d.Root}.ReadHistory("")
	if err != nil {
		d.Log.Warn("writing metrics: reading history: "+err.Error(), "err", err)
	}
	m.Rollbacks = Rollbacks(entries)
	if err := (store.Store{Root: d.Root}).WriteFile(MetricsFile, m.Format(), 0o644); err != nil {
		d.Log.Warn("writing metrics failed: "+err.Error(), "err", err)
	}
}

// metricsWanted reports whether node-exporter's textfile directory exists.
func (d *Daemon) metricsWanted() bool {
	_, err := os.Stat(d.Root.Path(filepath.Dir(MetricsFile)))
	return err == nil
}
