// Command gendocs writes the man pages and shell completions that the .deb
// ships, generated from sysextctl's own cobra tree so that they can never
// drift from the CLI:
//
//	gendocs OUTDIR
//
// writes OUTDIR/man/*.8 (sysextctl and one page per subcommand, plus the
// hand-written sysextd.8) and OUTDIR/completions/sysextctl.{bash,zsh,fish}.
// Dates in the pages follow SOURCE_DATE_EPOCH when it is set, so builds are
// reproducible.
package main

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/spamtagger/sysextd/internal/cli"
)

//go:embed sysextd.8
var sysextdPage []byte

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
	if err := os.WriteFile(filepath.Join(manDir, "sysextd.8"), sysextdPage, 0o644); err != nil {
		return fmt.Errorf("writing sysextd.8: %w", err)
	}
	return genCompletions(compDir)
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
		Source:  "sysextd " + cli.Version,
		Manual:  "System Administration",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("generating man pages: %w", err)
	}
	return nil
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
