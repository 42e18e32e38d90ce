package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// deleteTarget deletes a target and purges it, batch URLs a step, until it is gone, and returns
// how many steps that took.
func deleteTarget(t *testing.T, s *store.Store, id int64, batch int) int {
	t.Helper()
	tg, err := s.DeleteTarget(t.Context(), id)
	if err != nil {
		t.Fatalf("DeleteTarget: %v", err)
	}
	if tg.State != store.TargetDeleting {
		t.Fatalf("DeleteTarget state = %q, want %q", tg.State, store.TargetDeleting)
	}
	return purge(t, s, id, batch)
}

// purge calls PurgeTarget until the target is gone and returns how many calls it took.
func purge(t *testing.T, s *store.Store, id int64, batch int) int {
	t.Helper()
	for steps := 1; ; steps++ {
		st, err := s.PurgeTarget(t.Context(), id, batch)
		if err != nil {
			t.Fatalf("PurgeTarget: %v", err)
		}
		if st.Done {
			return steps
		}
		if st.Rows == 0 {
			t.Fatalf("PurgeTarget made no progress at step %d and is not done", steps)
		}
	}
}

// targetRows counts a target's rows in every table that holds some.
func targetRows(t *testing.T, c *pgx.Conn, id int64) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, tb := range []string{"urls", "pages", "page_fetches", "fetch_rates", "target_hosts", "sitemaps", "page_search"} {
		m[tb] = count(t, c, `SELECT count(*) FROM `+tb+` WHERE target_id = $1`, id)
	}
	m["links"] = count(t, c, `SELECT count(*) FROM links l JOIN urls u ON u.id = l.from_url_id WHERE u.target_id = $1`, id)
	m["recrawl_requests"] = count(t, c, `SELECT count(*) FROM recrawl_requests r JOIN urls u ON u.id = r.url_id WHERE u.target_id = $1`, id)
	return m
}

