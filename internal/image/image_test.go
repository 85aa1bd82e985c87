package image

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

const (
	enabledService = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/x\n\n[Install]\nWantedBy=multi-user.target\n"
	staticService  = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/x\n"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	rel := release(map[string]string{"NAME": `"Hello" sysext`, "UPDATE": "service: hello"})
	img := sqfs.Build(t, dir, sqfs.Spec{
		Name:    "sysext-hello",
		Release: rel,
		Files: map[string]string{
			"usr/bin/hello":                     "#!/bin/sh\n",
			"opt/hello/data":                    "d",
			"usr/lib/systemd/system/a.service":  enabledService,
			"usr/lib/systemd/system/b.service":  staticService,
			"usr/lib/systemd/system/c@.service": enabledService,
		},
		Dirs: []string{"etc"},
	})
	info, err := Inspect(img)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if got, want := info.Name, "sysext-hello"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
	for k, want := range rel {
		if got := info.Fields[k]; got != want {
			t.Errorf("Fields[%s] = %q, want %q", k, got, want)
		}
	}
	if got, want := info.TopLevel, []string{"etc", "opt", "usr"}; !slices.Equal(got, want) {
		t.Errorf("TopLevel = %q, want %q", got, want)
	}
	if got, want := info.Units, []string{"a.service"}; !slices.Equal(got, want) {
		t.Errorf("Units = %q, want %q", got, want)
	}
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Size, st.Size(); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	if got, want := info.Compression, "gzip"; got != want {
		t.Errorf("Compression = %q, want %q", got, want)
	}
}

func TestInspectCompressions(t *testing.T) {
	dir := t.TempDir()
	for _, comp := range []string{"gzip", "xz", "zstd", "lzo"} {
		t.Run(comp, func(t *testing.T) {
			img := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-" + comp, Release: release(nil), Compression: comp,
				Files: map[string]string{"usr/lib/systemd/system/s.socket": "[Install]\nWantedBy=sockets.target\n"}})
			info, err := Inspect(img)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if info.Compression != comp || info.Name != "sysext-"+comp || info.Fields["ID"] != "debian" || !slices.Equal(info.Units, []string{"s.socket"}) {
				t.Errorf("Inspect = %+v, want %s image named sysext-%s with ID debian and unit s.socket", info, comp, comp)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                bool
	}{
		{"WantedBy", "a.service", enabledService, true},
		{"no Install", "a.service", staticService, false},
		{"empty Install", "a.service", staticService + "[Install]\n", false},
		{"empty WantedBy", "a.service", "[Install]\nWantedBy=\n", false},
		{"RequiredBy", "a.service", "[Install]\nRequiredBy=x.target\n", true},
		{"Alias", "a.service", "[Install]\nAlias=b.service\n", true},
		{"Also", "a.service", "[Install]\nAlso=a.socket\n", true},
		{"key in another section", "a.service", "[Service]\nWantedBy=x.target\n[Install]\n", false},
		{"commented out", "a.service", "[Install]\n#WantedBy=x.target\n; Alias=y\n", false},
		{"timer", "a.timer", "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n", true},
		{"template excluded", "a@.service", enabledService, false},
		{"instance kept", "a@b.service", enabledService, true},
		{"not a unit", "a.conf", enabledService, false},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := sqfs.Build(t, dir, sqfs.Spec{Name: "u", Release: release(nil), FileName: strings.Repeat("u", i+1) + ".raw",
				Files: map[string]string{"usr/lib/systemd/system/" + tc.file: tc.content, "usr/lib/systemd/system/sub/d.service": enabledService}})
			info, err := Inspect(img)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(info.Units, tc.file); got != tc.want {
				t.Errorf("Units = %q: contains %s = %v, want %v", info.Units, tc.file, got, tc.want)
			}
			if slices.Contains(info.Units, "d.service") {
				t.Errorf("Units = %q includes a unit from a subdirectory", info.Units)
			}
		})
	}
}

func TestInspectBadFiles(t *testing.T) {
	dir := t.TempDir()
	random := make([]byte, 64<<10)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	good := sqfs.Build(t, dir, sqfs.Spec{Name: "g", Release: release(nil), Files: map[string]string{"usr/share/big": hex.EncodeToString(random)}})
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
		wantMsg string
	}{
		{"lzma", sqfs.Build(t, dir, sqfs.Spec{Name: "l", Release: release(nil), Compression: "lzma"}), ErrUnsupportedCompression, "kernel cannot mount"},
		{"truncated", write("trunc.raw", goodBytes[:len(goodBytes)/2]), ErrCorrupt, "truncated"},
		{"superblock only", write("sb.raw", goodBytes[:96]), ErrCorrupt, "truncated"},
		{"too short", write("short.raw", goodBytes[:10]), ErrCorrupt, "too short"},
		{"empty", write("empty.raw", nil), ErrCorrupt, "too short"},
		{"random bytes", write("random.raw", random), ErrCorrupt, "bad magic"},
		{"random after magic", write("magic.raw", append([]byte("hsqs"), random[:4096]...)), ErrCorrupt, ""},
		{"directory", dir, ErrCorrupt, "not a regular file"},
		{"missing", filepath.Join(dir, "nope.raw"), fs.ErrNotExist, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Inspect(tc.path)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Inspect = %+v, %v; want error %v", info, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
			if _, err := ReadFile(tc.path, ReleaseDir+"/extension-release.g"); !errors.Is(err, tc.wantErr) {
				t.Errorf("ReadFile error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("x", MaxReadSize+1)
	img := sqfs.Build(t, dir, sqfs.Spec{Name: "r", Release: release(nil),
		Files: map[string]string{"usr/share/doc/r/README": "hello\n", "usr/share/big": big}})
	tests := []struct {
		name, inImage, want, wantErr string
	}{
		{"relative", "usr/share/doc/r/README", "hello\n", ""},
		{"leading slash", "/usr/share/doc/r/README", "hello\n", ""},
		{"missing", "usr/share/nope", "", "does not exist"},
		{"directory", "usr/share", "", "not a regular file"},
		{"root", "/", "", "not a regular file"},
		{"over cap", "usr/share/big", "", "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFile(img, tc.inImage)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadFile(%q) = %q, %v; want error containing %q", tc.inImage, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("ReadFile(%q) = %q, want %q", tc.inImage, got, tc.want)
			}
		})
	}
}

func TestInspectBadRelease(t *testing.T) {
	img := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "b", SkipRelease: true,
		Files: map[string]string{ReleaseDir + "/extension-release.b": "ID=debian\nVERSION_ID=13\nNAME=\xff\n"}})
	info, err := Inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(info, trixieAmd64, "b"); !errors.Is(err, ErrBadRelease) || !strings.Contains(err.Error(), "invalid UTF-8") {
		t.Errorf("Validate error = %v, want ErrBadRelease for invalid UTF-8", err)
	}
}

