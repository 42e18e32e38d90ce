package process_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestIndexerMakesPagesSearchable runs the indexer against the real database: pages stored by
// ApplyResults become searchable without anyone calling IndexPages, and a Wake after new pages
// gets them indexed long before the idle poll.
func TestIndexerMakesPagesSearchable(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	ctx, cancel := context.WithCancel(t.Context())
	ix := process.NewIndexer(s, 3, 1, nil, testenv.Logger(t))
	ix.Idle = time.Hour // only Wake can bring it back once the queue is empty
	ix.Workers = 2
	var wg sync.WaitGroup
	wg.Go(func() { ix.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	tg, err := s.CreateTarget(t.Context(), target.Spec{Name: "ix", SeedURL: "http://example.test/",
		Scope: "host", MaxDepth: 2, MaxPages: 100, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	pol := process.Policy{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Canon: crawlurl.Default}
	lim := store.DispatchLimits{MaxInFlight: 100, HostMaxInFlight: 100, Hosts: 10, Lease: time.Minute}
	searchable := func(word string, want int) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "pages searchable for "+word, func() bool {
			res, err := s.Search(t.Context(), store.SearchQuery{Query: word, TargetID: tg.ID})
			return err == nil && len(res.Hits) == want
		})
	}
	links := []string{}
	for _, p := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		links = append(links, "http://example.test/"+p)
	}
	crawl := func(word string, links ...string) int {
		jobs, err := s.Dispatch(t.Context(), lim)
		if err != nil {
			t.Fatal(err)
		}
		rs := make([]store.Result, len(jobs))
		for i, j := range jobs {
			rs[i] = store.Result{URLID: j.URLID, TargetID: tg.ID, URL: j.URL, Status: 200, Title: j.URL,
				Text: "page about " + word, Links: links, ContentHash: j.URL, StartedAt: time.Now()}
		}
		if _, err := s.ApplyResults(t.Context(), rs, pol); err != nil {
			t.Fatal(err)
		}
		ix.Wake()
		return len(jobs)
	}
	crawl("seeds", links...)
	searchable("seeds", 1)
	n := crawl("leaves")
	if n != len(links) {
		t.Fatalf("second dispatch = %d jobs, want %d", n, len(links))
	}
	searchable("leaves", len(links)) // more than one batch of 3
	if b, err := s.SearchBacklog(t.Context()); err != nil || b != 0 {
		t.Fatalf("backlog = %d, %v; want 0", b, err)
	}
}

// pacedStore answers after a fixed delay and records each call: which method, when, and the
// rest factor asked for. Every other paced call is refused with a 50 ms wait, as the shared pace
// in the database would.
type pacedStore struct {
	took  time.Duration
	mu    sync.Mutex
	calls []call
	fail  atomic.Bool
}

type call struct {
	at    time.Time
	paced bool
	rest  float64
}

func (p *pacedStore) record(c call) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
	return len(p.calls)
}

func (p *pacedStore) IndexPages(ctx context.Context, limit int) (int, int, error) {
	p.record(call{at: time.Now()})
	time.Sleep(p.took)
	if p.fail.Load() {
		return 0, 0, errors.New("boom")
	}
	return limit, limit, nil
}

func (p *pacedStore) IndexPagesPaced(ctx context.Context, limit int, rest float64) (int, int, time.Duration, error) {
	if n := p.record(call{at: time.Now(), paced: true, rest: rest}); n%2 == 0 {
		return 0, 0, 50 * time.Millisecond, nil
	}
	time.Sleep(p.took)
	return limit, limit, 0, nil
}

func (p *pacedStore) starts() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]call(nil), p.calls...)
}

// TestIndexerPacedWhileBusy checks that while results are being persisted the indexer asks the
// database's shared pace (with rest = 1/BusyShare - 1), waits as long as the pace says when it
// is refused, and goes back to unpaced indexing once the processor is quiet.
func TestIndexerPacedWhileBusy(t *testing.T) {
	t.Parallel()
	ps := &pacedStore{took: 5 * time.Millisecond}
	var busy atomic.Bool
	busy.Store(true)
	ix := process.NewIndexer(ps, 10, 0.25, busy.Load, testenv.Logger(t))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { ix.Run(ctx) })
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "six busy calls", func() bool { return len(ps.starts()) >= 6 })
	busy.Store(false)
	n := len(ps.starts())
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "quiet calls", func() bool { return len(ps.starts()) >= n+5 })
	cancel()
	wg.Wait()
	calls := ps.starts()
	for i, c := range calls[:6] {
		if !c.paced || c.rest != 3 {
			t.Fatalf("busy call %d = %+v, want paced with rest 3", i, c)
		}
		if i%2 == 1 && i+1 < len(calls) { // refused with a 50 ms wait
			if gap := calls[i+1].at.Sub(c.at); gap < 50*time.Millisecond {
				t.Errorf("call after a refusal came %v later, want at least the 50ms the pace asked", gap)
			}
		}
	}
	for _, c := range calls[n+1:] {
		if c.paced {
			t.Fatalf("paced call %+v after the processor went quiet", c)
		}
	}
}

// TestIndexerBacksOffOnErrors checks that a failing database is retried with growing delays,
// not in a tight loop.
func TestIndexerBacksOffOnErrors(t *testing.T) {
	t.Parallel()
	ps := &pacedStore{}
	ps.fail.Store(true)
	ix := process.NewIndexer(ps, 10, 1, nil, testenv.Logger(t))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { ix.Run(ctx) })
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "three attempts", func() bool { return len(ps.starts()) >= 3 })
	cancel()
	wg.Wait()
	starts := ps.starts()
	if gap := starts[2].at.Sub(starts[1].at); gap < 200*time.Millisecond {
		t.Errorf("second retry %v after the first, want backoff of at least 200ms", gap)
	}
}

// TestIndexerHelpersCatchUpWhenQuiet checks that extra workers index in parallel only while the
// processor is quiet: while busy, one transaction at a time; once quiet, several.
func TestIndexerHelpersCatchUpWhenQuiet(t *testing.T) {
	t.Parallel()
	cs := &concurrentStore{took: 30 * time.Millisecond}
	var busy atomic.Bool
	busy.Store(true)
	ix := process.NewIndexer(cs, 10, 1, busy.Load, testenv.Logger(t))
	ix.Workers = 3
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { ix.Run(ctx) })
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "ten busy batches", func() bool { return cs.calls.Load() >= 10 })
	if m := cs.maxConcurrent.Load(); m != 1 {
		t.Errorf("%d transactions at once while busy, want 1", m)
	}
	busy.Store(false)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "three at once when quiet", func() bool { return cs.maxConcurrent.Load() == 3 })
	cancel()
	wg.Wait()
}

// concurrentStore records how many IndexPages calls overlap.
type concurrentStore struct {
	took          time.Duration
	calls, now    atomic.Int64
	maxConcurrent atomic.Int64
}

func (c *concurrentStore) IndexPagesPaced(ctx context.Context, limit int, rest float64) (int, int, time.Duration, error) {
	a, b, err := c.IndexPages(ctx, limit)
	return a, b, 0, err
}

func (c *concurrentStore) IndexPages(ctx context.Context, limit int) (int, int, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for {
		m := c.maxConcurrent.Load()
		if n <= m || c.maxConcurrent.CompareAndSwap(m, n) {
			break
		}
	}
	c.calls.Add(1)
	time.Sleep(c.took)
	return limit, limit, nil
}
