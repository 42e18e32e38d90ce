package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestBulkLoadDone: the bulk loader stores a done target with every URL done and a page each,
// keeps the target's counters exact, and leaves the frontier usable for a new target.
func TestBulkLoadDone(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	const n, hosts = 3000, 30
	tg, err := s.BulkLoadDone(ctx, store.BulkLoad{Name: "seeded", URLs: n, Hosts: hosts, TextBytes: 400})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Target(ctx, tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.TargetDone || got.URLsTotal != n || got.URLsDone != n || got.URLsFailed != 0 || got.Pending() != 0 {
		t.Fatalf("target = state %s, %d total, %d done, %d failed; want done with %d of %d", got.State, got.URLsTotal, got.URLsDone, got.URLsFailed, n, n)
	}
	if tg.URLsTotal != n || tg.URLsDone != n {
		t.Fatalf("returned target counters %d/%d, want %d/%d", tg.URLsDone, tg.URLsTotal, n, n)
	}
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	var pages, indexed, queued, nhosts, targetHosts, hostRows, shortText int
	if err := db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pages WHERE target_id = $1),
		(SELECT count(*) FROM page_search WHERE target_id = $1),
		(SELECT count(*) FROM search_queue),
		(SELECT count(DISTINCT host) FROM urls WHERE target_id = $1),
		(SELECT count(*) FROM target_hosts WHERE target_id = $1),
		(SELECT count(*) FROM hosts h WHERE EXISTS (SELECT 1 FROM target_hosts th WHERE th.host = h.host AND th.target_id = $1)),
		(SELECT count(*) FROM pages WHERE target_id = $1 AND length(body_text) < 400)`, tg.ID).
		Scan(&pages, &indexed, &queued, &nhosts, &targetHosts, &hostRows, &shortText); err != nil {
		t.Fatal(err)
	}
	if indexed != n || queued != 0 {
		t.Fatalf("%d pages indexed for search and %d queued, want %d and 0", indexed, queued, n)
	}
	if pages != n || nhosts != hosts || targetHosts != hosts || hostRows != hosts || shortText != 0 {
		t.Fatalf("%d pages, %d url hosts, %d target_hosts, %d hosts rows, %d short texts; want %d, %d, %d, %d, 0",
			pages, nhosts, targetHosts, hostRows, shortText, n, hosts, hosts, hosts)
	}
	// The load is vacuumed and analysed, as an old database's tables would be: no autovacuum of
	// it runs during what is measured next, and the planner knows the tables' sizes.
	// search_queue, emptied by the load, is vacuumed of its dead rows but not analysed.
	rows, err := db.Query(ctx, `SELECT relname FROM pg_stat_user_tables
		WHERE relname IN ('urls', 'pages', 'page_search', 'search_queue')
		  AND (last_vacuum IS NULL OR (last_analyze IS NULL AND relname <> 'search_queue')) ORDER BY relname`)
	if err != nil {
		t.Fatal(err)
	}
	unvacuumed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(unvacuumed) > 0 {
		t.Errorf("tables not vacuumed and analysed after the load: %q", unvacuumed)
	}

	// A second load adds to the same tables without disturbing the first target's counters.
	tg2, err := s.BulkLoadDone(ctx, store.BulkLoad{Name: "seeded-2", URLs: 10, Hosts: 3, Domain: "other.test", Unindexed: true})
	if err != nil {
		t.Fatal(err)
	}
	if tg2.URLsTotal != 10 || tg2.URLsDone != 10 {
		t.Fatalf("second target counters %d/%d, want 10/10", tg2.URLsDone, tg2.URLsTotal)
	}
	if again, _ := s.Target(ctx, tg.ID); again.URLsTotal != n || again.URLsDone != n {
		t.Fatalf("first target counters changed to %d/%d", again.URLsDone, again.URLsTotal)
	}
	if backlog, err := s.SearchBacklog(ctx); err != nil || backlog != 10 {
		t.Fatalf("search backlog after an unindexed load = %d, %v; want 10", backlog, err)
	}

	// A new target on a seeded host dispatches its own seed only: the loaded URLs are done.
	nt, err := s.CreateTarget(ctx, target.Spec{Name: "fresh", SeedURL: "http://www.site-001.bulk.test/",
		Scope: "host", MaxDepth: 2, MaxPages: 10, MaxAttempts: 3, Sitemaps: true})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Dispatch(ctx, store.DispatchLimits{MaxInFlight: 100, HostMaxInFlight: 100, Hosts: 100, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].TargetID != nt.ID {
		t.Fatalf("dispatched %+v, want the new target's seed only", jobs)
	}
}

// TestBulkLoadDoneRejectsEmpty: nothing to load is an error, not an empty done target.
func TestBulkLoadDoneRejectsEmpty(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	if _, err := s.BulkLoadDone(t.Context(), store.BulkLoad{}); err == nil {
		t.Fatal("BulkLoadDone with no URLs succeeded")
	}
}
