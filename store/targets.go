package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/politeness"
	"github.com/trawlhq/trawl/target"
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

// Target is a stored crawl target: its spec (seed, scope, filters, limits and rate), its state
// and its progress counters.
type Target struct {
	ID int64
	target.Spec
	State         string
	URLsTotal     int64
	URLsDone      int64
	URLsFailed    int64
	URLsCancelled int64 // never fetched because the target was cancelled
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FinishedAt    *time.Time
}

// Pending is the number of URLs queued or in flight.
func (t Target) Pending() int64 { return t.URLsTotal - t.URLsDone - t.URLsFailed - t.URLsCancelled }

// ErrInvalidTarget marks a target the store refuses to hold (callers validate first, with
// target.Spec.Validate, so this is a programming error, not bad input).
var ErrInvalidTarget = errors.New("invalid target")

// MinIntervalMS converts requests per second per host into the minimum spacing between request
// starts in milliseconds; 0 means unlimited. It never exceeds politeness.MaxIntervalMS, so it
// always fits hosts.min_interval_ms.
func MinIntervalMS(rps float64) int { return politeness.IntervalMS(rps) }

const targetColumns = `id, name, seed_url, scope, scope_prefix, max_depth, max_pages, per_host_rps,
	max_attempts, coalesce(extract(epoch FROM recrawl_interval), 0)::float8, state, urls_total, urls_done,
	urls_failed, urls_cancelled, created_at, updated_at, finished_at, sitemaps, include_regex, exclude_regex, search_language`

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
		&t.Sitemaps, &t.Include, &t.Exclude, &t.SearchLanguage)
	t.RecrawlInterval = time.Duration(recrawl * float64(time.Second))
	return t, err
}

// CreateTarget stores a target with its seed URL queued, in one transaction. The spec's seed
// must be canonical (target.Spec.Validate makes it so); its host is the seed's politeness key.
// A search language PostgreSQL has no built-in configuration for is target.ErrSearchLanguage
// (wrapped); "" is target.DefaultSearchLanguage.
func (s *Store) CreateTarget(ctx context.Context, spec target.Spec) (Target, error) {
	if err := politeness.CheckRPS(spec.PerHostRPS); err != nil {
		return Target{}, fmt.Errorf("store: create target %q: %w: per_host_rps %g %w", spec.SeedURL, ErrInvalidTarget, spec.PerHostRPS, err)
	}
	seedHost := spec.SeedHost()
	if seedHost == "" {
		return Target{}, fmt.Errorf("store: create target %q: %w: the seed has no host", spec.SeedURL, ErrInvalidTarget)
	}
	if spec.SearchLanguage == "" {
		spec.SearchLanguage = target.DefaultSearchLanguage
	}
	var t Target
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := checkSearchLanguage(ctx, tx, spec.SearchLanguage); err != nil {
			return err
		}
		var err error
		t, err = scanTarget(tx.QueryRow(ctx, `
			INSERT INTO targets (name, seed_url, scope, scope_prefix, max_depth, max_pages, per_host_rps, max_attempts, recrawl_interval,
			                     sitemaps, include_regex, exclude_regex, search_language)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::interval, $10, $11, $12, $13)
			RETURNING `+targetColumns,
			spec.Name, spec.SeedURL, spec.Scope, spec.ScopePrefix, spec.MaxDepth, spec.MaxPages, spec.PerHostRPS, spec.MaxAttempts,
			recrawlInterval(spec), spec.Sitemaps, spec.Include, spec.Exclude, spec.SearchLanguage))
		if err != nil {
			return fmt.Errorf("insert target: %w", err)
		}
		if err := ensureHosts(ctx, tx, map[string]int{seedHost: MinIntervalMS(spec.PerHostRPS)}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO urls (target_id, url, host, depth) VALUES ($1, $2, $3, 0)`,
			t.ID, spec.SeedURL, seedHost); err != nil {
			return fmt.Errorf("insert seed: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO target_hosts (target_id, host) VALUES ($1, $2)`, t.ID, seedHost); err != nil {
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
		return Target{}, fmt.Errorf("store: create target %q: %w", spec.SeedURL, err)
	}
	return t, nil
}