// TestManagerConfig: what an image changes in the service manager besides
// its own units, which decides whether a daemon-reload is owed.
func TestManagerConfig(t *testing.T) {
	dir := t.TempDir()
	img := sqfs.Build(t, dir, sqfs.Spec{Name: "m", Release: release(nil), FileName: "m.raw", Files: map[string]string{
		"usr/lib/systemd/system/a.service":                       enabledService,
		"usr/lib/systemd/system/nginx.service.d/10-x.conf":       "[Service]\nEnvironment=X=1\n",
		"usr/lib/systemd/system/multi-user.target.wants/README":  "x",
		"usr/lib/systemd/system-generators/g":                    "#!/bin/sh\n",
		"usr/local/lib/systemd/system/z.service":                 staticService,
		"usr/lib/systemd/user/u.service":                         staticService,
		"usr/lib/systemd/system-preset/90-x.preset":              "enable a.service\n",
		"usr/lib/systemd/system-environment-generators.disabled": "x",
	}, Symlinks: map[string]string{"usr/lib/systemd/system/b.service": "a.service", "usr/lib/systemd/system/c.service": "/dev/null"}})
	info, err := Inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"multi-user.target.wants", "nginx.service.d"}; !slices.Equal(info.UnitDirs, want) {
		t.Errorf("UnitDirs = %q, want %q", info.UnitDirs, want)
	}
	if want := []string{"b.service", "c.service"}; !slices.Equal(info.UnitLinks, want) {
		t.Errorf("UnitLinks = %q, want %q", info.UnitLinks, want)
	}
	if want := []string{"usr/local/lib/systemd/system", "usr/lib/systemd/system-generators"}; !slices.Equal(info.ManagerDirs, want) {
		t.Errorf("ManagerDirs = %q, want %q", info.ManagerDirs, want)
	}

	units, why := info.ManagerChanges()
	if want := []string{"a.service", "b.service", "c.service", "multi-user.target", "nginx.service"}; !slices.Equal(units, want) {
		t.Errorf("ManagerChanges units = %q, want %q", units, want)
	}
	for _, w := range []string{"usr/lib/systemd/system-generators", "b.service, c.service"} {
		if !strings.Contains(why, w) {
			t.Errorf("ManagerChanges reload-only reason %q does not name %s", why, w)
		}
	}

	plain := sqfs.Build(t, dir, sqfs.Spec{Name: "p", Release: release(nil), FileName: "p.raw",
		Files: map[string]string{"usr/lib/systemd/system/a.service": enabledService, "usr/bin/a": "x"}})
	info, err = Inspect(plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.UnitDirs) != 0 || len(info.ManagerDirs) != 0 || len(info.UnitLinks) != 0 {
		t.Errorf("an image with one unit: UnitDirs %q, UnitLinks %q, ManagerDirs %q, want none", info.UnitDirs, info.UnitLinks, info.ManagerDirs)
	}
	if units, why := info.ManagerChanges(); !slices.Equal(units, []string{"a.service"}) || why != "" {
		t.Errorf("an image with one unit: ManagerChanges = %q, %q; want [a.service], no reason", units, why)
	}
}

func TestManagerChangesDropIns(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		unit string // "" when only a reload does
	}{
		{"nginx.service.d", "nginx.service"},
		{"multi-user.target.wants", "multi-user.target"},
		{"x.socket.requires", "x.socket"},
		{"y.service.upholds", "y.service"},
		{"service.d", ""},
		{"foo-.service.d", ""},
		{"foo@.service.d", ""},
		{"-.slice.d", ""},
		{"tools.d", ""},
		{"sub", ""},
	} {
		units, why := (&Info{UnitDirs: []string{tc.dir}}).ManagerChanges()
		switch {
		case tc.unit != "" && (!slices.Equal(units, []string{tc.unit}) || why != ""):
			t.Errorf("%s: ManagerChanges = %q, %q; want [%s] and no reload-only reason", tc.dir, units, why, tc.unit)
		case tc.unit == "" && tc.dir != "sub" && why == "":
			t.Errorf("%s: ManagerChanges = %q, %q; want a reload-only reason", tc.dir, units, why)
		case tc.dir == "sub" && (len(units) != 0 || why != ""):
			t.Errorf("sub: ManagerChanges = %q, %q; want nothing (systemd reads no such directory)", units, why)
		}
	}
}
