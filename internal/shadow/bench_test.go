package shadow

import (
	"fmt"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// BenchmarkCheck measures what the verify phase pays for the shadowing
// check: an image of 2,000 files against one installed image of 2,000
// files and a base tree, both listed from squashfs metadata only.
//
//	go test -run '^$' -bench BenchmarkCheck -benchmem ./internal/shadow
func BenchmarkCheck(b *testing.B) {
	files := func(prefix string) map[string]string {
		m := map[string]string{}
		for i := range 2000 {
			m[fmt.Sprintf("usr/lib/%s/d%02d/f%04d", prefix, i%50, i)] = "x"
		}
		return m
	}
	dir := b.TempDir()
	img := sqfs.Build(b, dir, sqfs.Spec{Name: "sysext-a", Files: files("a")})
	other := sqfs.Build(b, dir, sqfs.Spec{Name: "sysext-b", Files: files("b")})
	root := rootfs.New(b.TempDir())
	b.ResetTimer()
	for b.Loop() {
		rep, err := Check(b.Context(), root, img, map[string]string{"b": other})
		if err != nil || len(rep.Adds) != 2000 {
			b.Fatalf("Check = %d adds, %v", len(rep.Adds), err)
		}
	}
}
