package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/distribution"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// TestDaemonRegistryLogin: a registry that needs a login serves sysextd,
// which has no HOME (sysextd.service sets none): the login is the one in
// /etc/sysextd/auth.json, written by oras login --registry-config, and a
// copy readable by others is warned about.
func TestDaemonRegistryLogin(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		root := nsroot.NewRoot(t)
		reg := distribution.Start(t, true)
		x := release.Ext{Package: "tool", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/bin/tool": "#!/bin/sh\necho tool\n"}}}
		fields := x.Fields()
		dir := t.TempDir()
		base := "sysext-tool_trixie_" + fields["ARCH"]
		img := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-tool", Files: x.Spec.Files, Release: fields})
		if err := os.Rename(img, filepath.Join(dir, base+".squashfs")); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, base+".manifest"), []byte(sqfs.FormatRelease(fields)), 0o644)
		reg.Oras(t, dir, "push", reg.Host+"/fleet/sysext-tool:v1.0-1_trixie_"+fields["ARCH"], base+".squashfs", base+".manifest")

		write(t, root, rootfs.VendorManifest, "[tool]\nurl = \"oci://"+reg.Host+"/fleet\"\nif_file = \"/var/flag\"\n")
		write(t, root, "/var/flag", "")
		authJSON := root.Path(rootfs.RegistryAuth)
		reg.AuthJSON(t, authJSON)
		os.Chmod(authJSON, 0o644)
		var logs bytes.Buffer
		d := &Daemon{Root: root, Log: slog.New(slog.NewTextHandler(&logs, nil)), Notify: func(string) {},
			Getenv: func(string) string { return "" }}
		if err := d.Run(t.Context(), true); err != nil {
			t.Fatalf("Run: %v\n%s", err, logs.String())
		}
		if _, err := os.Stat(root.Path("/usr/bin/tool")); err != nil {
			t.Fatalf("tool from the registry not merged: %v\n%s", err, logs.String())
		}
		st, _ := store.Store{Root: root}.LoadState()
		if r := st.Extensions["tool"]; r == nil || r.Version != "1.0-1" {
			t.Errorf("record = %+v", r)
		}
		if !strings.Contains(logs.String(), authJSON+" holds registry passwords and is readable by others") {
			t.Errorf("no warning about the 0644 auth.json:\n%s", logs.String())
		}
	})
}
