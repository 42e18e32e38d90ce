package chaos

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// run is one crawl under fault injection: a target for a synthetic site, watched through the
// database, checked at the end against the site's known pages.
type run struct {
	t       *testing.T
	name    string
	sys     *harness.System
	site    *testsite.Site
	amqpURL string
	db      *pgxpool.Pool
	id      int64
	start   time.Time

	faults   int
	recovery time.Duration // longest time from the end of a fault until pages were stored again
	// deadLetters is how many messages the scenario itself expects in the dead-letter queue.
	deadLetters int
	// bounds is how the scenario must have recovered; startRun sets the defaults.
	bounds bounds
}

// bounds say how a scenario must recover, not only where it must end: work the fault
// interrupted must come back through redelivery (seconds), not through its lease (minutes),
// which also ends with every page stored once. Each bound was set from runs of correct code
// with a wide margin (docs/adr/0008-chaos-scenarios-bound-how-they-recover.md).
type bounds struct {
	// refetches is the most fetches beyond one per page. Lost results come back through the
	// lease and are fetched again: hundreds where correct code refetches a handful.
	refetches int
	// leaseExpiries is the most URLs the lease reaper may bring back (from every processor's
	// log); -1 leaves it unchecked, for scenarios in which a scheduler dies between committing
	// leases and publishing their jobs, whose URLs only the lease can bring back.
	leaseExpiries int
	// recovery is the longest time from the end of a fault until pages are stored again.
	recovery time.Duration
}

// defaultBounds hold for a scenario in which no crawler loses what it holds and no scheduler
// dies: a few refetches (correct code measures 1), no lease expiry, and pages stored again
// within 20 s of the fault's end (correct code: about 2 s, under the race detector).
var defaultBounds = bounds{refetches: 50, leaseExpiries: 0, recovery: 20 * time.Second}

// crawlerHolds is the most jobs a crawler that loses its broker connection (or dies) may have
// fetched without their results confirmed, all of which are fetched again: 16 fetching, 16
// results in the outbox and 16 messages of up to 8 results awaiting confirms. During a
// partition it also goes on fetching its whole prefetch (32 messages of up to 8 jobs), so a
// partition bounds a crawler's refetches by crawlerPrefetched instead.
const (
	crawlerHolds      = 16 + 16 + 16*8
	crawlerPrefetched = 32 * 8
)

// chaosEnv is added to every worker of a chaos run: a short lease brings back work lost
// anywhere (a killed scheduler between committing a lease and publishing the job, say).
var chaosEnv = []string{"TRAWL_LEASE_DURATION=15s"}

// redeliveryEnv is for scenarios in which no scheduler dies and nothing is purged, which
// assert that no lease expires: a lease well beyond what a job may wait in the queue of a
// full-size run (TRAWL_CHAOS=full), so that only lost work can outlive it.
var redeliveryEnv = []string{"TRAWL_LEASE_DURATION=45s"}

// crashSystem is a System on the shared services whose work queues have a delivery limit of
// 10 instead of the tests' usual 3. A worker killed by SIGKILL returns every message it had
// prefetched, and on both RabbitMQ 3.10 and 4.x each such return counts as a delivery: five
// crashes in a row could push an innocent message past a limit of 3 into the dead-letter queue.
// (Its URL would still be crawled, through the lease, but the scenarios check that nothing is
// dead-lettered.) Production uses TRAWL_DELIVERY_LIMIT=10 by default.
func crashSystem(t *testing.T, extraEnv ...string) *harness.System {
	t.Helper()
	_, dsn := testenv.Store(t)
	topo := pipeline.Topology{Prefix: testenv.Name("c") + ".", DeliveryLimit: 10}
	testenv.DeleteTopologyAtEnd(t, topo)
	return harness.NewSystemAt(t, dsn, testenv.AMQPURL(), topo, extraEnv...)
}

