package store_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func editTarget(t *testing.T, s *store.Store, id int64, p target.Patch) store.Target {
	t.Helper()
	tg, err := s.UpdateTarget(t.Context(), id, p.Apply)
	if err != nil {
		t.Fatalf("UpdateTarget(%+v): %v", p, err)
	}
	return tg
}

func jobURLs(jobs []store.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.URL)
	}
	slices.Sort(out)
	return out
}

// An edit changes what it names and nothing else, and a changed rate reaches the hosts' spacing
// in the same transaction.
func TestUpdateTargetRateReachesHosts(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	tg := newTarget(t, s, "http://rate.test/", func(nt *target.Spec) { nt.PerHostRPS = 1 })
	interval := func() int64 {
		return count(t, c, `SELECT min_interval_ms FROM hosts WHERE host = 'rate.test'`)
	}
	if got := interval(); got != 1000 {
		t.Fatalf("interval at 1 req/s = %d ms", got)
	}
	got := editTarget(t, s, tg.ID, target.Patch{PerHostRPS: new(4.0), Name: new("renamed")})
	want := tg.Spec
	want.PerHostRPS, want.Name = 4, "renamed"
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Fatalf("spec after edit (-want +got):\n%s", diff)
	}
	if got := interval(); got != 250 {
		t.Fatalf("interval after the edit to 4 req/s = %d ms, want 250", got)
	}
	editTarget(t, s, tg.ID, target.Patch{PerHostRPS: new(0.0)})
	if got := interval(); got != 0 {
		t.Fatalf("interval after the edit to unlimited = %d ms, want 0", got)
	}
	if got := loadTarget(t, s, tg.ID); got.PerHostRPS != 0 || got.Name != "renamed" {
		t.Fatalf("stored target = %+v", got.Spec)
	}
}

// A narrowed scope stops dispatching the queued URLs that fall out of it: Dispatch cancels them
// (out_of_scope), they are kept, and a widened scope queues them again.
func TestUpdateTargetNarrowedScope(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	tg := newTarget(t, s, "http://scope.test/", func(nt *target.Spec) { nt.PerHostRPS = 0 })
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://scope.test/docs/a", "http://scope.test/docs/b", "http://scope.test/blog/c"))

	editTarget(t, s, tg.ID, target.Patch{Include: new(`/docs/`), Exclude: new(`/b$`)})
	if n := count(t, c, `SELECT count(*) FROM urls WHERE target_id = $1 AND state = 'queued'`, tg.ID); n != 3 {
		t.Fatalf("queued after the edit = %d, want the 3 still there until they are due", n)
	}
	jobs := dispatch(t, s, limits)
	if diff := cmp.Diff([]string{"http://scope.test/docs/a"}, jobURLs(jobs)); diff != "" {
		t.Fatalf("dispatched (-want +got):\n%s", diff)
	}
	if n := count(t, c, `SELECT count(*) FROM urls WHERE target_id = $1 AND state = 'cancelled' AND error_class = 'out_of_scope'
		AND dispatches = 0`, tg.ID); n != 2 {
		t.Fatalf("URLs cancelled out of scope = %d, want 2, kept and never counted as dispatched", n)
	}
	after := loadTarget(t, s, tg.ID)
	if after.URLsTotal != 4 || after.URLsCancelled != 2 || after.State != store.TargetActive {
		t.Fatalf("target = total %d cancelled %d state %s, want 4, 2, active", after.URLsTotal, after.URLsCancelled, after.State)
	}
	// Wider again: the set-aside URLs are queued and checked once more as they come due.
	editTarget(t, s, tg.ID, target.Patch{Exclude: new("")})
	jobs = dispatch(t, s, limits)
	if diff := cmp.Diff([]string{"http://scope.test/docs/b"}, jobURLs(jobs)); diff != "" {
		t.Fatalf("dispatched after widening (-want +got):\n%s", diff)
	}
	// A lower max depth leaves out the depth-1 URLs but never the seed.
	editTarget(t, s, tg.ID, target.Patch{Include: new(""), MaxDepth: new(0)})
	if jobs := dispatch(t, s, limits); len(jobs) != 0 {
		t.Fatalf("dispatched %v beyond max depth 0", jobURLs(jobs))
	}
	if n := count(t, c, `SELECT count(*) FROM urls WHERE target_id = $1 AND state = 'cancelled' AND error_class = 'out_of_scope'`, tg.ID); n != 1 {
		t.Fatalf("URLs cancelled out of scope = %d, want the /blog/ one, queued again and cut by depth", n)
	}
}

