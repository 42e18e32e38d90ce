// Command site serves the synthetic benchmark site (testsite.Bench) until interrupted, for wrk and for the
// benchmarks that run it in its own process. It prints its base URL on the first line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/trawlhq/trawl/test/testsite"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	var o testsite.Scenario
	flag.IntVar(&o.Pages, "pages", 20000, "pages")
	flag.IntVar(&o.Links, "links", 10, "links per page")
	flag.IntVar(&o.TextBytes, "text", 8192, "bytes of text per page")
	flag.Uint64Var(&o.Seed, "seed", 1, "seed")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := testsite.ListenBench(*addr, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.URL)
	<-ctx.Done()
	_ = srv.Close()
}
