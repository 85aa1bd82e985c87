package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// BenchmarkListWarm100 is `sysextctl list --json` in-process over 100
// extensions whose release data was checked a moment ago: it must make
// no request (the benchmark fails if it does).
//
//	go test -run '^$' -bench BenchmarkListWarm100 -benchtime 50x ./internal/cli/
func BenchmarkListWarm100(b *testing.B) {
	const n = 100
	gh := fakegithub.New()
	defer gh.Close()
	root := b.TempDir()
	var m strings.Builder
	for i := range n {
		image := fmt.Sprintf("sysext-ext%d", i)
		fields := sqfs.DefaultRelease(image)
		base := fmt.Sprintf("%s_%s_%s", image, fields["VERSION_CODENAME"], fields["ARCH"])
		gh.Publish("bench", image, fakegithub.Release{Tag: "t1", Assets: []fakegithub.Asset{
			{Name: base + ".squashfs", Data: make([]byte, 4096)},
			{Name: base + ".manifest", Data: []byte(sqfs.FormatRelease(fields))},
		}})
		fmt.Fprintf(&m, "[ext%d]\nurl = \"https://github.com/bench/%s\"\n\n", i, image)
	}
	osRelease := "ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n"
	for p, c := range map[string]string{"etc/os-release": osRelease, "usr/lib/os-release": osRelease, "usr/spamtagger/etc/sysext.toml": m.String()} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Setenv("GITHUB_TOKEN", "")
	b.Setenv("SYSEXT_GITHUB_API", "")
	list := func() {
		var out bytes.Buffer
		if code := Run(context.Background(), []string{"--root", root, "--github-api", gh.URL(), "list", "--json"}, &out, io.Discard); code != 0 {
			b.Fatalf("list: exit %d", code)
		}
		if c := strings.Count(out.String(), `"available_version": "`+sqfs.DefaultRelease("x")["PACKAGE_VERSION"]); c != n {
			b.Fatalf("list shows %d available versions, want %d", c, n)
		}
	}
	list() // cold: fills the cache and marks the check
	gh.ResetStats()
	b.ResetTimer()
	for b.Loop() {
		list()
	}
	b.StopTimer()
	if st := gh.Stats(); st.API != 0 || st.Downloads != 0 {
		b.Fatalf("warm list made %d API requests and %d downloads, want 0", st.API, st.Downloads)
	}
}