// A lower max_pages cuts the newest queued URLs beyond it, a higher one queues them again as far
// as there is room, max_pages below what the target holds finishes it, and a re-crawl leaves the
// cut URLs alone.
func TestUpdateTargetMaxPages(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	tg := newTarget(t, s, "http://pages.test/", func(nt *target.Spec) { nt.PerHostRPS = 0 })
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://pages.test/1", "http://pages.test/2", "http://pages.test/3", "http://pages.test/4", "http://pages.test/5"))
	queued := func() []string {
		rows, err := c.Query(t.Context(), `SELECT url FROM urls WHERE target_id = $1 AND state = 'queued' ORDER BY url`, tg.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				t.Fatal(err)
			}
			out = append(out, u)
		}
		return out
	}
	editTarget(t, s, tg.ID, target.Patch{MaxPages: new(3)})
	if diff := cmp.Diff([]string{"http://pages.test/1", "http://pages.test/2"}, queued()); diff != "" {
		t.Fatalf("queued after max_pages 3 (-want +got):\n%s", diff)
	}
	// Another edit that leaves max_pages alone cuts nothing more.
	editTarget(t, s, tg.ID, target.Patch{Name: new("again")})
	if n := len(queued()); n != 2 {
		t.Fatalf("queued after an unrelated edit = %d, want 2", n)
	}
	editTarget(t, s, tg.ID, target.Patch{MaxPages: new(4)})
	if diff := cmp.Diff([]string{"http://pages.test/1", "http://pages.test/2", "http://pages.test/3"}, queued()); diff != "" {
		t.Fatalf("queued after max_pages 4 (-want +got):\n%s", diff)
	}
	done := editTarget(t, s, tg.ID, target.Patch{MaxPages: new(1)})
	if done.State != store.TargetDone || done.FinishedAt == nil || done.Pending() != 0 {
		t.Fatalf("target after max_pages 1 = %s, pending %d; want done", done.State, done.Pending())
	}
	if n := count(t, c, `SELECT count(*) FROM urls WHERE target_id = $1 AND error_class = 'max_pages'`, tg.ID); n != 5 {
		t.Fatalf("URLs cut at max_pages = %d, want 5 (kept)", n)
	}
	if _, err := s.RecrawlTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"http://pages.test/"}, queued()); diff != "" {
		t.Fatalf("queued after a re-crawl (-want +got):\n%s", diff)
	}
}

// Turning sitemaps off drops the target's queued sitemaps, so that they neither run nor hold
// the target back from done.
func TestUpdateTargetSitemapsOff(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	tg := newTarget(t, s, "http://maps.test/", func(nt *target.Spec) { nt.Sitemaps = true })
	if _, err := c.Exec(t.Context(), `INSERT INTO sitemaps (target_id, url, host) VALUES ($1, 'http://maps.test/sitemap.xml', 'maps.test')`, tg.ID); err != nil {
		t.Fatal(err)
	}
	editTarget(t, s, tg.ID, target.Patch{Sitemaps: new(false)})
	if n := count(t, c, `SELECT count(*) FROM sitemaps WHERE target_id = $1 AND state = 'failed'`, tg.ID); n != 1 {
		t.Fatalf("failed sitemaps = %d, want 1", n)
	}
}

func TestUpdateTargetRefusals(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	ctx := t.Context()
	tg := newTarget(t, s, "http://refuse.test/", nil)
	if _, err := s.UpdateTarget(ctx, tg.ID+1000, target.Patch{}.Apply); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("editing a missing target = %v, want ErrNotFound", err)
	}
	_, err := s.UpdateTarget(ctx, tg.ID, target.Patch{MaxPages: new(0), MaxAttempts: new(0)}.Apply)
	var fes target.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 2 {
		t.Errorf("a bad edit = %v, want both fields at fault", err)
	}
	moved := func(sp target.Spec) (target.Spec, error) {
		sp.SeedURL = "http://elsewhere.test/"
		return sp, nil
	}
	if _, err := s.UpdateTarget(ctx, tg.ID, moved); !errors.Is(err, store.ErrInvalidTarget) {
		t.Errorf("moving the seed = %v, want ErrInvalidTarget", err)
	}
	if got := loadTarget(t, s, tg.ID); got.Spec != tg.Spec {
		t.Errorf("refused edits changed the target: %+v", got.Spec)
	}
	if _, err := s.DeleteTarget(ctx, tg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTarget(ctx, tg.ID, target.Patch{Name: new("x")}.Apply); !errors.Is(err, store.ErrTargetDeleting) {
		t.Errorf("editing a deleting target = %v, want ErrTargetDeleting", err)
	}
}
