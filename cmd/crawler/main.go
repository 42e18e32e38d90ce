// Command crawler is a stateless fetch worker: it takes crawl jobs from RabbitMQ, fetches them
// with colly and publishes each result back to RabbitMQ.
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
		os.Exit(service.Exit(os.Stderr, "crawler", err))
	}
}
