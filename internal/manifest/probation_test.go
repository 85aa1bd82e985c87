package manifest

import (
	"strings"
	"testing"
	"time"
)

func TestProbationKey(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        time.Duration
		err         string
	}{
		{"minutes", `"5m"`, 5 * time.Minute, ""},
		{"none", `"0s"`, 0, ""},
		{"negative", `"-1s"`, 0, "want between"},
		{"too long", `"48h"`, 0, "want between"},
		{"garbage", `"soon"`, 0, "probation"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := "[alpha]\nurl = \"https://github.com/o/sysext-alpha\"\nprobation = " + c.value + "\n"
			entries, _, errs := Parse("sysext.toml", []byte(data))
			if c.err != "" {
				if len(errs) == 0 || !strings.Contains(errs[0].String(), c.err) || !strings.Contains(errs[0].String(), "sysext.toml") {
					t.Fatalf("errs = %v, want one naming the file and %q", errs, c.err)
				}
				return
			}
			if len(errs) > 0 || len(entries) != 1 {
				t.Fatalf("Parse: %v", errs)
			}
			if got := entries[0].Probation; got == nil || got.Duration != c.want {
				t.Errorf("Probation = %v, want %s", got, c.want)
			}
		})
	}
}
