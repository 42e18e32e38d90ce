package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
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
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxPages = 1000 })
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
		lines := planLines(t, c, fmt.Sprintf(
			`EXPLAIN (COSTS OFF) EXECUTE %s(%d, '{http://example.test/new}', '{example.test}', '{1}', 10)`, name, tg.ID))
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
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxPages = 100000 })
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
		plan := strings.Join(planLines(t, c, `EXPLAIN (COSTS OFF) EXECUTE `+execute), "\n")
		ok := strings.Contains(plan, want)
		for _, b := range bad {
			ok = ok && !strings.Contains(plan, b)
		}
		if !ok {
			t.Errorf("%s:\n%s", what, plan)
		}
	}
	check("due-host query does not probe urls_queued_idx per host", `due(500, 256, true, '24 hours', '2 seconds')`,
		"urls_queued_idx", "Group Key: q.host", "Seq Scan on urls")
	// The lease reads each host's due URLs in index order and stops at its count.
	check("lease does not read urls_queued_idx in order", `lease('{h0.test}', '{256}', '5 minutes')`,
		"urls_queued_idx", "Sort Key: u.next_attempt_at", "Seq Scan on urls u")
	// robots.txt dispatch asks the same question per host, on every tick.
	check("robots dispatch does not probe urls_queued_idx per host", `robots(100, '1 minute', '24 hours')`,
		"urls_queued_idx", "Group Key: q.host", "Seq Scan on urls")
}

