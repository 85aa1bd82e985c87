package build

import (
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
)

// TestReleaseFieldsRestartUnits: "service: …" is written beside UPDATE= as
// EXTENSION_RESTART_UNITS=, which systemd-sysext 262 reads back as the same
// units; other actions write no such field.
func TestReleaseFieldsRestartUnits(t *testing.T) {
	for _, tt := range []struct{ update, want string }{
		{"service: nginx, php-fpm.service", "nginx.service php-fpm.service"},
		{"service: x.socket", ""}, // refused by manifest.ParseAction: services only
		{"service: hello", "hello.service"},
		{"reboot", ""},
		{"none", ""},
		{"", ""},
	} {
		m := &Metadata{Name: "sysext-x", Package: "x", Update: tt.update, Repository: "https://github.com/SpamTagger/sysext-x"}
		fields := ReleaseFields(m, "forky", "amd64", "1.0-1", time.Unix(0, 0))
		parsed := osrelease.Parse(FormatFields(fields))
		if got := parsed[image.FieldRestartUnits]; got != tt.want {
			t.Errorf("update %q: EXTENSION_RESTART_UNITS=%q, want %q", tt.update, got, tt.want)
		}
		restart, _, err := image.RestartUnits(parsed)
		if err != nil {
			t.Errorf("update %q: written units do not parse: %v", tt.update, err)
		}
		if tt.want == "" && restart != nil {
			t.Errorf("update %q: restart units %q", tt.update, restart)
		}
	}
}
