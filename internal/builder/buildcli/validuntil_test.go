package buildcli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestIgnoreValidUntilIsLoudAndOptIn: the flag is off by default (no
// warning), and when given it warns on stderr before anything is read. That
// an expired InRelease is then used, with a warning naming it, is
// debian.TestArchiveVerifiesEverything's.
func TestIgnoreValidUntilIsLoudAndOptIn(t *testing.T) {
	fa := checkArchive(t)
	in := writeFiles(t, map[string]string{"metadata.json": metadata, "status": status,
		"release.json": `{"version": "t", "package_versions": {"trixie_amd64": "2.10-5+b1"},
			  "packages": {"trixie_amd64": {"hello": "2.10-5+b1", "libgreet": "1.0-1+deb13u1"}}}`})
	common := []string{"check", "--base", filepath.Join(in, "status"), "--mirror", fa.URL, "--security-mirror", fa.URL,
		"--keyring", fa.KeyringFile(t), "--cache", t.TempDir(), "--from", in, filepath.Join(in, "metadata.json")}

	_, errOut, code := run(t, common...)
	if code != ExitOK || strings.Contains(errOut, "Valid-Until") {
		t.Errorf("default: exit %d, stderr %q; want 0 and no Valid-Until warning", code, errOut)
	}
	_, errOut, code = run(t, append([]string{common[0], "--ignore-valid-until"}, common[1:]...)...)
	if code != ExitOK || !strings.Contains(errOut, "WARNING: --ignore-valid-until") {
		t.Errorf("--ignore-valid-until: exit %d, stderr %q; want 0 and a loud warning", code, errOut)
	}
}
