package process

import (
	"net/http"
	"net/url"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/store"
)

// Policy is the crawl's decision logic: retries with backoff, and which links join the frontier.
type Policy struct {
	RetryBase time.Duration
	RetryMax  time.Duration
	// Now is the clock; nil means time.Now.
	Now   func() time.Time
	Canon crawlurl.Canonicalizer
	// Traps rejects links that look like crawler traps; the zero value applies the defaults.
	Traps crawlurl.TrapRules
	// RobotsMaxAttempts is how many failed robots.txt fetches in a row fail a host's held URLs;
	// zero means DefaultRobotsMaxAttempts.
	RobotsMaxAttempts int
}

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Retryable reports whether an HTTP status is worth trying again later.
func Retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// Decide implements store.Policy.
func (p Policy) Decide(r *store.Result, t *store.Target, u *store.URLRow) store.Outcome {
	now := p.now()
	failed := r.Error != "" || Retryable(r.Status)
	if !failed {
		return store.Outcome{State: store.URLDone, StorePage: true}
	}
	o := store.Outcome{StorePage: r.Error == ""}
	attempt := u.Attempts + 1
	if r.Permanent || attempt >= t.MaxAttempts {
		o.State = store.URLFailed
		metrics.URLsFailed.Inc()
		return o
	}
	delay := backoff.Delay(u.Attempts, p.RetryBase, p.RetryMax)
	if r.RetryAfter > 0 {
		delay = max(delay, r.RetryAfter)
		// 429 and 503 with Retry-After hold back the whole host, for every replica.
		o.HostBackoffUntil = now.Add(r.RetryAfter)
	}
	o.State = store.URLQueued
	o.NextAttemptAt = now.Add(delay)
	metrics.Retries.Inc()
	return o
}

// Admit implements store.Policy: links one level deeper than the page, canonical, in scope,
// and not crawler traps.
func (p Policy) Admit(t *store.Target, depth int, links []string) []store.NewURL {
	if depth+1 > t.MaxDepth {
		return nil
	}
	kind, err := crawlurl.ParseScopeKind(t.Scope)
	if err != nil {
		return nil
	}
	scope, err := crawlurl.NewScope(kind, t.SeedURL, t.ScopePrefix)
	if err != nil {
		return nil
	}
	filter, err := crawlurl.CompileFilter(t.IncludeRegex, t.ExcludeRegex)
	if err != nil {
		return nil // validated at creation: a bad pattern here admits nothing rather than everything
	}
	out := make([]store.NewURL, 0, len(links))
	for _, l := range links {
		c, err := p.Canon.Canonicalize(l) // results come from the network: never trust them
		if err != nil || !scope.Allows(c) || !filter.Allows(c) || p.Traps.Check(c) != nil {
			continue
		}
		u, err := url.Parse(c)
		if err != nil {
			continue
		}
		out = append(out, store.NewURL{URL: c, Host: crawlurl.HostKey(u), Depth: depth + 1})
	}
	return out
}
