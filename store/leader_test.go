package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/internal/testenv"
)

// One election per database leads at a time; when the leader's session ends, another takes
// over, and a leader keeps leading while its session lives.
func TestElectionOneLeaderAndTakeover(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	other, _ := testenv.Store(t) // a second database: its lock is independent
	a, b, c := s.Election(), s.Election(), other.Election()
	defer a.Close()
	defer b.Close()
	defer c.Close()
	ctx := t.Context()
	if ok, err := a.Lead(ctx); !ok || err != nil {
		t.Fatalf("first election: Lead = %v, %v; want leader", ok, err)
	}
	if ok, err := b.Lead(ctx); ok || err != nil {
		t.Fatalf("second election: Lead = %v, %v; want standby", ok, err)
	}
	if ok, err := c.Lead(ctx); !ok || err != nil {
		t.Fatalf("election on another database: Lead = %v, %v; want leader", ok, err)
	}
	if ok, err := a.Lead(ctx); !ok || err != nil {
		t.Fatalf("leader again: Lead = %v, %v; want still leader", ok, err)
	}
	a.Close() // the leader's session ends (as when its process dies)
	if ok, err := b.Lead(ctx); !ok || err != nil {
		t.Fatalf("after the leader left: Lead = %v, %v; want the standby to take over", ok, err)
	}
	if ok, err := a.Lead(ctx); ok || err != nil {
		t.Fatalf("old leader back: Lead = %v, %v; want standby", ok, err)
	}

	// The database ends the leader's session (a restart, a failover, an admin): the leader
	// learns it on its next check, and the standby takes over.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate the leader's session: %v, %v", killed, err)
	}
	if ok, err := b.Lead(ctx); ok || err == nil {
		t.Fatalf("leader whose session was terminated: Lead = %v, %v; want an error and no leadership", ok, err)
	}
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "a new leader", func() bool {
		ok, _ := a.Lead(ctx)
		return ok
	})
}
