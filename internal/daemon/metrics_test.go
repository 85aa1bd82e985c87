package daemon

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/store"
)

// TestMetricsParse checks the textfile with Prometheus' own parser, with
// label values that need escaping.
func TestMetricsParse(t *testing.T) {
	m := Metrics{
		Items: []engine.Item{
			{Name: "nvidia", InstalledVersion: "550.1-1", Status: "active", Source: "https://github.com/SpamTagger/sysext-nvidia", SignedBy: "vendor \"2026\"", UpdateAvailable: true},
			{Name: "hello", Status: "not-installed", Source: `C:\odd` + "\n"},
		},
		LastCheck: 1_800_000_000, LastCheckOK: true, RebootRequired: true,
		Rollbacks: Rollbacks([]store.HistoryEntry{
			{Verb: "update", Result: store.HistoryRolledBack},
			{Verb: "rollback", Result: store.HistoryOK},
			{Verb: "rollback", Result: store.HistoryFailed},
			{Verb: "install", Result: store.HistoryOK},
		}),
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(m.Format()))
	if err != nil {
		t.Fatalf("the textfile does not parse: %v\n%s", err, m.Format())
	}
	info := fams["sysextd_extension_info"]
	if info == nil || len(info.Metric) != 2 {
		t.Fatalf("sysextd_extension_info = %v", info)
	}
	labels := map[string]string{}
	for _, l := range info.Metric[1].Label { // sorted: nvidia second
		labels[l.GetName()] = l.GetValue()
	}
	if labels["name"] != "nvidia" || labels["version"] != "550.1-1" || labels["status"] != "active" || labels["signed_by"] != `vendor "2026"` {
		t.Errorf("nvidia's labels = %v", labels)
	}
	gauge := func(name string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			t.Fatalf("%s missing", name)
		}
		if f.Metric[0].Gauge != nil {
			return f.Metric[0].Gauge.GetValue()
		}
		return f.Metric[0].Counter.GetValue()
	}
	for name, want := range map[string]float64{"sysextd_last_check_timestamp_seconds": 1_800_000_000, "sysextd_last_check_success": 1,
		"sysextd_reboot_required": 1, "sysextd_rollbacks_total": 2} {
		if got := gauge(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	ua := fams["sysextd_update_available"]
	if len(ua.Metric) != 2 || ua.Metric[1].Gauge.GetValue() != 1 || ua.Metric[0].Gauge.GetValue() != 0 {
		t.Errorf("sysextd_update_available = %v", ua)
	}
}