// rawChannel opens a channel on a connection of its own to the shared broker, for the test to
// act on queues directly. The connection is closed when the test ends.
func rawChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(testenv.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// newSite serves a synthetic site of n pages, closed when the test ends.
func newSite(t *testing.T, n int, delay time.Duration) *testsite.Site {
	site := testsite.New(testsite.Options{Pages: n, TextBytes: 1024, Delay: delay})
	t.Cleanup(site.Close)
	return site
}

// startRun posts a target for site on sys (whose dashboard must be running).
func startRun(t *testing.T, name string, sys *harness.System, amqpURL string, site *testsite.Site) *run {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), sys.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	r := &run{t: t, name: name, sys: sys, site: site, amqpURL: amqpURL, db: pool, start: time.Now(), bounds: defaultBounds}
	var created struct {
		ID    int64  `json:"id"`
		Error string `json:"error"`
	}
	body := map[string]any{"seed_url": site.SeedURL(), "max_depth": 1000, "max_pages": 1000000, "per_host_rps": 0}
	if code := sys.API(http.MethodPost, "/api/targets", body, &created); code != http.StatusCreated {
		t.Fatalf("POST /api/targets = %d (%s)", code, created.Error)
	}
	r.id = created.ID
	return r
}

// stored is the number of pages stored for the target, or -1 while the database is away.
func (r *run) stored() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM pages WHERE target_id = $1`, r.id).Scan(&n); err != nil {
		return -1
	}
	return n
}

// waitStored waits until at least n pages are stored.
func (r *run) waitStored(n int) {
	r.t.Helper()
	testenv.Eventually(r.t, 3*time.Minute, 20*time.Millisecond, fmt.Sprintf("%d pages stored", n), func() bool {
		return r.stored() >= n
	})
}

// recovered is called when a fault has ended: it waits until the pipeline stores pages again
// and records how long that took.
func (r *run) recovered(faultEnd time.Time) {
	r.t.Helper()
	base := r.stored()
	want := len(r.site.ExpectedURLs())
	testenv.Eventually(r.t, 3*time.Minute, 20*time.Millisecond, "pages to be stored again after the fault", func() bool {
		n := r.stored()
		return n >= want || (base >= 0 && n > base) || (base < 0 && n >= 0)
	})
	if d := time.Since(faultEnd); d > r.recovery {
		r.recovery = d
	}
}

// restartAndFinish replaces a fleet the scenario's one fault took down with two crawlers and a
// processor, then waits for the crawl to recover and checks it as finish does.
func (r *run) restartAndFinish() {
	r.t.Helper()
	r.sys.Start("crawler", nil, crawlerConcurrency)
	r.sys.Start("crawler", nil, crawlerConcurrency)
	r.sys.Start("processor", nil)
	r.faults = 1
	r.recovered(time.Now())
	r.finish()
}

// thresholds returns k page counts spread over (lo, hi) of n with jitter: "random moments"
// expressed as progress, so they fall inside the crawl however fast the machine is.
func thresholds(n, k int, lo, hi float64, jitter func(int) int) []int {
	out := make([]int, k)
	step := (hi - lo) / float64(k)
	for i := range k {
		base := int(float64(n) * (lo + step*float64(i)))
		out[i] = base + jitter(int(float64(n)*step/2)+1)
	}
	return out
}

// finish waits for the target to finish and checks the promise: every in-scope page stored
// exactly once, nothing pending or dispatched, nothing failed, the target done and nothing
// dead-lettered beyond what the scenario itself sent. It logs the scenario's figures.
func (r *run) finish() {
	r.t.Helper()
	timeout := 4 * time.Minute
	if full {
		timeout = 10 * time.Minute
	}
	st := r.sys.WaitDone(r.id, timeout)
	total := time.Since(r.start)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	want := r.site.ExpectedURLs()
	rows, err := r.db.Query(ctx, `SELECT url, count(*) FROM pages WHERE target_id = $1 GROUP BY url ORDER BY url`, r.id)
	if err != nil {
		r.t.Fatal(err)
	}
	var got []string
	dups := 0
	for rows.Next() {
		var u string
		var n int
		if err := rows.Scan(&u, &n); err != nil {
			r.t.Fatal(err)
		}
		got = append(got, u)
		dups += n - 1
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		r.t.Errorf("stored pages (-want +got):\n%s", diff)
	}
	if dups != 0 {
		r.t.Errorf("%d duplicate pages stored", dups)
	}
	var pending, failed int
	if err := r.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state IN ('queued', 'dispatched')),
		count(*) FILTER (WHERE state = 'failed') FROM urls WHERE target_id = $1`, r.id).Scan(&pending, &failed); err != nil {
		r.t.Fatal(err)
	}
	if pending != 0 || failed != 0 || st.State != "done" {
		r.t.Errorf("target %s with %d URLs pending or dispatched and %d failed, want done, 0, 0", st.State, pending, failed)
	}
	if dead := r.deadLettered(); dead != r.deadLetters {
		r.t.Errorf("dead-letter queue holds %d messages, want %d", dead, r.deadLetters)
	}
	refetches := r.site.TotalHits() - len(want)
	expiries := leaseExpiries(r.sys)
	b := r.bounds
	maxExpiries := "any"
	if b.leaseExpiries >= 0 {
		maxExpiries = strconv.Itoa(b.leaseExpiries)
	}
	r.t.Logf("CHAOS scenario=%s pages_expected=%d pages_stored=%d duplicates=%d refetches=%d max_refetches=%d lease_expiries=%d max_lease_expiries=%s faults=%d recover_ms=%d max_recover_ms=%d total_ms=%d race=%t",
		r.name, len(want), len(got), dups, refetches, b.refetches, expiries, maxExpiries, r.faults,
		r.recovery.Milliseconds(), b.recovery.Milliseconds(), total.Milliseconds(), raceEnabled)
	if refetches > b.refetches {
		r.t.Errorf("%d refetches, want at most %d: work the fault interrupted came back through its lease, not redelivery", refetches, b.refetches)
	}
	if b.leaseExpiries >= 0 && expiries > b.leaseExpiries {
		r.t.Errorf("%d URLs came back through their lease, want at most %d: the fault lost work the broker should have redelivered", expiries, b.leaseExpiries)
	}
	if r.recovery > b.recovery {
		r.t.Errorf("pages were stored again %s after a fault ended, want within %s", r.recovery.Round(time.Millisecond), b.recovery)
	}
}

