// Command sysextd keeps an appliance's system extensions merged, installed
// as its hardware recommends, and up to date.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spamtagger/sysextd/internal/buildinfo"
	"github.com/spamtagger/sysextd/internal/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr, buildinfo.Version)
	stop()
	os.Exit(code)
}
