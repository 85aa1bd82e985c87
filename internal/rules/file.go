package rules

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// FileRule: if_file = "/ABSOLUTE/PATH".
type FileRule struct {
	IfFile string `toml:"if_file" json:"if_file,omitempty"`
}

// FileFacts say which flag files exist (only those the manifests name).
type FileFacts struct {
	Files map[string]bool `json:"files"`
}

// FileExists reports a flag file's presence; paths not gathered are absent.
func (f *FileFacts) FileExists(path string) bool { return f.Files[path] }

//sysextd:rulekind 5 FileRule FileFacts
var fileKind = Kind{
	Key: "if_file",
	Man: `\fBif_file\fP = "\fI/ABSOLUTE/PATH\fP"
Matches when the file exists.
`,
	values: func(r *Rules) []string {
		if r.IfFile == "" {
			return nil
		}
		return []string{r.IfFile}
	},
	validate: func(v string) (string, bool) {
		if !strings.HasPrefix(v, "/") {
			return fmt.Sprintf("path %q must be absolute", v), false
		}
		return "", false
	},
	gather: func(_ context.Context, root rootfs.Root, o Options, f *Facts) error {
		f.Files = map[string]bool{}
		for _, p := range o.Files {
			_, statErr := os.Stat(root.Path(p))
			f.Files[p] = statErr == nil
		}
		return nil
	},
	loaded: func(f *Facts) {
		if f.Files == nil {
			f.Files = map[string]bool{}
		}
	},
	match: func(path string, f *Facts) Check {
		ok := f.FileExists(path)
		fact := "absent"
		if ok {
			fact = "exists"
		}
		return Check{Rule: "if_file", Pattern: path, Matched: ok, Fact: fact}
	},
	show: func(f *Facts, _ string) []string {
		var out []string
		for _, p := range slices.Sorted(maps.Keys(f.Files)) {
			exists := "missing"
			if f.Files[p] {
				exists = "exists"
			}
			out = append(out, "file\t"+p+"\t"+exists)
		}
		return out
	},
	showRank: 4,
}
