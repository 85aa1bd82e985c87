package merge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// Tier 2 (SPEC §13): the real systemd-sysext on a throwaway root, each test
// in its own mount namespace with a tmpfs on /run.

// buildImage builds an extension image named name whose usr/bin/hello says
// hello, into dir under file (default name.raw). release edits the default
// extension-release fields (ID and VERSION_ID match nsroot.NewRoot).
func buildImage(t *testing.T, dir, name, file, hello string, release func(map[string]string)) string {
	t.Helper()
	fields := sqfs.DefaultRelease(name)
	fields["ID"], fields["VERSION_ID"] = nsroot.OSID, nsroot.OSVersionID
	if release != nil {
		release(fields)
	}
	return sqfs.Build(t, dir, sqfs.Spec{Name: name, FileName: file, Release: fields, Files: map[string]string{"usr/bin/hello": hello}})
}

// install builds an image elsewhere and renames it into the store, as the
// engine does, so systemd-sysext never sees a half-written file.
func install(t *testing.T, root rootfs.Root, name, file, hello string, release func(map[string]string)) {
	t.Helper()
	img := buildImage(t, t.TempDir(), name, file, hello, release)
	if file == "" {
		file = name + ".raw"
	}
	if err := os.Rename(img, root.Path(filepath.Join(rootfs.ExtensionsDir, file))); err != nil {
		t.Fatal(err)
	}
}

func newSysext(t *testing.T) *Sysext {
	t.Helper()
	s := &Sysext{Root: nsroot.NewRoot(t)}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run.
		if err := s.Unmerge(context.Background()); err != nil {
			t.Errorf("Unmerge: %v", err)
		}
	})
	return s
}

func assertMerged(t *testing.T, s *Sysext, want ...string) {
	t.Helper()
	got, err := s.Merged(t.Context())
	if err != nil {
		t.Fatalf("Merged: %v", err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Merged() = %q, want %q", got, want)
	}
}

func assertHello(t *testing.T, s *Sysext, want string) {
	t.Helper()
	got, err := os.ReadFile(s.Root.Path("/usr/bin/hello"))
	if want == "" {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/usr/bin/hello after unmerge: content %q, err %v; want it gone", got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("reading merged /usr/bin/hello: %v", err)
	}
	if string(got) != want {
		t.Errorf("/usr/bin/hello = %q, want %q", got, want)
	}
}

func TestRefreshLifecycle(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		s := newSysext(t)
		ctx := t.Context()

		if err := s.Refresh(ctx); err != nil {
			t.Fatalf("Refresh with no images: %v", err)
		}
		assertMerged(t, s)

		install(t, s.Root, "sysext-hello", "", "v1", nil)
		if err := s.Refresh(ctx); err != nil {
			t.Fatalf("Refresh with one image: %v", err)
		}
		assertHello(t, s, "v1")
		assertMerged(t, s, "sysext-hello")
		if _, err := os.Stat(s.Root.Path("/usr/lib/extension-release.d/extension-release.sysext-hello")); err != nil {
			t.Errorf("merged tree lacks the extension-release file: %v", err)
		}

		install(t, s.Root, "sysext-hello", "", "v2", nil)
		if err := s.Refresh(ctx); err != nil {
			t.Fatalf("Refresh after replacing the image: %v", err)
		}
		assertHello(t, s, "v2")
		assertMerged(t, s, "sysext-hello")

		install(t, s.Root, "sysext-other", "", "other", nil)
		if err := s.Refresh(ctx); err != nil {
			t.Fatalf("Refresh with two images: %v", err)
		}
		assertMerged(t, s, "sysext-hello", "sysext-other")

		for _, f := range []string{"sysext-hello.raw", "sysext-other.raw"} {
			if err := os.Remove(s.Root.Path(filepath.Join(rootfs.ExtensionsDir, f))); err != nil {
				t.Fatal(err)
			}
		}
		// Removing the last extension leaves nothing merged and no error.
		if err := s.Refresh(ctx); err != nil {
			t.Fatalf("Refresh after removing every image: %v", err)
		}
		assertHello(t, s, "")
		assertMerged(t, s)
	})
}

