package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/osrelease"
)

// ParseRelease is osrelease.Load (tested there rule by rule); this pins the
// one error and the size cap.
func TestParseRelease(t *testing.T) {
	got, err := ParseRelease(strings.NewReader("ID=debian\n; c\nA-B=1\n"))
	if err != nil || got["ID"] != "debian" || got["A-B"] != "1" {
		t.Errorf("ParseRelease = %q, %v", got, err)
	}
	var ue *osrelease.InvalidUTF8Error
	if _, err := ParseRelease(strings.NewReader("ID=debian\nNAME=\xff\n")); !errors.As(err, &ue) {
		t.Errorf("invalid UTF-8: error = %v, want *osrelease.InvalidUTF8Error", err)
	}
	if _, err := ParseRelease(strings.NewReader("A=" + strings.Repeat("x", maxReleaseSize))); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized file: error = %v, want a limit error", err)
	}
}
