package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

var policy = process.Policy{RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond, Canon: crawlurl.Default}

var limits = store.DispatchLimits{MaxInFlight: 1000, HostMaxInFlight: 100, Hosts: 100, Lease: time.Minute}

func newTarget(t *testing.T, s *store.Store, seed string, mut func(*target.Spec)) store.Target {
	t.Helper()
	nt := target.Spec{Name: "t", SeedURL: seed, Scope: "host", MaxDepth: 5, MaxPages: 100, MaxAttempts: 3}
	if mut != nil {
		mut(&nt)
	}
	tg, err := s.CreateTarget(t.Context(), nt)
	if err != nil {
		t.Fatalf("CreateTarget: %v", err)
	}
	return tg
}

func dispatch(t *testing.T, s *store.Store, lim store.DispatchLimits) []store.Job {
	t.Helper()
	jobs, err := s.Dispatch(t.Context(), lim)
	if err != nil {
		t.Fatalf("Dispatch: %v", err)
	}
	return jobs
}

func ok(j store.Job, links ...string) store.Result {
	return store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Status: 200, Title: "T " + j.URL,
		Text: "hello", Links: links, StartedAt: time.Now()}
}

func apply(t *testing.T, s *store.Store, rs ...store.Result) store.Applied {
	t.Helper()
	a, err := s.ApplyResults(t.Context(), rs, policy)
	if err != nil {
		t.Fatalf("ApplyResults: %v", err)
	}
	return a
}

func loadTarget(t *testing.T, s *store.Store, id int64) store.Target {
	t.Helper()
	tg, err := s.Target(t.Context(), id)
	if err != nil {
		t.Fatalf("Target: %v", err)
	}
	return tg
}

func TestSchemaCheckAndMigrate(t *testing.T) {
	t.Parallel()
	dsn := testenv.Database(t)
	s, err := store.Open(t.Context(), dsn, 2, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckSchema(t.Context()); !errors.Is(err, store.ErrSchemaOutdated) {
		t.Fatalf("CheckSchema on empty db = %v, want ErrSchemaOutdated", err)
	}
	for range 2 { // idempotent
		if _, err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Fatalf("CheckSchema after migrate: %v", err)
	}
	if _, err := s.Target(t.Context(), 42); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Target(42) = %v, want ErrNotFound", err)
	}
}

func TestCrawlLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)

	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 || jobs[0].URL != "http://example.test/" || jobs[0].Dispatch != 1 {
		t.Fatalf("first dispatch = %+v, want the seed", jobs)
	}
	if again := dispatch(t, s, limits); len(again) != 0 {
		t.Fatalf("second dispatch = %+v, want nothing (seed is leased)", again)
	}
	seed := jobs[0]
	a := apply(t, s, ok(seed,
		"http://example.test/a", "http://example.test/b", "http://example.test/a", // duplicate
		"http://other.test/x",  // out of scope
		"http://example.test/", // already known
	))
	if a.Applied != 1 || a.Discovered != 2 {
		t.Fatalf("applied = %+v, want 1 applied, 2 discovered", a)
	}
	// The same result again (at-least-once delivery) changes nothing.
	if a := apply(t, s, ok(seed, "http://example.test/c")); a.Applied != 0 || a.Duplicates != 1 || a.Discovered != 0 {
		t.Fatalf("duplicate apply = %+v, want 1 duplicate and nothing else", a)
	}
	got := loadTarget(t, s, tg.ID)
	if diff := cmp.Diff([]int64{3, 1, 0, 2}, []int64{got.URLsTotal, got.URLsDone, got.URLsFailed, got.Pending()}); diff != "" {
		t.Fatalf("counters (total, done, failed, pending) (-want +got):\n%s", diff)
	}

	jobs = dispatch(t, s, limits)
	if len(jobs) != 2 {
		t.Fatalf("dispatch = %d jobs, want 2", len(jobs))
	}
	a = apply(t, s, ok(jobs[0]), ok(jobs[1]))
	if diff := cmp.Diff([]int64{tg.ID}, a.Finished); diff != "" {
		t.Fatalf("finished targets (-want +got):\n%s", diff)
	}
	got = loadTarget(t, s, tg.ID)
	if got.State != store.TargetDone || got.URLsDone != 3 || got.Pending() != 0 || got.FinishedAt == nil {
		t.Fatalf("target after crawl = %+v, want done with 3 fetched", got)
	}
}

