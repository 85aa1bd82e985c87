package rules

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func fixedVirt(v string) VirtDetector {
	return func(context.Context) (string, error) { return v, nil }
}

// Every name systemd reports is accepted silently.
func TestVirtNamesAccepted(t *testing.T) {
	for _, v := range VirtNames {
		if msg := checkVirt(v); msg != "" {
			t.Errorf("checkVirt(%q) = %q", v, msg)
		}
	}
}

func TestVirtFallbacks(t *testing.T) {
	failing := func(context.Context) (string, error) { return "", errors.New("no bus") }
	hanging := func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() }
	tests := []struct {
		name string
		ds   []VirtDetector
		want string
	}{
		{"first answers", []VirtDetector{fixedVirt("vmware"), fixedVirt("kvm")}, "vmware"},
		{"falls back", []VirtDetector{failing, fixedVirt("qemu")}, "qemu"},
		{"none answers", []VirtDetector{failing, failing}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detectVirt(t.Context(), tt.ds, slog.New(slog.DiscardHandler)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("hanging probe is cut off", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if got := detectVirt(ctx, []VirtDetector{hanging}, slog.New(slog.DiscardHandler)); got != "none" {
			t.Errorf("got %q, want none", got)
		}
	})
}