// leaseLine is the scheduler's log line for URLs brought back by the lease reaper.
var leaseLine = regexp.MustCompile(`msg="expired leases returned to queue"[^\n]* urls=(\d+)`)

// leaseExpiries adds up the URLs the lease reapers of sys's processors brought back, from
// their logs (killed processes' included).
func leaseExpiries(sys *harness.System) int {
	n := 0
	for _, p := range sys.Procs() {
		for _, m := range leaseLine.FindAllStringSubmatch(p.Output(), -1) {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
	}
	return n
}

// deadLettered counts dead letters: those still in the dead-letter queue plus those the
// processors have mirrored into Postgres (and acked).
func (r *run) deadLettered() int {
	r.t.Helper()
	conn, err := amqp.Dial(r.amqpURL)
	if err != nil {
		r.t.Fatalf("dial broker: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mirrored int
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&mirrored); err != nil {
		r.t.Fatalf("count dead letters: %v", err)
	}
	return testenv.QueueDepth(r.t, conn, r.sys.Topo.DeadLetterQueue()) + mirrored
}

// noStaleAcks fails the test if any process or broker log shows an ack (or nack) sent with a
// delivery tag the channel did not know: the sign of acking a delivery from a dead channel on
// a new one.
func noStaleAcks(t *testing.T, logs map[string]string) {
	t.Helper()
	for name, out := range logs {
		for _, bad := range []string{"unknown delivery tag", "PRECONDITION_FAILED - unknown", "panic:"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s logged %q", name, bad)
			}
		}
	}
}

// logsOf collects the output of procs by name.
func logsOf(procs ...*harness.Proc) map[string]string {
	m := map[string]string{}
	for _, p := range procs {
		m[p.Name] = p.Output()
	}
	return m
}
