package process

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/store"
)

func TestDecideRobots(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{RetryBase: time.Second, RetryMax: time.Minute, Now: func() time.Time { return now }, Canon: crawlurl.Default,
		RobotsMaxAttempts: 3}
	body := "User-agent: trawlbot\nDisallow: /private\nCrawl-delay: 1.5\n" +
		"Sitemap: http://example.com/s.xml\nSitemap: http://other.com/s.xml\nSitemap: HTTP://EXAMPLE.com:80/s.xml#x\n"
	tests := []struct {
		name     string
		r        store.RobotsResult
		attempts int
		want     store.RobotsOutcome
	}{
		{"200 parsed", store.RobotsResult{Status: 200, Body: body}, 0, store.RobotsOutcome{Known: true, CrawlDelayMS: 1500,
			Sitemaps: []string{"http://example.com/s.xml", "http://example.com/sitemap.xml"}}},
		{"200 sitemap.xml disallowed", store.RobotsResult{Status: 200, Body: "User-agent: *\nDisallow: /sitemap\n"}, 0,
			store.RobotsOutcome{Known: true}},
		{"404 allows all", store.RobotsResult{Status: 404}, 2, store.RobotsOutcome{Known: true,
			Sitemaps: []string{"http://example.com/sitemap.xml"}}},
		{"503 retries", store.RobotsResult{Status: 503}, 0, store.RobotsOutcome{}},
		{"429 retries", store.RobotsResult{Status: 429}, 1, store.RobotsOutcome{}},
		{"unreachable at the limit fails", store.RobotsResult{Status: 0, Error: "connection refused"}, 2,
			store.RobotsOutcome{FailHeld: true, FailReason: "robots.txt unavailable after 3 attempts (unreachable: connection refused): disallow all"}},
		{"refused address fails at once", store.RobotsResult{Error: "blocked address 10.0.0.1", ErrorClass: "blocked", Permanent: true}, 0,
			store.RobotsOutcome{FailHeld: true, FailClass: "blocked", FailReason: "robots.txt cannot be fetched: blocked address 10.0.0.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.r
			r.Host, r.URL, r.Agent = "example.com", "http://example.com/robots.txt", "trawlbot"
			got := p.DecideRobots(&r, tc.attempts)
			if !got.Known && !got.FailHeld {
				if got.RetryAt.Before(now) || got.RetryAt.After(now.Add(time.Minute)) {
					t.Errorf("RetryAt = %s, want within the backoff", got.RetryAt)
				}
			}
			got.RetryAt = time.Time{}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecideRobots (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRobotsCache(t *testing.T) {
	t.Parallel()
	c := &RobotsCache{MaxHosts: 2}
	v1, v2 := time.Unix(100, 0), time.Unix(200, 0)
	if c.Cached("a", v1) {
		t.Fatal("empty cache has a file")
	}
	c.Learn("a", v1, 200, "trawlbot", "User-agent: *\nDisallow: /x\n")
	if !c.Cached("a", v1) || c.Cached("a", v2) {
		t.Fatal("cache versions wrong")
	}
	for u, want := range map[string]bool{"http://a/x": false, "http://a/x?q=1": false, "http://a/y": true, "http://a/robots.txt": true} {
		if got := c.Allowed("a", v1, u); got != want {
			t.Errorf("Allowed(%s) = %t, want %t", u, got, want)
		}
	}
	// A newer file replaces the old one; a 404 file allows everything.
	c.Learn("a", v2, 404, "trawlbot", "")
	if !c.Allowed("a", v2, "http://a/x") {
		t.Error("404 file disallowed a URL")
	}
	c.Learn("b", v1, 200, "trawlbot", "")
	c.Learn("c", v1, 200, "trawlbot", "")
	n := 0
	for _, h := range []string{"a", "b", "c"} {
		if c.Cached(h, v1) || c.Cached(h, v2) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d files cached, want MaxHosts 2", n)
	}
}

func TestDecideSitemap(t *testing.T) {
	t.Parallel()
	p := Policy{RetryBase: time.Second, RetryMax: time.Minute}
	tests := []struct {
		r        store.SitemapResult
		attempts int
		want     string
	}{
		{store.SitemapResult{Status: 200}, 0, store.SitemapDone},
		{store.SitemapResult{Status: 404}, 0, store.SitemapFailed},
		{store.SitemapResult{Status: 503}, 0, store.SitemapQueued},
		{store.SitemapResult{Status: 503}, SitemapMaxAttempts - 1, store.SitemapFailed},
		{store.SitemapResult{Error: "timeout"}, 0, store.SitemapQueued},
		{store.SitemapResult{Status: 200, Error: "not a sitemap", Permanent: true}, 0, store.SitemapFailed},
		{store.SitemapResult{Error: "blocked", Permanent: true}, 0, store.SitemapFailed},
	}
	for _, tc := range tests {
		if got, _ := p.DecideSitemap(&tc.r, tc.attempts); got != tc.want {
			t.Errorf("DecideSitemap(%+v, %d) = %s, want %s", tc.r, tc.attempts, got, tc.want)
		}
	}
}
