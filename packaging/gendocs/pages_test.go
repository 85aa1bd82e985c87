package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/cli"
	"github.com/spamtagger/sysextd/internal/daemon"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rules"
)

func generated(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	if err := run(out); err != nil {
		t.Fatalf("run: %v", err)
	}
	return filepath.Join(out, "man")
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sysextctl(8) is more than the help text: exit codes (every one the CLI
// returns), files, environment and examples.
func TestSysextctlPageSections(t *testing.T) {
	page := read(t, filepath.Join(generated(t), "sysextctl.8"))
	for _, s := range []string{".SH COMMANDS", ".SH EXIT STATUS", ".SH FILES", ".SH ENVIRONMENT", ".SH EXAMPLES", "sysext.toml(5)", "GITHUB_TOKEN", "HTTPS_PROXY"} {
		if !strings.Contains(page, s) {
			t.Errorf("sysextctl.8 lacks %q", s)
		}
	}
	for _, code := range []int{cli.ExitOK, cli.ExitFailure, cli.ExitUsage, cli.ExitPartial, cli.ExitNetwork} {
		if !strings.Contains(page, fmt.Sprintf(".TP\n.B %d\n", code)) {
			t.Errorf("sysextctl.8 EXIT STATUS lacks %d", code)
		}
	}
	commands := page[strings.Index(page, ".SH COMMANDS"):strings.Index(page, ".SH EXIT STATUS")]
	for _, c := range cli.NewRootCmd(io.Discard, io.Discard).Commands() {
		if c.IsAvailableCommand() && !strings.Contains(commands, `\fB`+c.Name()+`\fP`) {
			t.Errorf("sysextctl.8 COMMANDS does not describe %s", c.Name())
		}
	}
	if i, j := strings.Index(page, ".SH EXAMPLES"), strings.Index(page, ".SH SEE ALSO"); i < 0 || j < i {
		t.Errorf("hand-written sections are not before SEE ALSO")
	}
}

// sysext.toml(5) documents every key a table may have and every
// virt_env name, so a new Entry field or systemd name needs a line there.
func TestManifestPageNamesEveryKey(t *testing.T) {
	page := read(t, filepath.Join(generated(t), "sysext.toml.5"))
	for _, k := range manifest.Keys() {
		if !strings.Contains(page, `\fB`+k+`\fP`) && !strings.Contains(page, ".B "+k+"\n") {
			t.Errorf("sysext.toml.5 does not document key %s", k)
		}
	}
	for _, v := range rules.VirtNames {
		if !regexp.MustCompile(`[ \n]` + regexp.QuoteMeta(v) + `[,.]`).MatchString(page) {
			t.Errorf("sysext.toml.5 does not list virt_env %s", v)
		}
	}
}

// sysextd(8) documents exactly the flags sysextd accepts.
func TestSysextdPageMatchesFlags(t *testing.T) {
	page := read(t, filepath.Join(generated(t), "sysextd.8"))
	var help bytes.Buffer
	if code := daemon.Main(t.Context(), []string{"-h"}, &help, "test"); code != 0 {
		t.Fatalf("sysextd -h: exit %d", code)
	}
	flags := regexp.MustCompile(`(?m)^  -(\w+)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 3 {
		t.Fatalf("found %d flags in sysextd -h:\n%s", len(flags), help.String())
	}
	for _, f := range flags {
		if !regexp.MustCompile(`\.BI? \\-` + f[1] + `\b`).MatchString(page) {
			t.Errorf("sysextd.8 OPTIONS lacks -%s", f[1])
		}
	}
}

// Every page renders without groff warnings.
func TestPagesRenderCleanly(t *testing.T) {
	man, err := exec.LookPath("man")
	if err != nil {
		t.Skip("SKIPPED: man not installed (apt-get install man-db): cannot render the pages")
	}
	dir := generated(t)
	pages, _ := filepath.Glob(filepath.Join(dir, "*.[58]"))
	for _, p := range pages {
		cmd := exec.Command(man, "--warnings", "-l", p)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v\n%s", filepath.Base(p), err, stderr.String())
		}
	}
}
