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

// Publisher is what the worker needs from the broker.
type Publisher interface {
	Publish(ctx context.Context, exchange, key string, msgs ...pipeline.Message) error
}

// Worker turns crawl jobs into fetch results: decode, fetch, publish the result, and only once
// the broker has confirmed the result, ack the job.
type Worker struct {
	Fetcher     *Fetcher
	Pub         Publisher
	Topology    pipeline.Topology
	Concurrency int
	ID          string
	Log         *slog.Logger

	inFlight  atomic.Int64
	processed atomic.Int64
}

// InFlight is the number of jobs being worked on now.
func (w *Worker) InFlight() int64 { return w.inFlight.Load() }

// Processed is the number of jobs finished (acked) so far.
func (w *Worker) Processed() int64 { return w.processed.Load() }

// Serve works deliveries with Concurrency goroutines until the stream closes. Jobs already
// started finish under workCtx; when stop is closed, jobs not yet started are returned to the
// queue instead of being fetched.
func (w *Worker) Serve(workCtx context.Context, stop <-chan struct{}, deliveries pipeline.Deliveries) {
	serve(w.Concurrency, stop, deliveries, func(d amqp.Delivery) { w.handle(workCtx, d.Body, d.Ack, d.Nack, d.Reject) })
}

// serve works deliveries with concurrency goroutines until the stream closes. Once stop is
// closed, deliveries not yet started go back to the queue (nack with requeue) instead of being
// handled; handling already under way finishes.
func serve(concurrency int, stop <-chan struct{}, deliveries pipeline.Deliveries, handle func(amqp.Delivery)) {
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Go(func() {
			for d := range deliveries {
				select {
				case <-stop:
					_ = d.Nack(false, true)
					continue
				default:
				}
				handle(d)
			}
		})
	}
	wg.Wait()
}

func (w *Worker) handle(ctx context.Context, body []byte, ack func(bool) error, nack func(bool, bool) error, reject func(bool) error) {
	w.inFlight.Add(1)
	defer w.inFlight.Add(-1)
	var job pipeline.CrawlJob
	if err := pipeline.Decode(body, pipeline.TypeCrawlJob, &job); err != nil {
		w.Log.Error("poison crawl job dead-lettered", "err", err, "bytes", len(body))
		metrics.Poison.WithLabelValues(pipeline.TypeCrawlJob).Inc()
		_ = reject(false)
		return
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
	msgBody, err := pipeline.Encode(res)
	if err != nil {
		w.Log.Error("encode fetch result", "err", err, "url", job.URL)
		_ = reject(false)
		return
	}
	err = w.Pub.Publish(ctx, w.Topology.PagesExchange(), pipeline.KeyPage,
		pipeline.Message{ID: res.ID, Type: pipeline.TypeFetchResult, Body: msgBody})
	if err != nil {
		// Not confirmed: the job goes back to the queue and is fetched again. If the channel is
		// gone the nack fails too, and the broker requeues the job on its own.
		w.Log.Warn("fetch result not confirmed; job returned to queue", "err", err, "url", job.URL)
		if nerr := nack(false, true); nerr != nil && !errors.Is(nerr, context.Canceled) {
			w.Log.Debug("nack failed", "err", nerr)
		}
		return
	}
	failpoint.Inject(failpoint.CrawlerAfterConfirm)
	if err := ack(false); err != nil {
		w.Log.Warn("ack failed; the job will be redelivered", "err", err, "url", job.URL)
		return
	}
	w.processed.Add(1)
	w.Log.Debug("fetched", "url", job.URL, "status", res.Status, "err", res.Error, "duration_ms", res.DurationMS)
}
