package image

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRestartUnits(t *testing.T) {
	for _, tt := range []struct {
		name            string
		fields          map[string]string
		restart, reload []string
		bad             string
	}{
		{name: "none", fields: map[string]string{"ID": "debian"}},
		{name: "blank", fields: map[string]string{FieldRestartUnits: "  \t ", FieldReloadOrRestartUnits: ""}},
		{name: "restart", fields: map[string]string{FieldRestartUnits: "a.service  b.socket\tc@tty1.service"},
			restart: []string{"a.service", "b.socket", "c@tty1.service"}},
		{name: "restart wins, repeats dropped", fields: map[string]string{
			FieldRestartUnits:         "y.service x.service y.service",
			FieldReloadOrRestartUnits: "x.service z.service z.service",
		}, restart: []string{"y.service", "x.service"}, reload: []string{"z.service"}},
		{name: "all in both", fields: map[string]string{FieldRestartUnits: "x.service", FieldReloadOrRestartUnits: "x.service"},
			restart: []string{"x.service"}},
		{name: "template", fields: map[string]string{FieldRestartUnits: "getty@.service"}, bad: `EXTENSION_RESTART_UNITS=: invalid unit name "getty@.service"`},
		{name: "path", fields: map[string]string{FieldReloadOrRestartUnits: "ok.service bad/x.service"}, bad: `EXTENSION_RELOAD_OR_RESTART_UNITS=: invalid unit name "bad/x.service"`},
		{name: "no type", fields: map[string]string{FieldRestartUnits: "nginx"}, bad: `"nginx"`},
		{name: "unknown type", fields: map[string]string{FieldRestartUnits: "x.conf"}, bad: `"x.conf"`},
		{name: "empty prefix", fields: map[string]string{FieldRestartUnits: ".service"}, bad: `".service"`},
		{name: "two ats", fields: map[string]string{FieldRestartUnits: "a@b@c.service"}, bad: `"a@b@c.service"`},
		{name: "too long", fields: map[string]string{FieldRestartUnits: strings.Repeat("a", 250) + ".service"}, bad: "invalid unit name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, rr, err := RestartUnits(tt.fields)
			if tt.bad != "" {
				if !errors.Is(err, ErrBadRestartUnit) || !strings.Contains(err.Error(), tt.bad) || r != nil || rr != nil {
					t.Fatalf("RestartUnits = %v, %v, %v; want nothing and an error containing %q", r, rr, err, tt.bad)
				}
				return
			}
			if err != nil || !slices.Equal(r, tt.restart) || !slices.Equal(rr, tt.reload) {
				t.Errorf("RestartUnits = %q, %q, %v; want %q, %q", r, rr, err, tt.restart, tt.reload)
			}
		})
	}
}

// FuzzRestartUnits: never panics; every name returned is valid, appears
// once, and none is in both lists.
func FuzzRestartUnits(f *testing.F) {
	f.Add("a.service b@c.socket", "a.service d.timer")
	f.Add("x@.service", "")
	f.Fuzz(func(t *testing.T, restart, reload string) {
		r, rr, err := RestartUnits(map[string]string{FieldRestartUnits: restart, FieldReloadOrRestartUnits: reload})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, u := range append(slices.Clone(r), rr...) {
			if !validUnitName(u) || seen[u] {
				t.Fatalf("%q returned twice or invalid: %q %q", u, r, rr)
			}
			seen[u] = true
		}
	})
}