// recrawlInterval is the spec's recrawl interval as the column holds it: NULL for never.
func recrawlInterval(spec target.Spec) *string {
	if spec.RecrawlInterval <= 0 {
		return nil
	}
	v := fmt.Sprintf("%d milliseconds", spec.RecrawlInterval.Milliseconds())
	return &v
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

// TargetSummary is a target with its live figures.
type TargetSummary struct {
	Target
	// Dispatched URLs of this target in flight now.
	Dispatched int64
	// Retrying URLs of this target (queued after a failed attempt).
	Retrying int64
	// Cancelled URLs (never fetched because the target was cancelled); same as URLsCancelled.
	Cancelled int64
	// PagesPerSec and ErrorsPerSec are averaged over the last RateWindow.
	PagesPerSec  float64
	ErrorsPerSec float64
}

// RateWindow is the span TargetSummary's rates are averaged over.
const RateWindow = time.Minute

// Progress is the share of discovered URLs that are finished (done, failed or cancelled), 0..1.
func (s TargetSummary) Progress() float64 {
	if s.URLsTotal == 0 {
		return 0
	}
	return float64(s.URLsDone+s.URLsFailed+s.Cancelled) / float64(s.URLsTotal)
}

// Queued is the number of URLs of this target waiting for a fetch (first or retry).
func (s TargetSummary) Queued() int64 {
	return max(0, s.Pending()-s.Dispatched)
}

// TargetList is one page of targets, newest first.
type TargetList struct {
	Rows []TargetSummary
	// PrevCursor and NextCursor fetch the neighbouring pages; empty at either end.
	PrevCursor string
	NextCursor string
	Total      Total // with TargetQuery.Count
}

// TargetQuery pages through targets, newest first.
type TargetQuery struct {
	State  string // optional stored state filter: active, paused, done, cancelled
	After  string // cursor from TargetList.NextCursor
	Before string // cursor from TargetList.PrevCursor (not with After)
	Limit  int    // 1..500; 0 means 50
	Count  bool   // fill TargetList.Total
}

// ErrTargetState (wrapped) is returned when an action does not apply to the target's current
// state, such as resuming a cancelled target. Handlers answer 409 for it.
var ErrTargetState = errors.New("store: action not allowed in the target's state")

// ErrTargetDeleting (wrapped) is ErrTargetState for a target that is being deleted: no action
// but deleting it again applies to it. Handlers answer 409 and say why.
var ErrTargetDeleting = fmt.Errorf("%w: the target is being deleted", ErrTargetState)

// summaryColumns are a target's columns followed by its live figures; the FROM clause must be
// summaryFrom.
const summaryColumns = targetColumns + `,
	(SELECT count(*) FROM urls d WHERE d.target_id = targets.id AND d.state = 'dispatched'),
	(SELECT count(*) FROM urls r WHERE r.target_id = targets.id AND r.state = 'queued' AND r.attempts > 0),
	coalesce(rt.p, 0), coalesce(rt.e, 0)`

// summaryFrom joins each target to its fetch rates over the last RateWindow (whole seconds).
const summaryFrom = `targets LEFT JOIN LATERAL (
	SELECT sum(f.pages)::bigint AS p, sum(f.errors)::bigint AS e FROM fetch_rates f
	WHERE f.target_id = targets.id AND f.at >= date_trunc('second', now()) - interval '60 seconds'
	  AND f.at < date_trunc('second', now())) rt ON true`

func scanSummary(row pgx.Row) (TargetSummary, error) {
	var s TargetSummary
	var recrawl float64
	var pages, errs int64
	err := row.Scan(&s.ID, &s.Name, &s.SeedURL, &s.Scope, &s.ScopePrefix, &s.MaxDepth, &s.MaxPages,
		&s.PerHostRPS, &s.MaxAttempts, &recrawl, &s.State, &s.URLsTotal, &s.URLsDone, &s.URLsFailed,
		&s.URLsCancelled, &s.CreatedAt, &s.UpdatedAt, &s.FinishedAt,
		&s.Sitemaps, &s.Include, &s.Exclude, &s.SearchLanguage,
		&s.Dispatched, &s.Retrying, &pages, &errs)
	s.RecrawlInterval = time.Duration(recrawl * float64(time.Second))
	s.Cancelled = s.URLsCancelled
	s.PagesPerSec = float64(pages) / RateWindow.Seconds()
	s.ErrorsPerSec = float64(errs) / RateWindow.Seconds()
	return s, err
}

func collectSummaries(rows pgx.Rows) ([]TargetSummary, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TargetSummary, error) { return scanSummary(r) })
}

// TargetList returns one page of targets with their live figures, newest first, after or
// before a cursor; with q.Count, also how many there are.
func (s *Store) TargetList(ctx context.Context, q TargetQuery) (TargetList, error) {
	if err := bothCursors(q.After, q.Before); err != nil {
		return TargetList{}, err
	}
	limit := clampLimit(q.Limit, 50, 500)
	var a args
	where := "true"
	if q.State != "" {
		switch q.State {
		case TargetActive, TargetPaused, TargetDone, TargetCancelled, TargetDeleting:
		default:
			return TargetList{}, fmt.Errorf("%w: unknown target state %q", ErrInvalidQuery, q.State)
		}
		where += " AND targets.state = " + a.add(q.State)
	}
	var out TargetList
	if q.Count {
		var err error
		if out.Total, err = s.countRows(ctx, "targets", where, a); err != nil {
			return TargetList{}, fmt.Errorf("store: target list: count: %w", err)
		}
	}
	backward := q.Before != ""
	op, dir := seek(true, backward)
	if c := q.After + q.Before; c != "" {
		id, err := decodeCursor(c, nil)
		if err != nil {
			return TargetList{}, err
		}
		where += " AND targets.id " + op + " " + a.add(id)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+summaryColumns+` FROM `+summaryFrom+`
		WHERE `+where+` ORDER BY targets.id `+dir+` LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return TargetList{}, fmt.Errorf("store: target list: %w", err)
	}
	ts, err := collectSummaries(rows)
	if err != nil {
		return TargetList{}, fmt.Errorf("store: target list: %w", err)
	}
	if backward && len(ts) < limit {
		q.Before, q.Count = "", false
		first, err := s.TargetList(ctx, q)
		first.Total = out.Total
		return first, err
	}
	var prev, next bool
	out.Rows, prev, next = pageOf(ts, limit, backward, q.After != "")
	out.PrevCursor, out.NextCursor = cursors(out.Rows, prev, next, func(t TargetSummary) (any, int64) { return nil, t.ID })
	return out, nil
}

// TargetSummary returns one target with its live figures.
func (s *Store) TargetSummary(ctx context.Context, id int64) (TargetSummary, error) {
	t, err := scanSummary(s.pool.QueryRow(ctx, `SELECT `+summaryColumns+` FROM `+summaryFrom+` WHERE targets.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return TargetSummary{}, ErrNotFound
	}
	if err != nil {
		return TargetSummary{}, fmt.Errorf("store: target summary %d: %w", id, err)
	}
	return t, nil
}

// targetExists turns an empty listing of a missing target into ErrNotFound.
func (s *Store) targetExists(ctx context.Context, id int64) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM targets WHERE id = $1)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("store: target %d: %w", id, err)
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}
