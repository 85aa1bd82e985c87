// Command dlget downloads one extension image the way sysextd does
// (source.GitHub: Latest, then Download, which streams to a temporary file,
// hashes, checks size and digest, and fsyncs), prints the throughput in
// MB/s (10^6 bytes per second) and deletes the file. Run it under
// /usr/bin/time -v to read its peak RSS.
//
//	dlget -api URL -name NAME -dir DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

func main() {
	api := flag.String("api", "", "GitHub API base URL")
	name := flag.String("name", "big", "extension (manifest key); the image is sysext-NAME")
	dir := flag.String("dir", os.TempDir(), "directory for the downloaded file")
	flag.Parse()
	if err := run(*api, *name, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "dlget:", err)
		os.Exit(1)
	}
}

func run(api, name, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	g, err := source.NewGitHub(source.GitHubOptions{APIBase: api})
	if err != nil {
		return err
	}
	img := "sysext-" + name
	arch := sqfs.DefaultRelease(img)["ARCH"]
	rel, err := g.Latest(ctx, source.Request{Name: name, URL: "https://github.com/bench/" + img, Image: img},
		source.Target{Codename: "trixie", Arch: arch})
	if err != nil {
		return fmt.Errorf("finding the release: %w", err)
	}
	start := time.Now()
	d, err := g.Download(ctx, rel.Image, dir)
	if err != nil {
		return fmt.Errorf("downloading: %w", err)
	}
	elapsed := time.Since(start)
	defer os.Remove(d.Path)
	fmt.Printf("%.0f\n", float64(rel.Image.Size)/elapsed.Seconds()/1e6)
	return nil
}
