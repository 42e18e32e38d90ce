package crawl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
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

func (fx *brokerFixture) publishJob(t *testing.T, u string) message.CrawlJob {
	t.Helper()
	j := testJob(u)
	b, err := message.Encode(j)
	if err != nil {
		t.Fatal(err)
	}
	fx.publishRaw(t, j.ID, b)
	return j
}

func (fx *brokerFixture) publishRaw(t *testing.T, id string, body []byte) {
	t.Helper()
	if err := fx.pub.Publish(t.Context(), fx.topo.CrawlExchange(), pipeline.KeyJob, message.Encoded{ID: id, Type: message.TypeCrawlJob, Body: body}); err != nil {
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
	jobs := map[string]message.CrawlJob{}
	for _, p := range []string{"/1", "/2", "/3"} {
		j := fx.publishJob(t, srv.URL+p)
		jobs[j.URL] = j
	}
	var titles []string
	for range jobs {
		d := testenv.Get(t, fx.raw, fx.topo.PagesQueue(), true)
		var res message.FetchResult
		if err := message.Decode(d.Body, message.TypeFetchResult, &res); err != nil {
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
	var back message.CrawlJob
	if err := message.Decode(dl.Body, message.TypeCrawlJob, &back); err != nil || back.ID != job.ID {
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
	wrongType, err := message.Encode(message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), URL: srv.URL + "/wrong-type"})
	if err != nil {
		t.Fatal(err)
	}
	futureJob := testJob(srv.URL + "/future")
	futureJob.V = message.Version + 1
	future, err := message.Encode(futureJob)
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
	var res message.FetchResult
	if err := message.Decode(d.Body, message.TypeFetchResult, &res); err != nil || res.URL != srv.URL+"/good" {
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

func (h *heldConfirms) PublishAsync(ctx context.Context, exchange, key string, msg message.Encoded) (func(context.Context) error, error) {
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

func (fx *brokerFixture) publishJobs(t *testing.T, jobs ...message.CrawlJob) {
	t.Helper()
	msgs, err := message.JobMessages(jobs, len(jobs))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Type != message.TypeCrawlJobs {
		t.Fatalf("JobMessages made %d messages, want one of type %s", len(msgs), message.TypeCrawlJobs)
	}
	if err := fx.pub.Publish(t.Context(), fx.topo.CrawlExchange(), pipeline.KeyJob, msgs...); err != nil {
		t.Fatalf("publish jobs: %v", err)
	}
}

// drainResults takes n results from the pages queue and returns their URLs, sorted.
func (fx *brokerFixture) drainResults(t *testing.T, n int) []string {
	t.Helper()
	var urls []string
	for range n {
		d := testenv.Get(t, fx.raw, fx.topo.PagesQueue(), true)
		var res message.FetchResult
		if err := message.Decode(d.Body, message.TypeFetchResult, &res); err != nil {
			t.Fatalf("decode result: %v", err)
		}
		urls = append(urls, res.URL)
	}
	slices.Sort(urls)
	return urls
}

// TestWorkerFetchesEveryJobOfAMessage sends one message of five jobs: each is fetched once and
// published as its own result, and the message is acked once all five are confirmed.
func TestWorkerFetchesEveryJobOfAMessage(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	fx := newBrokerFixture(t, nil)
	var jobs []message.CrawlJob
	var want []string
	for _, p := range []string{"/a", "/b", "/c", "/d", "/e"} {
		jobs = append(jobs, testJob(srv.URL+p))
		want = append(want, srv.URL+p)
	}
	fx.publishJobs(t, jobs...)
	if got := fx.drainResults(t, len(jobs)); !slices.Equal(got, want) {
		t.Errorf("results for %q, want %q", got, want)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "five jobs done", func() bool {
		return fx.worker.Processed() == 5
	})
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()); n != 0 {
		t.Errorf("crawl queue holds %d messages after the jobs were done", n)
	}
	if paths := srv.Paths(); len(paths) != 5 {
		t.Errorf("server saw %q, want each job fetched once", paths)
	}
	if s := fx.worker.Splits(); s != 0 {
		t.Errorf("Splits = %d, want 0", s)
	}
}

// TestWorkerSplitsRedeliveredMessage returns a message of three jobs to the queue unsettled, as
// a crawler that died holding it would. The worker that gets it again republishes each job on
// its own before fetching anything, so that a job that kills crawlers is retried and
// dead-lettered alone; every job is still fetched once.
func TestWorkerSplitsRedeliveredMessage(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	want := []string{srv.URL + "/x", srv.URL + "/y", srv.URL + "/z"}
	fx := newBrokerFixture(t, func(t *testing.T, fx *brokerFixture) {
		fx.publishJobs(t, testJob(want[0]), testJob(want[1]), testJob(want[2]))
		d := testenv.Get(t, fx.raw, fx.topo.CrawlQueue(), false)
		if err := d.Nack(false, true); err != nil {
			t.Fatal(err)
		}
	})
	if got := fx.drainResults(t, 3); !slices.Equal(got, want) {
		t.Errorf("results for %q, want %q", got, want)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "three jobs done", func() bool {
		return fx.worker.Processed() == 3
	})
	if s := fx.worker.Splits(); s != 1 {
		t.Errorf("Splits = %d, want 1", s)
	}
	if paths := srv.Paths(); len(paths) != 3 {
		t.Errorf("server saw %q, want each job fetched once", paths)
	}
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()); n != 0 {
		t.Errorf("crawl queue holds %d messages", n)
	}
}

// failingResults refuses to publish the results of URLs ending in /fail, as a broker that
// keeps refusing one message would.
type failingResults struct{ ResultPublisher }

func (f failingResults) PublishAsync(ctx context.Context, exchange, key string, msg message.Encoded) (func(context.Context) error, error) {
	var res message.FetchResult
	if err := message.Decode(msg.Body, message.TypeFetchResult, &res); err == nil && strings.HasSuffix(res.URL, "/fail") {
		return nil, errors.New("refused for the test")
	}
	return f.ResultPublisher.PublishAsync(ctx, exchange, key, msg)
}

// TestWorkerIsolatesAFailingJobOfAMessage sends a message of three jobs, one of whose results
// can never be published. The two good results are published once and their jobs done; the
// failing job alone goes back to the queue in a message of its own, where it is retried until
// the delivery limit dead-letters it, without its neighbours.
func TestWorkerIsolatesAFailingJobOfAMessage(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	fx := newBrokerFixture(t, func(t *testing.T, fx *brokerFixture) {
		fx.worker.Pub = failingResults{fx.worker.Pub}
	})
	fx.publishJobs(t, testJob(srv.URL+"/good1"), testJob(srv.URL+"/fail"), testJob(srv.URL+"/good2"))

	dl := testenv.Get(t, fx.raw, fx.topo.DeadLetterQueue(), true)
	if r, _ := testenv.XDeath(t, dl); r != "delivery_limit" {
		t.Errorf("dead-letter reason %q, want delivery_limit", r)
	}
	var back message.CrawlJob
	if err := message.Decode(dl.Body, message.TypeCrawlJob, &back); err != nil || back.URL != srv.URL+"/fail" {
		t.Errorf("dead letter is not the failing job alone: %v %+v", err, back)
	}
	if got, want := fx.drainResults(t, 2), []string{srv.URL + "/good1", srv.URL + "/good2"}; !slices.Equal(got, want) {
		t.Errorf("results for %q, want %q", got, want)
	}
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); n != 0 {
		t.Errorf("pages queue holds %d more results: a good job was fetched twice", n)
	}
	if p := fx.worker.Processed(); p != 2 {
		t.Errorf("Processed = %d, want 2", p)
	}
	good := 0
	for _, p := range srv.Paths() {
		if p != "/fail" {
			good++
		}
	}
	if good != 2 {
		t.Errorf("good pages fetched %d times, want 2: %q", good, srv.Paths())
	}
}

// TestWorkerPacksResults lets eight results finish within the linger: they are published as
// messages of several results, never more than ResultsPerMessage each, every result once.
func TestWorkerPacksResults(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	fx := newBrokerFixture(t, func(t *testing.T, fx *brokerFixture) {
		fx.worker.Concurrency, fx.worker.Linger, fx.worker.ResultsPerMessage = 8, 500*time.Millisecond, 3
	})
	var jobs []message.CrawlJob
	var want []string
	for i := range 8 {
		jobs = append(jobs, testJob(fmt.Sprintf("%s/%d", srv.URL, i)))
		want = append(want, jobs[i].URL)
	}
	slices.Sort(want)
	fx.publishJobs(t, jobs...)
	var got []string
	packed := 0
	for len(got) < len(jobs) {
		d := testenv.Get(t, fx.raw, fx.topo.PagesQueue(), true)
		parts := [][]byte{d.Body}
		if message.IsResults(d.Body) {
			var err error
			if parts, err = message.UnpackResults(d.Body); err != nil {
				t.Fatal(err)
			}
			if d.Type != message.TypeFetchResults || d.ContentType != message.ContentTypeResults {
				t.Errorf("message of %d results has type %q, content type %q", len(parts), d.Type, d.ContentType)
			}
			packed++
		}
		if len(parts) > 3 {
			t.Errorf("a message holds %d results, want at most 3", len(parts))
		}
		for _, part := range parts {
			var res message.FetchResult
			if err := message.Decode(part, message.TypeFetchResult, &res); err != nil {
				t.Fatalf("decode result: %v", err)
			}
			got = append(got, res.URL)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("results for %q, want %q", got, want)
	}
	if packed == 0 {
		t.Error("no message held several results")
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "eight jobs done", func() bool {
		return fx.worker.Processed() == 8
	})
}

// TestWorkerSkipsJobsWhoseLeaseRanOut sends one message of three jobs, one of them past its
// URL's lease: by then the scheduler has queued the URL again and dispatches it anew, so the
// worker acks that job without fetching it, and fetches the other two (one within its lease,
// one without a lease, as robots.txt jobs and older schedulers send them).
func TestWorkerSkipsJobsWhoseLeaseRanOut(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	fx := newBrokerFixture(t, nil)
	before := testutil.ToFloat64(metrics.JobsExpired)
	fresh, stale, unleased := testJob(srv.URL+"/fresh"), testJob(srv.URL+"/stale"), testJob(srv.URL+"/unleased")
	fresh.LeaseUntil = time.Now().Add(time.Minute)
	stale.LeaseUntil = time.Now().Add(-time.Second)
	fx.publishJobs(t, fresh, stale, unleased)
	if got, want := fx.drainResults(t, 2), []string{srv.URL + "/fresh", srv.URL + "/unleased"}; !slices.Equal(got, want) {
		t.Errorf("results for %q, want %q", got, want)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "the message acked", func() bool {
		return testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()) == 0 && fx.worker.Processed() == 2
	})
	if paths := srv.Paths(); slices.Contains(paths, "/stale") || len(paths) != 2 {
		t.Errorf("server saw %q, want /fresh and /unleased only", paths)
	}
	if n := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); n != 0 {
		t.Errorf("pages queue holds %d more results, want none for the expired job", n)
	}
	if got := testutil.ToFloat64(metrics.JobsExpired) - before; got < 1 {
		t.Errorf("trawl_crawler_jobs_expired_total rose by %v, want 1", got)
	}
	if s := fx.worker.Splits(); s != 0 {
		t.Errorf("Splits = %d, want 0: an expired job is settled with the others", s)
	}
}
