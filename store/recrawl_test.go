package store_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

func claim(t *testing.T, s *store.Store, id string, urlID int64, lease time.Duration) store.RecrawlClaim {
	t.Helper()
	c, err := s.ClaimRecrawl(t.Context(), id, urlID, lease)
	if err != nil {
		t.Fatalf("ClaimRecrawl(%s): %v", id, err)
	}
	return c
}

func TestRecrawlRequestLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	jobs := dispatch(t, s, limits)
	apply(t, s, ok(jobs[0]))
	urlID := jobs[0].URLID
	if got := loadTarget(t, s, tg.ID); got.URLsDone != 1 || got.State != store.TargetDone {
		t.Fatalf("target before re-crawl = %+v", got)
	}

	c := claim(t, s, "r1", urlID, time.Hour)
	if !c.Claimed || c.Request.State != store.RecrawlPending || c.Request.Attempts != 1 || c.URL.URL != "http://example.test/" {
		t.Fatalf("first claim = %+v", c)
	}
	// The URL is leased, so the processor applies the re-crawl's result.
	if got := loadTarget(t, s, tg.ID); got.URLsDone != 0 || got.Pending() != 1 {
		t.Fatalf("target during re-crawl = %+v", got)
	}
	if c2 := claim(t, s, "r1", urlID, time.Hour); c2.Claimed || c2.Request.State != store.RecrawlPending {
		t.Fatalf("resend within the lease claimed: %+v", c2)
	}
	// A failure of another attempt changes nothing; of this one, fails it and restores the URL.
	if changed, err := s.FailRecrawl(t.Context(), "r1", 7, "x"); err != nil || changed {
		t.Fatalf("FailRecrawl(wrong attempt) = %t, %v", changed, err)
	}
	if changed, err := s.FailRecrawl(t.Context(), "r1", 1, "returned"); err != nil || !changed {
		t.Fatalf("FailRecrawl = %t, %v", changed, err)
	}
	if got := loadTarget(t, s, tg.ID); got.URLsDone != 1 || got.Pending() != 0 {
		t.Fatalf("target after a failed re-crawl = %+v, want the URL done again", got)
	}
	// A failed request is claimed again at once.
	c = claim(t, s, "r1", urlID, time.Hour)
	if !c.Claimed || c.Request.Attempts != 2 {
		t.Fatalf("claim after failure = %+v", c)
	}
	reply := json.RawMessage(`{"status":200}`)
	if stored, err := s.FinishRecrawl(t.Context(), "r1", reply); err != nil || !stored {
		t.Fatalf("FinishRecrawl = %t, %v", stored, err)
	}
	if stored, err := s.FinishRecrawl(t.Context(), "r1", json.RawMessage(`{"status":500}`)); err != nil || stored {
		t.Fatalf("second FinishRecrawl = %t, %v; the first reply must win", stored, err)
	}
	if changed, err := s.FailRecrawl(t.Context(), "r1", 2, "late"); err != nil || changed {
		t.Fatalf("FailRecrawl after done = %t, %v", changed, err)
	}
	c = claim(t, s, "r1", urlID, 0)
	if c.Claimed || c.Request.State != store.RecrawlDone || string(c.Request.Reply) != `{"status": 200}` {
		t.Fatalf("claim of a done request = %+v (reply %s)", c, c.Request.Reply)
	}

	// A pending request older than the lease is claimed again.
	claim(t, s, "r2", urlID, time.Hour)
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the lease to pass", func() bool {
		return claim(t, s, "r2", urlID, 5*time.Millisecond).Claimed
	})
	if r, err := s.RecrawlRequest(t.Context(), "r2"); err != nil || r.Attempts != 2 {
		t.Fatalf("request after lease retry = %+v, %v", r, err)
	}

	// Bad input.
	if _, err := s.ClaimRecrawl(t.Context(), "r2", urlID+100, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim for an unknown url = %v, want ErrNotFound", err)
	}
	other := newTarget(t, s, "http://other.test/", nil)
	var otherURL int64
	for _, j := range dispatch(t, s, limits) {
		if j.TargetID == other.ID {
			otherURL = j.URLID
		}
	}
	if _, err := s.ClaimRecrawl(t.Context(), "r2", otherURL, time.Hour); !errors.Is(err, store.ErrRecrawlConflict) {
		t.Fatalf("request id reused for another url = %v, want ErrRecrawlConflict", err)
	}
	if _, err := s.ClaimRecrawl(t.Context(), "", urlID, time.Hour); err == nil {
		t.Fatal("empty request id accepted")
	}
	if _, err := s.RecrawlRequest(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RecrawlRequest(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.FinishRecrawl(t.Context(), "r2", json.RawMessage(`{`)); err == nil {
		t.Fatal("FinishRecrawl with invalid json accepted")
	}
}
