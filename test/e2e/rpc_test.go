package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// TestRecrawlOverRPC drives the real binaries: a page of a finished crawl is re-crawled over
// RPC, conditionally, fetched once for two sends of one request id, and its result is applied
// by a processor.
func TestRecrawlOverRPC(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 5})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(2, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 0})
	if st := sys.WaitDone(id, time.Minute); st.Pending != 0 {
		t.Fatalf("status = %+v", st)
	}
	urlID := query[int64](t, sys.DSN, `SELECT id FROM urls WHERE target_id = $1 AND url = $2`, id, site.SeedURL())[0]
	before := site.Hits()["/"]

	db, err := store.Open(t.Context(), sys.DSN, 2, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := pipeline.NewConn(testenv.AMQPURL(), "e2e-rpc", testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pipeline.NewRPCClient(conn, sys.Topo, time.Minute, testenv.Logger(t))
	defer client.Close()
	svc := &recrawl.Service{Store: db, Client: client, Timeout: 30 * time.Second, Log: testenv.Logger(t)}
	defer svc.Close()

	first, err := svc.Recrawl(t.Context(), "e2e-req", urlID)
	if err != nil {
		t.Fatalf("Recrawl: %v", err)
	}
	again, err := svc.Recrawl(t.Context(), "e2e-req", urlID)
	if err != nil || again.ID != first.ID {
		t.Fatalf("resend = %+v, %v; want the stored reply %+v", again, err, first)
	}
	if !first.Fetched || first.Changed || (first.Status != http.StatusNotModified && first.Status != http.StatusOK) {
		t.Fatalf("reply = %+v, want an unchanged page", first)
	}
	if n := site.Hits()["/"] - before; n != 1 {
		t.Fatalf("seed fetched %d more times for one request id, want 1", n)
	}
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, "the re-crawl applied", func() bool {
		return len(query[int64](t, sys.DSN, `SELECT id FROM urls WHERE id = $1 AND state = 'done'`, urlID)) == 1
	})

}
