package nsroot

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"golang.org/x/sys/unix"
)

// The OS that NewRoot's tree claims to be. Extension images built for tests
// must carry the same ID and VERSION_ID, or systemd-sysext skips them.
const (
	OSID        = "debian"
	OSVersionID = "13"
	OSCodename  = "trixie"
	OSRelease   = "ID=" + OSID + "\nVERSION_ID=" + OSVersionID + "\nVERSION_CODENAME=" + OSCodename + "\n"
	dirPerm     = 0o755
)

// NewRoot makes a throwaway root directory holding what systemd-sysext
// --root needs: an os-release (systemd 252 reads etc/os-release, else
// usr/lib/os-release; without either, refresh merges nothing), a non-empty
// /usr, and the extension directories. On cleanup it detaches every mount
// left under the root, so that the directory can be removed.
func NewRoot(t *testing.T) rootfs.Root {
	t.Helper()
	root := rootfs.New(t.TempDir())
	for _, d := range []string{"/usr/bin", "/usr/lib", "/etc", rootfs.ExtensionsDir, rootfs.EtcExtensionsDir, "/var/lib/sysextd"} {
		if err := os.MkdirAll(root.Path(d), dirPerm); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{rootfs.UsrOSRelease, rootfs.EtcOSRelease} {
		if err := os.WriteFile(root.Path(f), []byte(OSRelease), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { UnmountUnder(t, root.Dir()) })
	return root
}

// UnmountUnder lazily detaches every mount at or below dir, deepest first.
func UnmountUnder(t *testing.T, dir string) {
	t.Helper()
	for _, m := range slices.Backward(MountsUnder(t, dir)) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", m, err)
		}
	}
}

// MountsUnder lists the mount points at or below dir in this process's
// mount namespace, in mount order.
func MountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for space ...).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
