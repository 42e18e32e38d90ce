package process

import (
	"context"
	"net/url"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/robots"
	"github.com/trawlhq/trawl/sanitize"
	"github.com/trawlhq/trawl/store"
)

// SitemapMaxAttempts is how often a sitemap is fetched before it is failed (5xx, 429, network
// errors are retried with backoff; other failures are final at once).
const SitemapMaxAttempts = 3

// maxRobotsSitemaps bounds the sitemaps one robots.txt queues.
const maxRobotsSitemaps = 50

// DecideSitemap implements store.SitemapPolicy.
func (p Policy) DecideSitemap(r *store.SitemapResult, attempts int) (string, time.Time) {
	switch {
	case r.Error == "" && r.Status >= 200 && r.Status < 300:
		return store.SitemapDone, time.Time{}
	case r.Permanent:
	case r.Error != "" && r.Status == 0 || Retryable(r.Status):
		if attempts+1 < SitemapMaxAttempts {
			return store.SitemapQueued, p.now().Add(backoff.Delay(attempts, p.RetryBase, p.RetryMax))
		}
	}
	return store.SitemapFailed, time.Time{}
}

// robotsSitemaps returns the sitemaps a known robots.txt leads to: its Sitemap lines on the
// same host (canonical), then /sitemap.xml if the rules allow it.
func robotsSitemaps(robotsURL, host string, rb *robots.Robots, agent string, canon crawlurl.Canonicalizer) []string {
	var out []string
	seen := map[string]bool{}
	add := func(raw string) {
		c, err := canon.Canonicalize(raw)
		if err != nil || seen[c] || len(out) >= maxRobotsSitemaps {
			return
		}
		u, err := url.Parse(c)
		if err != nil || crawlurl.HostKey(u) != host {
			return
		}
		seen[c] = true
		out = append(out, c)
	}
	for _, s := range rb.Sitemaps() {
		add(s)
	}
	if ru, err := url.Parse(robotsURL); err == nil && rb.For(agent).Allowed("/sitemap.xml") {
		add(ru.Scheme + "://" + host + "/sitemap.xml")
	}
	return out
}

// SitemapFrontier is what the scheduler needs to dispatch sitemap jobs.
type SitemapFrontier interface {
	DispatchSitemaps(ctx context.Context, limit int, lease time.Duration, robotsOn bool) ([]store.SitemapJob, error)
	UndispatchSitemaps(ctx context.Context, ids []int64) error
}

// dispatchSitemaps publishes sitemap jobs that are due.
func (s *Scheduler) dispatchSitemaps(ctx context.Context) {
	if s.Sitemaps == nil {
		return
	}
	jobs, err := s.Sitemaps.DispatchSitemaps(ctx, 20, s.Limits.Lease, s.Limits.Robots != nil)
	if err != nil && ctx.Err() == nil {
		s.Log.Warn("dispatch sitemaps", "err", err)
	}
	if len(jobs) == 0 {
		return
	}
	crawlJobs := make([]message.CrawlJob, len(jobs))
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
		crawlJobs[i] = message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindSitemap,
			URLID: j.ID, TargetID: j.TargetID, URL: j.URL}
	}
	_ = s.publishJobs(ctx, "sitemap", crawlJobs, func(ctx context.Context) error { return s.Sitemaps.UndispatchSitemaps(ctx, ids) })
}

// SitemapStore is what the processor needs to store sitemap fetches.
type SitemapStore interface {
	ApplySitemap(ctx context.Context, r store.SitemapResult, pol store.SitemapPolicy) (store.SitemapApplied, error)
}

// applySitemap stores one sitemap result and acks it after commit, like applyRobots.
func (p *Processor) applySitemap(ctx context.Context, d pipeline.Delivery, fr *message.FetchResult) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	pol, ok := p.Policy.(store.SitemapPolicy)
	if p.Sitemaps == nil || !ok {
		p.Log.Error("sitemap result cannot be applied; dropped (its lease brings it back)", "url", fr.URL)
		_ = d.Reject(false)
		return
	}
	r := store.SitemapResult{ID: fr.URLID, TargetID: fr.TargetID, Status: fr.Status, Error: sanitize.Text(fr.Error),
		StartedAt: fr.StartedAt}
	r.Permanent = fr.Permanent
	for _, l := range fr.Links {
		r.URLs = append(r.URLs, sanitize.Text(l))
	}
	// Children of an index: canonical, on the sitemap's own host.
	if su, err := url.Parse(fr.URL); err == nil {
		host := crawlurl.HostKey(su)
		canon := crawlurl.Default
		if pp, ok := p.Policy.(Policy); ok {
			canon = pp.Canon
		}
		for _, c := range fr.Sitemaps {
			cu, err := canon.Canonicalize(sanitize.Text(c))
			if err != nil {
				continue
			}
			if u, err := url.Parse(cu); err == nil && crawlurl.HostKey(u) == host {
				r.Sitemaps = append(r.Sitemaps, cu)
			}
		}
	}
	p.applyOne(ctx, d, "sitemap", []any{"url", fr.URL}, func() (store.Applied, error) {
		out, err := p.Sitemaps.ApplySitemap(ctx, r, pol)
		if err != nil {
			return store.Applied{}, err
		}
		p.Log.Info("sitemap applied", "url", fr.URL, "status", fr.Status, "state", out.State, "listed", len(r.URLs),
			"discovered", out.Discovered, "children", out.Children, "err", r.Error)
		return store.Applied{Discovered: out.Discovered, Finished: out.Finished, FinishedCounts: out.FinishedCounts}, nil
	})
}
