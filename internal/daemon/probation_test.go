package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// TestProbationConfig: sysextd.toml's probation keys reach the engine the
// same way for the daemon and for sysextctl (app.LoadSources).
func TestProbationConfig(t *testing.T) {
	for _, c := range []struct {
		name, content string
		want          engine.ProbationConfig
	}{
		{"default", "", engine.ProbationConfig{}},
		{"longer", "probation = \"5m\"\nprobation_restarts = 4\nboot_tries = 5\n", engine.ProbationConfig{Window: 5 * time.Minute, MaxRestarts: 4, BootTries: 5}},
		{"off", "probation = \"0s\"\n", engine.ProbationConfig{Off: true}},
		{"no restarts", "probation_restarts = 0\n", engine.ProbationConfig{MaxRestarts: -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := writeConfig(t, c.content)
			cfg, err := LoadConfig(root)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.sources().ProbationConfig(); !sameProbation(got, c.want) {
				t.Errorf("daemon: %+v, want %+v", got, c.want)
			}
			src, err := app.LoadSources(root)
			if err != nil {
				t.Fatal(err)
			}
			if got := src.ProbationConfig(); !sameProbation(got, c.want) {
				t.Errorf("sysextctl: %+v, want %+v", got, c.want)
			}
		})
	}
	for _, bad := range []struct{ content, want string }{
		{"probation = \"2d\"\n", "probation"},
		{"probation = \"48h\"\n", "want between"},
		{"probation_restarts = -1\n", "probation_restarts"},
		{"boot_tries = -2\n", "boot_tries"},
	} {
		if _, err := LoadConfig(writeConfig(t, bad.content)); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), rootfs.DaemonConfig) {
			t.Errorf("LoadConfig(%q) = %v, want an error naming the file and %q", bad.content, err, bad.want)
		}
	}
}

func sameProbation(a, b engine.ProbationConfig) bool {
	return a.Window == b.Window && a.MaxRestarts == b.MaxRestarts && a.Off == b.Off && a.BootTries == b.BootTries
}
