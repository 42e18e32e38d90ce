package process

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/internal/failpoint"
	"github.com/trawlhq/trawl/message"
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
	// Pub and Topology republish the results of a message of several results one per message
	// when they must be settled apart (split).
	Pub      Publisher
	Topology pipeline.Topology
	// IgnoreNoFollow follows the links of pages whose robots meta tags or X-Robots-Tag say
	// nofollow, as it does with TRAWL_IGNORE_ROBOTS.
	IgnoreNoFollow bool

	inFlight  atomic.Int64
	processed atomic.Int64
	splits    atomic.Int64
}

// InFlight is the number of results held and not yet acked.
func (p *Processor) InFlight() int64 { return p.inFlight.Load() }

// Processed is the number of results acked so far.
func (p *Processor) Processed() int64 { return p.processed.Load() }

// Splits is the number of messages of several results this processor republished one per
// message.
func (p *Processor) Splits() int64 { return p.splits.Load() }

// item is one delivery and its results: one, or several (message.PackResults).
type item struct {
	d     pipeline.Delivery
	res   []store.Result
	parts [][]byte // the encoded results of a delivery of several, to split it
}

// countResults counts the results of items.
func countResults(items []item) int {
	n := 0
	for _, it := range items {
		n += len(it.res)
	}
	return n
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
	var batch []item
	held := 0 // results in batch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	due := false // BatchWait has passed since the batch's first result
	for deliveries != nil || len(batch) > 0 {
		var handOver chan<- []item
		if len(batch) > 0 && (due || held >= p.BatchSize || deliveries == nil) {
			handOver = ready
		}
		in := deliveries
		if held >= p.BatchSize {
			in = nil // full: wait for the applier
		}
		select {
		case handOver <- batch:
			timer.Stop()
			batch, held, due = nil, 0, false
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
			held += len(it.res)
			p.inFlight.Add(int64(len(it.res)))
		}
	}
	timer.Stop()
	close(ready)
	<-applied
}

// decode turns a delivery into an item for the batch. Deliveries it settles itself (poison,
// robots and sitemap results, messages it splits) give no item. A message of several results
// that was delivered before (a processor may have died on it), or holds a result that is not a
// page's or cannot be decoded, is split, so that each result is settled on its own.
func (p *Processor) decode(ctx context.Context, d pipeline.Delivery) (item, bool) {
	frs, parts, err := message.DecodeFetchResults(d.Body)
	switch {
	case err != nil && parts == nil:
		p.poison(d, err)
		return item{}, false
	case parts != nil && d.Redelivered:
		p.split(ctx, d, parts, "redelivered")
		return item{}, false
	case parts != nil && (err != nil || !allPages(frs)):
		p.split(ctx, d, parts, "a result is undecodable or not a page's")
		return item{}, false
	case parts == nil && frs[0].Kind == message.KindRobots:
		p.applyRobots(ctx, d, &frs[0])
		return item{}, false
	case parts == nil && frs[0].Kind == message.KindSitemap:
		p.applySitemap(ctx, d, &frs[0])
		return item{}, false
	}
	res := make([]store.Result, len(frs))
	for i := range frs {
		res[i] = p.result(&frs[i])
	}
	return item{d: d, res: res, parts: parts}, true
}

func allPages(frs []message.FetchResult) bool {
	for _, fr := range frs {
		if !message.IsPageKind(fr.Kind) {
			return false
		}
	}
	return true
}

func (p *Processor) poison(d pipeline.Delivery, err error) {
	p.Log.Error("poison fetch result dead-lettered", "err", err, "bytes", len(d.Body), "message_id", d.MessageID)
	metrics.Poison.WithLabelValues(message.TypeFetchResult).Inc()
	_ = d.Reject(false)
}

// split republishes a delivery's results one per message, then acks it; if the publish fails,
// the delivery goes back to the queue whole (pipeline.Split).
func (p *Processor) split(ctx context.Context, d pipeline.Delivery, parts [][]byte, why string) {
	err := pipeline.Split(ctx, p.Pub, d, p.Topology.PagesExchange(), pipeline.KeyPage, message.ResultMessages(parts))
	if errors.Is(err, pipeline.ErrNotSplit) {
		p.Log.Warn("could not split a message of several results; returned to queue", "err", err, "why", why, "results", len(parts))
		return
	}
	p.Log.Info("message of several results split into one message per result", "why", why, "results", len(parts))
	metrics.Splits.WithLabelValues(message.TypeFetchResults).Inc()
	p.splits.Add(1)
	p.ackFailed(err)
}

// result converts a page's fetch result into the store's shape, as this processor applies it.
func (p *Processor) result(fr *message.FetchResult) store.Result {
	r := toResult(fr)
	r.NoFollow = r.NoFollow && !p.IgnoreNoFollow
	return r
}

