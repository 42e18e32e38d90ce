package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func seedID(t *testing.T, s *store.Store, targetID int64) int64 {
	t.Helper()
	pl, err := s.Pages(t.Context(), store.PageQuery{TargetID: targetID, Limit: 1})
	if err != nil || len(pl.Rows) == 0 {
		t.Fatalf("pages of target %d: %+v, %v", targetID, pl, err)
	}
	return pl.Rows[0].URLID
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) {
		nt.Sitemaps, nt.Include, nt.Exclude = true, "^http://example\\.test/", "/private/"
		nt.PerHostRPS, nt.RecrawlInterval = 2.5, 36*time.Hour
	})
	seed := dispatch(t, s, limits)[0]
	paused, err := s.PauseTarget(t.Context(), tg.ID)
	if err != nil || paused.State != store.TargetPaused {
		t.Fatalf("PauseTarget = %+v, %v", paused, err)
	}
	// Every read of a target carries its spec, the action answers and summaries included.
	if diff := cmp.Diff(tg.Spec, paused.Spec); diff != "" {
		t.Fatalf("PauseTarget spec (-want +got):\n%s", diff)
	}
	if sum, err := s.TargetSummary(t.Context(), tg.ID); err != nil || sum.Spec != tg.Spec {
		t.Fatalf("TargetSummary spec = %+v, %v; want %+v", sum.Spec, err, tg.Spec)
	}
	if again, err := s.PauseTarget(t.Context(), tg.ID); err != nil || again.State != store.TargetPaused {
		t.Fatalf("second PauseTarget = %+v, %v; want a no-op", again, err)
	}
	// The in-flight fetch still applies, with its links; nothing more is dispatched.
	if a := apply(t, s, ok(seed, "http://example.test/a")); a.Applied != 1 || a.Discovered != 1 {
		t.Fatalf("apply while paused = %+v", a)
	}
	if jobs := dispatch(t, s, limits); len(jobs) != 0 {
		t.Fatalf("dispatched %d jobs of a paused target", len(jobs))
	}
	resumed, err := s.ResumeTarget(t.Context(), tg.ID)
	if err != nil || resumed.State != store.TargetActive {
		t.Fatalf("ResumeTarget = %+v, %v", resumed, err)
	}
	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 {
		t.Fatalf("dispatch after resume = %d jobs, want 1", len(jobs))
	}
	// Paused while the last URL is in flight: resuming finds nothing pending and finishes.
	if _, err := s.PauseTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	apply(t, s, ok(jobs[0]))
	if got := loadTarget(t, s, tg.ID); got.State != store.TargetPaused {
		t.Fatalf("state after last result while paused = %s, want paused", got.State)
	}
	done, err := s.ResumeTarget(t.Context(), tg.ID)
	if err != nil || done.State != store.TargetDone || done.FinishedAt == nil {
		t.Fatalf("ResumeTarget with nothing pending = %+v, %v; want done", done, err)
	}
	if _, err := s.PauseTarget(t.Context(), tg.ID); !errors.Is(err, store.ErrTargetState) {
		t.Fatalf("pausing a done target = %v, want ErrTargetState", err)
	}
	if _, err := s.ResumeTarget(t.Context(), tg.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resuming a missing target = %v, want ErrNotFound", err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxAttempts = 5 })
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://example.test/a", "http://example.test/b", "http://example.test/c"))
	lim := limits
	lim.Lease = 50 * time.Millisecond
	inflight := dispatch(t, s, lim) // a, b, c
	if len(inflight) != 3 {
		t.Fatalf("dispatch = %d, want 3", len(inflight))
	}
	// d stays queued.
	apply(t, s, ok(inflight[0], "http://example.test/d"))

	c, err := s.CancelTarget(t.Context(), tg.ID)
	if err != nil || c.State != store.TargetCancelled {
		t.Fatalf("CancelTarget = %+v, %v", c, err)
	}
	if c.URLsCancelled != 1 || c.Pending() != 2 {
		t.Fatalf("after cancel: cancelled %d pending %d, want 1 and 2 (in flight)", c.URLsCancelled, c.Pending())
	}
	// In flight: one applies (a 503 that would be retried becomes cancelled, links are not
	// followed); the other's lease expires.
	r := ok(inflight[1], "http://example.test/e")
	r.Status = 503
	if a := apply(t, s, r); a.Applied != 1 || a.Discovered != 0 {
		t.Fatalf("apply after cancel = %+v", a)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := s.ReapLeases(t.Context()); err != nil || n != 1 {
		t.Fatalf("ReapLeases = %d, %v", n, err)
	}
	got := loadTarget(t, s, tg.ID)
	if got.State != store.TargetCancelled || got.Pending() != 0 || got.URLsCancelled != 3 || got.URLsDone != 2 {
		t.Fatalf("cancelled target = %+v, want final: 2 done, 3 cancelled", got)
	}
	if jobs := dispatch(t, s, limits); len(jobs) != 0 {
		t.Fatalf("dispatched %d of a cancelled target", len(jobs))
	}
	if _, err := s.ResumeTarget(t.Context(), tg.ID); !errors.Is(err, store.ErrTargetState) {
		t.Fatalf("resume cancelled = %v, want ErrTargetState", err)
	}
	// A re-crawl brings everything back, cancelled URLs included.
	rc, err := s.RecrawlTarget(t.Context(), tg.ID)
	if err != nil || rc.State != store.TargetActive || rc.Pending() != 5 || rc.URLsCancelled != 0 {
		t.Fatalf("RecrawlTarget = %+v, %v; want active with 5 pending", rc, err)
	}
}

func TestRequeueDueTargets(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.RecrawlInterval = time.Hour })
	other := newTarget(t, s, "http://other.test/", nil)
	for _, j := range dispatch(t, s, limits) {
		apply(t, s, ok(j))
	}
	if n, err := s.RequeueDueTargets(t.Context()); err != nil || n != 0 {
		t.Fatalf("RequeueDueTargets right after finishing = %d, %v; want 0", n, err)
	}
	// An hour passes.
	if _, err := conn(t, dsn).Exec(t.Context(), `UPDATE targets SET finished_at = finished_at - interval '61 minutes'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueDueTargets(t.Context()); err != nil || n != 1 {
		t.Fatalf("RequeueDueTargets = %d, %v; want 1", n, err)
	}
	if got := loadTarget(t, s, tg.ID); got.State != store.TargetActive || got.Pending() != 1 {
		t.Fatalf("target after its interval = %+v, want active with the seed queued", got)
	}
	if got := loadTarget(t, s, other.ID); got.State != store.TargetDone {
		t.Fatalf("target without interval = %s, want done", got.State)
	}
	if n, err := s.RequeueDueTargets(t.Context()); err != nil || n != 0 {
		t.Fatalf("second RequeueDueTargets = %d, %v; want 0", n, err)
	}
}
