// Command releaseserver serves a directory laid out as GITHUB/OWNER/REPO/TAG/ASSET
// through the GitHub releases API stand-in (internal/testutil/fakegithub),
// for the README demo and manual testing. Tags publish in lexical order, so
// the last tag of a repository is its latest release. SIGHUP rescans.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback: sysextctl refuses plain http elsewhere)")
	dir := flag.String("dir", "", "directory of OWNER/REPO/TAG/ASSET files")
	urlFile := flag.String("url-file", "", "write the API base URL to this file once listening")
	flag.Parse()
	if *dir == "" {
		log.Fatal("releaseserver: -dir is required")
	}
	srv := fakegithub.NewUnstarted()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("releaseserver: %v", err)
	}
	publish := func() {
		n, err := scan(srv, *dir)
		if err != nil {
			log.Printf("releaseserver: scanning %s: %v", *dir, err)
		}
		log.Printf("releaseserver: %d releases published from %s", n, *dir)
	}
	publish()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			publish()
		}
	}()
	url := fmt.Sprintf("http://%s/", ln.Addr())
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(url+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("releaseserver: GitHub API stand-in at %s", url)
	log.Fatal(http.Serve(ln, srv.Handler()))
}

// scan publishes every OWNER/REPO/TAG directory under dir.
func scan(srv *fakegithub.Server, dir string) (int, error) {
	tags, err := filepath.Glob(filepath.Join(dir, "*", "*", "*"))
	if err != nil {
		return 0, err
	}
	sort.Strings(tags)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for i, tagDir := range tags {
		assets, _ := filepath.Glob(filepath.Join(tagDir, "*"))
		rel := fakegithub.Release{Tag: filepath.Base(tagDir), PublishedAt: base.Add(time.Duration(i) * time.Minute)}
		for _, a := range assets {
			rel.Assets = append(rel.Assets, fakegithub.Asset{Name: filepath.Base(a), Path: a})
		}
		repoDir := filepath.Dir(tagDir)
		srv.Publish(filepath.Base(filepath.Dir(repoDir)), filepath.Base(repoDir), rel)
		n++
	}
	return n, nil
}
