package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/private"
	"github.com/trawlhq/trawl/test/testenv"
)

// privateTopology is a fresh name prefix for a private broker node.
func privateTopology() pipeline.Topology {
	return pipeline.Topology{Prefix: testenv.Name("c") + ".", DeliveryLimit: 3}
}

// brokerFaultLease is the lease of the broker scenarios: longer than their faults (30 s stop,
// 35 s partition), so that no URL comes back through its lease unless work was lost.
const brokerFaultLease = "TRAWL_LEASE_DURATION=2m"

// brokerOutage is how long the broker stays down.
const brokerOutage = 30 * time.Second

// waitLog waits until p has logged every one of the strings.
func waitLog(t *testing.T, timeout time.Duration, p *harness.Proc, want ...string) {
	t.Helper()
	testenv.Eventually(t, timeout, 50*time.Millisecond, p.Name+" to log "+strings.Join(want, " and "), func() bool {
		out := p.Output()
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	})
}

func stillRunning(t *testing.T, procs ...*harness.Proc) {
	t.Helper()
	for _, p := range procs {
		if p.Exited() {
			code, _ := p.Wait(0)
			t.Fatalf("%s exited (status %d); it should have ridden over the fault:\n%s", p.Name, code, p.Output())
		}
	}
}

// privatePostgres starts a private PostgreSQL server and returns it with the URL of a database
// on it for the system to use.
func privatePostgres(t *testing.T) (*private.Postgres, string) {
	t.Helper()
	pg := private.StartPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dsn, err := pg.Database(ctx, "trawl_chaos")
	if err != nil {
		t.Fatal(err)
	}
	return pg, dsn
}

// privateBrokerRun starts a system with two crawlers and a processor whose broker is rabbit,
// reached at amqpURL (the node itself, or a proxy in front of it), starts the run name and
// waits until a quarter of the site is stored.
func privateBrokerRun(t *testing.T, name string, rabbit *private.Rabbit, amqpURL string, extraEnv ...string) (*run, []*harness.Proc) {
	t.Helper()
	_, dsn := testenv.Store(t)
	site := newSite(t, sitePages(), 0)
	// The lease is longer than any of these faults: the broker must redeliver everything the
	// fault interrupted, and anything lost shows as a lease expiry (bounds.leaseExpiries 0).
	sys := harness.NewSystemAt(t, dsn, amqpURL, privateTopology(), slices.Concat([]string{brokerFaultLease}, extraEnv)...)
	workers := sys.StartAll(2, 1)
	r := startRun(t, name, sys, rabbit.URL(), site)
	r.waitStored(len(site.ExpectedURLs()) / 4)
	return r, workers
}

// rodeOverBrokerLoss ends a scenario in which the workers lost their broker connection to
// fault: the crawl recovers and finishes, no worker exited, each one logged the lost
// connection, and no log shows a stale ack.
func rodeOverBrokerLoss(t *testing.T, r *run, rabbit *private.Rabbit, workers []*harness.Proc, fault string) {
	t.Helper()
	r.faults++
	r.recovered(time.Now())
	r.finish()
	stillRunning(t, workers...)
	for _, w := range workers {
		if !strings.Contains(w.Output(), "broker connection lost") {
			t.Errorf("%s never noticed %s", w.Name, fault)
		}
	}
	logs := logsOf(workers...)
	logs["rabbitmq node"] = rabbit.Log()
	noStaleAcks(t, logs)
}

// TestBrokerStopped stops the (private) broker for 30 s in the middle of a crawl, then starts
// it again. The workers reconnect on their own, nothing is acked on a stale delivery tag, and
// the crawl finishes with every page stored once.
func TestBrokerStopped(t *testing.T) {
	t.Parallel()
	rabbit := private.StartRabbit(t)
	r, workers := privateBrokerRun(t, "broker-stopped-30s", rabbit, rabbit.URL())
	// Both crawlers lose their connection: each fetches again what it held unconfirmed.
	r.bounds.refetches = 2 * crawlerHolds
	rabbit.Stop()
	time.Sleep(brokerOutage)
	stillRunning(t, workers...)
	rabbit.Start()
	rodeOverBrokerLoss(t, r, rabbit, workers, "the broker going away")
}

