package image

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

var trixieAmd64 = Host{ID: "debian", VersionID: "13", Arch: "amd64"}

// release returns a trixie amd64 extension-release with overrides applied;
// an override of "" removes the key.
func release(overrides map[string]string) map[string]string {
	r := map[string]string{
		"ID": "debian", "VERSION_ID": "13", "ARCH": "amd64", "ARCHITECTURE": "x86-64",
		"PACKAGE": "hello", "PACKAGE_VERSION": "2.10-3", "BUILD_TIME": "2026-11-01T09:00:00Z",
	}
	for k, v := range overrides {
		if v == "" {
			delete(r, k)
		} else {
			r[k] = v
		}
	}
	return r
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name         string
		spec         sqfs.Spec
		host         Host
		wantName     string
		wantErr      error  // nil: valid
		wantMsg      string // substring of the error
		wantWarnings int
	}{
		{name: "valid", spec: sqfs.Spec{Release: release(nil)}, host: trixieAmd64, wantName: "sysext-hello"},
		{name: "valid, any name", spec: sqfs.Spec{Release: release(nil)}, host: trixieAmd64},
		{name: "wrong name", spec: sqfs.Spec{Name: "foo", Release: release(nil)}, host: trixieAmd64, wantName: "sysext-hello",
			wantErr: ErrNameMismatch, wantMsg: `no usr/lib/extension-release.d/extension-release.sysext-hello (found extension-release.foo`},
		{name: "no release file", spec: sqfs.Spec{SkipRelease: true, Files: map[string]string{"usr/bin/x": "x"}}, host: trixieAmd64,
			wantErr: ErrNoRelease, wantMsg: "no usr/lib/extension-release.d/extension-release.* file"},
		{name: "two release files", spec: sqfs.Spec{Release: release(nil), ExtraReleaseNames: []string{"other"}}, host: trixieAmd64,
			wantErr: ErrMultipleReleases, wantMsg: "extension-release.other, extension-release.sysext-hello"},
		{name: "wrong ID", spec: sqfs.Spec{Release: release(map[string]string{"ID": "ubuntu"})}, host: trixieAmd64,
			wantErr: ErrIDMismatch, wantMsg: `ID "ubuntu" does not match host ID "debian"`},
		{name: "missing ID", spec: sqfs.Spec{Release: release(map[string]string{"ID": ""})}, host: trixieAmd64,
			wantErr: ErrMissingID, wantMsg: "has no ID"},
		{name: "_any ID skips version", spec: sqfs.Spec{Release: release(map[string]string{"ID": "_any", "VERSION_ID": "99"})}, host: trixieAmd64},
		{name: "_any ID still checks arch", spec: sqfs.Spec{Release: release(map[string]string{"ID": "_any", "ARCHITECTURE": "arm64", "ARCH": ""})}, host: trixieAmd64,
			wantErr: ErrArchMismatch, wantMsg: `ARCHITECTURE "arm64" does not match host architecture "x86-64"`},
		{name: "VERSION_ID mismatch", spec: sqfs.Spec{Release: release(map[string]string{"VERSION_ID": "12"})}, host: trixieAmd64,
			wantErr: ErrVersionMismatch, wantMsg: `VERSION_ID "12" does not match host VERSION_ID "13"`},
		{name: "VERSION_ID missing", spec: sqfs.Spec{Release: release(map[string]string{"VERSION_ID": ""})}, host: trixieAmd64,
			wantErr: ErrMissingVersion, wantMsg: `no VERSION_ID (want "13")`},
		{name: "SYSEXT_LEVEL takes precedence over VERSION_ID", spec: sqfs.Spec{Release: release(map[string]string{"VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"})},
			host: Host{ID: "debian", VersionID: "13", SysextLevel: "1.0", Arch: "amd64"}},
		{name: "SYSEXT_LEVEL mismatch", spec: sqfs.Spec{Release: release(map[string]string{"SYSEXT_LEVEL": "2"})},
			host:    Host{ID: "debian", VersionID: "13", SysextLevel: "1.0", Arch: "amd64"},
			wantErr: ErrVersionMismatch, wantMsg: `SYSEXT_LEVEL "2" does not match host SYSEXT_LEVEL "1.0"`},
		{name: "SYSEXT_LEVEL without host level falls back to VERSION_ID", spec: sqfs.Spec{Release: release(map[string]string{"VERSION_ID": "12", "SYSEXT_LEVEL": "1.0"})},
			host: trixieAmd64, wantErr: ErrVersionMismatch, wantMsg: `VERSION_ID "12"`},
		{name: "host level, image without level uses VERSION_ID", spec: sqfs.Spec{Release: release(map[string]string{"VERSION_ID": "12"})},
			host: Host{ID: "debian", VersionID: "13", SysextLevel: "1.0", Arch: "amd64"}, wantErr: ErrVersionMismatch},
		{name: "rolling host needs only ID", spec: sqfs.Spec{Release: release(map[string]string{"VERSION_ID": ""})}, host: Host{ID: "debian", Arch: "amd64"}},
		{name: "ARCHITECTURE mismatch", spec: sqfs.Spec{Release: release(map[string]string{"ARCHITECTURE": "arm64"})}, host: trixieAmd64,
			wantErr: ErrArchMismatch, wantMsg: `ARCHITECTURE "arm64" does not match host architecture "x86-64" (amd64)`},
		{name: "ARCHITECTURE _any", spec: sqfs.Spec{Release: release(map[string]string{"ARCHITECTURE": "_any", "ARCH": "all"})}, host: trixieAmd64},
		{name: "ARCHITECTURE on arm64 host", spec: sqfs.Spec{Release: release(map[string]string{"ARCHITECTURE": "arm64", "ARCH": "arm64"})},
			host: Host{ID: "debian", VersionID: "13", Arch: "arm64"}},
		{name: "ARCH mismatch", spec: sqfs.Spec{Release: release(map[string]string{"ARCHITECTURE": "", "ARCH": "arm64"})}, host: trixieAmd64,
			wantErr: ErrArchMismatch, wantMsg: `ARCH "arm64" does not match host architecture "amd64"`},
		{name: "SYSEXT_SCOPE initrd only", spec: sqfs.Spec{Release: release(map[string]string{"SYSEXT_SCOPE": "initrd"})}, host: trixieAmd64,
			wantErr: ErrScopeMismatch, wantMsg: `SYSEXT_SCOPE "initrd"`},
		{name: "SYSEXT_SCOPE includes system", spec: sqfs.Spec{Release: release(map[string]string{"SYSEXT_SCOPE": "initrd system"})}, host: trixieAmd64},
		{name: "no arch fields", spec: sqfs.Spec{Release: release(map[string]string{"ARCHITECTURE": "", "ARCH": ""})}, host: trixieAmd64},
		{name: "extra top-level dir is a warning", spec: sqfs.Spec{Release: release(nil), Dirs: []string{"etc", "opt/x"}}, host: trixieAmd64,
			wantWarnings: 1},
		{name: "warnings survive an error", spec: sqfs.Spec{Release: release(map[string]string{"ID": "fedora"}), Dirs: []string{"var", "etc"}}, host: trixieAmd64,
			wantErr: ErrIDMismatch, wantWarnings: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			if spec.Name == "" && !spec.SkipRelease {
				spec.Name = "sysext-hello"
			}
			spec.FileName = strings.NewReplacer(" ", "_", ",", "", "/", "_").Replace(tc.name) + ".raw"
			img := sqfs.Build(t, dir, spec)
			info, err := Inspect(img)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			warnings, err := Validate(info, tc.host, tc.wantName)
			if got, want := len(warnings), tc.wantWarnings; got != want {
				t.Errorf("got %d warnings %q, want %d", got, warnings, want)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate error = %v, want %v", err, tc.wantErr)
			}
			var ve *ValidationError
			base := filepath.Base(img)
			if !errors.As(err, &ve) || ve.Image != base {
				t.Errorf("error %v is not a *ValidationError naming %s", err, base)
			}
			if !strings.Contains(err.Error(), base) || strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q, want it to name %s (not its directory) and contain %q", err, base, tc.wantMsg)
			}
		})
	}
}

func TestValidateWarningText(t *testing.T) {
	info := &Info{Path: "/x.raw", Releases: []Release{{Name: "n", Regular: true, Fields: map[string]string{"ID": "_any"}}},
		TopLevel: []string{"etc", "opt", "usr"}}
	warnings, err := Validate(info, trixieAmd64, "n")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"etc"`) || !strings.Contains(warnings[0], "/x.raw") {
		t.Errorf("warnings = %q, want one naming /x.raw and \"etc\"", warnings)
	}
}

func TestDebianToSystemdArch(t *testing.T) {
	for deb, want := range map[string]string{
		"amd64": "x86-64", "arm64": "arm64", "armhf": "arm", "i386": "x86",
		"ppc64el": "ppc64-le", "riscv64": "riscv64", "s390x": "s390x", "sparc": "", "": "",
	} {
		if got := DebianToSystemdArch(deb); got != want {
			t.Errorf("DebianToSystemdArch(%q) = %q, want %q", deb, got, want)
		}
	}
}
