package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sitemap states.
const (
	SitemapQueued     = "queued"
	SitemapDispatched = "dispatched"
	SitemapDone       = "done"
	SitemapFailed     = "failed"
)

// MaxSitemapsPerTarget bounds how many sitemaps (index children included) one target fetches.
const MaxSitemapsPerTarget = 1000

// SitemapJob is a sitemap leased to be fetched now.
type SitemapJob struct {
	ID       int64
	TargetID int64
	URL      string
}

// DispatchSitemaps leases up to limit due sitemaps of active targets, one transaction each, so
// that host politeness holds as for pages: the host must be due, not backing off, with a fresh
// robots.txt when robots is on, and a paced host must have nothing in flight (no page and no
// other sitemap; Dispatch counts in-flight sitemaps likewise); its next_fetch_at then moves one
// interval on, and the result's fetch start moves it again. A sitemap whose lease expired is
// due again.
func (s *Store) DispatchSitemaps(ctx context.Context, limit int, lease time.Duration, robotsOn bool) ([]SitemapJob, error) {
	var jobs []SitemapJob
	for range limit {
		var j SitemapJob
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `
				WITH picked AS (
					SELECT s.id, s.host FROM sitemaps s
					JOIN targets t ON t.id = s.target_id
					JOIN hosts h ON h.host = s.host
					WHERE ((s.state = 'queued' AND s.next_attempt_at <= now()) OR (s.state = 'dispatched' AND s.lease_until < now()))
					  AND t.state = 'active'
					  AND h.next_fetch_at <= now()
					  AND (h.backoff_until IS NULL OR h.backoff_until <= now())
					  AND (NOT $2::bool OR h.robots_fetched_at > now() - $3::interval)
					  AND (greatest(h.min_interval_ms, h.crawl_delay_ms) = 0
					       OR NOT EXISTS (SELECT 1 FROM urls d WHERE d.host = h.host AND d.state = 'dispatched')
					          AND NOT EXISTS (SELECT 1 FROM sitemaps x WHERE x.host = h.host AND x.state = 'dispatched'
					                          AND x.id <> s.id))
					ORDER BY s.id
					LIMIT 1
					FOR UPDATE OF s, h SKIP LOCKED
				), paced AS (
					UPDATE hosts SET next_fetch_at = now() + greatest(min_interval_ms, crawl_delay_ms) * interval '1 millisecond'
					FROM picked WHERE hosts.host = picked.host AND greatest(min_interval_ms, crawl_delay_ms) > 0
				)
				UPDATE sitemaps SET state = 'dispatched', lease_until = now() + $1::interval
				FROM picked WHERE sitemaps.id = picked.id
				RETURNING sitemaps.id, sitemaps.target_id, sitemaps.url`,
				interval(lease), robotsOn, interval(RobotsTTL)).Scan(&j.ID, &j.TargetID, &j.URL)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return jobs, fmt.Errorf("store: dispatch sitemaps: %w", err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// UndispatchSitemaps returns leased sitemaps to the queue, for jobs that could not be published.
func (s *Store) UndispatchSitemaps(ctx context.Context, ids []int64) error {
	if _, err := s.pool.Exec(ctx, `
		UPDATE sitemaps SET state = 'queued', lease_until = NULL WHERE id = ANY($1) AND state = 'dispatched'`, ids); err != nil {
		return fmt.Errorf("store: undispatch sitemaps: %w", err)
	}
	return nil
}

// SitemapResult is the outcome of one sitemap fetch.
type SitemapResult struct {
	ID        int64
	TargetID  int64
	Status    int
	Error     string
	Permanent bool // the error cannot be fixed by retrying (not a sitemap, a refused address)
	StartedAt time.Time
	// URLs are the page URLs listed (absolute, not yet canonical or scoped).
	URLs []string
	// Sitemaps are the children of an index, already canonical and on the sitemap's host.
	Sitemaps []string
}

// SitemapPolicy decides for ApplySitemap: which listed URLs join the frontier (Policy.Admit,
// as links of a page at depth 0) and whether a failed fetch is tried again.
type SitemapPolicy interface {
	Policy
	// DecideSitemap returns the sitemap's new state (SitemapDone, SitemapQueued for a retry at
	// next, or SitemapFailed) after a fetch, given the earlier attempts.
	DecideSitemap(r *SitemapResult, attempts int) (state string, next time.Time)
}

// SitemapApplied summarises ApplySitemap.
type SitemapApplied struct {
	Duplicate  bool
	State      string
	Discovered int     // new URLs inserted into the frontier
	Children   int     // index children queued
	Finished   []int64 // targets that became done
	// FinishedCounts are the Finished targets' counters, in the same order.
	FinishedCounts []TargetCounts
}

// ApplySitemap stores a sitemap fetch: its state, the listed URLs that the policy admits
// (bounded by the target's max_pages, deduplicated like links), the children of an index one
// level deep, the host's pacing, and the target's completion. Applying a result twice is
// harmless: a sitemap that is not dispatched is left alone.
func (s *Store) ApplySitemap(ctx context.Context, r SitemapResult, pol SitemapPolicy) (SitemapApplied, error) {
	var out SitemapApplied
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = SitemapApplied{}
		t, err := scanTarget(tx.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1 FOR UPDATE`, r.TargetID))
		if errors.Is(err, pgx.ErrNoRows) {
			out.Duplicate = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock target: %w", err)
		}
		if t.State == TargetDeleting {
			// Its sitemaps are being deleted (PurgeTarget): do not lock one after the target.
			out.Duplicate = true
			return nil
		}
		var state, host string
		var attempts, nesting int
		err = tx.QueryRow(ctx, `SELECT state, host, attempts, nesting FROM sitemaps WHERE id = $1 AND target_id = $2 FOR UPDATE`,
			r.ID, r.TargetID).Scan(&state, &host, &attempts, &nesting)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && state != SitemapDispatched {
			out.Duplicate = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock sitemap: %w", err)
		}
		newState, next := pol.DecideSitemap(&r, attempts)
		out.State = newState
		if next.IsZero() {
			next = time.Now()
		}
		started := r.StartedAt
		if started.IsZero() {
			started = time.Now()
		}
		if newState == SitemapDone && t.State == TargetActive {
			if err := admitSitemapURLs(ctx, tx, &t, pol, r.URLs, &out); err != nil {
				return err
			}
			if nesting == 0 && len(r.Sitemaps) > 0 {
				tag, err := tx.Exec(ctx, `
					INSERT INTO sitemaps (target_id, url, host, nesting)
					SELECT $1, v.u, $2, $3 FROM unnest($4::text[]) WITH ORDINALITY AS v(u, o)
					ORDER BY v.o
					LIMIT greatest(0, $5 - (SELECT count(*) FROM sitemaps WHERE target_id = $1))
					ON CONFLICT (target_id, url) DO NOTHING`, t.ID, host, nesting+1, r.Sitemaps, MaxSitemapsPerTarget)
				if err != nil {
					return fmt.Errorf("queue child sitemaps: %w", err)
				}
				out.Children = int(tag.RowsAffected())
			}
		}
		done := newState == SitemapDone
		if _, err := tx.Exec(ctx, `
			UPDATE sitemaps SET state = $2, attempts = attempts + CASE WHEN $3 THEN 0 ELSE 1 END, next_attempt_at = $4,
				lease_until = NULL, last_status = nullif($5, 0), last_error = nullif($6, ''), urls_found = $7,
				urls_added = $8, fetched_at = CASE WHEN $5 <> 0 THEN $9 ELSE fetched_at END
			WHERE id = $1`, r.ID, newState, done, next, r.Status, r.Error, len(r.URLs), out.Discovered, started); err != nil {
			return fmt.Errorf("update sitemap: %w", err)
		}
		// Paced from now, the latest the fetch can have started by the database's clock (not the
		// crawler's StartedAt, which a clock behind would bring forward).
		if _, err := tx.Exec(ctx, `
			UPDATE hosts SET fetches = fetches + 1,
				next_fetch_at = CASE WHEN greatest(min_interval_ms, crawl_delay_ms) > 0
					THEN greatest(next_fetch_at, now() + greatest(min_interval_ms, crawl_delay_ms) * interval '1 millisecond')
					ELSE next_fetch_at END
			WHERE host = $1`, host); err != nil {
			return fmt.Errorf("pace host: %w", err)
		}
		out.Finished, out.FinishedCounts, err = finishTargets(ctx, tx, []int64{t.ID})
		return err
	})
	if err != nil {
		return SitemapApplied{}, fmt.Errorf("store: apply sitemap %d: %w", r.ID, err)
	}
	return out, nil
}

// admitSitemapURLs inserts the listed URLs the policy admits, within max_pages; the target row
// is locked by the caller.
func admitSitemapURLs(ctx context.Context, tx pgx.Tx, t *Target, pol Policy, urls []string, out *SitemapApplied) error {
	remaining := int64(t.MaxPages) - t.URLsTotal
	if remaining <= 0 || len(urls) == 0 {
		return nil
	}
	found := pol.Admit(t, 0, urls)
	if len(found) == 0 {
		return nil
	}
	seen := make(map[string]struct{}, len(found))
	hosts := map[string]int{}
	var us, hs []string
	var ds []int32
	for _, f := range found {
		if _, dup := seen[f.URL]; dup {
			continue
		}
		seen[f.URL] = struct{}{}
		us, hs, ds = append(us, f.URL), append(hs, f.Host), append(ds, int32(f.Depth))
		hosts[f.Host] = activeIntervalMS(t)
	}
	err := tx.QueryRow(ctx, newURLsSQL(remaining, len(us)), t.ID, us, hs, ds, remaining).Scan(&out.Discovered)
	if err != nil {
		return fmt.Errorf("insert sitemap urls: %w", err)
	}
	return ensureHosts(ctx, tx, hosts)
}
