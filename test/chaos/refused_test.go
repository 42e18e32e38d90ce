package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestBrokerRefusesResults unbinds the pages queue for a second in the middle of a crawl: the
// broker returns every fetch result as unroutable (and confirms the return) while the crawlers'
// channels stay up. A crawler must put such a job back and fetch it again, never ack it: a job
// acked on a refused result would leave its URL dispatched until the lease ran out. The lease
// is a minute here, so the crawl finishes through redelivery alone with no lease expiry, or
// the scenario fails.
func TestBrokerRefusesResults(t *testing.T) {
	t.Parallel()
	// Each fetch takes 100 ms, so a refused job goes round at most about ten times during the
	// fault: far below this system's delivery limit of 100.
	site := newSite(t, sitePages()/2, 100*time.Millisecond)
	_, dsn := testenv.Store(t)
	topo := pipeline.Topology{Prefix: testenv.Name("c") + ".", DeliveryLimit: 100}
	testenv.DeleteTopologyAtEnd(t, topo)
	sys := harness.NewSystemAt(t, dsn, testenv.AMQPURL(), topo, "TRAWL_LEASE_DURATION=1m")
	workers := sys.StartAll(2, 1)
	r := startRun(t, "broker-refuses-results", sys, testenv.AMQPURL(), site)
	r.waitStored(len(site.ExpectedURLs()) / 4)

	ch := rawChannel(t)
	if err := ch.QueueUnbind(topo.PagesQueue(), pipeline.KeyPage, topo.PagesExchange(), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := ch.QueueBind(topo.PagesQueue(), pipeline.KeyPage, topo.PagesExchange(), false, nil); err != nil {
		t.Fatal(err)
	}
	r.faults = 1
	r.recovered(time.Now())
	returned := 0
	for _, w := range workers[:2] {
		returned += strings.Count(w.Output(), `msg="publish returned"`)
	}
	if returned == 0 {
		t.Fatal("the broker returned no fetch result during the fault")
	}
	// Every refused result is fetched again (a returned message may carry several results).
	r.bounds.refetches = len(site.ExpectedURLs()) / 2
	r.finish()
	if refetches := site.TotalHits() - len(site.ExpectedURLs()); refetches == 0 {
		t.Errorf("%d results refused and none fetched again", returned)
	}
	t.Logf("messages returned by the broker: %d", returned)
}
