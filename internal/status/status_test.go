package status

import (
	"os"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

func TestReadStatus(t *testing.T) {
	root := rootfs.New(t.TempDir())
	if st, err := Read(root); st != nil || err != nil {
		t.Fatalf("no file: %+v, %v; want nil, nil", st, err)
	}
	os.MkdirAll(root.Path(rootfs.StateDir), 0o755)
	os.WriteFile(root.Path(File), []byte("{"), 0o644)
	if _, err := Read(root); err == nil || !strings.Contains(err.Error(), "daemon.json") {
		t.Errorf("corrupt file: %v; want an error naming daemon.json", err)
	}
}

func TestPendingReboot(t *testing.T) {
	root := rootfs.New(t.TempDir())
	s := store.Store{Root: root}
	st := &store.State{Extensions: map[string]*store.Record{"b": {Name: "b"}, "a": {Name: "a"}, "c": {Name: "c"}}}
	if err := s.SaveState(st); err != nil {
		t.Fatal(err)
	}
	if got := PendingReboot(root); got.Required {
		t.Fatalf("nothing pending: %+v", got)
	}
	for _, p := range []string{"b", "linux-image-amd64", "a"} {
		if err := store.MarkRebootRequired(root, p); err != nil {
			t.Fatal(err)
		}
	}
	got := PendingReboot(root)
	if !got.Required || strings.Join(got.Extensions, ",") != "a,b" || got.Reason != "the update of a and b requires it" {
		t.Errorf("PendingReboot = %+v; want a and b (not the foreign package)", got)
	}
}
