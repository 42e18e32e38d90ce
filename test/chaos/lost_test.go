package chaos

import (
	"testing"
	"time"

	"github.com/trawlhq/trawl/test/testenv"
)

// TestBrokerLosesMessages loses every message in transit mid-crawl: all workers are killed
// (their unacked messages return to the queues) and both work queues are purged, as if the
// broker had lost its data. Postgres is the truth, so the leases bring the lost jobs back and
// new workers still store every page exactly once.
func TestBrokerLosesMessages(t *testing.T) {
	t.Parallel()
	site := newSite(t, sitePages()/2, 0)
	sys := crashSystem(t, "TRAWL_LEASE_DURATION=5s")
	workers := sys.StartAll(2, 1)
	r := startRun(t, "broker-loses-messages", sys, testenv.AMQPURL(), site)
	// The purged messages are gone from the broker: only their leases bring them back, and the
	// purged results are fetched again.
	r.bounds = bounds{refetches: 2 * len(site.ExpectedURLs()), leaseExpiries: -1, recovery: time.Minute}
	r.waitStored(len(site.ExpectedURLs()) / 3)
	ch := rawChannel(t)
	for _, w := range workers {
		sys.Kill(w)
	}
	lost := 0
	for _, q := range []string{sys.Topo.CrawlQueue(), sys.Topo.PagesQueue()} {
		// A quorum queue returns a dead consumer's messages asynchronously: purge until empty.
		for range 20 {
			n, err := ch.QueuePurge(q, false)
			if err != nil {
				t.Fatal(err)
			}
			lost += n
			time.Sleep(50 * time.Millisecond)
		}
	}
	if lost == 0 {
		t.Fatal("nothing was in transit to lose")
	}
	r.restartAndFinish()
	t.Logf("messages purged: %d", lost)
}
