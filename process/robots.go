package process

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/robots"
	"github.com/trawlhq/trawl/sanitize"
	"github.com/trawlhq/trawl/store"
)

// DefaultRobotsMaxAttempts is how many failed robots.txt fetches (5xx, 429, unreachable) in a
// row a host gets before its held URLs are failed with error class "robots".
const DefaultRobotsMaxAttempts = 5

// RobotsCache implements store.RobotsFilter: parsed robots.txt files by host, each tagged with
// the time it was fetched, so that a newer file in the hosts table replaces it. It is safe for
// concurrent use and holds at most MaxHosts files (an arbitrary one is dropped when full).
type RobotsCache struct {
	MaxHosts int // default 10,000

	mu    sync.Mutex
	hosts map[string]robotsEntry
}

type robotsEntry struct {
	version time.Time
	rules   *robots.Rules
}

// Cached implements store.RobotsFilter.
func (c *RobotsCache) Cached(host string, version time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.hosts[host]
	return ok && e.version.Equal(version)
}

// Learn implements store.RobotsFilter. The rules are those of agent (a product token); a status
// outside 2xx means allow all (only 2xx and 4xx files are ever stored as known).
func (c *RobotsCache) Learn(host string, version time.Time, status int, agent, body string) {
	rules := robots.FromStatus(status, []byte(body)).For(agent)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = map[string]robotsEntry{}
	}
	limit := c.MaxHosts
	if limit <= 0 {
		limit = 10_000
	}
	if _, ok := c.hosts[host]; !ok && len(c.hosts) >= limit {
		for h := range c.hosts {
			delete(c.hosts, h)
			break
		}
	}
	c.hosts[host] = robotsEntry{version: version, rules: rules}
}

// Allowed implements store.RobotsFilter. A file that is not cached allows the URL (Dispatch
// always learns a file before asking); a URL that does not parse is refused.
func (c *RobotsCache) Allowed(host string, version time.Time, rawURL string) bool {
	c.mu.Lock()
	e, ok := c.hosts[host]
	c.mu.Unlock()
	if !ok || !e.version.Equal(version) {
		return true
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return e.rules.Allowed(path)
}

// DecideRobots implements store.RobotsPolicy with RFC 9309's rules: a 2xx is parsed (its
// Crawl-delay for our agent becomes the host's minimum spacing), a 4xx or a redirect left
// unfollowed means allow all; a 5xx, a 429 or no response means disallow all for now: the
// host's URLs are held and the file is fetched again with exponential backoff, and after
// RobotsMaxAttempts failures in a row the held URLs are failed.
func (p Policy) DecideRobots(r *store.RobotsResult, attempts int) store.RobotsOutcome {
	if r.Status >= 200 && r.Status < 500 && r.Status != 429 {
		o := store.RobotsOutcome{Known: true}
		rb := robots.FromStatus(r.Status, []byte(r.Body))
		if d, ok := rb.For(r.Agent).CrawlDelay(); ok {
			o.CrawlDelayMS = int(min(d, robots.MaxCrawlDelay).Milliseconds())
		}
		o.Sitemaps = robotsSitemaps(r.URL, r.Host, rb, r.Agent, p.Canon)
		return o
	}
	o := store.RobotsOutcome{RetryAt: p.now().Add(backoff.Delay(attempts, p.RetryBase, p.RetryMax))}
	maxAttempts := p.RobotsMaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultRobotsMaxAttempts
	}
	if r.Permanent {
		o.FailHeld, o.FailClass = true, r.ErrorClass
		o.FailReason = "robots.txt cannot be fetched: " + r.Error
		return o
	}
	if attempts+1 >= maxAttempts {
		o.FailHeld = true
		why := fmt.Sprintf("status %d", r.Status)
		if r.Status == 0 {
			why = "unreachable: " + r.Error
		}
		o.FailReason = fmt.Sprintf("robots.txt unavailable after %d attempts (%s): disallow all", attempts+1, why)
	}
	return o
}

// RobotsFrontier is what the scheduler needs to dispatch robots.txt jobs.
type RobotsFrontier interface {
	DispatchRobots(ctx context.Context, limit int, lease time.Duration) ([]store.RobotsJob, error)
	UndispatchRobots(ctx context.Context, hosts []string) error
}

