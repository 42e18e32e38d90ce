package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// TestRobotsAndCrawlDelayAcrossThreeCrawlers crawls a site whose robots.txt disallows one page
// and sets a Crawl-delay, with three crawler replicas and two processors, the target itself
// unpaced (per_host_rps 0): robots.txt is fetched once for everyone, the disallowed page is
// never requested and is failed with class robots, and the site measures every pair of
// consecutive requests (robots.txt included) at least the Crawl-delay apart.
func TestRobotsAndCrawlDelayAcrossThreeCrawlers(t *testing.T) {
	t.Parallel()
	const delay = 250 * time.Millisecond
	disallowed := testsite.PagePath(3)
	site := testsite.New(testsite.Options{Pages: 24, LinksPerPage: 5,
		RobotsTxt: "User-agent: *\nDisallow: " + disallowed + "$\nCrawl-delay: 0.25\n"})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(3, 2)
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 0, "max_depth": 100})
	st := sys.WaitDone(id, 3*time.Minute)

	if n := site.RobotsHits(); n != 1 {
		t.Errorf("robots.txt fetched %d times by 3 crawlers, want once", n)
	}
	hits := site.Hits()
	if hits[disallowed] != 0 {
		t.Errorf("%s is disallowed but was fetched %d times", disallowed, hits[disallowed])
	}
	failed := query[string](t, sys.DSN, `SELECT url || ' ' || coalesce(error_class, '') FROM urls WHERE target_id = $1 AND state = 'failed'`, id)
	if want := []string{site.URL() + disallowed + " robots"}; !slices.Equal(failed, want) {
		t.Errorf("failed URLs = %q, want %q", failed, want)
	}
	for path, n := range hits {
		if n != 1 {
			t.Errorf("%s fetched %d times, want once", path, n)
		}
	}
	stored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, id)
	expected := site.ExpectedURLs()
	for _, u := range stored {
		if !slices.Contains(expected, u) || strings.HasSuffix(u, disallowed) {
			t.Errorf("stored %s, which is not an allowed page of the site", u)
		}
	}
	if int64(len(stored)) != st.Fetched || st.Failed != 1 || len(stored) < 10 {
		t.Errorf("stored %d pages; status %+v: want every allowed reachable page and one failure", len(stored), st)
	}
	reqs := site.Requests()
	var minGap time.Duration
	for i := 1; i < len(reqs); i++ {
		if gap := reqs[i].At.Sub(reqs[i-1].At); i == 1 || gap < minGap {
			minGap = gap
		}
	}
	const slack = 10 * time.Millisecond // the start is stamped by the crawler just before sending
	if minGap < delay-slack {
		t.Errorf("minimum spacing between %d requests = %s, want >= Crawl-delay %s", len(reqs), minGap, delay)
	}
	t.Logf("Crawl-delay %s, 3 crawlers: %d requests (robots.txt included), minimum spacing %s, %d pages stored, %d failed by robots",
		delay, len(reqs), minGap, len(stored), len(failed))
}

