package process

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/store"
)

// IndexStore is what the search indexer needs from the database.
type IndexStore interface {
	IndexPages(ctx context.Context, limit int) (claimed, indexed int, err error)
	IndexPagesPaced(ctx context.Context, limit int, rest float64) (claimed, indexed int, wait time.Duration, err error)
}

// Indexer builds the search vectors of stored pages in the background (store.IndexPages), so
// that persisting a page does not pay for its full-text index. Every processor runs one; they
// share the queue through SKIP LOCKED. Each vector is built in its target's search language
// (docs/adr/0056-ranked-search-per-target-language.md), which costs more than 'simple' when it
// stems (docs/PERFORMANCE.md).
//
// Persisting results comes first: while Busy reports that results are being persisted, indexing
// is paced in the database (store.IndexPagesPaced) so that the indexers of all processors
// together work at most BusyShare of one connection's time; once the crawl is quiet each
// processor indexes flat out, with Workers transactions at once. Search therefore lags behind
// a heavy crawl and catches up after it; the dashboard shows the backlog.
type Indexer struct {
	Store IndexStore
	// Batch is the number of pages indexed per transaction.
	Batch int
	// Busy reports whether results are being persisted now; nil means never.
	Busy func() bool
	// BusyShare in (0, 1] is the share of time the indexer may work while Busy.
	BusyShare float64
	// Idle is how long the indexer waits for work when the queue is empty (Wake cuts it short).
	Idle time.Duration
	// Workers is the number of transactions indexing at once while the processor is quiet (at
	// least 1). While it is Busy only one works, within BusyShare.
	Workers int
	Log     *slog.Logger

	wake chan struct{}
}

// NewIndexer returns an indexer with its wake-up channel.
func NewIndexer(s IndexStore, batch int, busyShare float64, busy func() bool, log *slog.Logger) *Indexer {
	return &Indexer{Store: s, Batch: batch, BusyShare: busyShare, Busy: busy, Idle: 2 * time.Second, Workers: 1, Log: log,
		wake: make(chan struct{}, 1)}
}

// Wake tells the indexer that pages were stored.
func (ix *Indexer) Wake() {
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// Run indexes until ctx ends. A failed transaction leaves its pages queued and is retried with
// backoff; an indexer stopped in the middle of a batch loses nothing.
func (ix *Indexer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 1; i < ix.Workers; i++ {
		wg.Go(func() { ix.loop(ctx, false) })
	}
	ix.loop(ctx, true)
	wg.Wait()
}

// loop is one indexing worker. The main one indexes paced while the processor is busy and
// answers Wake; the extra ones work only while it is quiet.
func (ix *Indexer) loop(ctx context.Context, main bool) {
	var wake <-chan struct{}
	if main {
		wake = ix.wake
	}
	failures := 0
	for ctx.Err() == nil {
		busy := ix.Busy != nil && ix.Busy()
		var claimed, indexed int
		var wait time.Duration
		var err error
		switch {
		case busy && !main:
			backoff.Sleep(ctx, 250*time.Millisecond)
			continue
		case busy && ix.BusyShare < 1:
			// Paced in the database, so that all processors' indexers together keep to the share.
			claimed, indexed, wait, err = ix.Store.IndexPagesPaced(ctx, ix.Batch, 1/ix.BusyShare-1)
		default:
			claimed, indexed, err = ix.Store.IndexPages(ctx, ix.Batch)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			metrics.SearchIndexErrors.Inc()
			delay := backoff.Delay(failures, 200*time.Millisecond, 10*time.Second)
			failures++
			level := slog.LevelWarn
			if !store.Transient(err) {
				level = slog.LevelError
			}
			ix.Log.Log(ctx, level, "search indexing failed; pages stay queued", "err", err, "retry_in", delay.String())
			backoff.Sleep(ctx, delay)
			continue
		}
		failures = 0
		metrics.SearchIndexed.Add(float64(indexed))
		switch {
		case wait > 0:
			backoff.Sleep(ctx, wait)
		case claimed == 0:
			backoff.Wait(ctx, ix.Idle, wake)
		}
	}
}
