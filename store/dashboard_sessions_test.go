package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestDashboardSessions(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	ctx := t.Context()
	now := time.Now()
	for _, ds := range []store.DashboardSession{
		{ID: "a", PasswordFingerprint: "fp1", ExpiresAt: now.Add(time.Hour), UserAgent: "curl/8", RemoteAddr: "127.0.0.1"},
		{ID: "b", PasswordFingerprint: "fp1", ExpiresAt: now.Add(time.Hour)},
		{ID: "old", PasswordFingerprint: "fp1", ExpiresAt: now.Add(-time.Second)},
		{ID: "other", PasswordFingerprint: "fp0", ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.CreateDashboardSession(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.DashboardSession(ctx, "a", "fp1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.DashboardSession{ID: "a", PasswordFingerprint: "fp1", UserAgent: "curl/8", RemoteAddr: "127.0.0.1"}, got,
		cmpIgnoreTimes); diff != "" {
		t.Errorf("session (-want +got):\n%s", diff)
	}
	// Expired, created under another password, or unknown: not found.
	for _, tc := range []struct{ id, fp string }{{"old", "fp1"}, {"other", "fp1"}, {"a", "fp0"}, {"nope", "fp1"}} {
		if _, err := s.DashboardSession(ctx, tc.id, tc.fp); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %s under %s: %v, want ErrNotFound", tc.id, tc.fp, err)
		}
	}
	if n, err := s.PruneDashboardSessions(ctx); err != nil || n != 1 {
		t.Errorf("prune = %d, %v; want the one expired session", n, err)
	}
	if err := s.DeleteDashboardSession(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DashboardSession(ctx, "a", "fp1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after logout: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDashboardSession(ctx, "a"); err != nil {
		t.Errorf("deleting a deleted session: %v", err)
	}
	if n, err := s.DeleteDashboardSessions(ctx); err != nil || n != 2 {
		t.Errorf("delete all = %d, %v; want 2", n, err)
	}
	if _, err := s.DashboardSession(ctx, "b", "fp1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after logging out everywhere: %v, want ErrNotFound", err)
	}
}

var cmpIgnoreTimes = cmp.Transformer("noTimes", func(ds store.DashboardSession) store.DashboardSession {
	ds.CreatedAt, ds.ExpiresAt, ds.LastSeenAt = time.Time{}, time.Time{}, time.Time{}
	return ds
})
