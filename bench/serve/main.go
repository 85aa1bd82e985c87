// Command serve publishes one extension release on a fake GitHub
// (internal/testutil/fakegithub) on 127.0.0.1 and serves it until its
// standard input closes, so that separate processes (curl, sysextctl, a
// downloader under /usr/bin/time) can be measured against it without the
// server's own memory or CPU in their figures.
//
//	serve -name NAME (-build DIR | -image FILE.raw | -file BLOB)
//
// -build makes a small extension image with mksquashfs in DIR (usr/bin/NAME
// and the extension-release file with the sysext template's defaults for
// this host) and publishes it; -image publishes an existing image built
// with those same fields; -file publishes any file as the image asset, for
// download throughput. It prints two lines: the API base
// URL and the image's browser_download_url.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

func main() {
	name := flag.String("name", "x", "extension (manifest key); the image is sysext-NAME")
	image := flag.String("image", "", "extension image to publish")
	file := flag.String("file", "", "any file to publish as the image asset")
	build := flag.String("build", "", "build a small image in `DIR` and publish it")
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
	_, _ = io.Copy(io.Discard, os.Stdin)
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
