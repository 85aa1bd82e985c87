// Command sysextctl is the operator's CLI for system extensions.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spamtagger/sysextd/internal/cli"
)

func main() {
	// A command lives for a second or less, and what an appliance feels
	// is its peak memory, not its GC time: collect at 50% growth instead
	// of 100% (docs/PERFORMANCE.md: about 1 MiB less at the peak of a
	// cold list of 100, for a few percent of its time). GOGC still wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
