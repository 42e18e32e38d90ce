package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawlhq/trawl/test/testsite"
)

// pacedSite is a site of pages /p/0 … /p/{n-1}, each linking to the next links pages, so that
// the frontier stays ahead of the crawl. It records when each request arrives (as the kernel
// stamped it: rxTime) and how many run at once; slow(i) is how long page i takes to serve.
type pacedSite struct {
	*httptest.Server
	n, links int
	slow     func(i int) time.Duration

	mu       sync.Mutex
	arrivals []time.Time // page requests, not /robots.txt
	paths    []string    // theirs
	running  int
	overlap  int // the most requests running at once
}

func newPacedSite(t *testing.T, n, links int, slow func(int) time.Duration) *pacedSite {
	t.Helper()
	s := &pacedSite{n: n, links: links, slow: slow}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	testsite.StampArrivals(s.Server)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *pacedSite) serve(w http.ResponseWriter, r *http.Request) {
	now := testsite.Arrival(r) // when the request reached the server, not when the test got to read it
	s.mu.Lock()
	if r.URL.Path != "/robots.txt" {
		s.arrivals = append(s.arrivals, now)
		s.paths = append(s.paths, r.URL.Path)
	}
	s.running++
	s.overlap = max(s.overlap, s.running)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}()
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
	if err != nil || i < 0 || i >= s.n {
		http.NotFound(w, r)
		return
	}
	if s.slow != nil {
		time.Sleep(s.slow(i))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html><html><head><title>page %d</title></head><body>", i)
	for k := i + 1; k <= i+s.links && k < s.n; k++ {
		fmt.Fprintf(&b, `<a href="/p/%d">page %d</a> `, k, k)
	}
	b.WriteString("</body></html>")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// measure returns the number of page requests, the smallest gap between two consecutive
// arrivals, the rate from the second request to the last (the first is the seed, fetched
// alone), and the most requests that ran at once.
func (s *pacedSite) measure() (n int, spacing time.Duration, rate float64, overlap int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.arrivals
	for i := 1; i < len(a); i++ {
		if d := a[i].Sub(a[i-1]); i == 1 || d < spacing {
			spacing = d
		}
	}
	if len(a) > 2 {
		rate = float64(len(a)-2) / a[len(a)-1].Sub(a[1]).Seconds()
	}
	return len(a), spacing, rate, s.overlap
}

// crawlPaced crawls a pacedSite of pages pages at rps with the given crawlers and one processor,
// and checks what the site saw: every page once, no two requests closer than the interval
// (1/rps itself, measured at the server), and none overlapping.
func crawlPaced(t *testing.T, site *pacedSite, pages int, rps float64, crawlers int) (rate float64) {
	t.Helper()
	sys := NewSystem(t)
	sys.StartAll(crawlers, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": site.URL + "/p/0", "per_host_rps": rps,
		"max_depth": 1000, "max_pages": pages, "sitemaps": false})
	st := sys.WaitDone(id, 3*time.Minute)
	if st.Fetched != int64(pages) || st.Failed != 0 {
		t.Fatalf("status %+v, want %d fetched, none failed", st, pages)
	}
	n, spacing, rate, overlap := site.measure()
	interval := time.Duration(float64(time.Second) / rps)
	if n != pages {
		t.Errorf("site saw %d page requests, want %d (each page once)", n, pages)
	}
	if spacing < interval {
		// Say how far apart the crawlers wrote them (StartedAt, stored as urls.fetched_at): a gap
		// the server saw shorter than the crawler wrote it is the server's own delay in reading.
		written := map[string]time.Time{}
		for _, row := range query[[]any](t, sys.DSN, `SELECT ARRAY[url, to_char(fetched_at, 'YYYY-MM-DD"T"HH24:MI:SS.USOF')] FROM urls WHERE target_id = $1`, id) {
			at, _ := time.Parse("2006-01-02T15:04:05.999999Z07", row[1].(string))
			written[strings.TrimPrefix(row[0].(string), site.URL)] = at
		}
		site.mu.Lock()
		for i := 1; i < len(site.arrivals); i++ {
			if d := site.arrivals[i].Sub(site.arrivals[i-1]); d < interval {
				t.Errorf("requests for %s and %s %v apart at the server (written %v apart), want at least the interval %v",
					site.paths[i-1], site.paths[i], d, written[site.paths[i]].Sub(written[site.paths[i-1]]), interval)
			}
		}
		site.mu.Unlock()
	}
	if overlap != 1 {
		t.Errorf("%d requests ran at once, want 1", overlap)
	}
	t.Logf("per_host_rps %g, %d crawlers: %d requests, %.2f/s (%.0f%%), min spacing %v (interval %v), race=%t",
		rps, crawlers, n, rate, 100*rate/rps, spacing.Round(time.Microsecond), interval, raceEnabled)
	return rate
}

// TestPerHostRateAtTheServer crawls a paced host with one and with four crawlers: no two
// requests are closer than the interval, and the rate the server sees shows that a host's slots
// are dispatched ahead (one pipeline round trip per slots' worth) rather than one URL at a time
// (one round trip per request: about half the rate at 3/s, a third at 10/s). The rate is
// measured over 40 or more requests. Tests assert no speed, so here the floor is the design's,
// 75%; under `make bench` (TRAWL_BENCH=1) the goal itself, 90% of per_host_rps, is checked, and
// its figures go to docs/PERFORMANCE.md.
func TestPerHostRateAtTheServer(t *testing.T) {
	t.Parallel()
	floor := 0.75
	if os.Getenv("TRAWL_BENCH") == "1" {
		floor = 0.9
	}
	for _, tt := range []struct {
		rps             float64
		crawlers, pages int
	}{
		{3, 1, 45},
		{10, 1, 121},
		{3, 4, 45},
		{10, 4, 121},
	} {
		// One after another: four crawls at once on two cores would measure the machine.
		t.Run(fmt.Sprintf("rps %g crawlers %d", tt.rps, tt.crawlers), func(t *testing.T) {
			site := newPacedSite(t, tt.pages, 25, nil)
			if rate := crawlPaced(t, site, tt.pages, tt.rps, tt.crawlers); rate < floor*tt.rps {
				t.Errorf("rate at the server %.2f/s, want at least %.0f%% of %g", rate, 100*floor, tt.rps)
			}
		})
	}
}

// TestSlowPagesNeverOverlap serves every other page slower than the interval: a paced host's
// next request waits for the slow one (no two requests at the server ever run at once) and
// still starts at least one interval after it, whether the slots are on one crawler or spread
// over dispatches that reach different crawlers.
func TestSlowPagesNeverOverlap(t *testing.T) {
	t.Parallel()
	const rps, pages = 5, 30 // 200 ms
	site := newPacedSite(t, pages, 10, func(i int) time.Duration {
		if i%2 == 1 {
			return 300 * time.Millisecond
		}
		return 0
	})
	crawlPaced(t, site, pages, rps, 3)
}
