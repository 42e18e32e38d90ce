package process

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/store"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	p := Policy{RetryBase: 10 * time.Second, RetryMax: time.Hour, Now: func() time.Time { return now }, Canon: crawlurl.Default}
	target := &store.Target{MaxAttempts: 3}
	tests := []struct {
		name      string
		res       store.Result
		attempts  int
		wantState string
		wantPage  bool
		minDelay  time.Duration
		maxDelay  time.Duration
		wantHost  time.Duration // host backoff; 0 = none
	}{
		{"200 is done", store.Result{Status: 200}, 0, store.URLDone, true, 0, 0, 0},
		{"404 is done, not retried", store.Result{Status: 404}, 0, store.URLDone, true, 0, 0, 0},
		{"301 is done", store.Result{Status: 301}, 0, store.URLDone, true, 0, 0, 0},
		{"500 first time retries after base", store.Result{Status: 500}, 0, store.URLQueued, true, 5 * time.Second, 10 * time.Second, 0},
		{"500 second time backs off more", store.Result{Status: 502}, 1, store.URLQueued, true, 10 * time.Second, 20 * time.Second, 0},
		{"500 at the limit fails", store.Result{Status: 500}, 2, store.URLFailed, true, 0, 0, 0},
		{"network error retries, no page", store.Result{Error: "refused"}, 0, store.URLQueued, false, 5 * time.Second, 10 * time.Second, 0},
		{"permanent error fails at once", store.Result{Error: "blocked", Permanent: true}, 0, store.URLFailed, false, 0, 0, 0},
		{"429 honours Retry-After and holds the host", store.Result{Status: 429, RetryAfter: 2 * time.Minute}, 0, store.URLQueued, true, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute},
		{"503 short Retry-After keeps backoff", store.Result{Status: 503, RetryAfter: time.Second}, 0, store.URLQueued, true, 5 * time.Second, 10 * time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := p.Decide(&tt.res, target, &store.URLRow{Attempts: tt.attempts})
			if o.State != tt.wantState || o.StorePage != tt.wantPage {
				t.Fatalf("Decide = %+v, want state %s page %t", o, tt.wantState, tt.wantPage)
			}
			if tt.wantState == store.URLQueued {
				delay := o.NextAttemptAt.Sub(now)
				if delay < tt.minDelay || delay > tt.maxDelay {
					t.Fatalf("retry delay = %s, want in [%s, %s]", delay, tt.minDelay, tt.maxDelay)
				}
			}
			var host time.Duration
			if !o.HostBackoffUntil.IsZero() {
				host = o.HostBackoffUntil.Sub(now)
			}
			if host != tt.wantHost {
				t.Fatalf("host backoff = %s, want %s", host, tt.wantHost)
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	p := Policy{Canon: crawlurl.Default}
	links := []string{
		"http://example.com/a", "http://EXAMPLE.com/b#frag", "http://other.com/c",
		"http://sub.example.com/d", "https://example.com/e", "http://example.com:8080/f", "not a url",
	}
	tests := []struct {
		name   string
		target store.Target
		depth  int
		want   []string
	}{
		{"same host, either scheme", store.Target{SeedURL: "http://example.com/", Scope: "host", MaxDepth: 5}, 0,
			[]string{"http://example.com/a", "http://example.com/b", "https://example.com/e"}},
		{"same domain", store.Target{SeedURL: "http://example.com/", Scope: "domain", MaxDepth: 5}, 0,
			[]string{"http://example.com/a", "http://example.com/b", "http://sub.example.com/d", "https://example.com/e", "http://example.com:8080/f"}},
		{"prefix", store.Target{SeedURL: "http://example.com/", Scope: "prefix", ScopePrefix: "http://example.com/a", MaxDepth: 5}, 0,
			[]string{"http://example.com/a"}},
		{"at max depth nothing", store.Target{SeedURL: "http://example.com/", Scope: "host", MaxDepth: 2}, 2, nil},
		{"domain with include and exclude", store.Target{SeedURL: "http://example.com/", Scope: "domain", MaxDepth: 5,
			TargetOptions: store.TargetOptions{IncludeRegex: `^https?://(sub\.)?example\.com/`, ExcludeRegex: `/[be]$`}}, 0,
			[]string{"http://example.com/a", "http://sub.example.com/d"}},
		{"bad pattern admits nothing", store.Target{SeedURL: "http://example.com/", Scope: "host", MaxDepth: 5,
			TargetOptions: store.TargetOptions{IncludeRegex: `(`}}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, u := range p.Admit(&tt.target, tt.depth, links) {
				got = append(got, u.URL)
				if u.Depth != tt.depth+1 {
					t.Errorf("depth of %s = %d, want %d", u.URL, u.Depth, tt.depth+1)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("admitted (-want +got):\n%s", diff)
			}
		})
	}
}
