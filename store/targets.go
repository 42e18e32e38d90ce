package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/politeness"
)

// Target states.
const (
	TargetActive    = "active"
	TargetPaused    = "paused"
	TargetDone      = "done"
	TargetCancelled = "cancelled"
	// TargetDeleting is a target whose deletion was asked for: nothing of it is dispatched or
	// applied any more, no action applies to it, and the processors' deleters are removing its
	// rows (store.PurgeTarget). Once they are gone the target row goes too.
	TargetDeleting = "deleting"
)

// Target is a crawl target: its seeds, scope and limits, and its progress counters.
type Target struct {
	ID              int64
	Name            string
	SeedURL         string
	Scope           string
	ScopePrefix     string
	MaxDepth        int
	MaxPages        int
	PerHostRPS      float64
	MaxAttempts     int
	RecrawlInterval time.Duration
	State           string
	URLsTotal       int64
	URLsDone        int64
	URLsFailed      int64
	URLsCancelled   int64 // never fetched because the target was cancelled
	CreatedAt       time.Time
	UpdatedAt       time.Time
	FinishedAt      *time.Time
	TargetOptions
}

// Pending is the number of URLs queued or in flight.
func (t Target) Pending() int64 { return t.URLsTotal - t.URLsDone - t.URLsFailed - t.URLsCancelled }

// NewTarget describes a target to create. SeedURL must already be canonical and SeedHost its
// politeness key.
type NewTarget struct {
	Name            string
	SeedURL         string
	SeedHost        string
	Scope           string
	ScopePrefix     string
	MaxDepth        int
	MaxPages        int
	PerHostRPS      float64
	MaxAttempts     int
	RecrawlInterval time.Duration
	// Options; the zero value turns sitemaps off, so callers start from DefaultTargetOptions.
	TargetOptions
}

// ErrInvalidTarget marks a target the store refuses to hold (callers validate first, so this
// is a programming error, not bad input).
var ErrInvalidTarget = errors.New("invalid target")

// DefaultTargetOptions are the options of a target that sets none: sitemaps on, no filters.
var DefaultTargetOptions = TargetOptions{Sitemaps: true}

// MinIntervalMS converts requests per second per host into the minimum spacing between request
// starts in milliseconds; 0 means unlimited. It never exceeds politeness.MaxIntervalMS, so it
// always fits hosts.min_interval_ms.
func MinIntervalMS(rps float64) int { return politeness.IntervalMS(rps) }

const targetColumns = `id, name, seed_url, scope, scope_prefix, max_depth, max_pages, per_host_rps,
	max_attempts, coalesce(extract(epoch FROM recrawl_interval), 0)::float8, state, urls_total, urls_done,
	urls_failed, urls_cancelled, created_at, updated_at, finished_at, sitemaps, include_regex, exclude_regex`

// collectTargets scans every row of a targetColumns query.
func collectTargets(rows pgx.Rows) ([]Target, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Target, error) { return scanTarget(r) })
}

func scanTarget(row pgx.Row) (Target, error) {
	var t Target
	var recrawl float64
	err := row.Scan(&t.ID, &t.Name, &t.SeedURL, &t.Scope, &t.ScopePrefix, &t.MaxDepth, &t.MaxPages,
		&t.PerHostRPS, &t.MaxAttempts, &recrawl, &t.State, &t.URLsTotal, &t.URLsDone, &t.URLsFailed,
		&t.URLsCancelled, &t.CreatedAt, &t.UpdatedAt, &t.FinishedAt,
		&t.Sitemaps, &t.IncludeRegex, &t.ExcludeRegex)
	t.RecrawlInterval = time.Duration(recrawl * float64(time.Second))
	return t, err
}

