package process_test

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/private"
	"github.com/trawlhq/trawl/test/testenv"
)

// publishResults publishes one 200 result per job, each in a message of its own; the result of
// job bad (if ≥ 0) names another URL than the one its id was leased for, which no retry can
// store (store.ErrURLMismatch). It returns the message ids in job order.
func publishResults(t *testing.T, fx processorFixture, bad int) []string {
	t.Helper()
	ids := make([]string, len(fx.jobs))
	msgs := make([]message.Encoded, len(fx.jobs))
	for i, j := range fx.jobs {
		fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
			URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Depth: j.Depth, Dispatch: j.Dispatch, Worker: "test",
			Status: 200, ContentType: "text/html", Text: "text of " + j.URL, ContentHash: j.URL, StartedAt: time.Now()}
		if i == bad {
			fr.URL = j.URL + "/not-the-leased-url"
		}
		body, err := message.EncodeFetchResult(fr)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = fr.ID
		msgs[i] = message.Encoded{ID: fr.ID, Type: fr.Type, Body: body}
	}
	if err := fx.pub.Publish(t.Context(), fx.topo.PagesExchange(), pipeline.KeyPage, msgs...); err != nil {
		t.Fatal(err)
	}
	return ids
}

// runProcessor consumes the fixture's pages queue with proc until the returned stop is called
// (which waits for the consumer to end).
func runProcessor(t *testing.T, fx processorFixture, proc *process.Processor) (stop func()) {
	t.Helper()
	cons := &pipeline.Consumer{Conn: fx.conn, Queue: fx.topo.PagesQueue(), Prefetch: 48, Topology: fx.topo, Log: testenv.Logger(t)}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = cons.Run(ctx, func(d pipeline.Deliveries) { proc.Serve(ctx, d) }) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// storedURLs lists the URLs of the pages stored for the fixture's jobs (the seed's left out),
// sorted.
func storedURLs(t *testing.T, fx processorFixture) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), fx.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT p.url FROM pages p JOIN urls u ON u.id = p.url_id
		WHERE p.target_id = $1 AND u.depth > 0 ORDER BY p.url`, fx.tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestProcessorWaitsOutADatabaseOutage cuts the processor off its database (a proxy that
// breaks every connection and refuses new ones) while a batch is in hand. The commit fails
// with real connection errors: the processor must retry the batch with backoff, holding every
// delivery unacked meanwhile; a processor stopped during the outage returns them all to the
// queue, and once the database is back a new one stores every result exactly once.
func TestProcessorWaitsOutADatabaseOutage(t *testing.T) {
	t.Parallel()
	const n = 30
	fx := newProcessorFixture(t, "outage", n)
	u, err := url.Parse(fx.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := private.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cut, err := store.Open(ctx, u.String(), 4, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()

	proxy.Refuse()
	ids := publishResults(t, fx, -1)
	logs := &testenv.SyncBuffer{}
	newProc := func() *process.Processor {
		return &process.Processor{Store: cut, Policy: fx.pol, BatchSize: 16, BatchWait: 20 * time.Millisecond,
			Pub: fx.pub, Topology: fx.topo, Log: slog.New(slog.NewTextHandler(logs, nil))}
	}
	retries := func() int { return strings.Count(logs.String(), "database unavailable; retrying batch") }

	// First processor: it takes the results, fails to commit them, retries; none is acked.
	first := newProc()
	stop := runProcessor(t, fx, first)
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "three retries of a batch", func() bool { return retries() >= 3 })
	if got := first.Processed(); got != 0 {
		t.Fatalf("Processed = %d during the outage, want 0: results acked without a commit", got)
	}
	stop()
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, "every result back in the queue", func() bool {
		return testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()) == n
	})
	if got := storedURLs(t, fx); len(got) != 0 {
		t.Fatalf("%d pages stored during the outage, want 0", len(got))
	}

	// Second processor: the outage goes on for a few retries, then the database comes back.
	before := retries()
	second := newProc()
	runProcessor(t, fx, second)
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "two more retries", func() bool { return retries() >= before+2 })
	proxy.Heal()
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, "every result acked after the outage", func() bool {
		return second.Processed() == n
	})
	want := make([]string, n)
	for i, j := range fx.jobs {
		want[i] = j.URL
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, storedURLs(t, fx)); diff != "" {
		t.Errorf("stored pages (-want +got):\n%s", diff)
	}
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); d != 0 {
		t.Errorf("pages queue holds %d messages, want 0", d)
	}
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.DeadLetterQueue()); d != 0 {
		t.Errorf("%d dead letters after an outage, want 0", d)
	}
	t.Logf("%d results, %d batch retries logged", len(ids), retries())
}

// TestProcessorDeadLettersAPermanentFailure sends a batch in which one result can never be
// stored (it names another URL than the one its id was leased for). The processor stores the
// others, and the bad one goes back to the queue until the broker dead-letters it at the
// delivery limit: it is never acked and dropped.
func TestProcessorDeadLettersAPermanentFailure(t *testing.T) {
	t.Parallel()
	const n, bad = 12, 5
	fx := newProcessorFixture(t, "permanent", n)
	ids := publishResults(t, fx, bad)
	proc := &process.Processor{Store: fx.s, Policy: fx.pol, BatchSize: 16, BatchWait: 50 * time.Millisecond,
		Pub: fx.pub, Topology: fx.topo, Log: testenv.Logger(t)}
	stop := runProcessor(t, fx, proc)
	dl := testenv.Get(t, fx.raw, fx.topo.DeadLetterQueue(), true)
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, "the good results acked", func() bool {
		return proc.Processed() == n-1
	})
	stop()
	if reason, _ := testenv.XDeath(t, dl); dl.MessageId != ids[bad] || reason != "delivery_limit" {
		t.Errorf("dead letter %q (reason %q), want the bad result %q after the delivery limit", dl.MessageId, reason, ids[bad])
	}
	var want []string
	for i, j := range fx.jobs {
		if i != bad {
			want = append(want, j.URL)
		}
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, storedURLs(t, fx)); diff != "" {
		t.Errorf("stored pages (-want +got):\n%s", diff)
	}
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); d != 0 {
		t.Errorf("pages queue holds %d messages, want 0", d)
	}
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.DeadLetterQueue()); d != 0 {
		t.Errorf("%d more dead letters, want only the bad result", d)
	}
}
