// Command gendocs writes the man pages and shell completions that the .deb
// ships, generated from sysextctl's own cobra tree so that they can never
// drift from the CLI:
//
//	gendocs OUTDIR
//
// writes OUTDIR/man/*.8 (sysextctl and one page per subcommand, plus the
// hand-written sysextd.8), OUTDIR/man/sysext.toml.5 and
// OUTDIR/completions/sysextctl.{bash,zsh,fish}. sysextctl.8 is cobra's page
// with the hand-written sections of sysextctl-sections.8 (commands, exit
// status, files, environment, examples) put before SEE ALSO.
// Dates in the pages follow SOURCE_DATE_EPOCH when it is set, so builds are
// reproducible.
package main

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/spamtagger/sysextd/internal/buildinfo"
	"github.com/spamtagger/sysextd/internal/cli"
	"github.com/spamtagger/sysextd/internal/rules"
)

var (
	//go:embed sysextd.8
	sysextdPage []byte
	//go:embed sysext.toml.5
	manifestPage []byte
	//go:embed sysextctl-sections.8
	sysextctlSections string
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	manDir := filepath.Join(out, "man")
	compDir := filepath.Join(out, "completions")
	for _, d := range []string{manDir, compDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := genMan(manDir); err != nil {
		return err
	}
	for name, page := range map[string][]byte{"sysextd.8": sysextdPage, "sysext.toml.5": ruleKinds(manifestPage)} {
		if err := os.WriteFile(filepath.Join(manDir, name), page, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return genCompletions(compDir)
}

// ruleKinds fills sysext.toml(5)'s template with the rule kinds of the
// registry: their KEYS entries and the list of them.
func ruleKinds(page []byte) []byte {
	s := string(page)
	if i := strings.Index(s, `.\" @RULE-KEYS@`); i >= 0 {
		end := i + strings.Index(s[i:], "\n") + 1
		s = s[:i] + rules.ManKeys() + s[end:]
	}
	return []byte(strings.ReplaceAll(s, "@RULE-LIST@", rules.ManList()))
}

func genMan(dir string) error {
	root := cli.NewRootCmd(io.Discard, io.Discard)
	root.DisableAutoGenTag = true
	// cobra adds the completion command lazily, on Execute; add it now so
	// that it gets its page like every other verb.
	root.InitDefaultCompletionCmd()
	header := &doc.GenManHeader{
		Title:   "SYSEXTCTL",
		Section: "8",
		Source:  "sysextd " + buildinfo.Version,
		Manual:  "System Administration",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("generating man pages: %w", err)
	}
	return addSections(filepath.Join(dir, "sysextctl.8"))
}

// addSections puts the hand-written sections into cobra's sysextctl.8,
// before SEE ALSO, and adds the other pages to SEE ALSO.
func addSections(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const seeAlso = "\n.SH SEE ALSO\n"
	page := string(b)
	if !strings.Contains(page, seeAlso) {
		return fmt.Errorf("%s: no SEE ALSO section to put the sections before", path)
	}
	page = strings.Replace(page, seeAlso, "\n"+sysextctlSections+seeAlso+
		"\\fBsysext.toml(5)\\fP, \\fBsysextd(8)\\fP, \\fBsystemd-sysext(8)\\fP, ", 1)
	return os.WriteFile(path, []byte(page), 0o644)
}

func genCompletions(dir string) error {
	gens := []struct {
		file string
		gen  func(*cobra.Command, io.Writer) error
	}{
		{"sysextctl.bash", func(c *cobra.Command, w io.Writer) error { return c.GenBashCompletionV2(w, true) }},
		{"sysextctl.zsh", func(c *cobra.Command, w io.Writer) error { return c.GenZshCompletion(w) }},
		{"sysextctl.fish", func(c *cobra.Command, w io.Writer) error { return c.GenFishCompletion(w, true) }},
	}
	for _, g := range gens {
		path := filepath.Join(dir, g.file)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("creating %s: %w", path, err)
		}
		err = g.gen(cli.NewRootCmd(io.Discard, io.Discard), f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}
