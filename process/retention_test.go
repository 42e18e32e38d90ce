package process_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestPrunerKeepsRecentHistoryAndWaitsToLead runs the pruner against the real database: while
// another processor leads it deletes nothing; once it leads it deletes every fetch older than
// the retention, over several chunks, and keeps the recent ones; a zero retention keeps the
// per-second rates until a pruner with a rate retention runs.
func TestPrunerKeepsRecentHistoryAndWaitsToLead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, dsn := testenv.Store(t)
	tg := createTarget(t, s, "prune")
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	old := 2*process.PruneChunk + 7
	for _, ins := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO page_fetches (url_id, target_id, fetched_at, status)
		  SELECT i, $1, now() - interval '30 days' + i * interval '1 second', 200 FROM generate_series(1, $2::int) i`, []any{tg.ID, old}},
		{`INSERT INTO page_fetches (url_id, target_id, fetched_at, status) SELECT i, $1, now(), 200 FROM generate_series(1, 5) i`, []any{tg.ID}},
		{`INSERT INTO fetch_rates (target_id, at, pages) SELECT $1, now() - i * interval '1 day', 1 FROM generate_series(0, 9) i`, []any{tg.ID}},
	} {
		if _, err := c.Exec(ctx, ins.sql, ins.args...); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) (n int) {
		t.Helper()
		if err := c.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pruned := func() float64 { return testutil.ToFloat64(metrics.PrunedRows.WithLabelValues("page_fetches")) }
	before := pruned()

	leader := &switchLeader{}
	p := &process.Pruner{Store: s, FetchRetention: 24 * time.Hour, Interval: 20 * time.Millisecond, Leader: leader,
		Log: testenv.Logger(t)}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(runCtx) })
	defer func() { cancel(); wg.Wait() }()

	time.Sleep(200 * time.Millisecond)
	if n := count("page_fetches"); n != old+5 {
		t.Fatalf("pruned while another processor leads: %d rows left of %d", n, old+5)
	}
	leader.leads.Store(true)
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "old fetch history pruned", func() bool {
		return count("page_fetches") == 5
	})
	if got := pruned() - before; got != float64(old) {
		t.Errorf("trawl_processor_pruned_rows_total{table=page_fetches} rose by %v, want %d", got, old)
	}
	if n := count("fetch_rates"); n != 10 {
		t.Errorf("rates pruned with no rate retention: %d rows left of 10", n)
	}

	(&process.Pruner{Store: s, RateRetention: 72 * time.Hour, Log: testenv.Logger(t)}).Prune(ctx, time.Now())
	if n := count("fetch_rates"); n != 3 {
		t.Errorf("rates after a 72h retention: %d rows, want 3 (today and the two days before)", n)
	}
}
