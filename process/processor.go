package process

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/internal/failpoint"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/sanitize"
	"github.com/trawlhq/trawl/store"
)

// Store is what the processor needs from the database.
type Store interface {
	ApplyResults(ctx context.Context, results []store.Result, pol store.Policy) (store.Applied, error)
}

// Processor persists fetch results in batches: one transaction per batch, acks after commit.
type Processor struct {
	Store     Store
	Policy    store.Policy
	BatchSize int
	BatchWait time.Duration
	Log       *slog.Logger
	// OnApplied is called after each committed batch (the scheduler uses it to wake up).
	OnApplied func(store.Applied)
	// Robots stores robots.txt results (see robots.go).
	Robots RobotsStore
	// Sitemaps stores sitemap results (see sitemap.go).
	Sitemaps SitemapStore

	inFlight  atomic.Int64
	processed atomic.Int64
}

// InFlight is the number of results held and not yet acked.
func (p *Processor) InFlight() int64 { return p.inFlight.Load() }

// Processed is the number of results acked so far.
func (p *Processor) Processed() int64 { return p.processed.Load() }

type item struct {
	d   amqp.Delivery
	res store.Result
}

// Serve batches deliveries until the stream closes. Batches are applied under workCtx, which
// outlives the consumer by the shutdown timeout, so a batch in hand is committed and acked.
//
// Decoding and committing overlap: one goroutine applies batches, one at a time and in order,
// while this one decodes the next. A batch is handed over when it is full, or when BatchWait
// has passed since its first result and the applier is free; while the applier is busy the
// batch keeps growing up to BatchSize. So a quiet crawl gets small batches soon, and a busy one
// gets full batches, which cost the database less per result. At most two batches are held
// (the one committing and the one filling): the consumer's prefetch must allow for that.
func (p *Processor) Serve(workCtx context.Context, deliveries pipeline.Deliveries) {
	ready := make(chan []item)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for b := range ready {
			p.apply(workCtx, b)
		}
	}()
	batch := make([]item, 0, p.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	due := false // BatchWait has passed since the batch's first result
	for deliveries != nil || len(batch) > 0 {
		var handOver chan<- []item
		if len(batch) > 0 && (due || len(batch) >= p.BatchSize || deliveries == nil) {
			handOver = ready
		}
		in := deliveries
		if len(batch) >= p.BatchSize {
			in = nil // full: wait for the applier
		}
		select {
		case handOver <- batch:
			timer.Stop()
			batch, due = make([]item, 0, p.BatchSize), false
		case <-timer.C:
			due = true
		case d, ok := <-in:
			if !ok {
				deliveries = nil // stream closed: hand over what is held, then stop
				continue
			}
			it, good := p.decode(workCtx, d)
			if !good {
				continue
			}
			if len(batch) == 0 {
				timer.Reset(p.BatchWait)
			}
			batch = append(batch, it)
			p.inFlight.Add(1)
		}
	}
	timer.Stop()
	close(ready)
	<-applied
}

func (p *Processor) decode(ctx context.Context, d amqp.Delivery) (item, bool) {
	var fr pipeline.FetchResult
	if err := pipeline.Decode(d.Body, pipeline.TypeFetchResult, &fr); err != nil {
		p.Log.Error("poison fetch result dead-lettered", "err", err, "bytes", len(d.Body), "message_id", d.MessageId)
		metrics.Poison.WithLabelValues(pipeline.TypeFetchResult).Inc()
		_ = d.Reject(false)
		return item{}, false
	}
	switch fr.Kind {
	case pipeline.KindRobots:
		p.applyRobots(ctx, d, &fr)
		return item{}, false
	case pipeline.KindSitemap:
		p.applySitemap(ctx, d, &fr)
		return item{}, false
	}
	return item{d: d, res: toResult(&fr)}, true
}

