package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

const (
	stagedSum = "3c6dad657109522e0b2e49bf44b5420f16f0b438b5b9357e5132211cfbad135d"
	forky     = "PRETTY_NAME=\"Debian GNU/Linux 14 (forky)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"14\"\nVERSION=\"14 (forky)\"\nVERSION_CODENAME=forky\nID=debian\nID_LIKE=\"spamtagger-base\"\nSYSEXT_LEVEL=2\n"
)

// deployment lays out an ostree sysroot under a temporary root with the
// staged deployment's tree, as bootc leaves it before the reboot.
func deployment(t *testing.T, stateroot string) rootfs.Root {
	t.Helper()
	root := rootfs.New(t.TempDir())
	tree := root.Path("/sysroot/ostree/deploy/" + stateroot + "/deploy/" + stagedSum + ".0")
	os.MkdirAll(filepath.Join(tree, "usr/lib"), 0o755)
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(tree, "usr/lib/os-release"), []byte(forky), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../usr/lib/os-release", filepath.Join(tree, "etc/os-release"))
	os.Symlink("sysroot/ostree", root.Path("/ostree"))
	return root
}

func fixture(name string) StatusFunc {
	return func(context.Context) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }
}

func TestStaged(t *testing.T) {
	for _, fx := range []string{"bootc-status-staged.json", "bootc-status-staged-old.json"} {
		t.Run(fx, func(t *testing.T) {
			root := deployment(t, "default")
			got, err := StagedFrom(t.Context(), root, fixture(fx))
			if err != nil {
				t.Fatal(err)
			}
			want := StagedOS{OS: osrelease.OS{ID: "debian", VersionID: "14", VersionCodename: "forky", IDLike: "spamtagger-base", SysextLevel: "2"},
				Image: "ghcr.io/spamtagger/spamtagger-bootc:forky", ImageDigest: "sha256:16dc2b6256b4ff0d2ec18d2dbfb06d117904010c8cf9732cdb022818cf7a7566",
				Stateroot: "default", Checksum: stagedSum, DeploySerial: 0, Tree: "/sysroot/ostree/deploy/default/deploy/" + stagedSum + ".0"}
			if got == nil || *got != want {
				t.Errorf("StagedFrom = %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestStagedNone(t *testing.T) {
	root := deployment(t, "default")
	for _, fx := range []string{"bootc-status-none.json", "bootc-status-not-bootc.json"} {
		if got, err := StagedFrom(t.Context(), root, fixture(fx)); got != nil || err != nil {
			t.Errorf("%s: StagedFrom = %+v, %v; want nil, nil", fx, got, err)
		}
	}
	noBootc := func(context.Context) ([]byte, error) { return nil, ErrNoBootc }
	if got, err := StagedFrom(t.Context(), root, noBootc); got != nil || err != nil {
		t.Errorf("without bootc: StagedFrom = %+v, %v; want nil, nil", got, err)
	}
	if got, err := Staged(t.Context(), root); got != nil || err != nil {
		t.Errorf("Staged under --root = %+v, %v; want nil, nil (bootc describes the host only)", got, err)
	}
}

func TestStagedErrors(t *testing.T) {
	data, _ := os.ReadFile("testdata/bootc-status-staged.json")
	with := func(old, new string) StatusFunc {
		return func(context.Context) ([]byte, error) { return []byte(strings.Replace(string(data), old, new, 1)), nil }
	}
	tests := []struct {
		name   string
		root   rootfs.Root
		status StatusFunc
		want   string
	}{
		{"no tree", rootfs.New(t.TempDir()), fixture("bootc-status-staged.json"), "is not under"},
		{"other stateroot", deployment(t, "spamtagger"), fixture("bootc-status-staged.json"), "is not under"},
		{"traversal in stateroot", deployment(t, "default"), with(`"stateroot": "default"`, `"stateroot": "../../../etc"`), "malformed"},
		{"bad checksum", deployment(t, "default"), with(stagedSum, "../../x"), "malformed"},
		{"not json", deployment(t, "default"), func(context.Context) ([]byte, error) { return []byte("staged: yes\n"), nil }, "parsing bootc status"},
		{"wrong kind", deployment(t, "default"), with(`"kind": "BootcHost"`, `"kind": "Pod"`), "kind"},
		{"composefs", deployment(t, "default"), with(`"ostree": {
        "stateroot": "default",
        "checksum": "`+stagedSum+`",
        "deploySerial": 0
      }`, `"ostree": null`), "not ostree-based"},
		{"bootc fails", deployment(t, "default"), func(context.Context) ([]byte, error) { return nil, errors.New("exit 1") }, "exit 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StagedFrom(t.Context(), tt.root, tt.status)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StagedFrom = %+v, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
}

// Only etc/os-release (a symlink in the tree) is found: it resolves inside
// the root.
func TestStagedEtcOSRelease(t *testing.T) {
	root := deployment(t, "default")
	tree := root.Path("/sysroot/ostree/deploy/default/deploy/" + stagedSum + ".0")
	os.Rename(filepath.Join(tree, "usr/lib/os-release"), filepath.Join(tree, "usr/lib/os-release.real"))
	os.Remove(filepath.Join(tree, "etc/os-release"))
	os.Symlink("../usr/lib/os-release.real", filepath.Join(tree, "etc/os-release"))
	got, err := StagedFrom(t.Context(), root, fixture("bootc-status-staged.json"))
	if err != nil || got.VersionCodename != "forky" {
		t.Fatalf("StagedFrom = %+v, %v", got, err)
	}
	// A symlink out of the root is not followed.
	os.Remove(filepath.Join(tree, "etc/os-release"))
	os.Symlink("/etc/os-release", filepath.Join(tree, "etc/os-release"))
	if got, err := StagedFrom(t.Context(), root, fixture("bootc-status-staged.json")); err == nil {
		t.Errorf("absolute symlink followed out of the root: %+v", got)
	}
}

func TestBootcStatusCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if _, err := BootcStatus(t.Context()); !errors.Is(err, ErrNoBootc) {
		t.Fatalf("BootcStatus without bootc = %v, want ErrNoBootc", err)
	}
	script := "#!/bin/sh\necho 'error: Not a bootc host' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "bootc"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := BootcStatus(t.Context())
	if err == nil || !strings.Contains(err.Error(), "status --json (exit 1)") || !strings.Contains(err.Error(), "Not a bootc host") {
		t.Errorf("BootcStatus = %v; want argv, exit code and stderr", err)
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, n := range []string{"bootc-status-staged.json", "bootc-status-staged-old.json", "bootc-status-none.json"} {
		data, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseStatus(data)
		if err != nil {
			return
		}
		if h.Status.Staged != nil {
			// Whatever the JSON says, the tree is looked for inside the root.
			root := rootfs.New(t.TempDir())
			if s, err := FromEntry(root, h.Status.Staged); err == nil {
				t.Fatalf("found a staged tree in an empty root: %+v", s)
			}
		}
	})
}
