package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

func TestKeys(t *testing.T) {
	root := rootfs.New(t.TempDir())
	pub, _, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	id := fmt.Sprintf("%016X", pub.ID())
	for p, data := range map[string]string{
		rootfs.VendorKeysDir + "/vendor.pub":        string(text),
		rootfs.VendorKeysDir + "/vendor.extensions": "hello\nopen-vm-tools\n",
	} {
		os.MkdirAll(filepath.Dir(root.Path(p)), 0o755)
		if err := os.WriteFile(root.Path(p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI(t, "--root", root.Dir(), "keys")
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !regexp.MustCompile(`(?m)^vendor\s+minisign\s+` + id + `\s+vendor\s+hello,open-vm-tools\s`).MatchString(out) {
		t.Errorf("keys printed:\n%s\nwant vendor, minisign, %s, hello,open-vm-tools", out, id)
	}

	os.MkdirAll(root.Path(rootfs.LocalKeysDir), 0o755)
	os.WriteFile(root.Path(rootfs.LocalKeysDir+"/broken.asc"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nnope\n"), 0o644)
	code, out, errOut = runCLI(t, "--root", root.Dir(), "--json", "keys")
	if code != ExitUsage || !strings.Contains(errOut, "/etc/sysextd/keys.d/broken.asc") {
		t.Errorf("broken key: exit %d, stderr %q; want 2 naming the file", code, errOut)
	}
	var res struct {
		Keys []struct {
			ID, Name string
			Scope    []string
		}
		Errors []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Keys) != 1 || res.Keys[0].ID != id || len(res.Errors) != 1 {
		t.Errorf("json = %+v", res)
	}
}
