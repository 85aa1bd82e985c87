package packaging

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/daemon"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// commentedKey matches a documented default such as `#interval = "24h"`.
var commentedKey = regexp.MustCompile(`(?m)^#([a-z_]+) = `)

func loadExample(t *testing.T, text string) (daemon.Config, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, rootfs.DaemonConfig)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return daemon.LoadConfig(rootfs.New(dir))
}

// exported returns the exported fields of a Config by name.
func exported(c daemon.Config) map[string]any {
	m := map[string]any{}
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() {
			m[f.Name] = v.Field(i).Interface()
		}
	}
	return m
}

func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("sysextd.toml")
	if err != nil {
		t.Fatal(err)
	}
	shipped := string(b)
	tests := []struct {
		name string
		text string
	}{
		{"as shipped", shipped},
		{"every default uncommented", commentedKey.ReplaceAllString(shipped, "$1 = ")},
	}
	want := exported(daemon.DefaultConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadExample(t, tt.text)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if got := exported(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("config = %+v, want the defaults %+v", got, want)
			}
		})
	}
}

func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("sysextd.toml")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range commentedKey.FindAllStringSubmatch(string(b), -1) {
		documented[m[1]] = true
	}
	typ := reflect.TypeOf(daemon.Config{})
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if !documented[tag] {
			t.Errorf("key %q of daemon.Config is not documented in sysextd.toml", tag)
		}
	}
}
