package recrawl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/crawl"
	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

type rig struct {
	t      *testing.T
	db     *store.Store
	dsn    string
	topo   pipeline.Topology
	hits   atomic.Int64
	site   *httptest.Server
	urlID  int64
	client *pipeline.RPCClient
}

// setup gives the test a database with one target whose seed is on an httptest site, a
// topology, a running processor and an RPC client. Crawlers are started by the test.
func setup(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t}
	r.db, r.dsn = testenv.Store(t)
	r.topo, _ = testenv.Broker(t)
	r.site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.hits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><head><title>Fresh title</title></head><body>new words</body></html>`))
	}))
	t.Cleanup(r.site.Close)
	seed, err := crawlurl.Canonicalize(r.site.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := r.db.CreateTarget(t.Context(), target.Spec{Name: "t", SeedURL: seed,
		Scope: "host", MaxDepth: 0, MaxPages: 10, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	r.query(`SELECT id FROM urls WHERE target_id = $1`, []any{tg.ID}, &r.urlID)

	// The processor stores what crawlers publish.
	proc := &process.Processor{Store: r.db, BatchSize: 10, BatchWait: 10 * time.Millisecond, Log: testenv.Logger(t),
		Policy: process.Policy{RetryBase: time.Second, RetryMax: time.Minute, Canon: crawlurl.Default}}
	r.run(func(ctx context.Context) {
		cons := &pipeline.Consumer{Conn: testenv.Dial(t, "proc"), Queue: r.topo.PagesQueue(), Prefetch: 20, Topology: r.topo, Log: testenv.Logger(t)}
		_ = cons.Run(ctx, func(d pipeline.Deliveries) { proc.Serve(ctx, d) })
	})
	r.client = pipeline.NewRPCClient(testenv.Dial(t, "client"), r.topo, time.Minute, testenv.Logger(t))
	t.Cleanup(func() { _ = r.client.Close() })
	return r
}

// run runs fn until the test ends.
func (r *rig) run(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { fn(ctx) })
	r.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func (r *rig) query(sql string, args []any, dest ...any) {
	r.t.Helper()
	conn, err := pgx.Connect(r.t.Context(), r.dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(r.t.Context(), sql, args...).Scan(dest...); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
}

// crawler starts a re-crawl server, as cmd/crawler runs it.
func (r *rig) crawler(id string) *crawl.RecrawlServer {
	t := r.t
	pubConn := testenv.Dial(t, id+"-pub")
	pub := pipeline.NewPublisher(pubConn, testenv.Logger(t))
	replies := pipeline.NewPublisher(pubConn, testenv.Logger(t))
	t.Cleanup(func() { _ = replies.Close(); _ = pub.Close() })
	srv := &crawl.RecrawlServer{Pub: pub, Replies: replies, Topology: r.topo, Concurrency: 2, ID: id, Log: testenv.Logger(t)}
	ready := make(chan struct{})
	r.run(func(ctx context.Context) {
		srv.Fetcher = crawl.NewFetcher(ctx, crawl.FetchConfig{UserAgent: "test", Timeout: 5 * time.Second,
			MaxBodyBytes: 1 << 20, Concurrency: 2, Guard: crawl.Guard{AllowPrivate: true}})
		close(ready)
		cons := &pipeline.Consumer{Conn: testenv.Dial(t, id+"-cons"), Queue: r.topo.RecrawlQueue(), Prefetch: 2, Topology: r.topo, Log: testenv.Logger(t)}
		_ = cons.Run(ctx, func(d pipeline.Deliveries) { srv.Serve(ctx, ctx.Done(), d) })
	})
	<-ready
	return srv
}

func (r *rig) service(timeout, lease time.Duration) *recrawl.Service {
	s := &recrawl.Service{Store: r.db, Client: r.client, Timeout: timeout, Lease: lease, Poll: 20 * time.Millisecond, Log: testenv.Logger(r.t)}
	r.t.Cleanup(s.Close)
	return s
}

func (r *rig) request(id string) store.RecrawlRequest {
	r.t.Helper()
	req, err := r.db.RecrawlRequest(r.t.Context(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return req
}

func TestSameRequestIDFetchesOnceAcrossCrawlers(t *testing.T) {
	t.Parallel()
	r := setup(t)
	a, b := r.crawler("crawler-a"), r.crawler("crawler-b")
	svc := r.service(20*time.Second, time.Minute)

	first, err := svc.Recrawl(t.Context(), "req-1", r.urlID)
	if err != nil {
		t.Fatalf("Recrawl: %v", err)
	}
	if first.Status != 200 || !first.Changed || !first.Fetched || first.RequestID != "req-1" {
		t.Fatalf("reply = %+v", first)
	}
	// Resends, one after the other and several at once: every one gets the stored reply.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			again, err := svc.Recrawl(t.Context(), "req-1", r.urlID)
			if err != nil || again.Worker != first.Worker || again.ContentHash != first.ContentHash || again.ID != first.ID {
				t.Errorf("resend = %+v, %v; want the stored reply %+v", again, err, first)
			}
		})
	}
	wg.Wait()
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("site saw %d fetches for one request id, want 1", n)
	}
	if got := a.Fetches() + b.Fetches(); got != 1 {
		t.Fatalf("crawlers fetched %d times, want 1", got)
	}
	if req := r.request("req-1"); req.State != store.RecrawlDone || req.Attempts != 1 {
		t.Fatalf("request record = %+v", req)
	}
	// The processor stored the result: the URL is done and its page has the fetched title.
	testenv.Eventually(t, 15*time.Second, 50*time.Millisecond, "the re-crawled page stored", func() bool {
		var state, title string
		r.query(`SELECT u.state, coalesce(p.title, '') FROM urls u LEFT JOIN pages p ON p.url_id = u.id WHERE u.id = $1`,
			[]any{r.urlID}, &state, &title)
		return state == store.URLDone && title == "Fresh title"
	})

	// Concurrent first sends of a new id: one claims and publishes, the others wait for it.
	results := make(chan message.RecrawlReply, 4)
	for range 4 {
		wg.Go(func() {
			reply, err := svc.Recrawl(t.Context(), "req-2", r.urlID)
			if err != nil {
				t.Errorf("concurrent Recrawl: %v", err)
			}
			results <- reply
		})
	}
	wg.Wait()
	close(results)
	for reply := range results {
		if reply.RequestID != "req-2" || reply.Status != 200 {
			t.Fatalf("concurrent reply = %+v", reply)
		}
	}
	if n := r.hits.Load(); n != 2 {
		t.Fatalf("site saw %d fetches for two request ids, want 2", n)
	}
}

func TestTimeoutLeavesPendingAndStoresTheLateReply(t *testing.T) {
	t.Parallel()
	r := setup(t)
	svc := r.service(300*time.Millisecond, time.Minute)
	_, err := svc.Recrawl(t.Context(), "late", r.urlID)
	if !errors.Is(err, recrawl.ErrPending) {
		t.Fatalf("Recrawl without a crawler = %v, want ErrPending", err)
	}
	if req := r.request("late"); req.State != store.RecrawlPending {
		t.Fatalf("request after timeout = %+v, want pending", req)
	}
	// A resend while pending publishes nothing and waits.
	if _, err := svc.Recrawl(t.Context(), "late", r.urlID); !errors.Is(err, recrawl.ErrPending) {
		t.Fatalf("resend while pending = %v, want ErrPending", err)
	}
	// A crawler comes up: it takes the one queued request, and the reply is stored.
	r.crawler("crawler-a")
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, "the late reply stored", func() bool {
		return r.request("late").State == store.RecrawlDone
	})
	reply, err := svc.Recrawl(t.Context(), "late", r.urlID)
	if err != nil || reply.Status != 200 || !reply.Fetched {
		t.Fatalf("resend after the late reply = %+v, %v", reply, err)
	}
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("site saw %d fetches, want 1", n)
	}
}

func TestExpiredLeaseIsRetriedWithoutDoubleFetch(t *testing.T) {
	t.Parallel()
	r := setup(t)
	// Lease 2 s: the first attempt's request expires 1 s after its claim.
	svc := r.service(200*time.Millisecond, 2*time.Second)
	if _, err := svc.Recrawl(t.Context(), "retry", r.urlID); !errors.Is(err, recrawl.ErrPending) {
		t.Fatalf("first attempt = %v, want ErrPending", err)
	}
	// Within the lease a resend does not publish again.
	if _, err := svc.Recrawl(t.Context(), "retry", r.urlID); !errors.Is(err, recrawl.ErrPending) {
		t.Fatalf("resend within the lease = %v, want ErrPending", err)
	}
	// Wait for the lease to pass, then start a crawler: attempt 1 is still queued but expired.
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, "the lease to pass", func() bool {
		return time.Since(r.request("retry").UpdatedAt) > 2*time.Second+100*time.Millisecond
	})
	long := r.service(20*time.Second, 2*time.Second)
	r.crawler("crawler-a")
	var reply message.RecrawlReply
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "a retried attempt to be fetched", func() bool {
		var err error
		reply, err = long.Recrawl(t.Context(), "retry", r.urlID)
		return err == nil
	})
	if !reply.Fetched || reply.Status != 200 {
		t.Fatalf("reply = %+v", reply)
	}
	// Attempt 1 reached the crawler after its deadline and was not fetched.
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("site saw %d fetches, want 1", n)
	}
	if req := r.request("retry"); req.Attempts < 2 || req.State != store.RecrawlDone {
		t.Fatalf("request record = %+v, want done after at least 2 attempts", req)
	}
}

func TestNotSentFailsAndRestoresTheURL(t *testing.T) {
	t.Parallel()
	r := setup(t)
	// A client whose crawl exchange exists but routes nowhere: the request is returned.
	conn := testenv.Dial(t, "admin")
	ch, err := conn.Channel(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	nowhere := pipeline.Topology{Prefix: testenv.Name("nowhere") + "."}
	if err := ch.ExchangeDeclare(nowhere.CrawlExchange(), "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := conn.Channel(context.Background()); err == nil {
			_ = c.ExchangeDelete(nowhere.CrawlExchange(), false, false)
			_ = c.Close()
		}
	})
	lostClient := pipeline.NewRPCClient(testenv.Dial(t, "lost-client"), nowhere, 5*time.Second, testenv.Logger(t))
	defer lostClient.Close()
	svc := &recrawl.Service{Store: r.db, Client: lostClient, Timeout: 5 * time.Second, Log: testenv.Logger(t)}
	defer svc.Close()
	_, err = svc.Recrawl(t.Context(), "lost", r.urlID)
	if !errors.Is(err, recrawl.ErrNotFetched) || !errors.Is(err, pipeline.ErrReturned) {
		t.Fatalf("Recrawl to an unbound queue = %v, want ErrNotFetched wrapping ErrReturned", err)
	}
	if req := r.request("lost"); req.State != store.RecrawlFailed {
		t.Fatalf("request = %+v, want failed", req)
	}
	var state string
	r.query(`SELECT state FROM urls WHERE id = $1`, []any{r.urlID}, &state)
	if state != store.URLQueued {
		t.Fatalf("url state = %q after a request that was never sent, want it restored to queued", state)
	}
	// Failed requests may be sent again.
	r.crawler("crawler-a")
	if reply, err := r.service(20*time.Second, time.Minute).Recrawl(t.Context(), "lost", r.urlID); err != nil || !reply.Fetched {
		t.Fatalf("resend after failure = %+v, %v", reply, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	r := setup(t)
	svc := r.service(time.Second, time.Minute)
	for _, tc := range []struct {
		id    string
		url   int64
		want  error
		label string
	}{
		{"", r.urlID, recrawl.ErrInvalid, "empty id"},
		{string(make([]byte, 201)), r.urlID, recrawl.ErrInvalid, "long id"},
		{"x", 0, recrawl.ErrInvalid, "zero url"},
		{"y", r.urlID + 1000, store.ErrNotFound, "unknown url"},
	} {
		if _, err := svc.Recrawl(t.Context(), tc.id, tc.url); !errors.Is(err, tc.want) {
			t.Errorf("%s: Recrawl = %v, want %v", tc.label, err, tc.want)
		}
	}
	// A request id is bound to its URL.
	other, err := r.db.CreateTarget(t.Context(), target.Spec{Name: "o", SeedURL: "http://other.test/",
		Scope: "host", MaxPages: 1, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var otherURL int64
	r.query(`SELECT id FROM urls WHERE target_id = $1`, []any{other.ID}, &otherURL)
	_, _ = svc.Recrawl(t.Context(), "bound", r.urlID) // pending: no crawler
	if _, err := svc.Recrawl(t.Context(), "bound", otherURL); !errors.Is(err, store.ErrRecrawlConflict) {
		t.Fatalf("reused id for another url = %v, want ErrRecrawlConflict", err)
	}
}