func TestRefreshBrokenImages(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		tests := []struct {
			name string
			// broken places the offending file next to a good image.
			broken func(t *testing.T, root rootfs.Root)
			// wantErr: the whole refresh fails, the previous merge stays.
			// Otherwise the broken image is skipped and the good one merged.
			wantErr    bool
			wantStderr string
		}{
			{"wrong VERSION_ID is skipped", func(t *testing.T, root rootfs.Root) {
				install(t, root, "sysext-old", "", "old", func(f map[string]string) { f["VERSION_ID"] = "12" })
			}, false, ""},
			{"wrong ID is skipped", func(t *testing.T, root rootfs.Root) {
				install(t, root, "sysext-fedora", "", "old", func(f map[string]string) { f["ID"] = "fedora" })
			}, false, ""},
			{"garbage x.raw fails everything", func(t *testing.T, root rootfs.Root) {
				if err := os.WriteFile(root.Path(filepath.Join(rootfs.ExtensionsDir, "x.raw")), []byte(strings.Repeat("garbage", 1000)), 0o644); err != nil {
					t.Fatal(err)
				}
			}, true, "image x"},
			{"file name not matching extension-release fails everything", func(t *testing.T, root rootfs.Root) {
				install(t, root, "sysext-named", "named.raw", "named", nil)
			}, true, "image named"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newSysext(t)
				install(t, s.Root, "sysext-good", "", "good", nil)
				if err := s.Refresh(t.Context()); err != nil {
					t.Fatalf("Refresh with the good image: %v", err)
				}
				// Replace the good image so a refresh that really happened shows.
				install(t, s.Root, "sysext-good", "", "good v2", nil)
				tt.broken(t, s.Root)

				err := s.Refresh(t.Context())
				if !tt.wantErr {
					if err != nil {
						t.Fatalf("Refresh: %v", err)
					}
					assertHello(t, s, "good v2")
					assertMerged(t, s, "sysext-good")
					return
				}
				var cerr *CommandError
				if !errors.As(err, &cerr) {
					t.Fatalf("Refresh error = %v (%T), want *CommandError", err, err)
				}
				if cerr.ExitCode == 0 || !strings.Contains(cerr.Stderr, tt.wantStderr) {
					t.Errorf("CommandError = exit %d stderr %q, want non-zero exit and %q", cerr.ExitCode, cerr.Stderr, tt.wantStderr)
				}
				if !slices.Contains(cerr.Argv, "--root="+s.Root.Dir()) || cerr.Argv[len(cerr.Argv)-1] != "refresh" {
					t.Errorf("CommandError.Argv = %q, want --root and refresh", cerr.Argv)
				}
				// The failed refresh left the previous merge untouched.
				assertHello(t, s, "good")
				assertMerged(t, s, "sysext-good")
			})
		}
	})
}

// TestRefreshReportsSilentFailure: systemd 252 exits 0 when its merge child
// fails (here: the root has no os-release); Refresh must still fail.
func TestRefreshReportsSilentFailure(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		s := newSysext(t)
		for _, f := range []string{rootfs.EtcOSRelease, rootfs.UsrOSRelease} {
			if err := os.Remove(s.Root.Path(f)); err != nil {
				t.Fatal(err)
			}
		}
		install(t, s.Root, "sysext-hello", "", "v1", nil)
		err := s.Refresh(t.Context())
		var cerr *CommandError
		if !errors.As(err, &cerr) {
			t.Fatalf("Refresh error = %v (%T), want *CommandError", err, err)
		}
		if !strings.Contains(cerr.Stderr, "os-release") {
			t.Errorf("stderr = %q, want it to mention os-release", cerr.Stderr)
		}
		t.Logf("systemd-sysext exit code without os-release: %d", cerr.ExitCode)
		assertHello(t, s, "")
		assertMerged(t, s)
	})
}

// TestWhyQuotesSystemd: systemd-sysext skips an image built for another OS
// version without an error; Why gets systemd's own reason, which it gives
// only at debug level, and leaves the merge as the refresh made it.
func TestWhyQuotesSystemd(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		s := newSysext(t)
		install(t, s.Root, "sysext-good", "", "good", nil)
		install(t, s.Root, "sysext-old", "", "old", func(f map[string]string) { f["VERSION_ID"] = "11" })
		if err := s.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		assertMerged(t, s, "sysext-good")
		why := s.Why(t.Context(), []string{"sysext-old"})
		t.Logf("systemd says: %s", why)
		if !strings.Contains(why, "'sysext-old'") || !strings.Contains(why, "11") {
			t.Errorf("Why = %q, want systemd's line naming 'sysext-old' and the OS version 11 it is for", why)
		}
		if why := s.Why(t.Context(), []string{"sysext-good"}); strings.Contains(why, "is for") {
			t.Errorf("Why for the merged image = %q, want no verdict", why)
		}
		assertMerged(t, s, "sysext-good")
		assertHello(t, s, "good")
	})
}
