package api_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// root100 is a root whose manifest names 100 extensions, each published.
func root100(b *testing.B, gh *fakegithub.Server) rootfs.Root {
	const n = 100
	dir := b.TempDir()
	var m strings.Builder
	for i := range n {
		image := fmt.Sprintf("sysext-ext%d", i)
		fields := sqfs.DefaultRelease(image)
		base := fmt.Sprintf("%s_%s_%s", image, fields["VERSION_CODENAME"], fields["ARCH"])
		gh.Publish("bench", image, fakegithub.Release{Tag: "t1", Assets: []fakegithub.Asset{
			{Name: base + ".squashfs", Data: make([]byte, 4096)},
			{Name: base + ".manifest", Data: []byte(sqfs.FormatRelease(fields))},
		}})
		fmt.Fprintf(&m, "[ext%d]\nurl = \"https://github.com/bench/%s\"\n\n", i, image)
	}
	osRelease := "ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n"
	for p, c := range map[string]string{"etc/os-release": osRelease, "usr/lib/os-release": osRelease, "usr/spamtagger/etc/sysext.toml": m.String()} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return rootfs.New(dir)
}

// BenchmarkList100 is the API's List over 100 extensions on a warm
// daemon (the release data checked a moment ago), over a Unix socket, as
// a web UI polls it. It must make no request and answer in at most 5 ms.
//
//	go test -run '^$' -bench BenchmarkList100 -benchtime 200x ./internal/api/
func BenchmarkList100(b *testing.B) {
	gh := fakegithub.New()
	defer gh.Close()
	f := &fixture{root: root100(b, gh), gh: gh}
	f.srv = f.server(nobody)
	c := dialB(b, f)
	list := func(refresh bool) {
		var out struct {
			Extensions []struct {
				Name string `json:"name"`
			} `json:"extensions"`
		}
		recv, err := c.Send(context.Background(), api.Interface+".List", map[string]bool{"refresh": refresh}, 0)
		if err == nil {
			_, err = recv(context.Background(), &out)
		}
		if err != nil || len(out.Extensions) != 100 {
			b.Fatalf("List: %d extensions, %v", len(out.Extensions), err)
		}
	}
	list(true) // cold: fills the cache
	gh.ResetStats()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		list(false)
	}
	per := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	if st := gh.Stats(); st.API != 0 || st.Downloads != 0 {
		b.Fatalf("warm List made %d API requests and %d downloads, want 0", st.API, st.Downloads)
	}
	if per > 5*time.Millisecond {
		b.Errorf("List over 100 extensions took %v a call, want at most 5ms", per)
	}
}

// BenchmarkWatchLatency is the time from a history line's commit (by any
// writer: sysextctl, the API, the timer) to a Watch subscriber holding its
// event. Each must arrive within 100 ms.
//
//	go test -run '^$' -bench BenchmarkWatchLatency -benchtime 200x ./internal/api/
func BenchmarkWatchLatency(b *testing.B) {
	gh := fakegithub.New()
	defer gh.Close()
	f := &fixture{root: rootfs.New(b.TempDir()), gh: gh}
	f.srv = f.server(nobody)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.srv.Hub.TailHistory(ctx, f.root, slogDiscard(), nil)
	c := dialB(b, f)
	recv, err := c.Send(ctx, api.Interface+".Watch", struct{}{}, varlink.More)
	if err != nil {
		b.Fatal(err)
	}
	var ev struct {
		Event api.Event `json:"event"`
	}
	if _, err := recv(ctx, &ev); err != nil {
		b.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the inotify watch is in place
	s := store.Store{Root: f.root}
	var worst time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if err := s.AppendHistory(store.HistoryEntry{Verb: "remove", By: "cli", Name: fmt.Sprint("x", i), Op: "remove", Result: store.HistoryOK}); err != nil {
			b.Fatal(err)
		}
		if _, err := recv(ctx, &ev); err != nil || ev.Event.Name != fmt.Sprint("x", i) {
			b.Fatalf("Watch: %+v, %v", ev.Event, err)
		}
		worst = max(worst, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	if worst > 100*time.Millisecond {
		b.Errorf("a Watch heard a change %v after its commit, want at most 100ms", worst)
	}
}

// dialB is fixture.dial for a benchmark.
func dialB(b *testing.B, f *fixture) *varlink.Connection {
	a, s := socketpair(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.srv.ServeConn(ctx, s); close(done) }()
	c, err := varlink.NewConnectionWithDialer(context.Background(), "unix:socketpair", connDialer{a})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); cancel(); <-done })
	return c
}
