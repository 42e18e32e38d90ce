package crawl

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/pipeline"
)

// brokerFixture is a worker wired to the real broker under a per-test prefix.
type brokerFixture struct {
	topo   pipeline.Topology
	raw    *amqp.Connection
	pub    *pipeline.Publisher // the test's own, for jobs
	worker *Worker
}

// newBrokerFixture starts a worker on a fresh topology. prepare, if not nil, may change the
// worker before it starts.
func newBrokerFixture(t *testing.T, prepare func(*testing.T, *brokerFixture)) *brokerFixture {
	t.Helper()
	topo, raw := testenv.Broker(t)
	testPub := pipeline.NewPublisher(testenv.Dial(t, "test-pub"), testenv.Logger(t))
	t.Cleanup(func() { _ = testPub.Close() })
	workerPub := pipeline.NewPublisher(testenv.Dial(t, "worker-pub"), testenv.Logger(t))
	t.Cleanup(func() { _ = workerPub.Close() })
	w := &Worker{
		Fetcher: testFetcher(t, FetchConfig{}), Pub: workerPub, Topology: topo,
		Concurrency: 2, ID: "crawler-test", Log: testenv.Logger(t),
	}
	fx := &brokerFixture{topo: topo, raw: raw, pub: testPub, worker: w}
	if prepare != nil {
		prepare(t, fx)
	}
	consumeConn := testenv.Dial(t, "worker-consume")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	cons := &pipeline.Consumer{Conn: consumeConn, Queue: topo.CrawlQueue(), Prefetch: 2, Topology: topo, Log: testenv.Logger(t)}
	go func() { done <- cons.Run(ctx, func(d pipeline.Deliveries) { w.Serve(ctx, ctx.Done(), d) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	return fx
}

func (fx *brokerFixture) publishJob(t *testing.T, u string) pipeline.CrawlJob {
	t.Helper()
	j := testJob(u)
	b, err := pipeline.Encode(j)
	if err != nil {
		t.Fatal(err)
	}
	fx.publishRaw(t, j.ID, b)
	return j
}

func (fx *brokerFixture) publishRaw(t *testing.T, id string, body []byte) {
	t.Helper()
	if err := fx.pub.Publish(t.Context(), fx.topo.CrawlExchange(), pipeline.KeyJob, pipeline.Message{ID: id, Type: pipeline.TypeCrawlJob, Body: body}); err != nil {
		t.Fatalf("publish job: %v", err)
	}
}

func TestWorkerPublishesResultsAndAcks(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<title>" + r.URL.Path + "</title>"))
	})
	fx := newBrokerFixture(t, nil)
	jobs := map[string]pipeline.CrawlJob{}
	for _, p := range []string{"/1", "/2", "/3"} {
		j := fx.publishJob(t, srv.URL+p)
		jobs[j.URL] = j
	}
	var titles []string
	for range jobs {
		d := testenv.Get(t, fx.raw, fx.topo.PagesQueue(), true)
		var res pipeline.FetchResult
		if err := pipeline.Decode(d.Body, pipeline.TypeFetchResult, &res); err != nil {
			t.Fatalf("decode result: %v", err)
		}
		j, ok := jobs[res.URL]
		if !ok || res.URLID != j.URLID || res.Dispatch != j.Dispatch || res.Worker != "crawler-test" || res.Status != 200 || d.MessageId != res.ID {
			t.Fatalf("unexpected result %+v (message id %q)", res, d.MessageId)
		}
		titles = append(titles, res.Title)
	}
	slices.Sort(titles)
	if !slices.Equal(titles, []string{"/1", "/2", "/3"}) {
		t.Errorf("titles = %q", titles)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "three jobs acked", func() bool {
		return fx.worker.Processed() == 3
	})
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()); n != 0 {
		t.Errorf("crawl queue holds %d jobs after they were acked", n)
	}
}

// unroutableResults makes the worker publish its results to an exchange with no queue bound,
// so that every publish is returned by the broker instead of confirmed.
func unroutableResults(t *testing.T, fx *brokerFixture) {
	other := pipeline.Topology{Prefix: fx.topo.Prefix + "unbound.", DeliveryLimit: fx.topo.DeliveryLimit}
	ch, err := fx.raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(other.PagesExchange(), "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch, err := fx.raw.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer ch.Close()
		if err := ch.ExchangeDelete(other.PagesExchange(), false, false); err != nil {
			t.Errorf("cleanup: delete exchange: %v", err)
		}
	})
	fx.worker.Topology = other
}

