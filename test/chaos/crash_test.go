package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/internal/failpoint"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0))
}

const crawlerConcurrency = "TRAWL_CRAWLER_CONCURRENCY=16"

// killFiveTimes kills the only worker of kind bin with SIGKILL at five random moments of the
// crawl, starting a replacement each time.
func killFiveTimes(t *testing.T, bin string, crawlers, processors int) {
	rng := newRand(t)
	site := newSite(t, sitePages(), 0)
	sysEnv := chaosEnv
	if bin == "crawler" {
		sysEnv = redeliveryEnv // processors, and their schedulers, live on
	}
	sys := crashSystem(t, sysEnv...)
	workers := sys.StartAll(crawlers, processors)
	victim := workers[0]
	if bin == "processor" {
		victim = workers[len(workers)-1]
	}
	r := startRun(t, "kill-"+bin, sys, testenv.AMQPURL(), site)
	if bin == "processor" {
		// The processor runs the scheduler: killed between committing leases and publishing
		// their jobs, it leaves URLs only the lease brings back (never fetched, so no refetch).
		r.bounds.leaseExpiries = -1
	} else {
		// A killed crawler's fetches in flight and results awaiting confirms are fetched again
		// (correct code: about 150 over the five kills).
		r.bounds.refetches = 5 * crawlerHolds
	}
	for _, n := range thresholds(len(site.ExpectedURLs()), 5, 0.05, 0.8, rng.IntN) {
		r.waitStored(n)
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		sys.Kill(victim)
		if code, _ := victim.Wait(time.Second); code != -1 {
			t.Fatalf("%s exit status %d after SIGKILL, want -1 (signal)", victim.Name, code)
		}
		env := []string{}
		if bin == "crawler" {
			env = append(env, crawlerConcurrency)
		}
		victim = sys.Start(bin, nil, env...)
		r.faults++
		r.recovered(time.Now())
	}
	r.finish()
}

// TestKillProcessor: kill -9 the processor five times during a crawl of at least 2,000 pages.
// Unacked results return to the queue and are applied idempotently by the replacement.
func TestKillProcessor(t *testing.T) {
	t.Parallel()
	killFiveTimes(t, "processor", 2, 1)
}

// TestKillCrawler: kill -9 the crawler five times during a crawl of at least 2,000 pages. Its
// unacked jobs return to the queue and are fetched again; the duplicate results are ignored.
func TestKillCrawler(t *testing.T) {
	t.Parallel()
	killFiveTimes(t, "crawler", 1, 2)
}

// waitFailpoint waits for p to stop at failpoint name with status 137.
func waitFailpoint(t *testing.T, p *harness.Proc, name string) {
	t.Helper()
	code, ok := p.Wait(3 * time.Minute)
	if !ok {
		t.Fatalf("%s still running: failpoint %s never fired", p.Name, name)
	}
	if code != 137 || !strings.Contains(p.Output(), "failpoint "+name+" fired") {
		t.Fatalf("%s exited with %d, want 137 from failpoint %s; output:\n%s", p.Name, code, name, p.Output())
	}
}

// failpointRun starts a crash system with the dashboard and the given workers, and a run named
// after the failpoint fp that the scenario will trigger.
func failpointRun(t *testing.T, fp string, crawlers, processors int) (*harness.System, *run) {
	t.Helper()
	site := newSite(t, sitePages(), 0)
	env := chaosEnv
	if processors > 0 {
		env = redeliveryEnv // the failpoints stop crawlers; the scheduler lives on
	}
	sys := crashSystem(t, env...)
	sys.StartAll(crawlers, processors)
	r := startRun(t, "failpoint-"+fp, sys, testenv.AMQPURL(), site)
	if processors == 0 {
		r.bounds.leaseExpiries = -1 // the processors the failpoint stops run the scheduler
	} else {
		r.bounds.refetches = 4 * crawlerHolds // each stopped crawler's fetches and unconfirmed results
	}
	return sys, r
}

// TestFailpointProcessorAfterCommit stops the processor three times right after a batch's
// commit and before its acks: the results are redelivered, recognised as already applied, and
// acked; nothing is stored twice.
func TestFailpointProcessorAfterCommit(t *testing.T) {
	t.Parallel()
	rng := newRand(t)
	sys, r := failpointRun(t, failpoint.ProcessorAfterCommit, 2, 0)
	// A processor that starts after a crash first re-applies the redelivered results of the one
	// before it, which stores nothing new, so a single failpoint may fire after commits that
	// added no page. Across the three crashes the crawl must have moved on, though: the
	// failpoint sits after the commit, not before it.
	// Each processor stops at its 2nd to 4th commit: later ones could find the crawl finished
	// (batches of up to 200 results, redelivered messages split), and the failpoint would never
	// fire.
	first := r.stored()
	for range 3 {
		p := sys.Start("processor", nil, fmt.Sprintf("%s=%s=%d", failpoint.Env, failpoint.ProcessorAfterCommit, 2+rng.IntN(3)))
		waitFailpoint(t, p, failpoint.ProcessorAfterCommit)
		r.faults++
	}
	if after := r.stored(); after <= first {
		t.Fatalf("stored %d pages before the three failpoints and %d after: no batch was committed before its failpoint", first, after)
	}
	sys.Start("processor", nil)
	r.recovered(time.Now())
	r.finish()
}

// TestFailpointCrawlerBeforeConfirm stops the crawler after it sent a fetch result and before
// the broker's confirm (three times), then once after the confirm and before the job's ack.
// The jobs are redelivered and fetched again; the second results are ignored.
func TestFailpointCrawlerBeforeConfirm(t *testing.T) {
	t.Parallel()
	rng := newRand(t)
	sys, r := failpointRun(t, failpoint.PublishBeforeConfirm, 0, 1)
	points := []string{failpoint.PublishBeforeConfirm, failpoint.PublishBeforeConfirm, failpoint.PublishBeforeConfirm, failpoint.CrawlerAfterConfirm}
	for _, fp := range points {
		c := sys.Start("crawler", nil, crawlerConcurrency, fmt.Sprintf("%s=%s=%d", failpoint.Env, fp, 5+rng.IntN(40)))
		waitFailpoint(t, c, fp)
		r.faults++
	}
	sys.Start("crawler", nil, crawlerConcurrency)
	r.recovered(time.Now())
	r.finish()
}
