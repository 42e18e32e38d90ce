package crawl

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/internal/failpoint"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
)

// Publisher is what the re-crawl server needs from the broker.
type Publisher interface {
	Publish(ctx context.Context, exchange, key string, msgs ...pipeline.Message) error
}

// ResultPublisher is what the worker needs from the broker: a publish whose confirm it can wait
// for later.
type ResultPublisher interface {
	PublishAsync(ctx context.Context, exchange, key string, msg pipeline.Message) (wait func(context.Context) error, err error)
}

// Worker turns crawl jobs into fetch results: decode, fetch, publish the result, and only once
// the broker has confirmed the result, ack the job.
//
// Neither publishing nor waiting for confirms holds a fetch slot. A fetcher puts its encoded
// result in an outbox; a publishing goroutine takes results from it in bursts (the first one,
// then whatever else arrives within Linger) and publishes them back to back; a settling
// goroutine acks jobs (or returns them to the queue) in order as their results are confirmed.
// At most Concurrency results wait in the outbox and Concurrency wait for confirms, so a
// crawler holds up to 3 × Concurrency jobs: its consumer prefetch must allow that.
type Worker struct {
	Fetcher     *Fetcher
	Pub         ResultPublisher
	Topology    pipeline.Topology
	Concurrency int
	ID          string
	Log         *slog.Logger
	// Linger is how long a finished result may wait for others to be published with it (zero:
	// each at once). The broker spends several times less CPU on messages that arrive back to
	// back than on the same messages spread out (docs/ARCHITECTURE.md, 26).
	Linger time.Duration

	inFlight  atomic.Int64
	processed atomic.Int64
}

// InFlight is the number of jobs being fetched now (not counting those whose results wait to be
// published or confirmed).
func (w *Worker) InFlight() int64 { return w.inFlight.Load() }

// Processed is the number of jobs finished (acked) so far.
func (w *Worker) Processed() int64 { return w.processed.Load() }

// Serve works deliveries with Concurrency goroutines until the stream closes. Jobs already
// started finish under workCtx; when stop is closed, jobs not yet started are returned to the
// queue instead of being fetched.
func (w *Worker) Serve(workCtx context.Context, stop <-chan struct{}, deliveries pipeline.Deliveries) {
	outbox := make(chan outgoing, max(w.Concurrency, 1))
	confirms := make(chan confirmation, max(w.Concurrency, 1))
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		for c := range confirms {
			w.settle(workCtx, c)
		}
	}()
	go func() {
		defer close(confirms)
		w.publish(workCtx, outbox, confirms)
	}()
	jobs := newAcker(w.Concurrency)
	serve(w.Concurrency, stop, deliveries, func(d amqp.Delivery) {
		if o, ok := w.handle(workCtx, d.Body, jobs.job(d)); ok {
			outbox <- o
		}
	}, func(d amqp.Delivery) { _ = jobs.job(d).requeue() })
	close(outbox)
	<-settled // every result is confirmed (job acked) or failed (job nacked) before return
}

// outgoing is a job whose result is encoded and waits to be published.
type outgoing struct {
	msg pipeline.Message
	job jobDelivery
	url string
}

// confirmation is a job whose result was sent: its ack waits for the result's confirm.
type confirmation struct {
	wait func(context.Context) error
	job  jobDelivery
	url  string
}

// publish sends the outbox's results in bursts until it is closed: it takes one result, gathers
// what else arrives within Linger (up to Concurrency results), and publishes them back to back.
func (w *Worker) publish(ctx context.Context, outbox <-chan outgoing, confirms chan<- confirmation) {
	burst := make([]outgoing, 0, max(w.Concurrency, 1))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for first := range outbox {
		burst = append(burst[:0], first)
		if w.Linger > 0 {
			timer.Reset(w.Linger)
		gather:
			for len(burst) < cap(burst) {
				select {
				case o, ok := <-outbox:
					if !ok {
						break gather
					}
					burst = append(burst, o)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
		for _, o := range burst {
			wait, err := w.Pub.PublishAsync(ctx, w.Topology.PagesExchange(), pipeline.KeyPage, o.msg)
			if err != nil {
				w.returnJob(err, o.url, o.job)
				continue
			}
			confirms <- confirmation{wait: wait, job: o.job, url: o.url}
		}
	}
}

// serve works deliveries with concurrency goroutines until the stream closes. Once stop is
// closed, deliveries not yet started go back to the queue (nack with requeue) instead of being
// handled; handling already under way finishes.
func serve(concurrency int, stop <-chan struct{}, deliveries pipeline.Deliveries, handle, requeue func(amqp.Delivery)) {
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Go(func() {
			for d := range deliveries {
				select {
				case <-stop:
					requeue(d)
					continue
				default:
				}
				handle(d)
			}
		})
	}
	wg.Wait()
}

// handle fetches one job and encodes its result. It returns the result to publish; otherwise
// the job is already settled (rejected).
func (w *Worker) handle(ctx context.Context, body []byte, jd jobDelivery) (outgoing, bool) {
	w.inFlight.Add(1)
	defer w.inFlight.Add(-1)
	var job pipeline.CrawlJob
	if err := pipeline.Decode(body, pipeline.TypeCrawlJob, &job); err != nil {
		w.Log.Error("poison crawl job dead-lettered", "err", err, "bytes", len(body))
		metrics.Poison.WithLabelValues(pipeline.TypeCrawlJob).Inc()
		_ = jd.reject()
		return outgoing{}, false
	}
	var res pipeline.FetchResult
	switch job.Kind {
	case pipeline.KindRobots:
		res = w.Fetcher.FetchRobotsJob(ctx, job, w.ID)
	case pipeline.KindSitemap:
		res = w.Fetcher.FetchSitemapJob(ctx, job, w.ID)
	default:
		res = w.Fetcher.Fetch(job, w.ID)
	}
	metrics.ObserveFetch(res.Status, res.Error != "", res.ErrorClass, time.Duration(res.DurationMS)*time.Millisecond, res.Size)
	msgBody, err := pipeline.EncodeFetchResult(res)
	if err != nil {
		w.Log.Error("encode fetch result", "err", err, "url", job.URL)
		_ = jd.reject()
		return outgoing{}, false
	}
	w.Log.Debug("fetched", "url", job.URL, "status", res.Status, "err", res.Error, "duration_ms", res.DurationMS)
	return outgoing{msg: pipeline.Message{ID: res.ID, Type: pipeline.TypeFetchResult, Body: msgBody},
		job: jd, url: job.URL}, true
}

// settle acks a job once its result is confirmed, or returns it to the queue.
func (w *Worker) settle(ctx context.Context, c confirmation) {
	if err := c.wait(ctx); err != nil {
		w.returnJob(err, c.url, c.job)
		return
	}
	failpoint.Inject(failpoint.CrawlerAfterConfirm)
	if err := c.job.ack(); err != nil {
		w.Log.Warn("ack failed; the job will be redelivered", "err", err, "url", c.url)
		return
	}
	w.processed.Add(1)
}

// returnJob puts back a job whose result was not confirmed: it is fetched again. If the channel
// is gone the nack fails too, and the broker requeues the job on its own.
func (w *Worker) returnJob(err error, url string, jd jobDelivery) {
	w.Log.Warn("fetch result not confirmed; job returned to queue", "err", err, "url", url)
	if nerr := jd.requeue(); nerr != nil && !errors.Is(nerr, context.Canceled) {
		w.Log.Debug("nack failed", "err", nerr)
	}
}
