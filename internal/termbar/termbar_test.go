package termbar

import (
	"strings"
	"testing"
)

func TestDraw(t *testing.T) {
	for _, tt := range []struct {
		done, total int64
		want        string
	}{
		{1 << 20, 0, "\rx 1.0 MiB"},
		{1 << 20, 2 << 20, "\rx [===============               ]  50% 1.0/2.0 MiB"},
		{3 << 20, 2 << 20, "\rx [" + strings.Repeat("=", Width) + "] 100% 3.0/2.0 MiB"},
	} {
		var b strings.Builder
		Draw(&b, "x", tt.done, tt.total)
		if b.String() != tt.want {
			t.Errorf("Draw(%d, %d) = %q, want %q", tt.done, tt.total, b.String(), tt.want)
		}
	}
}