func TestRetriesThenFails(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxAttempts = 3 })
	for attempt := 1; attempt <= 3; attempt++ {
		var jobs []store.Job
		testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, "retry to become due", func() bool {
			jobs = dispatch(t, s, limits)
			return len(jobs) == 1
		})
		r := ok(jobs[0])
		r.Status = 503
		apply(t, s, r)
		got := loadTarget(t, s, tg.ID)
		wantFailed := int64(0)
		if attempt == 3 {
			wantFailed = 1
		}
		if got.URLsFailed != wantFailed {
			t.Fatalf("after attempt %d: failed = %d, want %d", attempt, got.URLsFailed, wantFailed)
		}
	}
	got := loadTarget(t, s, tg.ID)
	if got.State != store.TargetDone || got.Pending() != 0 {
		t.Fatalf("target = %+v, want done with nothing pending", got)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	j := dispatch(t, s, limits)[0]
	apply(t, s, store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Error: "blocked", ErrorClass: "blocked", Permanent: true})
	if got := loadTarget(t, s, tg.ID); got.URLsFailed != 1 || got.State != store.TargetDone {
		t.Fatalf("target = %+v, want failed=1 and done", got)
	}
}

func TestMaxPagesAndDepth(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxPages = 5; nt.MaxDepth = 1 })
	seed := dispatch(t, s, limits)[0]
	var links []string
	for i := range 20 {
		links = append(links, fmt.Sprintf("http://example.test/p%d", i))
	}
	if a := apply(t, s, ok(seed, links...)); a.Discovered != 4 {
		t.Fatalf("discovered = %d, want 4 (max_pages 5 incl. seed)", a.Discovered)
	}
	jobs := dispatch(t, s, limits)
	// Depth-1 pages link further, but max_depth 1 admits nothing deeper.
	var rs []store.Result
	for _, j := range jobs {
		rs = append(rs, ok(j, "http://example.test/deeper"))
	}
	if a := apply(t, s, rs...); a.Discovered != 0 {
		t.Fatalf("discovered at depth 2 = %d, want 0", a.Discovered)
	}
	if got := loadTarget(t, s, tg.ID); got.URLsTotal != 5 || got.State != store.TargetDone {
		t.Fatalf("target = %+v, want 5 urls and done", got)
	}
}

func TestPacedHostHasOneInFlight(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.PerHostRPS = 2 }) // 500 ms
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://example.test/a", "http://example.test/b"))
	start := time.Now()
	var got []store.Job
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, "next dispatch", func() bool {
		got = dispatch(t, s, limits)
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Fatalf("paced host dispatched %d at once, want 1", len(got))
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("second dispatch after %v, want about 500ms after the first fetch started", waited)
	}
	if more := dispatch(t, s, limits); len(more) != 0 {
		t.Fatalf("dispatched %d while one is in flight, want 0", len(more))
	}
}

func TestLeaseExpiryRequeues(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	newTarget(t, s, "http://example.test/", nil)
	lim := limits
	lim.Lease = 50 * time.Millisecond
	before := time.Now()
	j := dispatch(t, s, lim)[0]
	// The job carries its lease's end, so that a crawler can skip it once the URL is reaped.
	if j.LeaseUntil.Before(before.Add(lim.Lease-time.Second)) || j.LeaseUntil.After(time.Now().Add(lim.Lease+time.Second)) {
		t.Errorf("LeaseUntil = %v, want about %v after dispatch (%v)", j.LeaseUntil, lim.Lease, before)
	}
	time.Sleep(100 * time.Millisecond)
	n, err := s.ReapLeases(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("ReapLeases = %d, %v; want 1", n, err)
	}
	again := dispatch(t, s, lim)
	if len(again) != 1 || again[0].URLID != j.URLID || again[0].Dispatch != 2 {
		t.Fatalf("redispatch = %+v, want the same URL with dispatch 2", again)
	}
	// The late result of the first dispatch still counts, once.
	apply(t, s, ok(j))
	if a := apply(t, s, ok(again[0])); a.Duplicates != 1 {
		t.Fatalf("second result = %+v, want a duplicate", a)
	}
}

func TestConcurrentAppliesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxPages = 1000; nt.PerHostRPS = 0 })
	seed := dispatch(t, s, limits)[0]
	var links []string
	for i := range 200 {
		links = append(links, fmt.Sprintf("http://example.test/p%d", i))
	}
	apply(t, s, ok(seed, links...))
	jobs := dispatch(t, s, limits)
	if len(jobs) != 100 {
		t.Fatalf("dispatched %d, want 100 (host cap)", len(jobs))
	}
	// Two processors apply overlapping batches, in opposite orders, each linking to new pages.
	errc := make(chan error, 2)
	for w := range 2 {
		go func() {
			var rs []store.Result
			for i := range jobs {
				j := jobs[i]
				if w == 1 {
					j = jobs[len(jobs)-1-i]
				}
				rs = append(rs, ok(j, fmt.Sprintf("http://example.test/n%d", i)))
			}
			_, err := s.ApplyResults(context.Background(), rs, policy)
			errc <- err
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("concurrent apply: %v", err)
		}
	}
	got := loadTarget(t, s, tg.ID)
	if got.URLsDone != 101 || got.URLsTotal != 301 {
		t.Fatalf("target = done %d total %d, want 101 and 301", got.URLsDone, got.URLsTotal)
	}
}

// A result whose URL is not the leased URL's (a bug or a forged message) fails its batch with
// ErrURLMismatch and stores nothing: a page is only ever stored under the URL that was leased.
func TestApplyRefusesAResultForAnotherURL(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	newTarget(t, s, "http://example.test/", nil)
	seed := dispatch(t, s, limits)[0]
	forged := ok(seed)
	forged.URL = "http://evil.test/pretend"
	_, err := s.ApplyResults(t.Context(), []store.Result{forged}, policy)
	if !errors.Is(err, store.ErrURLMismatch) || store.Transient(err) {
		t.Fatalf("ApplyResults(forged) = %v (transient %v), want a permanent ErrURLMismatch", err, store.Transient(err))
	}
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var pages int
	if err := c.QueryRow(t.Context(), `SELECT count(*) FROM pages`).Scan(&pages); err != nil || pages != 0 {
		t.Fatalf("pages stored = %d (%v), want none", pages, err)
	}
	if a := apply(t, s, ok(seed)); a.Applied != 1 {
		t.Fatalf("the genuine result afterwards: %+v, want applied", a)
	}
}

// A batch locks its target only after writing its pages, so the target's settings can change
// between its first read and its lock. The batch must then start over with the new settings:
// here max_depth drops to 0 while the seed's result waits for the target's row, and the seed's
// links must not enter the frontier.
func TestApplyStartsOverWhenTheTargetChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://changed.test/", func(nt *target.Spec) { nt.MaxDepth = 5 })
	seed := dispatch(t, s, limits)[0]

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT id FROM targets WHERE id = $1 FOR NO KEY UPDATE`, tg.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var got store.Applied
	go func() {
		var err error
		got, err = s.ApplyResults(context.Background(), []store.Result{ok(seed, "http://changed.test/a", "http://changed.test/b")}, policy)
		done <- err
	}()
	// Wait until the batch has written its page and waits for the target's row.
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "the batch to wait for the target's lock", func() bool {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if _, err := tx.Exec(ctx, `UPDATE targets SET max_depth = 0 WHERE id = $1`, tg.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got.Applied != 1 || got.Discovered != 0 {
		t.Errorf("applied %+v, want the seed applied and no link discovered (max_depth is 0 now)", got)
	}
	after := loadTarget(t, s, tg.ID)
	if after.URLsTotal != 1 || after.URLsDone != 1 || after.State != store.TargetDone {
		t.Errorf("target = total %d done %d state %s, want 1, 1, done", after.URLsTotal, after.URLsDone, after.State)
	}
	var pages int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pages WHERE target_id = $1`, tg.ID).Scan(&pages); err != nil || pages != 1 {
		t.Errorf("pages = %d (%v), want the seed's page once", pages, err)
	}
}

// TestNoFollowPageLinksAreEdgesOnly applies a page that says nofollow: its links to known URLs
// are recorded as edges, but none of its links joins the frontier, and the target finishes
// without them.
func TestNoFollowPageLinksAreEdgesOnly(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	seed := dispatch(t, s, limits)[0]
	if a := apply(t, s, ok(seed, "http://example.test/a", "http://example.test/b")); a.Discovered != 2 {
		t.Fatalf("seed discovered %d, want 2", a.Discovered)
	}
	jobs := dispatch(t, s, limits)
	if len(jobs) != 2 {
		t.Fatalf("dispatch = %+v, want a and b", jobs)
	}
	nofollow := ok(jobs[0], "http://example.test/c", "http://example.test/b", "http://example.test/")
	nofollow.NoFollow = true
	if a := apply(t, s, nofollow, ok(jobs[1])); a.Applied != 2 || a.Discovered != 0 {
		t.Fatalf("applied = %+v, want 2 applied and nothing discovered from the nofollow page", a)
	}
	got := loadTarget(t, s, tg.ID)
	if got.State != store.TargetDone || got.URLsTotal != 3 || got.URLsDone != 3 {
		t.Fatalf("target = %+v, want done with the 3 URLs the nofollow page did not add to", got)
	}
	db, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(t.Context())
	rows, _ := db.Query(t.Context(), `SELECT u.url FROM links l JOIN urls u ON u.id = l.to_url_id WHERE l.from_url_id = $1 ORDER BY u.url`, nofollow.URLID)
	edges, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"http://example.test/", "http://example.test/b"}, edges); diff != "" {
		t.Errorf("edges of the nofollow page (-want +got):\n%s", diff)
	}
}