// toResult converts a message into the store's shape, cleaning every string on the way in: the
// text comes from the network and Postgres rejects NUL bytes and invalid UTF-8.
func toResult(fr *message.FetchResult) store.Result {
	links := make([]string, 0, len(fr.Links))
	for _, l := range fr.Links {
		links = append(links, sanitize.Text(l))
	}
	return store.Result{
		URLID: fr.URLID, TargetID: fr.TargetID,
		URL: sanitize.Text(fr.URL), FinalURL: sanitize.Text(fr.FinalURL),
		Status: fr.Status, ContentType: sanitize.Clip(fr.ContentType, message.MaxContentTypeBytes),
		Title: sanitize.Text(fr.Title), Text: sanitize.Text(fr.Text), Links: links,
		ETag: sanitize.Text(fr.ETag), LastModified: sanitize.Text(fr.LastModified),
		ContentHash: sanitize.Text(fr.ContentHash), Size: fr.Size, Truncated: fr.Truncated, NoFollow: fr.NoFollow,
		DurationMS: fr.DurationMS, StartedAt: fr.StartedAt,
		Error: sanitize.Text(fr.Error), ErrorClass: sanitize.Text(fr.ErrorClass), Permanent: fr.Permanent,
		RetryAfter: time.Duration(fr.RetryAfterS) * time.Second,
	}
}

// apply commits a batch and acks it. A database that is down or restarting is waited out with
// backoff while the deliveries stay unacked, so an outage dead-letters nothing. A batch that
// fails on its data is halved, so one bad result cannot hold back the others; a delivery of
// several results that fails alone is split into one message per result; a result that fails
// alone is nacked and dead-lettered by the broker after the delivery limit.
func (p *Processor) apply(ctx context.Context, batch []item) {
	n := countResults(batch)
	defer p.inFlight.Add(-int64(n))
	results := make([]store.Result, 0, n)
	for i := range batch {
		results = append(results, batch[i].res...)
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		applied, err := p.Store.ApplyResults(ctx, results, p.Policy)
		if err == nil {
			metrics.ObserveBatch(applied.Applied, applied.Duplicates, applied.Discovered, time.Since(start))
			if applied.Dropped > 0 {
				metrics.ResultsPersisted.WithLabelValues("dropped").Add(float64(applied.Dropped))
				p.Log.Debug("results of deleted targets dropped", "results", applied.Dropped)
			}
			failpoint.Inject(failpoint.ProcessorAfterCommit)
			p.ack(ctx, batch)
			p.committed(applied)
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
		if len(batch) == 1 && len(batch[0].parts) > 1 {
			p.split(ctx, batch[0].d, batch[0].parts, "a result cannot be persisted")
			return
		}
		if len(batch) == 1 {
			p.Log.Error("result cannot be persisted; returned to queue", "err", err, "url", batch[0].res[0].URL,
				"message_id", batch[0].d.MessageID)
			_ = batch[0].d.Requeue()
			return
		}
		metrics.PersistBatchErrors.WithLabelValues("data").Inc()
		half := len(batch) / 2
		p.inFlight.Add(int64(n)) // the halves account for themselves
		p.apply(ctx, batch[:half])
		p.apply(ctx, batch[half:])
		return
	}
}

// committed reports a committed batch or result: it counts its retries and failures, logs the
// targets it finished, once each (the transaction that marks a target done commits once), and
// calls OnApplied.
func (p *Processor) committed(applied store.Applied) {
	// Counted here, once per commit, not in the Policy, which decides once per attempt of the
	// transaction (docs/adr/0050-targets-have-a-domain-package.md).
	metrics.Retries.Add(float64(applied.Retried))
	metrics.URLsFailed.Add(float64(applied.Failed))
	for _, c := range applied.FinishedCounts {
		p.Log.Info("target done", "target_id", c.ID, "urls", c.URLs, "done", c.Done, "failed", c.Failed,
			"cancelled", c.Cancelled)
	}
	if p.OnApplied != nil {
		p.OnApplied(applied)
	}
}

// ack acks a committed batch. While the work context is live, the batch's deliveries are
// reported done together (pipeline.DoneAll): every earlier delivery on the channel is already
// settled (earlier batches are acked in order, and poison, robots and sitemap results and split
// messages are settled by the decoding loop before it reads the next delivery), so the channel's
// settler acks the whole batch with one multiple-ack, and the broker does one settlement instead
// of one per result (docs/adr/0037-one-multiple-ack-per-batch.md). After a hard stop a robots or
// sitemap result may be left unsettled on purpose (it returns to the queue), so each delivery is
// acked on its own then.
func (p *Processor) ack(ctx context.Context, batch []item) {
	if ctx.Err() != nil {
		for _, it := range batch {
			p.ackFailed(it.d.Ack(false))
		}
	} else {
		ds := make([]pipeline.Delivery, len(batch))
		for i, it := range batch {
			ds[i] = it.d
		}
		p.ackFailed(pipeline.DoneAll(ds))
	}
	p.processed.Add(int64(countResults(batch)))
}

// ackFailed logs an ack's failure, unless the channel is gone (the broker redelivers then).
func (p *Processor) ackFailed(err error) {
	if err != nil && !errors.Is(err, pipeline.ErrChannelClosed) {
		p.Log.Warn("ack failed; results will be redelivered and applied idempotently", "err", err)
	}
}
