package store_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestSitemapLifecycle: a known robots.txt queues the target's sitemaps (only for targets with
// sitemaps on); the target is not done while they are pending; a sitemap's URLs join the
// frontier in scope and within max_pages; an index adds its children once; a duplicate result
// changes nothing.
func TestSitemapLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.Sitemaps = true; nt.MaxPages = 4 })
	off := newTarget(t, s, "http://example.test/off", nil) // sitemaps off
	lim := robotsLimits()
	dispatchRobots(t, s)
	applyRobots(t, s, policy, store.RobotsResult{Host: "example.test", URL: "http://example.test/robots.txt", Status: 200,
		Body: "User-agent: *\nAllow: /\nSitemap: http://example.test/index.xml\n", Agent: "trawlbot", StartedAt: time.Now().Add(-time.Minute)})

	// Both seeds finish; the sitemap target stays active while its sitemaps are pending.
	for _, j := range dispatch(t, s, lim) {
		apply(t, s, ok(j))
	}
	if got := loadTarget(t, s, off.ID); got.State != store.TargetDone {
		t.Fatalf("target without sitemaps = %s, want done", got.State)
	}
	if got := loadTarget(t, s, tg.ID); got.State != store.TargetActive {
		t.Fatalf("target with pending sitemaps = %s, want active", got.State)
	}
	jobs, err := s.DispatchSitemaps(t.Context(), 10, time.Minute, true)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, j := range jobs {
		if j.TargetID != tg.ID {
			t.Fatalf("sitemap job %+v for a target with sitemaps off", j)
		}
		urls = append(urls, j.URL)
	}
	if diff := cmp.Diff([]string{"http://example.test/index.xml", "http://example.test/sitemap.xml"}, urls); diff != "" {
		t.Fatalf("sitemap jobs (-want +got):\n%s", diff)
	}
	index, plain := jobs[0], jobs[1]
	a, err := s.ApplySitemap(t.Context(), store.SitemapResult{ID: index.ID, TargetID: tg.ID, Status: 200,
		Sitemaps: []string{"http://example.test/child.xml", "http://example.test/sitemap.xml"}}, policy)
	if err != nil || a.State != store.SitemapDone || a.Children != 1 {
		t.Fatalf("apply index = %+v, %v; want done with one new child", a, err)
	}
	a, err = s.ApplySitemap(t.Context(), store.SitemapResult{ID: plain.ID, TargetID: tg.ID, Status: 200, URLs: []string{
		"http://example.test/a", "http://other.test/x", "http://example.test/", "http://example.test/b",
		"http://example.test/c", "http://example.test/d"}}, policy)
	if err != nil || a.Discovered != 3 {
		t.Fatalf("apply urlset = %+v, %v; want 3 discovered (max_pages 4, seed known, other host out of scope)", a, err)
	}
	if again, err := s.ApplySitemap(t.Context(), store.SitemapResult{ID: plain.ID, TargetID: tg.ID, Status: 200,
		URLs: []string{"http://example.test/z"}}, policy); err != nil || !again.Duplicate {
		t.Fatalf("duplicate apply = %+v, %v; want a duplicate", again, err)
	}
	child, err := s.DispatchSitemaps(t.Context(), 10, time.Minute, true)
	if err != nil || len(child) != 1 || child[0].URL != "http://example.test/child.xml" {
		t.Fatalf("child dispatch = %+v, %v", child, err)
	}
	a, err = s.ApplySitemap(t.Context(), store.SitemapResult{ID: child[0].ID, TargetID: tg.ID, Status: 404}, policy)
	if err != nil || a.State != store.SitemapFailed {
		t.Fatalf("apply 404 child = %+v, %v; want failed", a, err)
	}
	for _, j := range dispatch(t, s, lim) {
		apply(t, s, ok(j))
	}
	got := loadTarget(t, s, tg.ID)
	if got.State != store.TargetDone || got.URLsTotal != 4 || got.URLsDone != 4 {
		t.Fatalf("target = %s with %d/%d done, want done with 4/4", got.State, got.URLsDone, got.URLsTotal)
	}
}

// TestSitemapInFlightHoldsPacedHost: on a paced host, a sitemap fetch in flight is the host's
// one fetch in flight: no page is dispatched until its result is applied, even once the host's
// next_fetch_at has passed.
func TestSitemapInFlightHoldsPacedHost(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.Sitemaps = true; nt.PerHostRPS = 1 })
	dispatchRobots(t, s)
	applyRobots(t, s, policy, store.RobotsResult{Host: "example.test", URL: "http://example.test/robots.txt", Status: 404,
		StartedAt: time.Now().Add(-time.Minute)})
	due := func() {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), `UPDATE hosts SET next_fetch_at = now() - interval '1 second'`); err != nil {
			t.Fatal(err)
		}
	}
	due()
	sm, err := s.DispatchSitemaps(t.Context(), 10, time.Minute, true)
	if err != nil || len(sm) != 1 {
		t.Fatalf("DispatchSitemaps = %+v, %v; want /sitemap.xml", sm, err)
	}
	due()
	if jobs := dispatch(t, s, robotsLimits()); len(jobs) != 0 {
		t.Fatalf("dispatch with a sitemap in flight on a paced host = %+v, want nothing", jobs)
	}
	if _, err := s.ApplySitemap(t.Context(), store.SitemapResult{ID: sm[0].ID, TargetID: tg.ID, Status: 404,
		StartedAt: time.Now().Add(-time.Minute)}, policy); err != nil {
		t.Fatal(err)
	}
	due() // the sitemap's fetch paces the host from the database's now, not from StartedAt
	if jobs := dispatch(t, s, robotsLimits()); len(jobs) != 1 {
		t.Fatalf("dispatch after the sitemap = %+v, want the seed", jobs)
	}
}