// site crawls a target whose seed links to n pages; page i gets status statuses[i%len],
// size 100+i and content type text/html or, for every third page, application/pdf.
// It returns the target and every URL id by URL.
func site(t *testing.T, s *store.Store, host string, n int, statuses ...int) (store.Target, map[string]int64) {
	t.Helper()
	if len(statuses) == 0 {
		statuses = []int{200}
	}
	tg := newTarget(t, s, "http://"+host+"/", func(nt *target.Spec) {
		nt.MaxPages = n + 1
		nt.MaxAttempts = 1
	})
	ids := map[string]int64{}
	seed := dispatch(t, s, limits)
	if len(seed) != 1 {
		t.Fatalf("seed dispatch = %d jobs", len(seed))
	}
	var links []string
	for i := range n {
		links = append(links, fmt.Sprintf("http://%s/p%03d", host, i))
	}
	r := ok(seed[0], links...)
	r.ContentHash = "seed"
	r.ContentType = "text/html"
	apply(t, s, r)
	ids[seed[0].URL] = seed[0].URLID
	crawlOut(t, s, func(j store.Job) store.Result {
		var i int
		if _, err := fmt.Sscanf(j.URL, "http://"+host+"/p%d", &i); err != nil {
			t.Fatalf("unexpected job %s", j.URL)
		}
		ids[j.URL] = j.URLID
		r := ok(j, "http://"+host+"/")
		r.Status = statuses[i%len(statuses)]
		r.Size = 100 + i
		r.ContentHash = fmt.Sprintf("h%d", i)
		r.ContentType = "text/html; charset=utf-8"
		if i%3 == 0 {
			r.ContentType = "application/PDF"
		}
		r.Text = fmt.Sprintf("page number %d about %s", i, []string{"apples", "pears", "plums"}[i%3])
		r.StartedAt = time.Now().Add(time.Duration(i) * time.Millisecond)
		return r
	})
	if got := loadTarget(t, s, tg.ID); got.Pending() != 0 {
		t.Fatalf("site %s not finished: %+v", host, got)
	}
	indexAll(t, s)
	return tg, ids
}

// crawlOut dispatches and applies until nothing is left to dispatch, with result making each
// job's result.
func crawlOut(t *testing.T, s *store.Store, result func(store.Job) store.Result) {
	t.Helper()
	for {
		jobs := dispatch(t, s, limits)
		if len(jobs) == 0 {
			return
		}
		rs := make([]store.Result, 0, len(jobs))
		for _, j := range jobs {
			rs = append(rs, result(j))
		}
		apply(t, s, rs...)
	}
}

func conn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

func count(t *testing.T, c *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func linkURLs(ls []store.LinkRow) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.URL)
	}
	slices.Sort(out)
	return out
}

// The dashboard migration rolls back to the pipeline-core schema and forward again, keeping
// the targets' counters exact: a cancelled URL counts as failed in the old schema.
func TestDashboardMigrationDownAndUp(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	apply(t, s, ok(dispatch(t, s, limits)[0], "http://example.test/a", "http://example.test/b"))
	if _, err := s.CancelTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateDownTo(t.Context(), s, 1); err != nil {
		t.Fatalf("down to 1: %v", err)
	}
	c := conn(t, dsn)
	if got := count(t, c, `SELECT urls_failed FROM targets WHERE id = $1`, tg.ID); got != 2 {
		t.Fatalf("after down: failed = %d, want 2 (the cancelled URLs)", got)
	}
	if got := count(t, c, `SELECT count(*) FROM urls WHERE state = 'failed'`); got != 2 {
		t.Fatalf("after down: %d failed URLs, want 2", got)
	}
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := loadTarget(t, s, tg.ID); got.URLsDone != 1 || got.URLsFailed != 2 || got.URLsCancelled != 0 {
		t.Fatalf("after up: %+v", got)
	}
}
