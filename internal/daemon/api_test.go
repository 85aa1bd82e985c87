package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/api/client"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/status"
)

// TestDaemonServesAPIAndMetrics: started without sysextd.socket, the
// daemon opens the API socket itself (mode 0666), answers Status, tells a
// Watch that its check finished, and writes the textfile once
// node-exporter's directory exists.
func TestDaemonServesAPIAndMetrics(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	root := rootfs.New(t.TempDir())
	os.MkdirAll(root.Path("/var/lib/prometheus/node-exporter"), 0o755)
	var logs syncBuffer
	d := &Daemon{Root: root, Log: slog.New(slog.NewTextHandler(&logs, nil)), Version: "1.2.3"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, false) }()
	sock := root.Path(api.Socket)
	var c *client.Client
	for deadline := time.Now().Add(20 * time.Second); c == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no API socket at %s\nlog:\n%s", sock, logs.String())
		}
		c, _ = client.Dial(ctx, sock)
	}
	defer c.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode = %v, %v; want 0666", fi, err)
	}
	var st struct {
		Status status.Report `json:"status"`
	}
	if err := c.Call(ctx, "Status", nil, &st); err != nil || st.Status.Daemon == nil || st.Status.Daemon.Version != "1.2.3" {
		t.Fatalf("Status = %+v, %v", st.Status, err)
	}
	var data []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no metrics textfile after the check\nlog:\n%s", logs.String())
		}
		if b, err := os.ReadFile(root.Path(MetricsFile)); err == nil && bytes.Contains(b, []byte("sysextd_last_check_success 1")) {
			data = b
			break
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("textfile does not parse: %v\n%s", err, data)
	}
	if ts := fams["sysextd_last_check_timestamp_seconds"].Metric[0].Gauge.GetValue(); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last check timestamp %v is not recent", ts)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