// CreateTarget stores a target with its seed URL queued, in one transaction.
func (s *Store) CreateTarget(ctx context.Context, nt NewTarget) (Target, error) {
	if err := politeness.CheckRPS(nt.PerHostRPS); err != nil {
		return Target{}, fmt.Errorf("store: create target %q: %w: per_host_rps %g %w", nt.SeedURL, ErrInvalidTarget, nt.PerHostRPS, err)
	}
	var t Target
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var recrawl *string
		if nt.RecrawlInterval > 0 {
			v := fmt.Sprintf("%d milliseconds", nt.RecrawlInterval.Milliseconds())
			recrawl = &v
		}
		var err error
		t, err = scanTarget(tx.QueryRow(ctx, `
			INSERT INTO targets (name, seed_url, scope, scope_prefix, max_depth, max_pages, per_host_rps, max_attempts, recrawl_interval,
			                     sitemaps, include_regex, exclude_regex)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::interval, $10, $11, $12)
			RETURNING `+targetColumns,
			nt.Name, nt.SeedURL, nt.Scope, nt.ScopePrefix, nt.MaxDepth, nt.MaxPages, nt.PerHostRPS, nt.MaxAttempts, recrawl,
			nt.Sitemaps, nt.IncludeRegex, nt.ExcludeRegex))
		if err != nil {
			return fmt.Errorf("insert target: %w", err)
		}
		if err := ensureHosts(ctx, tx, map[string]int{nt.SeedHost: MinIntervalMS(nt.PerHostRPS)}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO urls (target_id, url, host, depth) VALUES ($1, $2, $3, 0)`,
			t.ID, nt.SeedURL, nt.SeedHost); err != nil {
			return fmt.Errorf("insert seed: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO target_hosts (target_id, host) VALUES ($1, $2)`, t.ID, nt.SeedHost); err != nil {
			return fmt.Errorf("insert target host: %w", err)
		}
		if err := recomputeTargetHosts(ctx, tx, t.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, FrontierChannel); err != nil {
			return fmt.Errorf("notify the scheduler: %w", err)
		}
		t.URLsTotal = 1
		return nil
	})
	if err != nil {
		return Target{}, fmt.Errorf("store: create target %q: %w", nt.SeedURL, err)
	}
	return t, nil
}

// Target returns one target.
func (s *Store) Target(ctx context.Context, id int64) (Target, error) {
	t, err := scanTarget(s.pool.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Target{}, ErrNotFound
	}
	if err != nil {
		return Target{}, fmt.Errorf("store: target %d: %w", id, err)
	}
	return t, nil
}

// Targets lists targets, newest first.
func (s *Store) Targets(ctx context.Context, limit int) ([]Target, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+targetColumns+` FROM targets ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list targets: %w", err)
	}
	ts, err := collectTargets(rows)
	if err != nil {
		return nil, fmt.Errorf("store: list targets: %w", err)
	}
	return ts, nil
}

// activeIntervalMS is the minimum interval t imposes on its hosts: its rate's while it is
// active, none otherwise (recomputeHosts).
func activeIntervalMS(t *Target) int {
	if t.State != TargetActive {
		return 0
	}
	return MinIntervalMS(t.PerHostRPS)
}

// ensureHosts creates host rows, raising min_interval_ms where a stricter target needs it.
// Rows are touched in key order so concurrent transactions cannot deadlock on them.
func ensureHosts(ctx context.Context, tx pgx.Tx, hosts map[string]int) error {
	if len(hosts) == 0 {
		return nil
	}
	names, intervals := sortedHosts(hosts)
	_, err := tx.Exec(ctx, `
		INSERT INTO hosts (host, min_interval_ms)
		SELECT h, i FROM unnest($1::text[], $2::int[]) AS v(h, i) ORDER BY h
		ON CONFLICT (host) DO UPDATE SET min_interval_ms = EXCLUDED.min_interval_ms
		WHERE hosts.min_interval_ms < EXCLUDED.min_interval_ms`, names, intervals)
	if err != nil {
		return fmt.Errorf("ensure hosts: %w", err)
	}
	return nil
}
