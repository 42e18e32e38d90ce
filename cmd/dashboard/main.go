// Command dashboard serves the web UI and JSON API, and applies database migrations with
// `dashboard migrate`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trawlhq/trawl/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Environ(), os.Stdout); err != nil {
		os.Exit(service.Exit(os.Stderr, "dashboard", err))
	}
}
