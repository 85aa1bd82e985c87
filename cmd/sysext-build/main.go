// Command sysext-build builds, checks and publishes system extension
// releases from a sysext template's metadata.json (see docs/publishing.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spamtagger/sysextd/internal/builder/buildcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := buildcli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
