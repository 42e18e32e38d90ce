package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// RatePoint is one bucket of the throughput chart.
type RatePoint struct {
	At     time.Time // bucket start
	Pages  int64     // fetches applied in the bucket (pages and errors)
	Errors int64     // of which failed: a network error or an HTTP status >= 400
}

// Throughput returns fetches and errors per bucket over the last window, oldest first, with
// every bucket present; the last bucket is the current, partial one. targetID 0 means every
// target. Buckets are aligned to multiples of bucket since the Unix epoch.
func (s *Store) Throughput(ctx context.Context, targetID int64, window, bucket time.Duration) ([]RatePoint, error) {
	if bucket < time.Second || window < bucket || window/bucket > 10000 {
		return nil, fmt.Errorf("%w: throughput needs a bucket of at least 1s and at most 10000 buckets", ErrInvalidQuery)
	}
	var a args
	b := a.add(fmt.Sprintf("%d milliseconds", bucket.Milliseconds()))
	w := a.add(fmt.Sprintf("%d milliseconds", window.Milliseconds()))
	filter := ""
	if targetID != 0 {
		filter = " AND f.target_id = " + a.add(targetID)
	}
	rows, err := s.pool.Query(ctx, `
		WITH bounds AS (SELECT date_bin(`+b+`::interval, now(), timestamptz 'epoch') AS last),
		buckets AS (
			SELECT generate_series(last - `+w+`::interval + `+b+`::interval, last, `+b+`::interval) AS at FROM bounds),
		r AS (
			SELECT date_bin(`+b+`::interval, f.at, timestamptz 'epoch') AS at, sum(f.pages)::bigint AS p, sum(f.errors)::bigint AS e
			FROM fetch_rates f, bounds
			WHERE f.at >= bounds.last - `+w+`::interval + `+b+`::interval`+filter+`
			GROUP BY 1)
		SELECT buckets.at, coalesce(r.p, 0), coalesce(r.e, 0) FROM buckets LEFT JOIN r ON r.at = buckets.at
		ORDER BY buckets.at`, a...)
	if err != nil {
		return nil, fmt.Errorf("store: throughput: %w", err)
	}
	pts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RatePoint, error) {
		var p RatePoint
		return p, r.Scan(&p.At, &p.Pages, &p.Errors)
	})
	if err != nil {
		return nil, fmt.Errorf("store: throughput: %w", err)
	}
	return pts, nil
}

// queueRates adds this batch's applied results and errors to the current second of each target.
// The targets are locked by the batch already, so concurrent batches cannot deadlock here.
func queueRates(b *pgx.Batch, rates map[int64]*[2]int32) {
	if len(rates) == 0 {
		return
	}
	ids, pages, errs := sortedCounts(rates)
	b.Queue(`
		INSERT INTO fetch_rates (target_id, at, pages, errors)
		SELECT v.tid, date_trunc('second', now()), v.p, v.e FROM unnest($1::bigint[], $2::int[], $3::int[]) AS v(tid, p, e)
		ORDER BY v.tid
		ON CONFLICT (target_id, at) DO UPDATE SET pages = fetch_rates.pages + EXCLUDED.pages,
			errors = fetch_rates.errors + EXCLUDED.errors`, ids, pages, errs)
}

// sortedCounts splits counter pairs into parallel arrays for unnest, in key order (the order
// the rows are locked in).
func sortedCounts[K cmp.Ordered](m map[K]*[2]int32) (keys []K, first, second []int32) {
	keys = slices.Sorted(maps.Keys(m))
	first = make([]int32, len(keys))
	second = make([]int32, len(keys))
	for i, k := range keys {
		first[i], second[i] = m[k][0], m[k][1]
	}
	return keys, first, second
}
