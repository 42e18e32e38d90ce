package process

import (
	"context"
	"log/slog"
	"time"

	"github.com/trawlhq/trawl/metrics"
)

// History is what the pruner needs from the database (store.Store).
type History interface {
	PruneFetches(ctx context.Context, before time.Time, limit int) (int64, error)
	PruneRates(ctx context.Context, before time.Time, limit int) (int64, error)
}

// PruneChunk is how many rows one prune statement deletes at most: each chunk is its own short
// transaction, so pruning a large backlog never holds locks or WAL for long.
const PruneChunk = 5000

// Pruner deletes fetch history and per-second rates older than their retention, on the leading
// processor only (the same election as the scheduler), every Interval. A zero retention keeps
// that table forever.
type Pruner struct {
	Store          History
	FetchRetention time.Duration
	RateRetention  time.Duration
	Interval       time.Duration
	Leader         Leader // nil: always prune (deleting the same old rows twice is harmless)
	Log            *slog.Logger
}

// Run prunes every Interval while this processor leads, until ctx ends. It looks at least
// every 10 seconds, so a processor that has just been elected prunes soon after.
func (p *Pruner) Run(ctx context.Context) {
	if p.FetchRetention <= 0 && p.RateRetention <= 0 {
		return
	}
	t := time.NewTicker(min(p.Interval, 10*time.Second))
	defer t.Stop()
	var last time.Time
	for {
		if (p.Leader == nil || p.Leader.Leading()) && time.Since(last) >= p.Interval {
			p.Prune(ctx, time.Now())
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes, chunk by chunk, every row older than its retention at now.
func (p *Pruner) Prune(ctx context.Context, now time.Time) {
	p.prune(ctx, "page_fetches", p.FetchRetention, now, p.Store.PruneFetches)
	p.prune(ctx, "fetch_rates", p.RateRetention, now, p.Store.PruneRates)
}

func (p *Pruner) prune(ctx context.Context, table string, keep time.Duration, now time.Time,
	del func(context.Context, time.Time, int) (int64, error)) {
	if keep <= 0 {
		return
	}
	before := now.Add(-keep)
	var total int64
	for ctx.Err() == nil {
		n, err := del(ctx, before, PruneChunk)
		total += n
		metrics.PrunedRows.WithLabelValues(table).Add(float64(n))
		if err != nil {
			if ctx.Err() == nil {
				p.Log.Warn("prune old rows; next round tries again", "table", table, "err", err)
			}
			break
		}
		if n < PruneChunk {
			break
		}
	}
	if total > 0 {
		p.Log.Info("pruned old rows", "table", table, "rows", total, "older_than", before)
	}
}
