package chaos

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestSIGTERMDuringBusyCrawl sends SIGTERM to every worker while crawlers hold jobs in flight
// (each fetch takes 100 ms). Each worker stops taking work, finishes or returns what it holds
// within TRAWL_SHUTDOWN_TIMEOUT and exits 0. Leases are left at their 5-minute default, so the
// crawl can only finish within the test's timeout if nothing was lost: new workers complete it.
func TestSIGTERMDuringBusyCrawl(t *testing.T) {
	t.Parallel()
	const bound = 5 * time.Second
	site := newSite(t, sitePages()/2, 100*time.Millisecond)
	sys := harness.NewSystem(t, "TRAWL_SHUTDOWN_TIMEOUT="+bound.String())
	workers := sys.StartAll(2, 2)
	r := startRun(t, "sigterm", sys, testenv.AMQPURL(), site)
	r.waitStored(len(site.ExpectedURLs()) / 4)

	start := time.Now()
	for _, w := range workers {
		if err := w.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	var slowest time.Duration
	for _, w := range workers {
		// The bound covers in-flight work; process start-up and teardown get a fixed allowance.
		code, ok := w.Wait(bound + 15*time.Second)
		if !ok {
			t.Fatalf("%s still running %s after SIGTERM (bound %s):\n%s", w.Name, time.Since(start), bound, w.Output())
		}
		if code != 0 {
			t.Fatalf("%s exited with %d after SIGTERM, want 0:\n%s", w.Name, code, w.Output())
		}
		slowest = max(slowest, time.Since(start))
		if out := w.Output(); !strings.Contains(out, "crawler stopped") && !strings.Contains(out, "processor stopped") {
			t.Errorf("%s did not log its orderly stop", w.Name)
		}
	}
	t.Logf("all workers exited 0 within %s of SIGTERM (bound %s)", slowest.Round(time.Millisecond), bound)

	r.restartAndFinish()
}
