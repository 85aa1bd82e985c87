// Command serve publishes one extension release on a fake GitHub
// (internal/testutil/fakegithub) on 127.0.0.1 and serves it until its
// standard input closes, so that separate processes (curl, sysextctl, a
// downloader under /usr/bin/time) can be measured against it without the
// server's own memory or CPU in their figures.
//
//	serve -name NAME (-build DIR | -image FILE.raw | -file BLOB) [-dir DIR] [-oci]
//
// -build makes a small extension image with mksquashfs in DIR (usr/bin/NAME
// and the extension-release file with the sysext template's defaults for
// this host) and publishes it; -image publishes an existing image built
// with those same fields; -file publishes any file as the image asset, for
// download throughput.
//
// -dir also serves DIR as plain files over http on 127.0.0.1 (a static
// mirror, once `sysextctl mirror --to file:///DIR` has filled it; files are
// read at each request, so DIR may be filled after serve starts). -oci also
// runs an empty OCI registry (go-containerregistry's pkg/registry) on
// 127.0.0.1, for `sysextctl mirror --to oci://HOST:PORT/REPO`.
//
// It prints, one per line and in this order: the API base URL; the image's
// browser_download_url; with -dir, the base URL DIR is served at (no
// trailing slash); with -oci, the registry's HOST:PORT.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

func main() {
	name := flag.String("name", "x", "extension (manifest key); the image is sysext-NAME")
	image := flag.String("image", "", "extension image to publish")
	file := flag.String("file", "", "any file to publish as the image asset")
	build := flag.String("build", "", "build a small image in `DIR` and publish it")
	dir := flag.String("dir", "", "also serve `DIR` over http on 127.0.0.1 (a static mirror)")
	oci := flag.Bool("oci", false, "also run an OCI registry on 127.0.0.1")
	flag.Parse()
	path := *image
	if *build != "" {
		var err error
		if path, err = buildImage(*build, *name); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
	}
	if path == "" {
		path = *file
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, "serve: -build, -image or -file is required")
		os.Exit(2)
	}
	img := "sysext-" + *name
	fields := sqfs.DefaultRelease(img)
	base := fmt.Sprintf("%s_%s_%s", img, fields["VERSION_CODENAME"], fields["ARCH"])
	relJSON, err := json.Marshal(map[string]any{
		"version":          "2026.11.01-0900",
		"date":             "2026-11-01T09:00:00Z",
		"package_versions": map[string]string{"trixie_" + fields["ARCH"]: fields["PACKAGE_VERSION"]},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	srv := fakegithub.New()
	defer srv.Close()
	srv.Publish("bench", img, fakegithub.Release{Tag: "2026.11.01-0900", Assets: []fakegithub.Asset{
		{Name: base + ".squashfs", Path: path},
		{Name: base + ".manifest", Data: []byte(sqfs.FormatRelease(fields)), ContentType: "text/plain"},
		{Name: "release.json", Data: relJSON, ContentType: "application/json"},
	}})
	api := srv.URL()
	fmt.Println(api)
	fmt.Printf("%sbench/%s/releases/download/2026.11.01-0900/%s.squashfs\n", api, img, base)
	if *dir != "" {
		addr, err := listen(http.FileServer(http.Dir(*dir)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		fmt.Printf("http://%s\n", addr)
	}
	if *oci {
		addr, err := listen(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		fmt.Println(addr)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// listen serves h on a free port of 127.0.0.1 until the process exits and
// returns its HOST:PORT.
func listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = http.Serve(ln, h) }()
	return ln.Addr().String(), nil
}

// buildImage writes sysext-NAME.raw into dir with mksquashfs.
func buildImage(dir, name string) (string, error) {
	img := "sysext-" + name
	tree := filepath.Join(dir, "tree")
	spec := sqfs.Spec{
		Name:    img,
		Release: sqfs.DefaultRelease(img),
		Files:   map[string]string{"usr/bin/" + name: "#!/bin/sh\necho " + name + "\n"},
	}
	if err := sqfs.WriteTree(tree, spec); err != nil {
		return "", err
	}
	out := filepath.Join(dir, img+".raw")
	if err := sqfs.BuildFromTree(context.Background(), tree, out, ""); err != nil {
		return "", err
	}
	return out, nil
}
