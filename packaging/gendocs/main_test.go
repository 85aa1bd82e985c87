package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/cli"
)

func TestRunWritesPagesAndCompletions(t *testing.T) {
	out := t.TempDir()
	if err := run(out); err != nil {
		t.Fatalf("run: %v", err)
	}
	// One page per visible command of the real tree, so a new verb gets a
	// page without anyone editing this list.
	want := []string{"man/sysextctl.8", "man/sysextd.8"}
	for _, c := range cli.NewRootCmd(io.Discard, io.Discard).Commands() {
		if c.IsAvailableCommand() {
			want = append(want, "man/sysextctl-"+c.Name()+".8")
		}
	}
	tests := []struct {
		file    string
		content string
	}{
		{"completions/sysextctl.bash", "complete -o default -F __start_sysextctl sysextctl"},
		{"completions/sysextctl.zsh", "#compdef sysextctl"},
		{"completions/sysextctl.fish", "complete -c sysextctl"},
		{"man/sysextctl.8", `.TH "SYSEXTCTL" "8"`},
		{"man/sysextd.8", ".TH SYSEXTD 8"},
	}
	for _, f := range want {
		tests = append(tests, struct{ file, content string }{f, ".TH "})
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(out, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.content) {
				t.Errorf("%s does not contain %q", tt.file, tt.content)
			}
		})
	}
}

func TestManPageNamesEverySubcommand(t *testing.T) {
	out := t.TempDir()
	if err := run(out); err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(out, "man/sysextctl.8"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cli.NewRootCmd(io.Discard, io.Discard).Commands() {
		if c.IsAvailableCommand() && !strings.Contains(string(b), "sysextctl-"+c.Name()) {
			t.Errorf("sysextctl.8 SEE ALSO lacks sysextctl-%s", c.Name())
		}
	}
}
