package chaos

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// recrawlCaller is one independent caller of the re-crawl service, as a dashboard replica
// would be: its own database pool, broker connection and RPC client.
func recrawlCaller(t *testing.T, sys *harness.System) *recrawl.Service {
	t.Helper()
	db, err := store.Open(t.Context(), sys.DSN, 2, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	client := pipeline.NewRPCClient(testenv.Dial(t, "chaos-rpc"), sys.Topo, time.Minute, testenv.Logger(t))
	t.Cleanup(func() { client.Close() })
	svc := &recrawl.Service{Store: db, Client: client, Timeout: 30 * time.Second, Log: testenv.Logger(t)}
	t.Cleanup(svc.Close)
	return svc
}

// TestRecrawlSameRequestIDTwice sends re-crawl requests twice with the same request id, across
// two crawlers: once from two callers racing each other, once from a caller that gives up
// right after sending, followed by a resend from another. Each request id fetches its page
// exactly once, and every send gets the same reply.
func TestRecrawlSameRequestIDTwice(t *testing.T) {
	t.Parallel()
	site := newSite(t, 20, time.Second) // each fetch takes 1 s: a caller can give up mid-fetch
	sys := crashSystem(t)
	sys.StartAll(2, 1)
	r := startRun(t, "recrawl-base-crawl", sys, testenv.AMQPURL(), site)
	r.finish()
	a, b := recrawlCaller(t, sys), recrawlCaller(t, sys)
	urlID := func(path string) int64 {
		var id int64
		if err := r.db.QueryRow(t.Context(), `SELECT id FROM urls WHERE target_id = $1 AND url = $2`, r.id, site.URL()+path).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}

	// Two callers race with one request id.
	path := "/p/3"
	before := site.Hits()[path]
	var wg sync.WaitGroup
	replies := make([]message.RecrawlReply, 2)
	errs := make([]error, 2)
	for i, svc := range []*recrawl.Service{a, b} {
		wg.Go(func() { replies[i], errs[i] = svc.Recrawl(t.Context(), "chaos-race", urlID(path)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if replies[0].ID != replies[1].ID || !replies[0].Fetched {
		t.Fatalf("replies differ or nothing fetched: %+v vs %+v", replies[0], replies[1])
	}
	if n := site.Hits()[path] - before; n != 1 {
		t.Fatalf("%s fetched %d times for one request id sent twice, want 1", path, n)
	}

	// A caller gives up at once; another resends the same request id.
	path = "/p/7"
	before = site.Hits()[path]
	id7 := urlID(path)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := a.Recrawl(ctx, "chaos-abandoned", id7)
	cancel()
	switch {
	case errors.Is(err, recrawl.ErrPending):
		t.Log("first caller gave up after sending, while the crawler was fetching")
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline")):
		t.Log("first caller gave up before sending (slow machine)")
	default:
		t.Fatalf("abandoned call = %v, want it to give up", err)
	}
	got, err := b.Recrawl(t.Context(), "chaos-abandoned", id7)
	if err != nil {
		t.Fatalf("resend after an abandoned call: %v", err)
	}
	if n := site.Hits()[path] - before; n > 1 || (n == 0 && got.Fetched) {
		t.Fatalf("%s fetched %d times for one request id (reply %+v), want at most once", path, n, got)
	}
	again, err := a.Recrawl(t.Context(), "chaos-abandoned", id7)
	if err != nil || again.ID != got.ID {
		t.Fatalf("third send = %+v, %v; want the stored reply %+v", again, err, got)
	}
	if n := site.Hits()[path] - before; n > 1 {
		t.Fatalf("%s fetched %d times after three sends of one request id, want at most 1", path, n)
	}
	t.Logf("CHAOS scenario=recrawl-same-request-id sends=5 request_ids=2 fetches=%d", site.Hits()["/p/3"]+site.Hits()["/p/7"]-2)
}