// TestDeleteTargetPurgesInBatches deletes a target with rows in every table: DeleteTarget only
// marks it deleting (idempotently; no other action applies to it then), PurgeTarget removes
// its rows a bounded batch at a time and then the target, and another target keeps all of its
// rows.
func TestDeleteTargetPurgesInBatches(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	keep, _ := site(t, s, "keep.test", 5)
	gone, goneIDs := site(t, s, "gone.test", 8)
	for _, id := range []int64{keep.ID, gone.ID} {
		if _, err := c.Exec(t.Context(), `INSERT INTO sitemaps (target_id, url, host) SELECT $1, 'http://' || host || '/sitemap.xml', host FROM target_hosts WHERE target_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		var urlID int64
		if err := c.QueryRow(t.Context(), `SELECT min(id) FROM urls WHERE target_id = $1`, id).Scan(&urlID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimRecrawl(t.Context(), fmt.Sprintf("req-%d", id), urlID, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	before := targetRows(t, c, keep.ID)
	for tb, n := range targetRows(t, c, gone.ID) {
		if n == 0 {
			t.Fatalf("%s has no rows for the target to delete: the test proves nothing", tb)
		}
	}
	linksBefore := count(t, c, `SELECT count(*) FROM links`)

	for range 2 { // deleting a deleting target changes nothing
		tg, err := s.DeleteTarget(t.Context(), gone.ID)
		if err != nil || tg.State != store.TargetDeleting || tg.ID != gone.ID {
			t.Fatalf("DeleteTarget = %+v, %v; want the target, deleting", tg, err)
		}
	}
	for name, act := range map[string]func(context.Context, int64) (store.Target, error){
		"pause": s.PauseTarget, "resume": s.ResumeTarget, "cancel": s.CancelTarget, "recrawl": s.RecrawlTarget,
	} {
		if _, err := act(t.Context(), gone.ID); !errors.Is(err, store.ErrTargetDeleting) || !errors.Is(err, store.ErrTargetState) {
			t.Errorf("%s of a deleting target = %v, want ErrTargetDeleting", name, err)
		}
	}
	if n, err := s.RequeueFailedURLs(t.Context(), []int64{goneIDs["http://gone.test/"]}); err != nil || n != 0 {
		t.Errorf("RequeueFailedURLs of a deleting target = %d, %v; want 0", n, err)
	}
	if _, err := s.ClaimRecrawl(t.Context(), "req-late", goneIDs["http://gone.test/p001"], time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimRecrawl of a deleting target's URL = %v, want ErrNotFound", err)
	}
	if ids, err := s.DeletingTargets(t.Context()); err != nil || !gocmp.Equal(ids, []int64{gone.ID}) {
		t.Errorf("DeletingTargets = %v, %v; want [%d]", ids, err, gone.ID)
	}
	// A target that is not deleting is never purged.
	if st, err := s.PurgeTarget(t.Context(), keep.ID, 100); err != nil || st != (store.PurgeStep{}) {
		t.Errorf("PurgeTarget of a done target = %+v, %v; want nothing done", st, err)
	}

	// 9 URLs in batches of 2, then history, rates and sitemaps, then the target.
	for steps := 1; ; steps++ {
		st, err := s.PurgeTarget(t.Context(), gone.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows > 20 {
			t.Fatalf("step %d deleted %d rows, more than the batch allows", steps, st.Rows)
		}
		if st.Done {
			if steps < 8 {
				t.Errorf("purged in %d steps, want at least 5 batches of URLs and 3 of the rest", steps)
			}
			break
		}
		if st.Rows == 0 {
			t.Fatalf("step %d: no progress", steps)
		}
	}
	for tb, n := range targetRows(t, c, gone.ID) {
		if n != 0 {
			t.Errorf("%s still has %d rows of the deleted target", tb, n)
		}
	}
	if n := count(t, c, `SELECT count(*) FROM links`); n != before["links"] || n == linksBefore {
		t.Errorf("links left = %d (of %d), want only the kept target's %d", n, linksBefore, before["links"])
	}
	if diff := gocmp.Diff(before, targetRows(t, c, keep.ID)); diff != "" {
		t.Errorf("other target's rows changed (-before +after):\n%s", diff)
	}
	if _, err := s.Target(t.Context(), gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Target after the purge = %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteTarget(t.Context(), gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteTarget after the purge = %v, want ErrNotFound", err)
	}
	if st, err := s.PurgeTarget(t.Context(), gone.ID, 2); err != nil || !st.Done {
		t.Errorf("PurgeTarget of a gone target = %+v, %v; want Done", st, err)
	}
	if got := loadTarget(t, s, keep.ID); got.URLsTotal != keep.URLsTotal+5 || got.State != store.TargetDone {
		t.Errorf("kept target = %+v", got)
	}
}

// TestResultsOfDeletingTargetAreDropped applies results for URLs of a deleting target, and of a
// deleted one: they are dropped (counted as Dropped, nothing stored, no error, so the processor
// acks them), while a result of another target in the same batch is applied. Nothing of a
// deleting target is dispatched, and its sitemap results are duplicates.
func TestResultsOfDeletingTargetAreDropped(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	gone := newTarget(t, s, "http://gone.test/", nil)
	newTarget(t, s, "http://live.test/", nil)
	seeds := dispatch(t, s, limits)
	var goneSeed, liveSeed store.Job
	for _, j := range seeds {
		if j.TargetID == gone.ID {
			goneSeed = j
		} else {
			liveSeed = j
		}
	}
	apply(t, s, ok(goneSeed, "http://gone.test/a", "http://gone.test/b", "http://gone.test/c", "http://gone.test/d"))
	lim := limits
	lim.HostMaxInFlight = 2
	goneJobs := dispatch(t, s, lim) // two dispatched, two still queued
	if len(goneJobs) != 2 {
		t.Fatalf("dispatched %d, want 2", len(goneJobs))
	}
	var sitemapID int64
	if err := c.QueryRow(t.Context(), `INSERT INTO sitemaps (target_id, url, host, state, lease_until) VALUES ($1, 'http://gone.test/sitemap.xml', 'gone.test', 'dispatched', now() + interval '1 minute') RETURNING id`, gone.ID).Scan(&sitemapID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTarget(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	before := targetRows(t, c, gone.ID)
	counters := loadTarget(t, s, gone.ID)

	if jobs := dispatch(t, s, limits); len(jobs) != 0 {
		t.Errorf("dispatched %d jobs of a deleting target", len(jobs))
	}
	rs := []store.Result{ok(liveSeed)}
	for _, j := range goneJobs {
		rs = append(rs, ok(j, "http://gone.test/e"))
	}
	a := apply(t, s, rs...)
	if a.Applied != 1 || a.Dropped != 2 || a.Duplicates != 0 || a.Discovered != 0 {
		t.Errorf("applied a batch with a deleting target's results = %+v, want 1 applied and 2 dropped", a)
	}
	if diff := gocmp.Diff(before, targetRows(t, c, gone.ID)); diff != "" {
		t.Errorf("dropped results changed the deleting target's rows (-before +after):\n%s", diff)
	}
	if got := loadTarget(t, s, gone.ID); got.URLsDone != counters.URLsDone || got.URLsTotal != counters.URLsTotal || got.State != store.TargetDeleting {
		t.Errorf("deleting target after its results = %+v, want unchanged %+v", got, counters)
	}
	sm, err := s.ApplySitemap(t.Context(), store.SitemapResult{ID: sitemapID, TargetID: gone.ID, Status: 200,
		URLs: []string{"http://gone.test/f"}}, policy)
	if err != nil || !sm.Duplicate {
		t.Errorf("ApplySitemap for a deleting target = %+v, %v; want a duplicate", sm, err)
	}

	purge(t, s, gone.ID, 1)
	a = apply(t, s, ok(goneJobs[0]), ok(goneJobs[1]))
	if a.Dropped != 2 || a.Applied != 0 {
		t.Errorf("applied results of a deleted target = %+v, want 2 dropped", a)
	}
}

// TestDeleteLargeTargetUnderLoad deletes large targets while two processors persist results of
// them and of another target, a scheduler dispatches, reaps leases and re-crawls, a search
// indexer indexes their pages and a pruner prunes the fetch history; two deleters purge each
// target at once. Nothing may fail and Postgres may detect no deadlock (before the deleting
// state, DELETE FROM targets deadlocked with the processors' batches, issue #24); the other
// targets keep every row. TRAWL_CHAOS=full deletes 50,000 URLs five times.
func TestDeleteLargeTargetUnderLoad(t *testing.T) {
	t.Parallel()
	size, rounds := 5000, 2
	if os.Getenv("TRAWL_CHAOS") == "full" {
		size, rounds = 50000, 5
	}
	admin, dsn := testenv.Store(t)
	c := conn(t, dsn)
	// The load runs on its own pool, closed before the deadlock count is read: a backend reports
	// its statistics when it is idle or exits.
	s, err := store.Open(t.Context(), dsn, 12, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keep, _ := site(t, admin, "keep.test", 10)
	// Its fetch history is the pruner's; everything else of it must stay.
	keepRows := func() map[string]int64 {
		m := targetRows(t, c, keep.ID)
		delete(m, "page_fetches")
		return m
	}
	keepBefore := keepRows()
	live, err := admin.BulkLoadDone(t.Context(), store.BulkLoad{Name: "live", URLs: size / 5, Hosts: 10, Domain: "live.test", Unindexed: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RecrawlTarget(t.Context(), live.ID); err != nil {
		t.Fatal(err)
	}
	deadlocks := func() int64 {
		t.Helper()
		if _, err := c.Exec(t.Context(), `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		return count(t, c, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`)
	}
	deadlocksBefore := deadlocks()

	lim := store.DispatchLimits{MaxInFlight: 2000, HostMaxInFlight: 200, Hosts: 100, Lease: time.Minute}
	var applied, dropped atomic.Int64
	for round := range rounds {
		big, err := admin.BulkLoadDone(t.Context(), store.BulkLoad{Name: fmt.Sprintf("big-%d", round), URLs: size, Hosts: 20,
			Domain: fmt.Sprintf("big%d.test", round), Unindexed: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.RecrawlTarget(t.Context(), big.ID); err != nil {
			t.Fatal(err)
		}

		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		fail := func(what string, err error) {
			if err != nil && ctx.Err() == nil {
				select {
				case errs <- fmt.Errorf("%s: %w", what, err):
				default:
				}
			}
		}
		jobs := make(chan []store.Job, 8)
		wg.Go(func() { // the scheduler
			defer close(jobs)
			for ctx.Err() == nil {
				js, err := s.Dispatch(ctx, lim)
				fail("dispatch", err)
				_, err = s.ReapLeases(ctx)
				fail("reap leases", err)
				_, err = s.RequeueDueTargets(ctx)
				fail("requeue due targets", err)
				for len(js) > 0 {
					n := min(len(js), 100)
					select {
					case jobs <- js[:n]:
					case <-ctx.Done():
						return
					}
					js = js[n:]
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
		for range 2 { // two processors
			wg.Go(func() {
				for js := range jobs {
					rs := make([]store.Result, len(js))
					for i, j := range js {
						// Links to other URLs of the batch become edges (and the URLs are known).
						rs[i] = ok(j, js[(i+1)%len(js)].URL, js[(i+2)%len(js)].URL)
						rs[i].ContentHash = fmt.Sprintf("r%d-%d", round, j.URLID)
					}
					a, err := s.ApplyResults(ctx, rs, policy)
					fail("apply results", err)
					applied.Add(int64(a.Applied))
					dropped.Add(int64(a.Dropped))
				}
			})
		}
		wg.Go(func() { // the search indexer
			for ctx.Err() == nil {
				n, _, err := s.IndexPages(ctx, 100)
				fail("index pages", err)
				if n == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
		wg.Go(func() { // the pruner, pruning everything
			for ctx.Err() == nil {
				_, err := s.PruneFetches(ctx, time.Now().Add(time.Hour), 500)
				fail("prune fetches", err)
				time.Sleep(20 * time.Millisecond)
			}
		})

		// Let the load reach the big target, then delete it under the load.
		for start := applied.Load(); applied.Load() < start+int64(size/10); {
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		if _, err := s.DeleteTarget(ctx, big.ID); err != nil {
			t.Fatalf("round %d: DeleteTarget: %v", round, err)
		}
		var purgers sync.WaitGroup
		for range 2 { // two deleters
			purgers.Go(func() {
				for ctx.Err() == nil {
					st, err := s.PurgeTarget(ctx, big.ID, 500)
					fail("purge target", err)
					if st.Done || err != nil {
						return
					}
					if st.Rows == 0 {
						time.Sleep(10 * time.Millisecond)
					}
				}
			})
		}
		purgers.Wait()
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if n := count(t, c, `SELECT count(*) FROM targets WHERE id = $1`, big.ID); n != 0 {
			t.Fatalf("round %d: the target is still there", round)
		}
		if t.Failed() {
			return
		}
	}
	s.Close()
	time.Sleep(500 * time.Millisecond) // the closed backends report their statistics
	if n := deadlocks() - deadlocksBefore; n != 0 {
		t.Errorf("Postgres detected %d deadlocks", n)
	}
	if diff := gocmp.Diff(keepBefore, keepRows()); diff != "" {
		t.Errorf("another target's rows changed (-before +after):\n%s", diff)
	}
	if got := loadTarget(t, admin, live.ID); got.URLsTotal != int64(size/5) || got.State == store.TargetDeleting {
		t.Errorf("the target crawled meanwhile = %+v, want its %d URLs", got, size/5)
	}
	if n := count(t, c, `SELECT count(*) FROM pages WHERE target_id = $1`, live.ID); n != int64(size/5) {
		t.Errorf("the target crawled meanwhile has %d pages, want %d", n, size/5)
	}
	t.Logf("applied %d results, dropped %d of deleting targets", applied.Load(), dropped.Load())
}

// TestFailRecrawlLocksTheURLFirst: a deleter holds a URL (its delete then cascades to the URL's
// re-crawl requests) while FailRecrawl runs for a request of that URL. FailRecrawl must wait for
// the URL before it locks the request, as ClaimRecrawl and the cascade do; locking the request
// first, it deadlocked with the deleter.
func TestFailRecrawlLocksTheURLFirst(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	newTarget(t, s, "http://example.test/", nil)
	j := dispatch(t, s, limits)[0]
	apply(t, s, ok(j))
	if _, err := s.ClaimRecrawl(t.Context(), "req-fail", j.URLID, time.Minute); err != nil {
		t.Fatal(err)
	}
	deleter := conn(t, dsn)
	tx, err := deleter.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM urls WHERE id = $1 FOR UPDATE`, j.URLID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		changed bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		changed, err := s.FailRecrawl(t.Context(), "req-fail", 1, "not delivered")
		done <- result{changed, err}
	}()
	watcher := conn(t, dsn)
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, "FailRecrawl to wait for a lock", func() bool {
		return count(t, watcher, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	})
	// The deleter's cascade reaches the request: it must not be locked by the waiting FailRecrawl.
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM recrawl_requests WHERE request_id = 'req-fail' FOR UPDATE NOWAIT`); err != nil {
		t.Errorf("the request is locked while FailRecrawl waits for its URL: %v", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || !r.changed {
		t.Errorf("FailRecrawl = %v, %v; want it to fail the request", r.changed, r.err)
	}
}