// toResult converts a message into the store's shape, cleaning every string on the way in: the
// text comes from the network and Postgres rejects NUL bytes and invalid UTF-8.
func toResult(fr *pipeline.FetchResult) store.Result {
	links := make([]string, 0, len(fr.Links))
	for _, l := range fr.Links {
		links = append(links, sanitize.Text(l))
	}
	return store.Result{
		URLID: fr.URLID, TargetID: fr.TargetID,
		URL: sanitize.Text(fr.URL), FinalURL: sanitize.Text(fr.FinalURL),
		Status: fr.Status, ContentType: sanitize.Clip(fr.ContentType, pipeline.MaxContentTypeBytes),
		Title: sanitize.Text(fr.Title), Text: sanitize.Text(fr.Text), Links: links,
		ETag: sanitize.Text(fr.ETag), LastModified: sanitize.Text(fr.LastModified),
		ContentHash: sanitize.Text(fr.ContentHash), Size: fr.Size, Truncated: fr.Truncated,
		DurationMS: fr.DurationMS, StartedAt: fr.StartedAt,
		Error: sanitize.Text(fr.Error), ErrorClass: sanitize.Text(fr.ErrorClass), Permanent: fr.Permanent,
		RetryAfter: time.Duration(fr.RetryAfterS) * time.Second,
	}
}

// apply commits a batch and acks it. A database that is down or restarting is waited out with
// backoff while the deliveries stay unacked, so an outage dead-letters nothing. A batch that
// fails on its data is split, so one bad result cannot hold back the others; a result that
// fails alone is nacked and dead-lettered by the broker after the delivery limit.
func (p *Processor) apply(ctx context.Context, batch []item) {
	defer p.inFlight.Add(-int64(len(batch)))
	results := make([]store.Result, len(batch))
	for i := range batch {
		results[i] = batch[i].res
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		applied, err := p.Store.ApplyResults(ctx, results, p.Policy)
		if err == nil {
			metrics.ObserveBatch(applied.Applied, applied.Duplicates, applied.Discovered, time.Since(start))
			failpoint.Inject(failpoint.ProcessorAfterCommit)
			p.ack(ctx, batch)
			if p.OnApplied != nil {
				p.OnApplied(applied)
			}
			return
		}
		if ctx.Err() != nil {
			p.Log.Warn("shutdown before commit; results return to the queue", "results", len(batch))
			return // unacked deliveries are requeued when the channel closes
		}
		if store.Transient(err) {
			metrics.PersistBatchErrors.WithLabelValues("transient").Inc()
			delay := backoff.Delay(attempt, 100*time.Millisecond, 5*time.Second)
			p.Log.Warn("database unavailable; retrying batch", "err", err, "attempt", attempt+1, "retry_in", delay.String())
			if !backoff.Sleep(ctx, delay) {
				return
			}
			continue
		}
		if len(batch) == 1 {
			p.Log.Error("result cannot be persisted; returned to queue", "err", err, "url", batch[0].res.URL,
				"message_id", batch[0].d.MessageId)
			_ = batch[0].d.Nack(false, true)
			return
		}
		metrics.PersistBatchErrors.WithLabelValues("data").Inc()
		half := len(batch) / 2
		p.inFlight.Add(int64(len(batch))) // the halves account for themselves
		p.apply(ctx, batch[:half])
		p.apply(ctx, batch[half:])
		return
	}
}

// ack acks a committed batch. While the work context is live, one ack with "multiple" per
// channel, on the batch's highest delivery tag, settles the whole batch: every earlier delivery
// on the channel is already settled (earlier batches are acked in order, and poison, robots and
// sitemap results are settled by the decoding loop before it reads the next delivery), and the
// broker does one settlement instead of one per result. After a hard stop a robots or sitemap
// result may be left unsettled on purpose (it returns to the queue), so each delivery is acked
// on its own then.
func (p *Processor) ack(ctx context.Context, batch []item) {
	if ctx.Err() != nil {
		for _, it := range batch {
			p.ackOne(it.d, false)
		}
	} else {
		last := map[amqp.Acknowledger]amqp.Delivery{}
		for _, it := range batch {
			if l, ok := last[it.d.Acknowledger]; !ok || it.d.DeliveryTag > l.DeliveryTag {
				last[it.d.Acknowledger] = it.d
			}
		}
		for _, d := range last {
			p.ackOne(d, true)
		}
	}
	p.processed.Add(int64(len(batch)))
}

func (p *Processor) ackOne(d amqp.Delivery, multiple bool) {
	if err := d.Ack(multiple); err != nil && !errors.Is(err, amqp.ErrClosed) {
		p.Log.Warn("ack failed; results will be redelivered and applied idempotently", "err", err)
	}
}