// TestPostgresRestarted restarts the (private) database in the middle of a crawl. The
// processors ride over 57P01 and the broken connections, and nothing is dead-lettered.
func TestPostgresRestarted(t *testing.T) {
	t.Parallel()
	pg, dsn := privatePostgres(t)
	topo, _ := testenv.Broker(t)
	site := newSite(t, sitePages(), 0)
	sys := harness.NewSystemAt(t, dsn, testenv.AMQPURL(), topo, redeliveryEnv...)
	workers := sys.StartAll(2, 2)
	r := startRun(t, "postgres-restarted", sys, testenv.AMQPURL(), site)
	r.waitStored(len(site.ExpectedURLs()) / 4)
	pg.Stop()
	time.Sleep(3 * time.Second) // long enough for every processor to hit the outage
	pg.Start()
	r.faults++
	r.recovered(time.Now())
	r.finish() // includes: the dead-letter queue is empty, no lease expired, few refetches
	stillRunning(t, workers...)
	// Only the processor's batch-retry path logs this (process.Processor.apply): the election
	// and the scheduler log 57P01 too, so seeing that would not prove the batches were retried.
	// Its metric says the same: batches whose commit failed on a transient error and were retried.
	const retried = `trawl_processor_persist_batch_errors_total{kind="transient"}`
	if out := workers[2].Output() + workers[3].Output(); !strings.Contains(out, "database unavailable; retrying batch") ||
		counter(t, workers[2], retried)+counter(t, workers[3], retried) == 0 {
		t.Errorf("no processor retried a batch through the outage (log line and %s)", retried)
	}
	if !strings.Contains(pg.Log(), "terminating connection due to administrator command") &&
		!strings.Contains(pg.Log(), "database system is shut down") {
		t.Errorf("postgres log shows no shutdown:\n%s", pg.Log())
	}
	noStaleAcks(t, logsOf(workers...))
}

// counter reads one series of a counter (its name and labels as exposed) from the /metrics page
// p serves on its health address; 0 when the series is absent.
func counter(t *testing.T, p *harness.Proc, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.HealthAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", p.Name, err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", p.Name, line, err)
			}
			return f
		}
	}
	return 0
}

// TestMemoryAlarm raises the (private) broker's memory alarm mid-crawl: publishers are
// blocked and log it, and when the alarm clears they resume and the crawl finishes.
func TestMemoryAlarm(t *testing.T) {
	t.Parallel()
	rabbit := private.StartRabbit(t)
	r, workers := privateBrokerRun(t, "memory-alarm", rabbit, rabbit.URL())
	rabbit.SetMemoryWatermark("0.0000001")
	for _, w := range workers {
		waitLog(t, time.Minute, w, "broker blocked this connection")
	}
	during := r.stored()
	time.Sleep(3 * time.Second)
	rabbit.SetMemoryWatermark("0.4")
	for _, w := range workers {
		waitLog(t, time.Minute, w, "broker unblocked this connection")
	}
	r.faults++
	r.recovered(time.Now())
	r.finish()
	stillRunning(t, workers...)
	t.Logf("pages stored when the alarm was seen: %d", during)
}

// TestUnreachableAtStartup starts the workers while the database and the broker are down:
// they retry with backoff, log every attempt, never exit, and work once the services appear.
func TestUnreachableAtStartup(t *testing.T) {
	t.Parallel()
	rabbit := private.StartRabbit(t)
	pg, dsn := privatePostgres(t)
	rabbit.Stop()
	pg.Stop()
	sys := harness.NewSystemAt(t, dsn, rabbit.URL(), privateTopology())
	crawler := sys.Start("crawler", nil)
	processor := sys.Start("processor", nil)
	waitLog(t, time.Minute, crawler, "broker unreachable, retrying", "attempt=3")
	waitLog(t, time.Minute, processor, "database unreachable, retrying", "attempt=3")
	stillRunning(t, crawler, processor)

	pg.Start()
	waitLog(t, time.Minute, processor, "database connected", "broker unreachable, retrying")
	rabbit.Start()
	waitLog(t, time.Minute, crawler, "broker connected", "crawler started")
	waitLog(t, time.Minute, processor, "processor started")
	for _, p := range []*harness.Proc{crawler, processor} {
		testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, p.Name+" ready", func() bool {
			resp, err := http.Get("http://" + p.HealthAddr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	sys.StartAll(0, 0)
	site := newSite(t, 100, 0)
	r := startRun(t, "unreachable-at-startup", sys, rabbit.URL(), site)
	r.faults = 2
	r.finish()
	noStaleAcks(t, logsOf(crawler, processor))
}

// partition is how long the network between workers and broker is cut: longer than the
// 3 × 10 s heartbeat window after which the AMQP client gives a silent connection up.
const partition = 35 * time.Second

// TestNetworkPartition cuts the network between the workers and the (private) broker without
// closing anything: bytes are held, as by a dead switch. Only heartbeats can tell. The workers
// must notice, reconnect once the network heals, and finish the crawl with nothing lost or
// doubled.
func TestNetworkPartition(t *testing.T) {
	t.Parallel()
	rabbit := private.StartRabbit(t)
	proxy := private.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", rabbit.Port))
	r, workers := privateBrokerRun(t, "network-partition-35s", rabbit, "amqp://guest:guest@"+proxy.Addr()+"/")
	// What the two crawlers fetched during the partition is lost with their connections and
	// fetched again (correct code: about 300); nothing may need its lease.
	r.bounds.refetches = 2 * crawlerPrefetched
	proxy.Partition()
	time.Sleep(partition)
	proxy.Heal()
	rodeOverBrokerLoss(t, r, rabbit, workers, "the partition")
}
