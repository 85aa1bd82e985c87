package buildcli

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestCheckWithOCIBase reads the base from an image in a registry (the
// vendor's bootc image in real use) instead of a directory.
func TestCheckWithOCIBase(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg})
	tw.Write([]byte(status))
	tw.Close()
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/spamtagger-bootc:spamtagger-13"
	if err := crane.Push(img, ref, crane.Insecure); err != nil {
		t.Fatal(err)
	}
	fa := checkArchive(t)
	in := writeFiles(t, map[string]string{"metadata.json": metadata})
	from := writeFiles(t, map[string]string{"release.json": `{"version": "v1", "package_versions": {"trixie_amd64": "2.10-5+b1"},
		"packages": {"trixie_amd64": {"hello": "2.10-5+b1", "libgreet": "1.0-1+deb13u1"}}}`})
	out, errOut, code := run(t, "check", "--base", "trixie=oci:"+ref, "--insecure-registry", "--mirror", fa.URL, "--security-mirror", fa.URL,
		"--keyring", fa.KeyringFile(t), "--cache", t.TempDir(), "--from", from, filepath.Join(in, "metadata.json"))
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}