// dispatchRobots publishes robots.txt jobs for hosts whose file is unknown or stale.
func (s *Scheduler) dispatchRobots(ctx context.Context) {
	if s.Robots == nil {
		return
	}
	jobs, err := s.Robots.DispatchRobots(ctx, max(s.Limits.Hosts, 1), s.Limits.Lease)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("dispatch robots", "err", err)
		}
		return
	}
	if len(jobs) == 0 {
		return
	}
	crawlJobs := make([]message.CrawlJob, len(jobs))
	hosts := make([]string, len(jobs))
	for i, j := range jobs {
		hosts[i] = j.Host
		crawlJobs[i] = message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindRobots, URL: j.URL}
	}
	if s.publishJobs(ctx, "robots", crawlJobs, func(ctx context.Context) error { return s.Robots.UndispatchRobots(ctx, hosts) }) != nil {
		return
	}
	s.Log.Debug("robots jobs dispatched", "hosts", len(jobs))
}

// RobotsStore is what the processor needs to store robots.txt fetches.
type RobotsStore interface {
	ApplyRobots(ctx context.Context, r store.RobotsResult, pol store.RobotsPolicy) (store.RobotsApplied, error)
}

// applyRobots stores one robots.txt result and acks it after commit. A database outage is
// waited out; any other failure returns the result to the queue (dead-lettered after the
// delivery limit).
func (p *Processor) applyRobots(ctx context.Context, d pipeline.Delivery, fr *message.FetchResult) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	u, err := url.Parse(fr.URL)
	if err != nil || p.Robots == nil {
		p.Log.Error("robots result cannot be applied; dropped (the host's lease brings it back)", "err", err, "url", fr.URL)
		_ = d.Reject(false)
		return
	}
	pol, ok := p.Policy.(store.RobotsPolicy)
	if !ok {
		pol = Policy{}
	}
	r := store.RobotsResult{
		// Postgres text takes no NUL bytes or invalid UTF-8: the body is cleaned like page text.
		Host: crawlurl.HostKey(u), URL: sanitize.Text(fr.URL), Status: fr.Status, Body: sanitize.Text(fr.Text),
		Agent: robots.ProductToken(fr.Agent), Error: sanitize.Text(fr.Error), ErrorClass: fr.ErrorClass, Permanent: fr.Permanent, StartedAt: fr.StartedAt,
	}
	p.applyOne(ctx, d, "robots", []any{"host", r.Host}, func() (store.Applied, error) {
		out, err := p.Robots.ApplyRobots(ctx, r, pol)
		if err != nil {
			return store.Applied{}, err
		}
		logRobots(p.Log, r, out)
		return store.Applied{Finished: out.Finished, FinishedCounts: out.FinishedCounts}, nil
	})
}

func logRobots(log *slog.Logger, r store.RobotsResult, out store.RobotsApplied) {
	switch {
	case out.Outcome.Known:
		log.Info("robots.txt stored", "host", r.Host, "status", r.Status, "crawl_delay_ms", out.Outcome.CrawlDelayMS)
	case out.Outcome.FailHeld:
		log.Warn("robots.txt unavailable; held URLs failed", "host", r.Host, "status", r.Status, "err", r.Error, "failed", out.Failed)
	default:
		log.Warn("robots.txt unavailable; host held, retrying", "host", r.Host, "status", r.Status, "err", r.Error,
			"retry_at", out.Outcome.RetryAt)
	}
}

// applyOne persists a single non-page result (robots.txt, sitemap) with apply: it acks after the
// commit and reports the effect to OnApplied, waits out a database outage with backoff while the
// delivery stays unacked, and returns a result that fails on its data to the queue (the delivery
// limit then dead-letters it).
func (p *Processor) applyOne(ctx context.Context, d pipeline.Delivery, what string, attrs []any, apply func() (store.Applied, error)) {
	for attempt := 0; ; attempt++ {
		applied, err := apply()
		if err == nil {
			_ = d.Ack(false)
			p.processed.Add(1)
			p.committed(applied)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !store.Transient(err) {
			p.Log.Error(what+" result cannot be persisted; returned to queue", append([]any{"err", err}, attrs...)...)
			_ = d.Requeue()
			return
		}
		if !backoff.Sleep(ctx, backoff.Delay(attempt, 100*time.Millisecond, 5*time.Second)) {
			return
		}
	}
}
