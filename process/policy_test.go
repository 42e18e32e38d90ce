package process

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	p := Policy{RetryBase: 10 * time.Second, RetryMax: time.Hour, Now: func() time.Time { return now }, Canon: crawlurl.Default}
	tg := &store.Target{Spec: target.Spec{MaxAttempts: 3}}
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
			o := p.Decide(&tt.res, tg, &store.URLRow{Attempts: tt.attempts})
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
	seed := "http://example.com/"
	tests := []struct {
		name  string
		spec  target.Spec
		depth int
		want  []string
	}{
		{"same host, either scheme", target.Spec{SeedURL: seed, Scope: "host", MaxDepth: 5}, 0,
			[]string{"http://example.com/a", "http://example.com/b", "https://example.com/e"}},
		{"same domain", target.Spec{SeedURL: seed, Scope: "domain", MaxDepth: 5}, 0,
			[]string{"http://example.com/a", "http://example.com/b", "http://sub.example.com/d", "https://example.com/e", "http://example.com:8080/f"}},
		{"prefix", target.Spec{SeedURL: seed, Scope: "prefix", ScopePrefix: "http://example.com/a", MaxDepth: 5}, 0,
			[]string{"http://example.com/a"}},
		{"at max depth nothing", target.Spec{SeedURL: seed, Scope: "host", MaxDepth: 2}, 2, nil},
		{"domain with include and exclude", target.Spec{SeedURL: seed, Scope: "domain", MaxDepth: 5,
			Include: `^https?://(sub\.)?example\.com/`, Exclude: `/[be]$`}, 0,
			[]string{"http://example.com/a", "http://sub.example.com/d"}},
		{"bad pattern admits nothing", target.Spec{SeedURL: seed, Scope: "host", MaxDepth: 5, Include: `(`}, 0, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := store.Target{ID: int64(i + 1), Spec: tt.spec}
			var got []string
			for _, u := range p.Admit(&tg, tt.depth, links) {
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

// Admit compiles a target's scope once, not once per result: its cache holds one entry per
// target, a changed spec is compiled anew, and admitting a canonical link from then on costs a
// handful of allocations, where compiling the patterns again would cost dozens. Not parallel:
// testing.AllocsPerRun refuses to run in a parallel test.
func TestAdmitCompilesTheScopeOncePerTarget(t *testing.T) {
	p := Policy{Canon: crawlurl.Default, Scopes: target.NewScopeCache(0)}
	tg := store.Target{ID: 7, Spec: target.Spec{SeedURL: "http://example.com/", Scope: "domain", MaxDepth: 5,
		Include: `^https?://(www\.)?example\.com/`, Exclude: `\.(pdf|zip)$`}}
	links := []string{"http://example.com/a?x=1&y=2"}
	for range 3 {
		if got := p.Admit(&tg, 0, links); len(got) != 1 || got[0].URL != links[0] || got[0].Host != "example.com" {
			t.Fatalf("Admit = %+v", got)
		}
	}
	if n := p.Scopes.Len(); n != 1 {
		t.Fatalf("cache holds %d scopes after three results of one target, want 1", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Admit(&tg, 0, links) }); allocs > 7 {
		t.Fatalf("Admit of one canonical link = %.0f allocations, want at most 7 (no compiling, no canonicalising)", allocs)
	}
	tg.Exclude = `/a`
	if got := p.Admit(&tg, 0, links); len(got) != 0 {
		t.Fatalf("Admit after the spec changed = %+v, want nothing (the new exclude)", got)
	}
	if n := p.Scopes.Len(); n != 2 {
		t.Fatalf("cache holds %d scopes after the spec changed, want 2", n)
	}
}

// retryOnce is a Policy whose first decision changes the target under the batch, so that the
// store's transaction is rolled back and tried again (errTargetChanged, inTx): the batch is
// decided twice and committed once.
type retryOnce struct {
	Policy
	once      sync.Once
	change    func()
	decisions int
}

func (r *retryOnce) Decide(res *store.Result, t *store.Target, u *store.URLRow) store.Outcome {
	r.decisions++
	r.once.Do(r.change)
	return r.Policy.Decide(res, t, u)
}

// A retry decided in a transaction that the store tries twice is counted once, after commit.
// Not parallel: it reads process-wide counters that other tests move.
func TestRetryCountedOnceWhenTheTransactionIsTriedAgain(t *testing.T) {
	ctx := t.Context()
	s, dsn := testenv.Store(t)
	tg, err := s.CreateTarget(ctx, target.Spec{Name: "m", SeedURL: "http://metrics.test/", Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Dispatch(ctx, store.DispatchLimits{MaxInFlight: 1, HostMaxInFlight: 1, Hosts: 1, Lease: time.Hour})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Dispatch = %v, %v", jobs, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	pol := &retryOnce{Policy: Policy{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Canon: crawlurl.Default}}
	pol.change = func() {
		if _, err := conn.Exec(ctx, `UPDATE targets SET name = 'renamed' WHERE id = $1`, tg.ID); err != nil {
			t.Error(err)
		}
	}
	p := &Processor{Store: s, Policy: pol, Log: slog.New(slog.DiscardHandler)}
	retries, failed := testutil.ToFloat64(metrics.Retries), testutil.ToFloat64(metrics.URLsFailed)

	applied, err := p.Store.ApplyResults(ctx, []store.Result{{URLID: jobs[0].URLID, TargetID: tg.ID, URL: jobs[0].URL,
		Status: 503, StartedAt: time.Now()}}, p.Policy)
	if err != nil {
		t.Fatal(err)
	}
	p.committed(applied)
	if pol.decisions != 2 {
		t.Fatalf("the result was decided %d times, want 2 (the transaction tried twice)", pol.decisions)
	}
	if applied.Retried != 1 || applied.Failed != 0 {
		t.Fatalf("Applied = %+v, want one retry", applied)
	}
	if got := testutil.ToFloat64(metrics.Retries) - retries; got != 1 {
		t.Fatalf("retries counter moved by %v, want 1", got)
	}
	if got := testutil.ToFloat64(metrics.URLsFailed) - failed; got != 0 {
		t.Fatalf("failed counter moved by %v, want 0", got)
	}
}
