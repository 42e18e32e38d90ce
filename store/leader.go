package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trawlhq/trawl/internal/backoff"
)

// schedulerLockKey is the session advisory lock that one scheduler per database holds
// ("trawl" and 1). Advisory locks are per database, so deployments sharing a server do not
// contend.
const schedulerLockKey int64 = 0x747261776c_0001

// FrontierChannel is the LISTEN/NOTIFY channel on which every committed batch of results (and
// every new target) announces that URLs may have become due. The leading scheduler listens.
const FrontierChannel = "trawl_frontier"

// ElectionInterval is how often a leader checks that its session is alive, and how often a
// standby tries to take over.
const ElectionInterval = time.Second

// closeTimeout bounds closing the election's session on a database that does not answer.
const closeTimeout = 5 * time.Second

// Election decides which of the processors sharing a database runs the scheduler: the one
// whose session holds an advisory lock. It keeps one dedicated connection (not from the pool,
// so a pooled connection never carries the lock back), and the lock lives exactly as long as
// that session: a processor that dies or loses its connection lets another take over within
// ElectionInterval. The leader's session also listens on FrontierChannel, so commits made by
// any processor wake the one scheduler that works.
//
// Leadership saves work, it does not make anything correct: dispatch is safe with any number of
// schedulers (SKIP LOCKED), so a moment with two leaders (an old one that has not yet noticed
// its session is gone) costs nothing but duplicate queries.
type Election struct {
	s       *Store
	log     *slog.Logger
	conn    *pgx.Conn // owned by Run's goroutine
	leading atomic.Bool
}

// Election returns an election for the scheduler lock; Run campaigns.
func (s *Store) Election(log *slog.Logger) *Election { return &Election{s: s, log: log} }

// Leading reports whether this process leads now.
func (e *Election) Leading() bool { return e.leading.Load() }

// Run campaigns until ctx ends, then gives up leadership (closing the session releases the
// lock). While leading, it calls wake for every notification on FrontierChannel.
func (e *Election) Run(ctx context.Context, wake func()) {
	defer e.close()
	failing := false // logged once per outage, not once a second
	for ctx.Err() == nil {
		err := e.round(ctx, wake)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				e.log.Warn("scheduler election: database session lost or unavailable; retrying every second", "err", err)
			}
			failing = true
			e.close()
			backoff.Sleep(ctx, ElectionInterval)
		case err == nil && failing:
			e.log.Info("scheduler election: database session back")
			failing = false
		}
	}
}

// round does one step: connect, try to lead, or (leading) wait up to ElectionInterval for a
// notification and otherwise check the session.
func (e *Election) round(ctx context.Context, wake func()) error {
	if e.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, e.s.pool.Config().ConnConfig.Copy())
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		e.conn = conn
	}
	if !e.leading.Load() {
		var ok bool
		if err := e.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, schedulerLockKey).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			backoff.Sleep(ctx, ElectionInterval)
			return nil
		}
		if _, err := e.conn.Exec(ctx, `LISTEN `+FrontierChannel); err != nil {
			return err
		}
		e.leading.Store(true)
	}
	wctx, cancel := context.WithTimeout(ctx, ElectionInterval)
	_, err := e.conn.WaitForNotification(wctx)
	cancel()
	switch {
	case err == nil:
		wake()
		return nil
	case ctx.Err() != nil:
		return nil
	case !pgconn.Timeout(err):
		return err
	}
	// No notification for a while: make sure the session (and so the lock) is still there.
	pctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	_, err = e.conn.Exec(pctx, `SELECT 1`)
	return err
}

// close ends the session, and with it leadership.
func (e *Election) close() {
	e.leading.Store(false)
	if e.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = e.conn.Close(ctx)
		e.conn = nil
	}
}
