package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

type notes struct {
	mu  sync.Mutex
	all []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.all = append(n.all, s); n.mu.Unlock() }
func (n *notes) joined() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.all, "|")
}

func write(t *testing.T, root rootfs.Root, p, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(root.Path(p)), 0o755)
	if err := os.WriteFile(root.Path(p), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonInstallsAndReactivates: one sysextd cycle installs what a flag
// file recommends; after an unmerge (a reboot, as far as the tree is
// concerned) the next start merges it again before READY.
func TestDaemonInstallsAndReactivates(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		root := nsroot.NewRoot(t)
		gh := fakegithub.New()
		defer gh.Close()
		release.Publish(t, gh, release.Ext{Package: "tool", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/bin/tool": "#!/bin/sh\necho tool\n"}}})
		write(t, root, rootfs.VendorManifest, "[tool]\nurl = \"https://github.com/SpamTagger/sysext-tool\"\nif_file = \"/var/flag\"\n")
		write(t, root, "/var/flag", "")
		// A broken auth.conf costs the mirrors that need a login, not the run.
		write(t, root, rootfs.AuthConfig, "machine mirror.example login fleet\n")
		t.Setenv("GITHUB_TOKEN", "")
		var logs bytes.Buffer
		var n notes
		d := &Daemon{Root: root, Log: slog.New(slog.NewTextHandler(&logs, nil)), Notify: n.add,
			Getenv: func(k string) string {
				if k == "SYSEXT_GITHUB_API" {
					return gh.URL()
				}
				return ""
			}}
		if err := d.Run(t.Context(), true); err != nil {
			t.Fatalf("Run: %v\n%s", err, logs.String())
		}
		if _, err := os.Stat(root.Path("/usr/bin/tool")); err != nil {
			t.Fatalf("tool not merged after a daemon cycle: %v\n%s", err, logs.String())
		}
		st, _ := store.Store{Root: root}.LoadState()
		if r := st.Extensions["tool"]; r == nil || r.InstalledBy != store.ByAuto {
			t.Errorf("record = %+v, want installed by auto", r)
		}
		if !strings.Contains(logs.String(), "mirror logins not loaded, mirrors that need one will refuse: "+root.Path(rootfs.AuthConfig)+":1: machine mirror.example needs both a login and a password") {
			t.Errorf("no error about the broken auth.conf in the log:\n%s", logs.String())
		}
		if !strings.Contains(logs.String(), "extension=tool") || !strings.Contains(logs.String(), "version=1.0-1") {
			t.Errorf("logs lack structured fields:\n%s", logs.String())
		}
		if got := n.joined(); !strings.Contains(got, "READY=1") {
			t.Errorf("notifications %q lack READY=1", got)
		}

		if err := (&merge.Sysext{Root: root}).Unmerge(t.Context()); err != nil {
			t.Fatal(err)
		}
		gh.SetAPIFault(fakegithub.FaultServerError) // offline: activation must not need the network
		d2 := &Daemon{Root: root, Log: d.Log, Notify: n.add, Getenv: d.Getenv}
		d2.Run(t.Context(), true)
		if _, err := os.Stat(root.Path("/usr/bin/tool")); err != nil {
			t.Fatalf("tool not merged again at start: %v\n%s", err, logs.String())
		}
	})
}

// TestDaemonStopsOnSIGTERM: a cancelled context ends the idle loop
// promptly, with the lock released.
func TestDaemonStopsOnSIGTERM(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		root := nsroot.NewRoot(t)
		write(t, root, rootfs.VendorManifest, "[tool]\nurl = \"https://github.com/SpamTagger/sysext-tool\"\n")
		gh := fakegithub.New()
		defer gh.Close()
		var n notes
		d := &Daemon{Root: root, Log: slog.New(slog.DiscardHandler), Notify: n.add,
			Getenv: func(k string) string {
				if k == "SYSEXT_GITHUB_API" {
					return gh.URL()
				}
				return ""
			}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, false) }()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(n.joined(), "Idle") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(n.joined(), "Idle") {
			t.Fatalf("daemon never went idle: %q", n.joined())
		}
		// Idle: the lock is free for sysextctl.
		release, err := store.Store{Root: root}.Lock(t.Context(), false, nil)
		if err != nil {
			t.Fatalf("lock held while idle: %v", err)
		}
		release()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after SIGTERM = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("daemon did not stop after cancellation")
		}
		if !strings.Contains(n.joined(), "STOPPING=1") {
			t.Errorf("no STOPPING=1 in %q", n.joined())
		}
	})
}
