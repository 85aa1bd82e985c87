package packaging

import (
	"os/exec"
	"strings"
	"testing"
)

func debVersion(t *testing.T, v string) string {
	t.Helper()
	out, err := exec.Command("bash", "build-deb.sh", "--deb-version", v).Output()
	if err != nil {
		t.Fatalf("build-deb.sh --deb-version %q: %v", v, err)
	}
	return strings.TrimSpace(string(out))
}

func TestDebVersion(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("needs dpkg to validate versions")
	}
	tests := []struct {
		name, in, want string
	}{
		{"tag", "v1.2.3", "1.2.3"},
		{"tag without v", "2026.11.01", "2026.11.01"},
		{"after a tag", "v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"after a tag, dirty", "v1.2.3-4-gabc1234-dirty", "1.2.3+git4.abc1234.dirty"},
		{"no tag yet", "abc1234", "0.0.0~gitabc1234"},
		{"no tag yet, sha starts with a digit", "7eea220", "0.0.0~git7eea220"},
		{"no tag yet, dirty", "abc1234-dirty", "0.0.0~gitabc1234+dirty"},
		{"no git", "dev", "0.0.0~dev"},
		{"garbage", "my/branch name", "0.0.0~my.branch.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := debVersion(t, tt.in)
			if got != tt.want {
				t.Errorf("deb version of %q = %q, want %q", tt.in, got, tt.want)
			}
			if out, err := exec.Command("dpkg", "--validate-version", got).CombinedOutput(); err != nil {
				t.Errorf("dpkg rejects %q: %s", got, out)
			}
		})
	}
}

// TestDebVersionOrder checks that upgrades go the right way: untagged
// builds before the first release, builds after a tag after that tag.
func TestDebVersionOrder(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("needs dpkg to compare versions")
	}
	order := []string{"dev", "abc1234", "v0.1.0", "v0.1.0-3-gabc1234", "v0.1.0-12-gdef5678", "v0.2.0"}
	for i := 1; i < len(order); i++ {
		lo, hi := debVersion(t, order[i-1]), debVersion(t, order[i])
		if err := exec.Command("dpkg", "--compare-versions", lo, "lt", hi).Run(); err != nil {
			t.Errorf("%s (%s) does not sort before %s (%s)", lo, order[i-1], hi, order[i])
		}
	}
}
