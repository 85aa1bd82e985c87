package daemon

import (
	"strings"
	"testing"
)

func TestConfigSignature(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "signature = \"required\"\n"))
	if err != nil || cfg.Signature != "required" {
		t.Fatalf("config = %+v, %v", cfg, err)
	}
	_, err = LoadConfig(writeConfig(t, "signature = \"always\"\n"))
	if err == nil || !strings.Contains(err.Error(), `/etc/sysextd/sysextd.toml: signature: want required, if-present or none, got "always"`) {
		t.Errorf("bad signature: %v", err)
	}
}
