package process

import (
	"net/http"
	"net/url"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

// Policy is the crawl's decision logic: retries with backoff, and which links join the frontier.
// Its decisions are made inside the store's transaction, once per attempt of it, so it counts
// nothing: the processor counts the committed outcomes (store.Applied) after commit
// (docs/adr/0050-targets-have-a-domain-package.md).
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
	// Scopes holds the targets' compiled scopes; nil means one cache shared by every Policy of
	// the process (target.Scopes).
	Scopes *target.ScopeCache
}

func (p Policy) scopes() *target.ScopeCache {
	if p.Scopes != nil {
		return p.Scopes
	}
	return target.Scopes
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
	return o
}

// Admit implements store.Policy: links one level deeper than the page, canonical, in the
// target's scope (compiled once per target and spec: target.ScopeCache), and not crawler traps.
//
// The links of a page were canonicalised by the crawler that extracted them (message.FetchResult),
// so each is only checked, in one pass (crawlurl.Canonicalizer.IsCanonical), and canonicalised
// here only when the check fails: the listed URLs of a sitemap, which the crawler passes on as
// written, and the links of an older or hostile crawler. Scope.Allows slices canonical URLs, so
// a link must never reach it in another form.
func (p Policy) Admit(t *store.Target, depth int, links []string) []store.NewURL {
	if depth+1 > t.MaxDepth {
		return nil
	}
	scope, err := p.scopes().Scope(t.ID, t.Spec)
	if err != nil {
		return nil // validated at creation: a bad spec here admits nothing rather than everything
	}
	out := make([]store.NewURL, 0, len(links))
	for _, l := range links {
		c := l
		if !p.Canon.IsCanonical(l) {
			if c, err = p.Canon.Canonicalize(l); err != nil {
				continue
			}
		}
		if !scope.Allows(c) || p.Traps.Check(c) != nil {
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