// TestPausedBacklogLeavesTheScheduler checks migration 00007: pausing a target takes its queued
// URLs out of the scheduler's index, so an active target on the same host is dispatched without
// reading the paused backlog (the probe's index scan returns one row, not thousands); resuming
// puts them back and they are dispatched; re-crawling a cancelled target that was paused
// queues its URLs unpaused.
func TestPausedBacklogLeavesTheScheduler(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	c := conn(t, dsn)
	big := newTarget(t, s, "http://shared.test/", func(nt *target.Spec) { nt.MaxPages = 100000 })
	if _, err := c.Exec(ctx, fmt.Sprintf(`INSERT INTO urls (target_id, url, host, depth, next_attempt_at)
		SELECT %d, 'http://shared.test/old/' || i, 'shared.test', 1, now() - interval '1 day' FROM generate_series(1, 5000) i`, big.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PauseTarget(ctx, big.ID); err != nil {
		t.Fatal(err)
	}
	small := newTarget(t, s, "http://shared.test/new", nil)
	if _, err := c.Exec(ctx, `INSERT INTO hosts (host) VALUES ('shared.test') ON CONFLICT DO NOTHING; ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var paused int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM urls WHERE target_id = $1 AND paused`, big.ID).Scan(&paused); err != nil || paused != 5001 {
		t.Fatalf("paused URLs of the paused target = %d, %v; want 5001", paused, err)
	}
	// The due-host probe reads one index entry for the active target's seed.
	lines := planLines(t, c, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) `+
		strings.NewReplacer("$1", "500", "$2", "256", "$3", "false", "$4", "'24 hours'", "$5", "'2 seconds'::interval").Replace(store.DueHostsSQL))
	plan := strings.Join(lines, "\n")
	probes := 0
	for _, l := range lines {
		if strings.Contains(l, "urls_queued_idx on urls q") {
			probes++
			if !strings.Contains(l, "rows=1 ") {
				t.Errorf("the probe read more than the active target's URL: %s\n%s", l, plan)
			}
		}
	}
	if probes == 0 {
		t.Errorf("no probe of urls_queued_idx in the plan:\n%s", plan)
	}
	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 || jobs[0].TargetID != small.ID {
		t.Fatalf("dispatch while the big target is paused = %+v, want the small target's seed", jobs)
	}
	if _, err := s.ResumeTarget(ctx, big.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM urls WHERE paused`).Scan(&paused); err != nil || paused != 0 {
		t.Fatalf("paused URLs after resume = %d, %v; want 0", paused, err)
	}
	if jobs := dispatch(t, s, limits); len(jobs) == 0 || jobs[0].TargetID != big.ID {
		t.Fatalf("dispatch after resume = %d jobs, want the big target's", len(jobs))
	}
	// Pause, cancel, re-crawl: the re-queued URLs belong to an active target and must not stay paused.
	for _, step := range []func(context.Context, int64) (store.Target, error){s.PauseTarget, s.CancelTarget, s.RecrawlTarget} {
		if _, err := step(ctx, big.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM urls WHERE paused`).Scan(&paused); err != nil || paused != 0 {
		t.Fatalf("paused URLs after a re-crawl of the cancelled target = %d, %v; want 0", paused, err)
	}
}

// TestCounterTriggerHashesBulkUpdates captures, with auto_explain, the plan of the urls counter
// trigger during a statement that updates thousands of URLs, as cancelling, pausing or
// re-crawling a target does. Its join of the transition tables must not be a nested loop: that
// cost N² comparisons per statement (migration 00007).
func TestCounterTriggerHashesBulkUpdates(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	tg := newTarget(t, s, "http://bulk.test/", func(nt *target.Spec) { nt.MaxPages = 100000 })
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		notices = append(notices, n.Message)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO urls (target_id, url, host, depth) SELECT %d, 'http://bulk.test/p/' || i, 'bulk.test', 1 FROM generate_series(1, 3000) i`, tg.ID),
		`LOAD 'auto_explain'`,
		`SET auto_explain.log_min_duration = 0`,
		`SET auto_explain.log_nested_statements = on`,
		`SET auto_explain.log_level = notice`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Skipf("%s: %v (auto_explain needs a superuser and the contrib module)", q, err)
		}
	}
	// plpgsql keeps the trigger's plan for the session: made first for a one-row statement, as
	// the processors' small batches are, it was a nested loop that the bulk update then reused.
	for _, q := range []string{
		`UPDATE urls SET state = 'cancelled' WHERE id = (SELECT min(id) FROM urls WHERE target_id = $1)`,
		`UPDATE urls SET state = 'cancelled' WHERE target_id = $1`,
	} {
		mu.Lock()
		notices = nil
		mu.Unlock()
		if _, err := c.Exec(ctx, q, tg.ID); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var trigger string
	for _, n := range notices {
		if strings.Contains(n, "old_rows") {
			trigger = n
		}
	}
	if trigger == "" {
		t.Fatalf("no plan of the counter trigger among %d notices", len(notices))
	}
	if strings.Contains(trigger, "Nested Loop") {
		t.Errorf("the counter trigger joins its transition tables with a nested loop:\n%s", trigger)
	}
}

// planLines runs an EXPLAIN statement on c and returns its lines.
func planLines(t *testing.T, c *pgx.Conn, explain string, args ...any) []string {
	t.Helper()
	rows, err := c.Query(t.Context(), explain, args...)
	if err != nil {
		t.Fatalf("%s: %v", explain, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", explain, err)
	}
	return lines
}

// TestLeaseReadsTheHostInOrderWithStaleStatistics checks the lease on a database whose
// statistics predate the crawl: a big done target analysed long ago, and a new target whose
// 5,000 queued URLs autoanalyze has not seen yet (it waits for a tenth of the table to change).
// Joined to targets, the planner took the new target for a few rows and read all of its queued
// URLs through urls_target_state_idx and sorted them on every tick, 50 ms a tick at 1,000,000
// URLs (docs/PERFORMANCE.md, bench-large); the lease must read the host's due URLs in
// urls_queued_idx order and stop at its count, whatever the statistics say.
func TestLeaseReadsTheHostInOrderWithStaleStatistics(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	if _, err := s.BulkLoadDone(ctx, store.BulkLoad{Name: "old", URLs: 20000, Hosts: 20, TextBytes: 50}); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, s, "http://fresh.test/", func(nt *target.Spec) { nt.MaxPages = 100000 })
	c := conn(t, dsn)
	for _, q := range []string{
		`ALTER TABLE urls SET (autovacuum_enabled = off)`, // keep the statistics stale
		fmt.Sprintf(`INSERT INTO urls (target_id, url, host, depth) SELECT %d, 'http://fresh.test/p/' || i, 'fresh.test', 1
			FROM generate_series(1, 5000) i`, tg.ID),
		`INSERT INTO hosts (host, robots_fetched_at) VALUES ('fresh.test', now()) ON CONFLICT (host) DO UPDATE SET robots_fetched_at = now()`,
		`PREPARE lease AS ` + store.LeaseSQL,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := c.Exec(ctx, `SET plan_cache_mode = `+mode); err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(planLines(t, c, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE lease('{fresh.test}', '{200}', '5 minutes')`), "\n")
		if !strings.Contains(plan, "urls_queued_idx") || strings.Contains(plan, "Sort Key: u") || strings.Contains(plan, "urls_target_state_idx") {
			t.Errorf("%s: the lease does not read urls_queued_idx in order:\n%s", mode, plan)
		}
		if _, err := c.Exec(ctx, `UPDATE urls SET state = 'queued', lease_until = NULL WHERE host = 'fresh.test'`); err != nil {
			t.Fatal(err)
		}
	}
}
