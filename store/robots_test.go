package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

func robotsLimits() store.DispatchLimits {
	lim := limits
	lim.Robots = &process.RobotsCache{}
	return lim
}

func dispatchRobots(t *testing.T, s *store.Store) []store.RobotsJob {
	t.Helper()
	jobs, err := s.DispatchRobots(t.Context(), 100, time.Minute)
	if err != nil {
		t.Fatalf("DispatchRobots: %v", err)
	}
	return jobs
}

func applyRobots(t *testing.T, s *store.Store, pol process.Policy, r store.RobotsResult) store.RobotsApplied {
	t.Helper()
	out, err := s.ApplyRobots(t.Context(), r, pol)
	if err != nil {
		t.Fatalf("ApplyRobots: %v", err)
	}
	return out
}

func hostRow(t *testing.T, dsn string) (crawlDelay, attempts int, status *int) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(),
		`SELECT crawl_delay_ms, robots_attempts, robots_status FROM hosts WHERE host = 'example.test'`).Scan(&crawlDelay, &attempts, &status); err != nil {
		t.Fatal(err)
	}
	return crawlDelay, attempts, status
}

// TestRobotsHoldsThenFilters: a host's URLs wait for its robots.txt, which is fetched once (one
// lease for every scheduler); a disallowed URL is failed with class robots, never dispatched;
// Crawl-delay becomes the host's spacing.
func TestRobotsHoldsThenFilters(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	private := newTarget(t, s, "http://example.test/private/a", nil)
	public := newTarget(t, s, "http://example.test/ok", nil)
	lim := robotsLimits()

	if jobs := dispatch(t, s, lim); len(jobs) != 0 {
		t.Fatalf("dispatch before robots.txt = %+v, want nothing", jobs)
	}
	rj := dispatchRobots(t, s)
	if len(rj) != 1 || rj[0].URL != "http://example.test/robots.txt" || rj[0].Host != "example.test" {
		t.Fatalf("robots jobs = %+v, want one for example.test", rj)
	}
	if again := dispatchRobots(t, s); len(again) != 0 {
		t.Fatalf("second robots dispatch = %+v, want nothing (leased)", again)
	}
	out := applyRobots(t, s, policy, store.RobotsResult{Host: "example.test", Status: 200, Agent: "trawlbot",
		Body: "User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n", StartedAt: time.Now().Add(-time.Minute)})
	if !out.Outcome.Known || out.Outcome.CrawlDelayMS != 2000 {
		t.Fatalf("outcome = %+v, want known with a 2000 ms crawl delay", out.Outcome)
	}
	if delay, _, _ := hostRow(t, dsn); delay != 2000 {
		t.Fatalf("crawl_delay_ms = %d, want 2000", delay)
	}
	// The host is paced now (one URL per dispatch): the private seed comes first and is failed
	// instead of dispatched, finishing its target; the public one follows. (The robots fetch
	// paced the host from the database's now, not from its StartedAt: skip the wait.)
	makeDue(t, dsn)
	var got []store.Job
	for range 3 {
		got = append(got, dispatch(t, s, lim)...)
	}
	if len(got) != 1 || got[0].TargetID != public.ID {
		t.Fatalf("dispatched %+v, want only the public seed", got)
	}
	tg := loadTarget(t, s, private.ID)
	if tg.State != store.TargetDone || tg.URLsFailed != 1 {
		t.Fatalf("private target = %s with %d failed, want done with 1 failed", tg.State, tg.URLsFailed)
	}
	failed, err := s.Failed(t.Context(), store.URLFilter{TargetID: private.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed.Rows) != 1 || failed.Rows[0].ErrorClass != store.RobotsErrorClass {
		t.Fatalf("failed URLs = %+v, want the seed with class robots", failed.Rows)
	}
	if rj := dispatchRobots(t, s); len(rj) != 0 {
		t.Fatalf("robots jobs with a fresh file = %+v, want none", rj)
	}
}

// TestRobotsStatuses: a 4xx allows everything; a 5xx holds the host and retries, and after the
// attempt limit fails the held URLs with class robots.
func TestRobotsStatuses(t *testing.T) {
	t.Parallel()
	t.Run("404 allows all", func(t *testing.T) {
		t.Parallel()
		s, _ := testenv.Store(t)
		newTarget(t, s, "http://example.test/private/a", nil)
		dispatchRobots(t, s)
		out := applyRobots(t, s, policy, store.RobotsResult{Host: "example.test", Status: 404, StartedAt: time.Now()})
		if !out.Outcome.Known {
			t.Fatalf("404 outcome = %+v, want known", out.Outcome)
		}
		if jobs := dispatch(t, s, robotsLimits()); len(jobs) != 1 {
			t.Fatalf("dispatch after a 404 robots.txt = %+v, want the seed", jobs)
		}
	})
	t.Run("503 holds, retries, then fails", func(t *testing.T) {
		t.Parallel()
		s, dsn := testenv.Store(t)
		tg := newTarget(t, s, "http://example.test/", nil)
		pol := policy
		pol.RobotsMaxAttempts = 2
		for attempt := 1; attempt <= 2; attempt++ {
			var rj []store.RobotsJob
			testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, "robots retry to be due", func() bool {
				rj = dispatchRobots(t, s)
				return len(rj) == 1
			})
			out := applyRobots(t, s, pol, store.RobotsResult{Host: "example.test", Status: 503, StartedAt: time.Now()})
			if out.Outcome.Known || out.Outcome.RetryAt.IsZero() {
				t.Fatalf("503 outcome = %+v, want a retry", out.Outcome)
			}
			_, attempts, status := hostRow(t, dsn)
			if attempts != attempt || status == nil || *status != 503 {
				t.Fatalf("host after attempt %d: attempts %d, status %v", attempt, attempts, status)
			}
			if jobs := dispatch(t, s, robotsLimits()); len(jobs) != 0 {
				t.Fatalf("dispatch with robots.txt unavailable = %+v, want nothing", jobs)
			}
			if attempt == 2 && (!out.Outcome.FailHeld || out.Failed != 1 || len(out.Finished) != 1) {
				t.Fatalf("last attempt = %+v, want the held seed failed and the target finished", out)
			}
		}
		got := loadTarget(t, s, tg.ID)
		if got.State != store.TargetDone || got.URLsFailed != 1 {
			t.Fatalf("target = %s, %d failed; want done, 1 failed", got.State, got.URLsFailed)
		}
	})
}

// TestDispatchWithoutRobotsIgnoresThem: with no filter (robots turned off), URLs go at once.
func TestDispatchWithoutRobotsIgnoresThem(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	newTarget(t, s, "http://example.test/", nil)
	if jobs := dispatch(t, s, limits); len(jobs) != 1 {
		t.Fatalf("dispatch = %+v, want the seed", jobs)
	}
}
