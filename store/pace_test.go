package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// pacedTarget creates a target at rps on example.test whose seed is fetched with n links, and
// makes the host due now.
func pacedTarget(t *testing.T, s *store.Store, dsn string, rps float64, n int) store.Target {
	t.Helper()
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.PerHostRPS = rps; nt.MaxPages = 1000 })
	seed := dispatch(t, s, limits)[0]
	var links []string
	for i := range n {
		links = append(links, fmt.Sprintf("http://example.test/p%d", i))
	}
	apply(t, s, ok(seed, links...))
	if _, err := connect(t, dsn).Exec(t.Context(), `UPDATE hosts SET next_fetch_at = now()`); err != nil {
		t.Fatal(err)
	}
	return tg
}

// A paced host gets its next slots in one dispatch: PaceAhead / interval URLs, their delays one
// interval apart from its next_fetch_at, which moves past the last slot; nothing more is
// dispatched while any of them is in flight, however late.
func TestDispatchGivesAPacedHostItsSlots(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	pacedTarget(t, s, dsn, 10, 30) // 100 ms
	lim := limits
	lim.PaceAhead = time.Second
	jobs := dispatch(t, s, lim)
	var got, want []string
	for i, j := range jobs {
		got = append(got, fmt.Sprintf("%s interval %d delay %d", j.Host, j.IntervalMS, j.DelayMS))
		want = append(want, fmt.Sprintf("example.test interval 100 delay %d", 100*i))
	}
	if len(jobs) != 10 {
		t.Fatalf("dispatched %d, want 10 slots of 100ms in 1s", len(jobs))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slots (-want +got):\n%s", diff)
	}
	// One interval after the last slot: 1 s after the dispatch, less the time since.
	if _, ahead := hostPace(t, conn, "example.test"); ahead < 500*time.Millisecond || ahead > time.Second {
		t.Errorf("next_fetch_at %v ahead, want just under 1s (one interval after the last slot)", ahead)
	}
	// In flight: nothing more for this host, even once its next_fetch_at has passed.
	if _, err := conn.Exec(t.Context(), `UPDATE hosts SET next_fetch_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if more := dispatch(t, s, lim); len(more) != 0 {
		t.Fatalf("dispatched %d while the host's slots are in flight, want 0", len(more))
	}
	for _, j := range jobs[:9] {
		apply(t, s, ok(j))
	}
	if more := dispatch(t, s, lim); len(more) != 0 {
		t.Fatalf("dispatched %d while one slot is in flight, want 0", len(more))
	}
	apply(t, s, ok(jobs[9]))
	// The next dispatch starts at next_fetch_at, 300 ms from now (less the time until the
	// dispatch), and fills the rest of the second: 7 slots, or 8 on a slow machine.
	if _, err := conn.Exec(t.Context(), `UPDATE hosts SET next_fetch_at = now() + interval '300 milliseconds'`); err != nil {
		t.Fatal(err)
	}
	next := dispatch(t, s, lim)
	if len(next) == 0 {
		t.Fatal("nothing dispatched")
	}
	wait := next[0].DelayMS
	if wait <= 0 || wait > 300 || len(next) != int(1000-wait)/100 {
		t.Fatalf("next dispatch = %d jobs from %dms; want them from at most 300ms, filling the second", len(next), wait)
	}
	for i, j := range next {
		if j.DelayMS != wait+int64(100*i) {
			t.Errorf("slot %d at %dms, want %dms", i, j.DelayMS, wait+int64(100*i))
		}
	}
	// Without PaceAhead: one URL, once next_fetch_at has come.
	for _, j := range next {
		apply(t, s, ok(j))
	}
	if _, err := conn.Exec(t.Context(), `UPDATE hosts SET next_fetch_at = now()`); err != nil {
		t.Fatal(err)
	}
	if one := dispatch(t, s, limits); len(one) != 1 || one[0].DelayMS != 0 || one[0].IntervalMS != 100 {
		t.Fatalf("dispatch without PaceAhead = %+v, want one job at once", one)
	}
}

// Slots whose results never come back (their leases ran out) still hold the host: the next
// dispatch starts one interval after the last slot given out, not at once.
func TestLostSlotsStillHoldTheHost(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	pacedTarget(t, s, dsn, 10, 30)
	lim := limits
	lim.PaceAhead = time.Second
	lim.Lease = 50 * time.Millisecond
	start := time.Now()
	first := dispatch(t, s, lim)
	if len(first) != 10 {
		t.Fatalf("dispatched %d, want 10", len(first))
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := s.ReapLeases(t.Context()); err != nil || n != 10 {
		t.Fatalf("ReapLeases = %d, %v; want 10", n, err)
	}
	again := dispatch(t, s, lim)
	elapsed := time.Since(start)
	if len(again) == 0 {
		t.Fatal("nothing dispatched again")
	}
	// The first dispatch's last slot began by start + 900ms; the next may not begin before
	// start + 1000ms, that is again[0].DelayMS after the second dispatch.
	if min := time.Second - elapsed; time.Duration(again[0].DelayMS)*time.Millisecond < min {
		t.Fatalf("redispatch delay %dms, %v after the first dispatch: want at least %v", again[0].DelayMS, elapsed, min)
	}
}

// ApplyResults moves a paced host's next_fetch_at to at least one interval after the latest
// moment the fetch can have started, by the database's clock: the result's duration before
// now. A result without StartedAt, or stamped by a crawler clock 2 s behind (or ahead), paces
// the same.
func TestApplyPacesByTheDatabaseClock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		started func(time.Time) time.Time
	}{
		{"no StartedAt", func(time.Time) time.Time { return time.Time{} }},
		{"crawler clock 2s behind", func(real time.Time) time.Time { return real.Add(-2 * time.Second) }},
		{"crawler clock 2s ahead", func(real time.Time) time.Time { return real.Add(2 * time.Second) }},
		{"true clock", func(real time.Time) time.Time { return real }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := testenv.Store(t)
			conn := connect(t, dsn)
			pacedTarget(t, s, dsn, 2, 3) // 500 ms
			j := dispatch(t, s, limits)[0]
			// The job waits in the queue, then its fetch takes 50 ms.
			time.Sleep(300 * time.Millisecond)
			r := ok(j)
			r.DurationMS = 50
			r.StartedAt = tt.started(time.Now().Add(-50 * time.Millisecond))
			applied := time.Now()
			apply(t, s, r)
			_, ahead := hostPace(t, conn, "example.test")
			// Started by applied - 50ms at the latest: the next fetch not before applied + 450ms.
			if min := 450*time.Millisecond - time.Since(applied); ahead < min {
				t.Fatalf("next_fetch_at %v ahead, want at least %v", ahead, min)
			}
		})
	}
}

// A robots.txt refresh of a paced host waits until the host's slots in flight are back: they
// may run late (a slow page), and the robots request is paced like a page.
func TestRobotsRefreshWaitsForPacedSlots(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	pacedTarget(t, s, dsn, 10, 20)
	lim := limits
	lim.PaceAhead = 500 * time.Millisecond
	jobs := dispatch(t, s, lim)
	if len(jobs) != 5 {
		t.Fatalf("dispatched %d, want 5", len(jobs))
	}
	stale := `UPDATE hosts SET robots_fetched_at = now() - interval '25 hours', next_fetch_at = now() - interval '1 second'`
	if _, err := conn.Exec(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	if rj := dispatchRobots(t, s); len(rj) != 0 {
		t.Fatalf("robots dispatched with the host's slots in flight: %+v", rj)
	}
	for _, j := range jobs {
		apply(t, s, ok(j, "http://example.test/more"))
	}
	if _, err := conn.Exec(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	if rj := dispatchRobots(t, s); len(rj) != 1 {
		t.Fatalf("robots jobs after the slots = %+v, want one", rj)
	}
}

// Beyond PacedHostsAhead paced hosts in flight, paced hosts are dispatched one URL at a time
// once due, as without PaceAhead: a crawler holds a message of slots until they have run, so
// it can pace only so many hosts at once.
func TestPacedHostsAheadCapsTheHostsGivenSlots(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	pacedTarget(t, s, dsn, 10, 30)
	for _, h := range []string{"b.test", "c.test", "d.test"} {
		newTarget(t, s, "http://"+h+"/", func(nt *target.Spec) { nt.PerHostRPS = 10 })
	}
	if _, err := conn.Exec(t.Context(), `
		UPDATE hosts SET next_fetch_at = now() + CASE host
			WHEN 'example.test' THEN interval '-2 seconds' WHEN 'b.test' THEN interval '-1 second'
			ELSE interval '500 milliseconds' END`); err != nil {
		t.Fatal(err)
	}
	lim := limits
	lim.PaceAhead = time.Second
	lim.PacedHostsAhead = 1
	got := map[string][]int64{}
	for _, j := range dispatch(t, s, lim) {
		got[j.Host] = append(got[j.Host], j.DelayMS)
	}
	want := map[string][]int64{
		"example.test": {0, 100, 200, 300, 400, 500, 600, 700, 800, 900}, // slots ahead
		"b.test":       {0},                                              // due: one URL
		// c.test and d.test are not due yet, and there is no room to dispatch them ahead.
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dispatched delays by host (-want +got):\n%s", diff)
	}
	// Without a cap every due paced host gets its slots.
	lim.PacedHostsAhead = 0
	rest := dispatch(t, s, lim)
	if len(rest) != 2 || rest[0].DelayMS < 300 || rest[1].DelayMS < 300 {
		t.Errorf("uncapped dispatch = %+v, want c.test and d.test ahead, from their next_fetch_at", rest)
	}
}
