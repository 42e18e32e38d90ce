package store

import (
	"context"
	"fmt"
	"time"
)

// Retention: the dashboard's history tables grow with every fetch (page_fetches: one row per
// fetch) and every second of crawling (fetch_rates: one row per target and second), so the
// leading processor deletes what is older than the operator's retention (process.Pruner). The
// pages, the frontier and the links are the crawl's results and are never pruned.

// PruneFetches deletes up to limit fetch-history rows fetched before before, oldest first, and
// returns how many it deleted; fewer than limit means none older are left. Deleting in bounded
// chunks keeps each transaction, its locks and its WAL short on a table of millions of rows.
func (s *Store) PruneFetches(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.prune(ctx, "fetch history", pruneFetchesSQL, before, limit)
}

// PruneRates deletes up to limit per-second throughput rows older than before (see
// PruneFetches).
func (s *Store) PruneRates(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.prune(ctx, "fetch rates", pruneRatesSQL, before, limit)
}

// pruneFetchesSQL finds the rows through page_fetches_fetched_idx (TestPruneUsesIndexes).
const pruneFetchesSQL = `
	DELETE FROM page_fetches WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM page_fetches WHERE fetched_at < $1 LIMIT $2))`

// pruneRatesSQL finds the rows through fetch_rates_at_idx.
const pruneRatesSQL = `
	DELETE FROM fetch_rates WHERE (target_id, at) IN (
		SELECT target_id, at FROM fetch_rates WHERE at < $1 LIMIT $2)`

func (s *Store) prune(ctx context.Context, what, sql string, before time.Time, limit int) (int64, error) {
	if limit < 1 {
		return 0, fmt.Errorf("store: prune %s: limit %d < 1", what, limit)
	}
	tag, err := s.pool.Exec(ctx, sql, before, limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune %s: %w", what, err)
	}
	return tag.RowsAffected(), nil
}
