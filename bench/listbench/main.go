// Command listbench times `sysextctl list` against a fake GitHub that
// answers every request after a fixed latency, for a manifest of N
// extensions: with a cold cache (empty /var/cache/sysextd: every release is
// fetched), a warm one (the last check is younger than the freshness
// window: no request at all), and `list --refresh` over a warm cache (one
// conditional request per extension). It counts the requests each run
// costs and the peak RSS of the sysextctl process, and prints one markdown
// table row per case.
//
//	listbench -sysextctl bin/sysextctl [-n 10,100] [-runs 5] [-latency 100ms]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

func main() {
	bin := flag.String("sysextctl", "bin/sysextctl", "sysextctl binary to time")
	ns := flag.String("n", "10,100", "comma-separated extension counts")
	runs := flag.Int("runs", 5, "timed runs per case (the median is reported)")
	latency := flag.Duration("latency", 100*time.Millisecond, "latency of every fake GitHub answer")
	useTLS := flag.Bool("tls", false, "serve the fake over TLS with HTTP/2, as api.github.com does (default: plain HTTP/1.1, like a simple mirror)")
	flag.Parse()
	if err := run(*bin, *ns, *runs, *latency, *useTLS); err != nil {
		fmt.Fprintln(os.Stderr, "listbench:", err)
		os.Exit(1)
	}
}

func run(bin, ns string, runs int, latency time.Duration, useTLS bool) error {
	var counts []int
	for _, s := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("parsing -n %q: not a positive count", s)
		}
		counts = append(counts, n)
	}
	srv, proto := fakegithub.New(), "HTTP/1.1"
	if useTLS {
		srv, proto = fakegithub.NewTLS(), "HTTP/2 over TLS"
		f, err := os.CreateTemp("", "listbench-ca-*.pem")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		if _, err := f.Write(srv.CertPEM()); err != nil {
			return err
		}
		f.Close()
		caFile = f.Name()
	}
	defer srv.Close()
	for i := range slices.Max(counts) {
		publish(srv, fmt.Sprintf("ext%d", i))
	}
	srv.SetLatency(latency)
	for _, n := range counts {
		root, err := os.MkdirTemp("", "listbench-root-")
		if err != nil {
			return fmt.Errorf("creating root: %w", err)
		}
		defer os.RemoveAll(root)
		if err := writeRoot(root, n); err != nil {
			return err
		}
		b := bench{bin: bin, root: root, api: srv.URL(), srv: srv, n: n}
		cold, err := b.measure(runs, true)
		if err != nil {
			return fmt.Errorf("%d extensions, cold: %w", n, err)
		}
		warm, err := b.measure(runs, false)
		if err != nil {
			return fmt.Errorf("%d extensions, warm: %w", n, err)
		}
		refresh, err := b.measure(runs, false, "--refresh")
		if err != nil {
			return fmt.Errorf("%d extensions, refresh: %w", n, err)
		}
		how := fmt.Sprintf("`sysextctl --root R --github-api FAKE list --json%%s` exec'd %d times, median (min–max); fake GitHub (`internal/testutil/fakegithub`, %s) delays every answer by %v; %s",
			runs, proto, latency, "requests counted by the fake for one run; peak RSS is the largest Maxrss of the runs")
		fmt.Printf("| `list`, %d extensions, cold cache | %s | %s |\n", n, cold, fmt.Sprintf(how, "")+"; cache dir emptied before each run")
		fmt.Printf("| `list`, %d extensions, warm (checked < 1 h ago) | %s | %s |\n", n, warm, fmt.Sprintf(how, "")+"; cache filled by one untimed run")
		fmt.Printf("| `list --refresh`, %d extensions, warm cache | %s | %s |\n", n, refresh, fmt.Sprintf(how, " --refresh")+"; cache filled by one untimed run")
	}
	return nil
}

