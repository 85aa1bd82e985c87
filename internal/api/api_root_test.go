package api_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/debpkg"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// TestInstallStreamsAndWatchHears installs Debian's real hello through the
// API with more, on a real systemd-sysext: the call streams every phase in
// order and the download's bytes, then the result; a Watch on another
// connection hears the install, and Remove's event too.
func TestInstallStreamsAndWatchHears(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, "[hello]\nurl = \"https://github.com/SpamTagger/sysext-hello\"\n")
		files, version := debpkg.Files(t, "hello")
		release.Publish(t, f.gh, release.Ext{Package: "hello", Version: version, Spec: sqfs.Spec{Files: files}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go f.srv.Hub.TailHistory(ctx, f.root, slogDiscard(), nil)

		w := f.dial(nobody)
		recv, err := w.Send(ctx, api.Interface+".Watch", struct{}{}, varlink.More)
		if err != nil {
			t.Fatal(err)
		}
		next := func() api.Event {
			t.Helper()
			var r struct {
				Event api.Event `json:"event"`
			}
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			if _, err := recv(rctx, &r); err != nil {
				t.Fatalf("Watch: %v", err)
			}
			return r.Event
		}
		if ev := next(); ev.Kind != api.EventSubscribed {
			t.Fatalf("first event %+v", ev)
		}
		time.Sleep(50 * time.Millisecond)

		c := f.dial(root)
		var more []json.RawMessage
		var out api.Outcome
		if err := call(t, c, "Install", map[string]any{"names": []string{"hello"}}, &out, &more); err != nil {
			t.Fatalf("Install: %v", err)
		}
		if len(out.Results) != 1 || !out.Results[0].OK || out.Verb != "install" || out.Warnings == nil {
			t.Fatalf("Install = %+v", out)
		}
		var phases []string
		sawBytes := false
		for _, raw := range more {
			var r struct {
				Progress api.Progress `json:"progress"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatal(err)
			}
			if r.Progress.Name != "hello" {
				t.Errorf("progress %s names another extension", raw)
			}
			if r.Progress.Total > 0 {
				sawBytes = sawBytes || r.Progress.Done == r.Progress.Total
				continue
			}
			phases = append(phases, r.Progress.Phase)
		}
		want := []string{"download", "verify", "place", "payload", "activate", "units", "action", "commit"}
		if !slices.Equal(phases, want) {
			t.Errorf("streamed phases %v, want %v", phases, want)
		}
		if !sawBytes {
			t.Errorf("no progress reply carried the whole download's bytes: %s", more)
		}
		if _, err := os.Stat(f.root.Path("/usr/bin/hello")); err != nil {
			t.Errorf("hello is not merged after Install: %v", err)
		}
		if ev := next(); ev.Kind != api.EventInstalled || ev.Name != "hello" || ev.By != api.HistoryByAPI || ev.To != version {
			t.Errorf("Watch heard %+v, want hello installed by api", ev)
		}

		if err := call(t, c, "Remove", map[string]any{"names": []string{"hello"}}, &out, nil); err != nil || !out.Results[0].OK {
			t.Fatalf("Remove = %+v, %v", out, err)
		}
		if ev := next(); ev.Kind != api.EventRemoved || ev.Name != "hello" {
			t.Errorf("Watch heard %+v, want hello removed", ev)
		}
	})
}
