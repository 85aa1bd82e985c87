package packaging

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/source"
)

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Numbers in the docs that follow from the code must match it: the
// parallelism stated in docs/PERFORMANCE.md (and written by bench/run.sh)
// said 16 after the code moved to 25 (issue 15).
func TestDocsStateTheCodesParallelism(t *testing.T) {
	perf := readRepoFile(t, "docs/PERFORMANCE.md")
	m := regexp.MustCompile(`lookups run (\d+) at a time`).FindStringSubmatch(perf)
	if m == nil {
		t.Fatal("docs/PERFORMANCE.md no longer states how many lookups run at a time")
	}
	if n, _ := strconv.Atoi(m[1]); n != source.DefaultParallel {
		t.Errorf("docs/PERFORMANCE.md says %d parallel lookups, source.DefaultParallel is %d", n, source.DefaultParallel)
	}
	if bench := readRepoFile(t, "bench/run.sh"); !strings.Contains(bench, "DefaultParallel[[:space:]]*=") {
		t.Errorf("bench/run.sh does not read source.DefaultParallel from the code")
	}
}

// The README tells a newcomer what the two commands need, download, take
// and leave behind, and the Makefile keeps those promises.
func TestReadmeAndMakefileAgree(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	mk := readRepoFile(t, "Makefile")
	for _, want := range []string{"make clean", "make distclean", "/var/cache/sysextd-e2e", "deb.debian.org", "proxy.golang.org", "docs/operating.md", "LICENSE"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %s", want)
		}
	}
	m := regexp.MustCompile(`(?m)^APT_PACKAGES := ((?:.*\\\n)*.*)$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile has no APT_PACKAGES list")
	}
	for _, p := range strings.Fields(strings.ReplaceAll(m[1], "\\", "")) {
		if !strings.Contains(readme, p) {
			t.Errorf("README.md does not name the Debian package %s that make installs", p)
		}
	}
	for _, want := range []string{"$(GO) tool staticcheck ", "\ntest: lint unit fuzz e2e", "\nclean:", "\ndistclean: clean", "testsummary"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^\ttool honnef.co/go/tools/cmd/staticcheck$|^tool honnef.co/go/tools/cmd/staticcheck$`).MatchString(readRepoFile(t, "go.mod")) {
		t.Errorf("go.mod has no tool directive for staticcheck")
	}
	ci := readRepoFile(t, ".ci/run")
	if !strings.Contains(ci, "exec make test") || strings.Contains(ci, "go install") || strings.Count(ci, "apt-get install") > 1 {
		t.Errorf(".ci/run must only run make test:\n%s", ci)
	}
	// Leftovers the README promises make clean removes.
	clean := mk[strings.Index(mk, "\nclean:"):]
	for _, p := range []string{"$(BIN)", "dist", "packaging/build", "e2e.log"} {
		if !strings.Contains(clean[:strings.Index(clean[1:], "\n\n")+1], p) {
			t.Errorf("make clean does not remove %s", p)
		}
	}
	e2e := readRepoFile(t, "e2e/README.md")
	if strings.Contains(e2e, "~42 s") {
		t.Errorf("e2e/README.md still states the unmeasured ~42 s")
	}
}

// Not root, make names the missing Debian packages with the exact command
// to install them and stops (a fresh clone used to die on a missing
// staticcheck with no hint).
func TestMakeDepsNamesTheCommand(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("SKIPPED: make not installed")
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("SKIPPED: not a Debian system (no dpkg-query)")
	}
	cmd := exec.Command("make", "-s", "-C", "..", "deps", "APT_PACKAGES=sysextd-no-such-package", "DEPS_UID=1000")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make deps with a missing package succeeded:\n%s", out)
	}
	if want := "sudo apt-get install -y --no-install-recommends sysextd-no-such-package"; !strings.Contains(string(out), want) {
		t.Errorf("make deps output lacks %q:\n%s", want, out)
	}
}
