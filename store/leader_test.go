package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// campaign runs an election until the test ends or stop is called; wakes counts its wake-ups.
type campaign struct {
	e     *store.Election
	wakes atomic.Int64
	stop  func()
}

func runElection(t *testing.T, s *store.Store) *campaign {
	t.Helper()
	c := &campaign{e: s.Election(testenv.Logger(t))}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.e.Run(ctx, func() { c.wakes.Add(1) }) })
	c.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(c.stop)
	return c
}

// One election per database leads at a time; the leader is woken by commits that notify the
// frontier channel; when the leader's session ends (its process stops, or the database ends
// it), a standby takes over.
func TestElectionOneLeaderWakeupsAndTakeover(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	other, _ := testenv.Store(t) // a second database: its lock is independent
	ctx := t.Context()

	a := runElection(t, s)
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the first election to lead", a.e.Leading)
	b := runElection(t, s)
	c := runElection(t, other)
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the election on another database to lead", c.e.Leading)
	time.Sleep(2 * store.ElectionInterval)
	if b.e.Leading() || !a.e.Leading() {
		t.Fatalf("leading: a %v, b %v; want only a", a.e.Leading(), b.e.Leading())
	}

	// A new target (like every committed batch of results) wakes the leader.
	before := a.wakes.Load()
	if _, err := s.CreateTarget(ctx, target.Spec{Name: "w", SeedURL: "http://wake.test/",
		Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the leader to be woken", func() bool {
		return a.wakes.Load() > before
	})
	if b.wakes.Load() != 0 {
		t.Fatalf("a standby was woken %d times", b.wakes.Load())
	}

	a.stop() // the leader's process stops
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the standby to take over", b.e.Leading)

	// The database ends the new leader's session (a restart, a failover, an administrator).
	a = runElection(t, s)
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
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "the old leader to notice and the other to lead", func() bool {
		return a.e.Leading() && !b.e.Leading()
	})
}
