package store_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestPruneDeletesOnlyOldRowsInChunks: each call deletes at most its limit, oldest rows only;
// rows at or after the cut-off, and other tables, are untouched.
func TestPruneDeletesOnlyOldRowsInChunks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	c := conn(t, dsn)
	cut := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	// 7 fetches and 7 rate rows before the cut-off (one day apart), 3 at or after it.
	for _, q := range []string{
		`INSERT INTO page_fetches (url_id, target_id, fetched_at, status)
		 SELECT 1, $1, $2::timestamptz + (i - 7) * interval '1 day', 200 FROM generate_series(0, 9) i`,
		`INSERT INTO fetch_rates (target_id, at, pages)
		 SELECT $1, $2::timestamptz + (i - 7) * interval '1 day', 1 FROM generate_series(0, 9) i`,
	} {
		if _, err := c.Exec(ctx, q, tg.ID, cut); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		prune func(time.Time, int) (int64, error)
		table string
		col   string
	}{
		{"fetches", func(b time.Time, n int) (int64, error) { return s.PruneFetches(ctx, b, n) }, "page_fetches", "fetched_at"},
		{"rates", func(b time.Time, n int) (int64, error) { return s.PruneRates(ctx, b, n) }, "fetch_rates", "at"},
	} {
		var got []int64
		for {
			n, err := tc.prune(cut, 3)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got = append(got, n)
			if n < 3 {
				break
			}
		}
		if want := []int64{3, 3, 1}; !slices.Equal(got, want) {
			t.Errorf("%s: chunks %v, want %v", tc.name, got, want)
		}
		var left int
		var oldest time.Time
		if err := c.QueryRow(ctx, `SELECT count(*), min(`+tc.col+`) FROM `+tc.table).Scan(&left, &oldest); err != nil {
			t.Fatal(err)
		}
		if left != 3 || !oldest.Equal(cut) {
			t.Errorf("%s: %d rows left, oldest %v; want 3 from %v", tc.name, left, oldest, cut)
		}
	}
	if _, err := s.PruneFetches(ctx, cut, 0); err == nil {
		t.Error("limit 0: no error")
	}
}

// TestPruneUsesIndexes checks the generic plans of the prune statements on a large history: the
// old rows are found through the time indexes of both tables, never by reading a whole table.
func TestPruneUsesIndexes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	c := conn(t, dsn)
	for _, q := range []string{
		// 100 days of history, one fetch every 43 s, in time order as fetches arrive.
		fmt.Sprintf(`INSERT INTO page_fetches (url_id, target_id, fetched_at, status)
			SELECT i, %d, now() - interval '100 days' + i * interval '43.2 seconds', 200 FROM generate_series(1, 200000) i`, tg.ID),
		fmt.Sprintf(`INSERT INTO fetch_rates (target_id, at, pages)
			SELECT %d, now() - interval '100 days' + i * interval '43.2 seconds', 1 FROM generate_series(1, 200000) i`, tg.ID),
		`ANALYZE page_fetches, fetch_rates`,
		`SET plan_cache_mode = force_generic_plan`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct{ sql, index string }{
		"prune_fetches": {store.PruneFetchesSQL, "page_fetches_fetched_idx"},
		"prune_rates":   {store.PruneRatesSQL, "fetch_rates_at_idx"},
	} {
		if _, err := c.Exec(ctx, `PREPARE `+name+` AS `+tc.sql); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
		plan := strings.Join(planLines(t, c, `EXPLAIN (COSTS OFF) EXECUTE `+name+`(now() - interval '90 days', 5000)`), "\n")
		if !strings.Contains(plan, tc.index) {
			t.Errorf("%s does not use %s:\n%s", name, tc.index, plan)
		}
	}
}
