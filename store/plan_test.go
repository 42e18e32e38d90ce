package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/store"
)

// TestDiscoverURLsProbesIndex checks the plans of the discovered-URL inserts, generic plans made
// while the table looks small as the processor's cached statements are. Pulled up into an anti
// join, the NOT EXISTS compared every URL of the target with every link, so each batch cost more
// as the frontier grew (issue #6). With room for every link, the unique index alone must reject
// the known URLs (no scan of urls at all); near max_pages, NOT EXISTS must stay a per-link
// subplan.
func TestDiscoverURLsProbesIndex(t *testing.T) {
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.MaxPages = 1000 })
	jobs := dispatch(t, s, limits)
	links := make([]string, 50)
	for i := range links {
		links[i] = fmt.Sprintf("http://example.test/p/%d", i)
	}
	apply(t, s, ok(jobs[0], links...))

	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	explain := func(name, query string) string {
		t.Helper()
		if _, err := c.Exec(ctx, `PREPARE `+name+` AS `+query); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
		rows, err := c.Query(ctx, fmt.Sprintf(
			`EXPLAIN (COSTS OFF) EXECUTE %s(%d, '{http://example.test/new}', '{example.test}', '{1}', 10)`, name, tg.ID))
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		return strings.Join(lines, "\n")
	}
	if plan := explain("insert_urls", store.InsertURLsSQL); strings.Contains(plan, "Join") || strings.Contains(plan, "on urls x") {
		t.Errorf("insert with room for every link reads urls besides the unique index:\n%s", plan)
	}
	if plan := explain("discover_urls", store.DiscoverURLsSQL); strings.Contains(plan, "Anti Join") || !strings.Contains(plan, "SubPlan") {
		t.Errorf("NOT EXISTS near max_pages is not a per-link subplan:\n%s", plan)
	}
}

// TestDueHostsProbesQueuedPerHost checks the plans of the scheduler's due-host, lease and
// robots.txt queries with a large queued frontier: whether a host has due URLs must be an index probe per host (a subplan on
// urls_queued_idx), not a hash of every queued URL of the active targets, whose cost grew with
// the frontier on every tick (issue #6).
func TestDueHostsProbesQueuedPerHost(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.MaxPages = 100000 })
	c := conn(t, dsn)
	for _, q := range []string{
		// A crawl under way: most URLs done, 5,000 queued.
		fmt.Sprintf(`INSERT INTO urls (target_id, url, host, depth, state)
			SELECT %d, 'http://h' || (i %% 2) || '.test/p/' || i, 'h' || (i %% 2) || '.test', 1,
			       CASE WHEN i > 45000 THEN 'queued' ELSE 'done' END
			FROM generate_series(1, 50000) i`, tg.ID),
		fmt.Sprintf(`INSERT INTO target_hosts (target_id, host) SELECT %d, 'h' || i || '.test' FROM generate_series(0, 1) i`, tg.ID),
		`INSERT INTO hosts (host, robots_fetched_at) SELECT 'h' || i || '.test', now() FROM generate_series(0, 1) i`,
		`ANALYZE`,
		`SET plan_cache_mode = force_generic_plan`,
		`PREPARE due AS ` + store.DueHostsSQL,
		`PREPARE lease AS ` + store.LeaseSQL,
		`PREPARE robots AS ` + store.RobotsDueSQL,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// check fails when the plan of execute lacks any of want or holds any of bad.
	check := func(what, execute string, want string, bad ...string) {
		t.Helper()
		rows, err := c.Query(ctx, `EXPLAIN (COSTS OFF) EXECUTE `+execute)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		ok := strings.Contains(plan, want)
		for _, b := range bad {
			ok = ok && !strings.Contains(plan, b)
		}
		if !ok {
			t.Errorf("%s:\n%s", what, plan)
		}
	}
	check("due-host query does not probe urls_queued_idx per host", `due(500, 256, true, '24 hours')`,
		"urls_queued_idx", "Group Key: q.host", "Seq Scan on urls")
	// The lease reads each host's due URLs in index order and stops at its count.
	check("lease does not read urls_queued_idx in order", `lease('{h0.test}', '{256}', '5 minutes')`,
		"urls_queued_idx", "Sort Key: u.next_attempt_at", "Seq Scan on urls u")
	// robots.txt dispatch asks the same question per host, on every tick.
	check("robots dispatch does not probe urls_queued_idx per host", `robots(100, '1 minute', '24 hours')`,
		"urls_queued_idx", "Group Key: q.host", "Seq Scan on urls")
}
