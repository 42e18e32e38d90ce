package process

import (
	"context"
	"log/slog"
	"time"

	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/store"
)

// Purger is what the deleter needs from the database (store.Store).
type Purger interface {
	DeletingTargets(ctx context.Context) ([]int64, error)
	PurgeTarget(ctx context.Context, id int64, batch int) (store.PurgeStep, error)
}

// DefaultDeleteBatch is how many URLs one purge transaction deletes by default
// (TRAWL_TARGET_DELETE_BATCH).
const DefaultDeleteBatch = 1000

// Deleter removes the rows of targets being deleted (state deleting), a bounded batch per
// transaction (store.PurgeTarget), and then the targets. Every processor runs one: purges
// claim their rows with SKIP LOCKED, so several deleters share a target's rows instead of
// waiting for each other, and a deletion interrupted by a crash or a restart goes on from where
// it stopped, since what is left is what is in the database.
type Deleter struct {
	Store Purger
	// Batch is how many URLs one transaction deletes (DefaultDeleteBatch when 0).
	Batch int
	// Interval is how often it looks for deleting targets (1s when 0).
	Interval time.Duration
	Log      *slog.Logger
}

// Run sweeps every Interval until ctx ends.
func (d *Deleter) Run(ctx context.Context) {
	interval := d.Interval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep purges every deleting target until it is gone, or until the rows left are held by
// others (a later sweep takes them), or until ctx ends. It reports how many targets it finished.
func (d *Deleter) Sweep(ctx context.Context) int {
	ids, err := d.Store.DeletingTargets(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.Log.Warn("look for deleting targets; next round tries again", "err", err)
		}
		return 0
	}
	finished := 0
	for _, id := range ids {
		if d.purge(ctx, id) {
			finished++
		}
	}
	return finished
}

// purge deletes one target's rows, batch by batch, and reports whether the target is gone.
func (d *Deleter) purge(ctx context.Context, id int64) bool {
	batch := d.Batch
	if batch <= 0 {
		batch = DefaultDeleteBatch
	}
	start := time.Now()
	var rows int64
	for ctx.Err() == nil {
		step, err := d.Store.PurgeTarget(ctx, id, batch)
		rows += step.Rows
		metrics.PurgedRows.Add(float64(step.Rows))
		switch {
		case err != nil:
			if ctx.Err() == nil {
				d.Log.Warn("delete target rows; next round tries again", "target_id", id, "rows", rows, "err", err)
			}
			return false
		case step.Done:
			d.Log.Info("target deleted", "target_id", id, "rows", rows, "duration", time.Since(start).String())
			return true
		case step.Rows == 0:
			// What is left is held by others (a batch of late results, a pruner): next round.
			d.Log.Debug("target rows held by others; deleting them next round", "target_id", id, "rows", rows)
			return false
		}
	}
	return false
}
