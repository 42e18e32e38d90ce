package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DashboardSession is one dashboard login (table dashboard_sessions). ID is the SHA-256 (hex)
// of the random token in the browser's cookie; the token itself is never stored.
type DashboardSession struct {
	ID                  string
	PasswordFingerprint string
	CreatedAt           time.Time
	ExpiresAt           time.Time
	LastSeenAt          time.Time
	UserAgent           string
	RemoteAddr          string
}

// sessionTouchInterval is how stale last_seen_at may get before a lookup refreshes it, so
// that a busy browser does not write on every request.
const sessionTouchInterval = time.Minute

// CreateDashboardSession stores a new session.
func (s *Store) CreateDashboardSession(ctx context.Context, ds DashboardSession) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO dashboard_sessions (id, password_fingerprint, expires_at, user_agent, remote_addr)
		VALUES ($1, $2, $3, $4, $5)`, ds.ID, ds.PasswordFingerprint, ds.ExpiresAt, ds.UserAgent, ds.RemoteAddr)
	if err != nil {
		return fmt.Errorf("store: create dashboard session: %w", err)
	}
	return nil
}

// DashboardSession returns the unexpired session id created under the password with
// fingerprint fp, or ErrNotFound. It refreshes last_seen_at when older than a minute.
func (s *Store) DashboardSession(ctx context.Context, id, fp string) (DashboardSession, error) {
	var ds DashboardSession
	err := s.pool.QueryRow(ctx, `SELECT id, password_fingerprint, created_at, expires_at, last_seen_at, user_agent, remote_addr
		FROM dashboard_sessions WHERE id = $1 AND password_fingerprint = $2 AND expires_at > now()`, id, fp).
		Scan(&ds.ID, &ds.PasswordFingerprint, &ds.CreatedAt, &ds.ExpiresAt, &ds.LastSeenAt, &ds.UserAgent, &ds.RemoteAddr)
	if errors.Is(err, pgx.ErrNoRows) {
		return DashboardSession{}, ErrNotFound
	}
	if err != nil {
		return DashboardSession{}, fmt.Errorf("store: dashboard session: %w", err)
	}
	if time.Since(ds.LastSeenAt) > sessionTouchInterval {
		if _, err := s.pool.Exec(ctx, `UPDATE dashboard_sessions SET last_seen_at = now() WHERE id = $1`, id); err != nil {
			return DashboardSession{}, fmt.Errorf("store: touch dashboard session: %w", err)
		}
	}
	return ds, nil
}

// DeleteDashboardSession ends one session (logout). Deleting a session that is gone is not
// an error.
func (s *Store) DeleteDashboardSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM dashboard_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete dashboard session: %w", err)
	}
	return nil
}

// DeleteDashboardSessions ends every session ("log out everywhere") and returns how many
// there were.
func (s *Store) DeleteDashboardSessions(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dashboard_sessions`)
	if err != nil {
		return 0, fmt.Errorf("store: delete dashboard sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PruneDashboardSessions deletes expired sessions and returns how many.
func (s *Store) PruneDashboardSessions(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dashboard_sessions WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("store: prune dashboard sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
