package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Overview is the frontier across every target, for the dashboard's first page.
type Overview struct {
	// Queued URLs waiting for their first fetch (queued with no failed attempt yet).
	Queued int64
	// Dispatched URLs leased to a crawler and not yet applied.
	Dispatched int64
	// Retrying URLs: queued again after a failed attempt (attempts > 0).
	Retrying int64
	// Failed URLs: failed for good.
	Failed int64
	// Done URLs: fetched.
	Done int64
	// Discovered URLs in every target.
	Discovered int64
	// SearchBacklog is the number of stored pages not yet searchable: their search vectors are
	// built in the background by the processors (store.IndexPages).
	SearchBacklog int64
	// Targets counts targets by stored state (active, paused, done, cancelled).
	Targets map[string]int64
	// Active targets (active or paused), newest first, at most OverviewActiveLimit.
	Active []TargetSummary
}

// OverviewActiveLimit caps Overview.Active.
const OverviewActiveLimit = 20

// Overview returns the frontier across every target and the active targets. Totals come from
// the targets' counters; only in-flight and retrying URLs are counted, on their partial indexes.
func (s *Store) Overview(ctx context.Context) (Overview, error) {
	o := Overview{Targets: map[string]int64{}}
	var cancelled int64
	b := &pgx.Batch{}
	b.Queue(`SELECT coalesce(sum(urls_total), 0)::bigint, coalesce(sum(urls_done), 0)::bigint,
			coalesce(sum(urls_failed), 0)::bigint, coalesce(sum(urls_cancelled), 0)::bigint FROM targets`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&o.Discovered, &o.Done, &o.Failed, &cancelled) })
	b.Queue(`SELECT count(*) FROM urls WHERE state = 'dispatched'`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&o.Dispatched) })
	b.Queue(`SELECT count(*) FROM urls WHERE state = 'queued' AND attempts > 0`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&o.Retrying) })
	b.Queue(searchBacklogSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&o.SearchBacklog) })
	b.Queue(`SELECT state, count(*) FROM targets GROUP BY state`).Query(func(rows pgx.Rows) error {
		var st string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&st, &n}, func() error { o.Targets[st] = n; return nil })
		return err
	})
	b.Queue(`SELECT `+summaryColumns+` FROM `+summaryFrom+`
		WHERE targets.state IN ('active', 'paused') ORDER BY targets.id DESC LIMIT $1`, OverviewActiveLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			o.Active, err = collectSummaries(rows)
			return err
		})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return Overview{}, fmt.Errorf("store: overview: %w", err)
	}
	o.Queued = max(0, o.Discovered-o.Done-o.Failed-cancelled-o.Dispatched-o.Retrying)
	if o.Active == nil {
		o.Active = []TargetSummary{}
	}
	return o, nil
}