// publish adds one release shaped like the sysext template's.
func publish(srv *fakegithub.Server, name string) {
	image := "sysext-" + name
	fields := sqfs.DefaultRelease(image)
	base := fmt.Sprintf("%s_%s_%s", image, fields["VERSION_CODENAME"], fields["ARCH"])
	relJSON, _ := json.Marshal(map[string]any{
		"version":          "2026.11.01-0900",
		"date":             "2026-11-01T09:00:00Z",
		"package_versions": map[string]string{"trixie_" + fields["ARCH"]: fields["PACKAGE_VERSION"]},
	})
	srv.Publish("bench", image, fakegithub.Release{Tag: "2026.11.01-0900", Assets: []fakegithub.Asset{
		{Name: base + ".squashfs", Data: bytes.Repeat([]byte{0}, 4096)},
		{Name: base + ".manifest", Data: []byte(sqfs.FormatRelease(fields)), ContentType: "text/plain"},
		{Name: "release.json", Data: relJSON, ContentType: "application/json"},
	}})
}

// writeRoot lays out a throwaway Debian trixie root with a vendor manifest
// of n extensions.
func writeRoot(root string, n int) error {
	osRelease := "ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n"
	var m strings.Builder
	for i := range n {
		fmt.Fprintf(&m, "[ext%d]\nurl = \"https://github.com/bench/sysext-ext%d\"\n\n", i, i)
	}
	files := map[string]string{
		"etc/os-release":                 osRelease,
		"usr/lib/os-release":             osRelease,
		"usr/spamtagger/etc/sysext.toml": m.String(),
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("writing root: %w", err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing root: %w", err)
		}
	}
	for _, d := range []string{"var/lib/extensions", "var/lib/sysextd", "var/cache/sysextd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("writing root: %w", err)
		}
	}
	return nil
}

type bench struct {
	bin, root, api string
	srv            *fakegithub.Server
	n              int
}

type result struct {
	times  []time.Duration
	stats  fakegithub.Stats
	maxRSS int64 // KiB
}

func (r result) String() string {
	slices.Sort(r.times)
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	return fmt.Sprintf("**%s ms** (%s–%s); %d API requests (%d answered 304), %d asset downloads; peak RSS %.1f MiB",
		ms(r.times[len(r.times)/2]), ms(r.times[0]), ms(r.times[len(r.times)-1]),
		r.stats.API, r.stats.NotModified, r.stats.Downloads, float64(r.maxRSS)/1024)
}

func (b bench) measure(runs int, cold bool, args ...string) (result, error) {
	var res result
	cache := filepath.Join(b.root, "var/cache/sysextd")
	if !cold {
		if _, err := b.list(); err != nil {
			return res, err
		}
	}
	for range runs {
		if cold {
			if err := os.RemoveAll(cache); err != nil {
				return res, err
			}
			if err := os.MkdirAll(cache, 0o755); err != nil {
				return res, err
			}
		}
		b.srv.ResetStats()
		start := time.Now()
		rss, err := b.list(args...)
		if err != nil {
			return res, err
		}
		res.times = append(res.times, time.Since(start))
		res.stats = b.srv.Stats()
		res.maxRSS = max(res.maxRSS, rss)
	}
	return res, nil
}

// list runs sysextctl list --json once, checks that it listed every
// extension with an available version, and returns its peak RSS in KiB.
func (b bench) list(args ...string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"--root", b.root, "--github-api", b.api, "list", "--json"}, args...)...)
	cmd.Env = filteredEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("running %s: %w: %s", cmd, err, stderr.String())
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	var rows []struct {
		Name      string `json:"name"`
		Available string `json:"available_version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		return 0, fmt.Errorf("parsing list --json: %w", err)
	}
	if len(rows) != b.n {
		return 0, fmt.Errorf("list showed %d extensions, want %d", len(rows), b.n)
	}
	for _, r := range rows {
		if r.Available == "" {
			return 0, fmt.Errorf("list shows no available version for %s: %s", r.Name, stderr.String())
		}
	}
	return rss, nil
}

// caFile is the fake's certificate with -tls.
var caFile string

// filteredEnv drops what would change the result: a real token or API
// base; with -tls it trusts the fake's certificate.
func filteredEnv() []string {
	var env []string
	if caFile != "" {
		env = append(env, "SSL_CERT_FILE="+caFile)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "GITHUB_TOKEN" && k != "SYSEXT_GITHUB_API" && k != "CREDENTIALS_DIRECTORY" && k != "SSL_CERT_FILE" {
			env = append(env, kv)
		}
	}
	return env
}