// TestRetryAfterHoldsTheWholeHost: a 503 with Retry-After on one target's page holds back every
// URL of that host, whichever target, processor or crawler replica: a second target's seed on
// the same host, created once the backoff is stored, is requested no sooner than Retry-After
// after the 503 was sent.
func TestRetryAfterHoldsTheWholeHost(t *testing.T) {
	t.Parallel()
	const retryAfter = 2 * time.Second
	var mu sync.Mutex
	var busySent time.Time
	arrivals := map[string][]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		arrivals[r.URL.Path] = append(arrivals[r.URL.Path], now)
		first := r.URL.Path == "/busy" && busySent.IsZero()
		if first {
			busySent = now
		}
		mu.Unlock()
		switch {
		case first:
			w.Header().Set("Retry-After", "2")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case r.URL.Path == "/busy" || r.URL.Path == "/other":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><head><title>ok</title></head><body>ok</body></html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sys := NewSystem(t)
	sys.StartAll(3, 2)
	first := createTarget(t, sys, map[string]any{"seed_url": srv.URL + "/busy", "per_host_rps": 0})
	testenv.Eventually(t, time.Minute, 20*time.Millisecond, "the host's backoff to be stored", func() bool {
		return len(query[time.Time](t, sys.DSN, `SELECT backoff_until FROM hosts WHERE backoff_until IS NOT NULL`)) == 1
	})
	second := createTarget(t, sys, map[string]any{"seed_url": srv.URL + "/other", "per_host_rps": 0})
	sys.WaitDone(first, time.Minute)
	sys.WaitDone(second, time.Minute)

	mu.Lock()
	defer mu.Unlock()
	if len(arrivals["/other"]) != 1 || len(arrivals["/busy"]) != 2 {
		t.Fatalf("requests: %d of /other, %d of /busy; want 1 and 2 (503, then 200)", len(arrivals["/other"]), len(arrivals["/busy"]))
	}
	const slack = 10 * time.Millisecond // Retry-After is counted from the fetch start, stamped before sending
	for _, p := range []string{"/other", "/busy"} {
		at := arrivals[p][len(arrivals[p])-1]
		if gap := at.Sub(busySent); gap < retryAfter-slack {
			t.Errorf("%s requested %s after the 503, want >= Retry-After %s", p, gap, retryAfter)
		} else {
			t.Logf("%s requested %s after the 503 with Retry-After %s", p, gap.Round(time.Millisecond), retryAfter)
		}
	}
}

// TestIgnoreRobotsSwitch: with TRAWL_IGNORE_ROBOTS=true a site that disallows everything is
// crawled anyway and robots.txt is never requested; with the default, nothing but robots.txt
// is requested and the seed fails with class robots.
func TestIgnoreRobotsSwitch(t *testing.T) {
	t.Parallel()
	for _, ignore := range []bool{true, false} {
		site := testsite.New(testsite.Options{Pages: 5, LinksPerPage: 2, RobotsTxt: "User-agent: *\nDisallow: /\n"})
		defer site.Close()
		var env []string
		if ignore {
			env = append(env, "TRAWL_IGNORE_ROBOTS=true")
		}
		sys := NewSystem(t, env...)
		sys.StartAll(1, 1)
		id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 0})
		st := sys.WaitDone(id, time.Minute)
		switch {
		case ignore && (site.RobotsHits() != 0 || st.Fetched != 5 || st.Failed != 0):
			t.Errorf("ignoring robots: robots.txt hits %d, status %+v; want 0 hits and 5 pages fetched", site.RobotsHits(), st)
		case !ignore && (site.RobotsHits() != 1 || site.TotalHits() != 0 || st.Failed != 1):
			t.Errorf("obeying robots: robots.txt hits %d, page hits %d, status %+v; want 1, 0 and the seed failed",
				site.RobotsHits(), site.TotalHits(), st)
		}
	}
}

// TestRobotsTxtWithAPartialBOM: a robots.txt that starts with the first two bytes of a UTF-8
// byte-order mark still has its first group obeyed, through the whole pipeline: the processor
// stores the file cleaned to valid UTF-8 (the two bytes become U+FFFD) and parses what it
// stored.
func TestRobotsTxtWithAPartialBOM(t *testing.T) {
	t.Parallel()
	crawlObeyingRobots(t, "\xef\xbbUser-agent: *\nDisallow: %s$\n")
}

// crawlObeyingRobots crawls a six-page site whose robots.txt is robotsTxt with the path of page
// 2 in place of %s, checks that page 2 was never fetched (5 pages stored, 1 failed) and
// returns the system and that path.
func crawlObeyingRobots(t *testing.T, robotsTxt string) (*System, string) {
	t.Helper()
	disallowed := testsite.PagePath(2)
	site := testsite.New(testsite.Options{Pages: 6, LinksPerPage: 3, RobotsTxt: fmt.Sprintf(robotsTxt, disallowed)})
	t.Cleanup(site.Close)
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 0, "max_depth": 100})
	st := sys.WaitDone(id, time.Minute)
	if site.Hits()[disallowed] != 0 || st.Failed != 1 || st.Fetched != 5 {
		t.Errorf("%s fetched %d times; status %+v; want it never fetched, 5 pages and 1 failure", disallowed, site.Hits()[disallowed], st)
	}
	return sys, disallowed
}

// TestHostileRobotsTxt: a robots.txt with NUL bytes and invalid UTF-8 is stored (cleaned) and
// obeyed, not rejected by Postgres.
func TestHostileRobotsTxt(t *testing.T) {
	t.Parallel()
	sys, disallowed := crawlObeyingRobots(t, "# junk \x00\xff\xfe\x00\nUser-agent: *\nDisallow: %s$\n")
	bodies := query[string](t, sys.DSN, `SELECT robots_body FROM hosts WHERE robots_body IS NOT NULL`)
	if len(bodies) != 1 || !strings.Contains(bodies[0], "Disallow: "+disallowed) || strings.ContainsRune(bodies[0], 0) {
		t.Errorf("stored robots bodies = %q, want the cleaned file", bodies)
	}
}
