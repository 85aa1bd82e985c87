package version

import (
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"equal", "1.0-1", "1.0-1", 0},
		{"upstream greater", "1.10-1", "1.9-1", 1},
		{"revision greater", "1.0-2", "1.0-1", 1},
		{"epoch beats upstream", "1:1.0-1", "2.0-1", 1},
		{"missing epoch is zero", "0:1.0-1", "1.0-1", 0},
		{"epoch 2 real package", "2:12.5.0-2+deb13u1", "2:12.5.0-2", 1},
		{"tilde sorts before release", "1.0~rc1-1", "1.0-1", -1},
		{"tilde before nothing", "1.0~~", "1.0~", -1},
		{"deb13u1 before deb13u2", "2:12.5.0-2+deb13u1", "2:12.5.0-2+deb13u2", -1},
		{"deb13u10 after deb13u9", "1.0-1+deb13u10", "1.0-1+deb13u9", 1},
		{"native versions", "2.12", "2.12.1", -1},
		{"letters after digits", "1.0a", "1.0", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compare(tc.a, tc.b)
			if err != nil {
				t.Fatalf("Compare(%q, %q): %v", tc.a, tc.b, err)
			}
			if got != tc.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			rev, err := Compare(tc.b, tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if rev != -tc.want {
				t.Errorf("Compare(%q, %q) = %d, want %d (antisymmetry)", tc.b, tc.a, rev, -tc.want)
			}
		})
	}
}

func TestCompareInvalid(t *testing.T) {
	tests := []struct{ name, a, b, bad string }{
		{"empty", "", "1.0", `""`},
		{"space", "1.0", "1 0", `"1 0"`},
		{"letter start", "abc", "1.0", `"abc"`},
		{"bad epoch", "x:1.0", "1.0", `"x:1.0"`},
		{"nothing after colon", "1.0", "2:", `"2:"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compare(tc.a, tc.b)
			if err == nil {
				t.Fatalf("Compare(%q, %q) succeeded, want error", tc.a, tc.b)
			}
			if !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("error %q does not name %s", err, tc.bad)
			}
		})
	}
}

func TestStampCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b Stamp
		want int
	}{
		{"version wins over build time", Stamp{"1.1-1", "2020-01-01T00:00:00Z"}, Stamp{"1.0-1", "2026-01-01T00:00:00Z"}, 1},
		{"same version newer build", Stamp{"1.0-1", "2026-11-02T09:00:00Z"}, Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, 1},
		{"same version same build", Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, 0},
		{"equal versions spelled differently", Stamp{"0:1.0-1", "x"}, Stamp{"1.0-1", "x"}, 0},
		{"zones compared as instants", Stamp{"1-1", "2026-11-01T10:00:00+02:00"}, Stamp{"1-1", "2026-11-01T09:00:00Z"}, -1},
		{"unix seconds vs rfc3339", Stamp{"1-1", "1793523601"}, Stamp{"1-1", "2026-11-01T09:00:00Z"}, 1},
		{"date(1) default output", Stamp{"1-1", "Sun Nov  1 09:00:00 UTC 2026"}, Stamp{"1-1", "2026-11-01T08:59:59Z"}, 1},
		{"tag style", Stamp{"1-1", "2026.11.01-0900"}, Stamp{"1-1", "2026.10.31-2300"}, 1},
		{"missing build time is older", Stamp{"1-1", ""}, Stamp{"1-1", "2026-11-01T09:00:00Z"}, -1},
		{"unparsable compared as strings", Stamp{"1-1", "build-b"}, Stamp{"1-1", "build-a"}, 1},
		{"no versions, build times only", Stamp{"", "2026-11-02"}, Stamp{"", "2026-11-01"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Compare(tc.b)
			if err != nil {
				t.Fatalf("%v.Compare(%v): %v", tc.a, tc.b, err)
			}
			if got != tc.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			rev, err := tc.b.Compare(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if rev != -tc.want {
				t.Errorf("reverse = %d, want %d", rev, -tc.want)
			}
		})
	}
}

func TestStampCompareErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Stamp
	}{
		{"one version missing", Stamp{Version: "1.0"}, Stamp{}},
		{"invalid version", Stamp{Version: "1.0"}, Stamp{Version: "bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.a.Compare(tc.b); err == nil {
				t.Errorf("%v.Compare(%v) succeeded, want error", tc.a, tc.b)
			}
		})
	}
}

func TestParseBuildTime(t *testing.T) {
	want := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"2026-11-01T09:00:00Z",
		"2026-11-01T10:00:00+01:00",
		"2026-11-01T09:00:00.000Z",
		"2026-11-01T09:00:00",
		"2026-11-01 09:00:00",
		"20261101T090000Z",
		"2026.11.01-0900",
		"1793523600",
		"Sun Nov  1 09:00:00 UTC 2026",
		" 2026-11-01T09:00:00Z ",
	} {
		got, ok := ParseBuildTime(s)
		if !ok {
			t.Errorf("ParseBuildTime(%q) failed", s)
			continue
		}
		if !got.Equal(want) {
			t.Errorf("ParseBuildTime(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "yesterday", "2026-13-01"} {
		if got, ok := ParseBuildTime(s); ok {
			t.Errorf("ParseBuildTime(%q) = %v, want failure", s, got)
		}
	}
}

func TestUpdateAvailable(t *testing.T) {
	tests := []struct {
		name          string
		avail, inst   Stamp
		want, rebuild bool
	}{
		{"newer version", Stamp{"1.0-2", "2026-01-01T00:00:00Z"}, Stamp{"1.0-1", "2026-06-01T00:00:00Z"}, true, false},
		{"rebuild", Stamp{"1.0-1", "2026-11-02T09:00:00Z"}, Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, true, true},
		{"rebuild, zone spelled differently", Stamp{"1.0-1", "2026-11-01T10:00:01+01:00"}, Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, true, true},
		{"same build", Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, false, false},
		{"older build", Stamp{"1.0-1", "2026-10-01T09:00:00Z"}, Stamp{"1.0-1", "2026-11-01T09:00:00Z"}, false, false},
		{"installed has no build time", Stamp{"1.0-1", "2026-10-01T09:00:00Z"}, Stamp{"1.0-1", ""}, true, true},
		{"older version, newer build", Stamp{"0.9-1", "2027-01-01T00:00:00Z"}, Stamp{"1.0-1", "2026-01-01T00:00:00Z"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UpdateAvailable(tc.avail, tc.inst)
			if err != nil || got != tc.want {
				t.Errorf("UpdateAvailable = %v, %v; want %v", got, err, tc.want)
			}
			if got := IsRebuild(tc.avail, tc.inst); got != tc.rebuild {
				t.Errorf("IsRebuild = %v, want %v", got, tc.rebuild)
			}
		})
	}
	if _, err := UpdateAvailable(Stamp{"1.0", ""}, Stamp{"", ""}); err == nil {
		t.Error("a missing installed version is not an error")
	}
}
