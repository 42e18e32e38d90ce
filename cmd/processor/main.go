// Command processor persists fetch results into PostgreSQL, grows the URL frontier from the
// discovered links and schedules what is due next as crawl jobs.
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
		os.Exit(service.Exit(os.Stderr, "processor", err))
	}
}