// TestWorkerRequeuesUnconfirmedResult makes the result unroutable, so the broker never
// confirms it: the job must not be acked but returned, until the delivery limit dead-letters
// it. Nothing is lost and nothing reaches the pages queue.
func TestWorkerRequeuesUnconfirmedResult(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	fx := newBrokerFixture(t, unroutableResults)
	job := fx.publishJob(t, srv.URL+"/p")

	dl := testenv.Get(t, fx.raw, fx.topo.DeadLetterQueue(), true)
	if r, _ := testenv.XDeath(t, dl); r != "delivery_limit" {
		t.Errorf("dead-letter reason %q, want delivery_limit (nacked with requeue each time)", r)
	}
	var back pipeline.CrawlJob
	if err := pipeline.Decode(dl.Body, pipeline.TypeCrawlJob, &back); err != nil || back.ID != job.ID {
		t.Errorf("dead letter is not the job: %v %+v", err, back)
	}
	if n := len(srv.Paths()); n < fx.topo.DeliveryLimit {
		t.Errorf("fetched %d times, want once per delivery (at least %d)", n, fx.topo.DeliveryLimit)
	}
	if p := fx.worker.Processed(); p != 0 {
		t.Errorf("Processed = %d, want 0: no result was confirmed", p)
	}
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); n != 0 {
		t.Errorf("pages queue holds %d results", n)
	}
}

// TestWorkerRejectsPoison sends jobs that cannot be decoded: each is dead-lettered at once
// (reason "rejected"), nothing is fetched for them, and the worker goes on with good jobs.
func TestWorkerRejectsPoison(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	fx := newBrokerFixture(t, nil)
	wrongType, err := pipeline.Encode(pipeline.FetchResult{Envelope: pipeline.NewEnvelope(pipeline.TypeFetchResult), URL: srv.URL + "/wrong-type"})
	if err != nil {
		t.Fatal(err)
	}
	futureJob := testJob(srv.URL + "/future")
	futureJob.V = pipeline.Version + 1
	future, err := pipeline.Encode(futureJob)
	if err != nil {
		t.Fatal(err)
	}
	poison := map[string][]byte{
		"not json":       []byte("{not json"),
		"wrong type":     wrongType,
		"future version": future,
	}
	for id, body := range poison {
		fx.publishRaw(t, id, body)
	}
	fx.publishJob(t, srv.URL+"/good")

	got := map[string]bool{}
	for range poison {
		d := testenv.Get(t, fx.raw, fx.topo.DeadLetterQueue(), true)
		if r, _ := testenv.XDeath(t, d); r != "rejected" {
			t.Errorf("%s: dead-letter reason %q, want rejected", d.MessageId, r)
		}
		got[d.MessageId] = true
	}
	for id := range poison {
		if !got[id] {
			t.Errorf("%s was not dead-lettered", id)
		}
	}
	d := testenv.Get(t, fx.raw, fx.topo.PagesQueue(), true)
	var res pipeline.FetchResult
	if err := pipeline.Decode(d.Body, pipeline.TypeFetchResult, &res); err != nil || res.URL != srv.URL+"/good" {
		t.Fatalf("result after poison: %v %+v", err, res)
	}
	if diff := srv.Paths(); !slices.Equal(diff, []string{"/good"}) {
		t.Errorf("server saw %q, want only /good", diff)
	}
}

// heldConfirms passes results to the real publisher but holds every confirm wait until release
// is closed, as a slow broker would.
type heldConfirms struct {
	ResultPublisher
	release chan struct{}
}

func (h *heldConfirms) PublishAsync(ctx context.Context, exchange, key string, msg pipeline.Message) (func(context.Context) error, error) {
	wait, err := h.ResultPublisher.PublishAsync(ctx, exchange, key, msg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return wait(ctx)
	}, nil
}

// TestWorkerFetchesWhileConfirmsWait checks that a fetch slot is not held while its result waits
// for the broker's confirm: with one slot and confirms held, a second job is fetched anyway,
// and no job is acked until its result is confirmed.
func TestWorkerFetchesWhileConfirmsWait(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<title>ok</title>"))
	})
	held := make(chan struct{})
	fx := newBrokerFixture(t, func(t *testing.T, fx *brokerFixture) {
		fx.worker.Concurrency = 1
		fx.worker.Pub = &heldConfirms{ResultPublisher: fx.worker.Pub, release: held}
	})
	fx.publishJob(t, srv.URL+"/1")
	fx.publishJob(t, srv.URL+"/2")
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "both jobs fetched with one slot", func() bool {
		return len(srv.Paths()) == 2
	})
	if n := fx.worker.Processed(); n != 0 {
		t.Fatalf("%d jobs acked before their results were confirmed", n)
	}
	close(held)
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "both jobs acked once confirmed", func() bool {
		return fx.worker.Processed() == 2
	})
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); n != 2 {
		t.Errorf("pages queue holds %d results, want 2", n)
	}
}
