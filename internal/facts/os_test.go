package facts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// TestReadOSIDLike: ID_LIKE reaches the facts, for image validation
// (systemd-sysext takes an image whose ID is one of the host's ID_LIKE).
func TestReadOSIDLike(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "etc/os-release")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("ID=spamtagger\nID_LIKE=\"debian ubuntu\"\nVERSION_ID=13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readOS(rootfs.New(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "spamtagger" || got.IDLike != "debian ubuntu" || got.VersionID != "13" {
		t.Errorf("readOS = %+v", got)
	}
}
