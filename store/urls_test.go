package store_test

import (
	"errors"
	"testing"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestRequeueFailed(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	a, aIDs := site(t, s, "a.test", 6, 200, 500) // p001, p003, p005 fail
	c, _ := site(t, s, "c.test", 2, 500)         // all fail; the target is done
	if _, err := s.CancelTarget(t.Context(), c.ID); !errors.Is(err, store.ErrTargetState) {
		t.Fatalf("cancel a done target = %v, want ErrTargetState", err)
	}

	// A cancelled target's failures stay failed: queuing them would leave it pending forever.
	x := newTarget(t, s, "http://x.test/", func(nt *target.Spec) { nt.MaxAttempts = 1 })
	apply(t, s, ok(dispatch(t, s, limits)[0], "http://x.test/1", "http://x.test/2"))
	xj := dispatch(t, s, limits)
	bad := ok(xj[0])
	bad.Status = 500
	apply(t, s, bad)
	if _, err := s.CancelTarget(t.Context(), x.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueAllFailed(t.Context(), store.URLFilter{TargetID: x.ID}); err != nil || n != 0 {
		t.Fatalf("RequeueAllFailed(cancelled target) = %d, %v; want 0", n, err)
	}
	if got := loadTarget(t, s, x.ID); got.URLsFailed != 1 || got.State != store.TargetCancelled {
		t.Fatalf("cancelled target = %+v", got)
	}

	n, err := s.RequeueFailedURLs(t.Context(), []int64{aIDs["http://a.test/p001"], aIDs["http://a.test/p000"]})
	if err != nil || n != 1 {
		t.Fatalf("RequeueFailedURLs = %d, %v; want 1 (p000 is done)", n, err)
	}
	got := loadTarget(t, s, a.ID)
	if got.State != store.TargetActive || got.Pending() != 1 || got.URLsFailed != 2 {
		t.Fatalf("target after requeue = %+v, want active with 1 pending, 2 failed", got)
	}
	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 || jobs[0].URLID != aIDs["http://a.test/p001"] {
		t.Fatalf("dispatch = %+v, want p001", jobs)
	}
	apply(t, s, ok(jobs[0]))
	if got := loadTarget(t, s, a.ID); got.State != store.TargetDone || got.URLsFailed != 2 {
		t.Fatalf("target = %+v, want done again", got)
	}

	n, err = s.RequeueAllFailed(t.Context(), store.URLFilter{Host: "c.test", ErrorClass: "http_500"})
	if err != nil || n != 2 {
		t.Fatalf("RequeueAllFailed(c.test) = %d, %v; want 2", n, err)
	}
	if got := loadTarget(t, s, a.ID); got.URLsFailed != 2 || got.State != store.TargetDone {
		t.Fatalf("other target touched: %+v", got)
	}
	n, err = s.RequeueAllFailed(t.Context(), store.URLFilter{TargetID: a.ID, ErrorClass: "timeout"})
	if err != nil || n != 0 {
		t.Fatalf("RequeueAllFailed(no match) = %d, %v", n, err)
	}
	n, err = s.RequeueAllFailed(t.Context(), store.URLFilter{TargetID: a.ID})
	if err != nil || n != 2 {
		t.Fatalf("RequeueAllFailed(a) = %d, %v; want 2", n, err)
	}
}
