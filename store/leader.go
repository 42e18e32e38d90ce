package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// schedulerLockKey is the session advisory lock that one scheduler per database holds
// ("trawl" and 1). Advisory locks are per database, so deployments sharing a server do not
// contend.
const schedulerLockKey int64 = 0x747261776c_0001

// closeTimeout bounds closing the election's session on a database that does not answer.
const closeTimeout = 5 * time.Second

// Election decides which of the processors sharing a database runs the scheduler: the one
// whose session holds an advisory lock. It keeps one dedicated connection (not from the pool,
// so a pooled connection never carries the lock back), and the lock lives exactly as long as
// that session: a processor that dies or loses its connection lets another take over.
//
// Leadership saves work, it does not make anything correct: dispatch is safe with any number of
// schedulers (SKIP LOCKED), so a moment with two leaders (an old one that has not yet noticed
// its connection is gone) costs nothing but duplicate queries.
type Election struct {
	s *Store

	mu     sync.Mutex
	conn   *pgx.Conn
	leader bool
}

// Election returns an election for the scheduler lock. It connects on first use.
func (s *Store) Election() *Election { return &Election{s: s} }

// Lead reports whether this process leads, trying to become leader when it does not. A leader's
// check is one round trip on its session; an error means the session is gone, and with it the
// lock, so the caller is no longer leader.
func (e *Election) Lead(ctx context.Context) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil || e.conn.IsClosed() {
		e.leader = false
		conn, err := pgx.ConnectConfig(ctx, e.s.pool.Config().ConnConfig.Copy())
		if err != nil {
			return false, fmt.Errorf("store: election: connect: %w", err)
		}
		e.conn = conn
	}
	var err error
	if e.leader {
		_, err = e.conn.Exec(ctx, `SELECT 1`)
	} else {
		err = e.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, schedulerLockKey).Scan(&e.leader)
	}
	if err != nil {
		e.closeLocked()
		return false, fmt.Errorf("store: election: %w", err)
	}
	return e.leader, nil
}

// Close gives up leadership (closing the session releases the lock). Safe to call twice.
func (e *Election) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closeLocked()
}

func (e *Election) closeLocked() {
	if e.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = e.conn.Close(ctx)
	}
	e.conn, e.leader = nil, false
}
