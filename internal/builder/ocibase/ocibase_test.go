package ocibase

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type entry struct{ name, body, link string }

func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Typeflag: tar.TypeSymlink, Linkname: e.link, Mode: 0o777}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPullExtractsWhatABuildReads(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	img, err := mutate.AppendLayers(empty.Image,
		layer(t,
			entry{name: "var/lib/dpkg/status", body: "Package: old\n"},
			entry{name: "usr/lib/os-release", body: "VERSION_CODENAME=trixie\n"},
			entry{name: "etc/os-release", link: "../usr/lib/os-release"},
			entry{name: "usr/bin/big", body: strings.Repeat("x", 1000)},
			entry{name: "usr/share/keyrings/debian-archive-keyring.pgp", body: "keys"}),
		layer(t, entry{name: "var/lib/dpkg/status", body: "Package: libc6\nStatus: install ok installed\nVersion: 2.41\n"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/spamtagger-bootc:spamtagger-13"
	if err := crane.Push(img, ref, crane.Insecure); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Pull(context.Background(), ref, "", dir, true); err != nil {
		t.Fatal(err)
	}
	status, _ := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/status"))
	if !strings.Contains(string(status), "libc6") {
		t.Errorf("status = %q, want the upper layer's", status)
	}
	if osr, err := os.ReadFile(filepath.Join(dir, "etc/os-release")); err != nil || string(osr) != "VERSION_CODENAME=trixie\n" {
		t.Errorf("etc/os-release via its symlink = %q, %v", osr, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/keyrings/debian-archive-keyring.pgp")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/big")); err == nil {
		t.Error("extracted usr/bin/big, which a build does not read")
	}

	t.Run("not a Debian image", func(t *testing.T) {
		other, _ := mutate.AppendLayers(empty.Image, layer(t, entry{name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n"}))
		if err := Extract(other, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no var/lib/dpkg/status") {
			t.Errorf("error = %v", err)
		}
	})
}
