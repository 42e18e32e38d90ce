package store

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RobotsTTL is how long a robots.txt file is used before it is fetched again. Page URLs of a
// host whose file is unknown or older are held until it is fetched.
const RobotsTTL = 24 * time.Hour

// RobotsErrorClass is the error class of URLs that robots.txt keeps the crawler from fetching.
const RobotsErrorClass = "robots"

// RobotsJob asks for a host's robots.txt.
type RobotsJob struct {
	Host string
	URL  string
}

// DispatchRobots leases up to limit hosts whose robots.txt is unknown or stale, that have
// queued URLs of an active target and whose retry time and pacing allow a request now, and
// returns one robots.txt job per host. The URL takes the scheme of one of the host's queued
// URLs (the politeness key is host[:port], so http and https share one file). A paced host's
// next_fetch_at moves one interval on, as for a page.
func (s *Store) DispatchRobots(ctx context.Context, limit int, lease time.Duration) ([]RobotsJob, error) {
	rows, err := s.pool.Query(ctx, robotsDueSQL,
		limit, interval(lease), interval(RobotsTTL))
	if err != nil {
		return nil, fmt.Errorf("store: dispatch robots: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RobotsJob, error) {
		var j RobotsJob
		var scheme string
		err := r.Scan(&j.Host, &scheme)
		j.URL = scheme + "://" + j.Host + "/robots.txt"
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: dispatch robots: %w", err)
	}
	return jobs, nil
}

// UndispatchRobots releases robots leases of jobs that could not be published.
func (s *Store) UndispatchRobots(ctx context.Context, hosts []string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE hosts SET robots_lease_until = NULL WHERE host = ANY($1)`, hosts); err != nil {
		return fmt.Errorf("store: undispatch robots: %w", err)
	}
	return nil
}

func interval(d time.Duration) string { return fmt.Sprintf("%d milliseconds", d.Milliseconds()) }

// RobotsResult is the outcome of one robots.txt fetch.
type RobotsResult struct {
	Host   string
	URL    string // the robots.txt URL asked for
	Status int    // final status after redirects; 0 when no response arrived
	Body   string
	Agent  string // the crawler's product token
	Error  string
	// ErrorClass and Permanent describe a fetch without a response; a permanent one (a refused
	// address) fails the host's URLs at once.
	ErrorClass string
	Permanent  bool
	StartedAt  time.Time
}

// RobotsOutcome is what a RobotsResult does to its host.
type RobotsOutcome struct {
	// Known means the rules are settled (2xx parsed, or 4xx: allow all) and page URLs may go.
	Known        bool
	CrawlDelayMS int
	// RetryAt is when an unsettled file (5xx, 429, unreachable) is fetched again; meanwhile
	// the host's URLs are held (disallow all for now).
	RetryAt time.Time
	// FailHeld fails the host's queued URLs (error class robots, FailReason) after too many
	// failed attempts, so that targets can finish.
	FailHeld   bool
	FailReason string
	// FailClass is the error class of the failed URLs; "" means RobotsErrorClass.
	FailClass string
	// Sitemaps are absolute sitemap URLs on the host to queue for its targets with sitemaps on.
	Sitemaps []string
}

// RobotsPolicy decides what a robots fetch means; attempts counts earlier failed fetches.
type RobotsPolicy interface {
	DecideRobots(r *RobotsResult, attempts int) RobotsOutcome
}

// RobotsApplied summarises ApplyRobots.
type RobotsApplied struct {
	Outcome  RobotsOutcome
	Failed   int64   // URLs failed by FailHeld
	Finished []int64 // targets that became done
	// FinishedCounts are the Finished targets' counters, in the same order.
	FinishedCounts []TargetCounts
}

// ApplyRobots stores a robots.txt fetch on its host. When the file is known, the targets with
// sitemaps on that have URLs on the host get the outcome's sitemaps queued. Locks are taken in
// the store's order (targets, URLs, hosts). A host row that does not exist is ignored.
func (s *Store) ApplyRobots(ctx context.Context, r RobotsResult, pol RobotsPolicy) (RobotsApplied, error) {
	var out RobotsApplied
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = RobotsApplied{}
		var attempts int
		err := tx.QueryRow(ctx, `SELECT robots_attempts FROM hosts WHERE host = $1`, r.Host).Scan(&attempts)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read host: %w", err)
		}
		o := pol.DecideRobots(&r, attempts)
		out.Outcome = o
		rows, err := tx.Query(ctx, `
			SELECT t.id FROM targets t JOIN target_hosts th ON th.target_id = t.id
			WHERE th.host = $1 AND t.state = 'active' ORDER BY t.id FOR UPDATE OF t`, r.Host)
		if err != nil {
			return fmt.Errorf("lock targets: %w", err)
		}
		tids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("lock targets: %w", err)
		}
		started := r.StartedAt
		if started.IsZero() {
			started = time.Now()
		}
		if o.Known {
			if len(o.Sitemaps) > 0 && len(tids) > 0 {
				if _, err := tx.Exec(ctx, `
					INSERT INTO sitemaps (target_id, url, host)
					SELECT t.id, v.u, $2 FROM targets t CROSS JOIN unnest($3::text[]) AS v(u)
					WHERE t.id = ANY($1) AND t.sitemaps
					ORDER BY t.id
					ON CONFLICT (target_id, url) DO NOTHING`, tids, r.Host, o.Sitemaps); err != nil {
					return fmt.Errorf("queue sitemaps: %w", err)
				}
			}
			_, err = tx.Exec(ctx, `
				UPDATE hosts SET robots_status = $2, robots_body = $3, robots_agent = $4, robots_fetched_at = $5,
					crawl_delay_ms = $6, robots_attempts = 0, robots_retry_at = NULL, robots_lease_until = NULL,
					robots_error = NULL,
					-- Paced from now, the latest the fetch can have started by the database's clock
					-- (not the crawler's StartedAt, which a clock behind would bring forward).
					next_fetch_at = CASE WHEN greatest(min_interval_ms, $6) > 0
						THEN greatest(next_fetch_at, now() + greatest(min_interval_ms, $6) * interval '1 millisecond')
						ELSE next_fetch_at END
				WHERE host = $1`, r.Host, r.Status, r.Body, r.Agent, started, o.CrawlDelayMS)
			if err != nil {
				return fmt.Errorf("store robots: %w", err)
			}
			return nil
		}
		if o.FailHeld && len(tids) > 0 {
			rows, err := tx.Query(ctx, `
				UPDATE urls SET state = 'failed', error_class = $2, last_error = $3, lease_until = NULL
				WHERE id IN (
					SELECT id FROM urls WHERE host = $1 AND state = 'queued' AND target_id = ANY($4)
					ORDER BY id FOR UPDATE)
				RETURNING target_id`, r.Host, cmp.Or(o.FailClass, RobotsErrorClass), o.FailReason, tids)
			if err != nil {
				return fmt.Errorf("fail held urls: %w", err)
			}
			failed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return fmt.Errorf("fail held urls: %w", err)
			}
			out.Failed = int64(len(failed))
			if out.Finished, out.FinishedCounts, err = finishTargets(ctx, tx, failed); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `
			UPDATE hosts SET robots_status = $2, robots_attempts = robots_attempts + 1, robots_retry_at = $3,
				robots_lease_until = NULL, robots_error = nullif($4, ''), errors = errors + 1
			WHERE host = $1`, r.Host, r.Status, o.RetryAt, r.Error)
		if err != nil {
			return fmt.Errorf("store robots failure: %w", err)
		}
		return nil
	})
	if err != nil {
		return RobotsApplied{}, fmt.Errorf("store: apply robots for %q: %w", r.Host, err)
	}
	return out, nil
}

// finishTargets marks done the active targets among ids that have nothing left to do, and
// returns them with their counters.
func finishTargets(ctx context.Context, tx pgx.Tx, ids []int64) ([]int64, []TargetCounts, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	rows, err := tx.Query(ctx, `
		UPDATE targets SET state = 'done', finished_at = now(), updated_at = now()
		WHERE id = ANY($1) AND state = 'active' AND urls_total = urls_done + urls_failed + urls_cancelled
		  AND NOT EXISTS (SELECT 1 FROM sitemaps s WHERE s.target_id = targets.id AND s.state IN ('queued', 'dispatched'))
		RETURNING `+targetCountsColumns, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("finish targets: %w", err)
	}
	done, counts, err := collectTargetCounts(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("finish targets: %w", err)
	}
	if err := recomputeTargetHosts(ctx, tx, done...); err != nil {
		return nil, nil, err
	}
	return done, counts, nil
}

// RobotsFilter answers, in Go, whether robots.txt lets a URL be fetched. Dispatch asks it for
// every URL it leases and fails the disallowed ones in the same transaction, so they are never
// fetched and never use a host's pacing slot. Implementations cache parsed files by host and
// version (the time the file was fetched).
type RobotsFilter interface {
	// Cached reports whether the file of host fetched at version is cached.
	Cached(host string, version time.Time) bool
	// Learn caches a file.
	Learn(host string, version time.Time, status int, agent, body string)
	// Allowed reports whether the file of host fetched at version allows the URL.
	Allowed(host string, version time.Time, rawURL string) bool
}

// filterRobots fails the jobs that robots.txt disallows and returns the others.
func filterRobots(ctx context.Context, tx pgx.Tx, f RobotsFilter, jobs []Job) ([]Job, error) {
	if len(jobs) == 0 {
		return jobs, nil
	}
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.URLID
	}
	type hostInfo struct {
		host    string
		version time.Time
	}
	rows, err := tx.Query(ctx, `
		SELECT u.id, h.host, h.robots_fetched_at FROM urls u JOIN hosts h ON h.host = u.host
		WHERE u.id = ANY($1) AND h.robots_fetched_at IS NOT NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("robots versions: %w", err)
	}
	byURL := map[int64]hostInfo{}
	var missing []string
	seen := map[string]bool{}
	for rows.Next() {
		var id int64
		var hi hostInfo
		if err := rows.Scan(&id, &hi.host, &hi.version); err != nil {
			rows.Close()
			return nil, fmt.Errorf("robots versions: %w", err)
		}
		byURL[id] = hi
		if !seen[hi.host] && !f.Cached(hi.host, hi.version) {
			missing = append(missing, hi.host)
		}
		seen[hi.host] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("robots versions: %w", err)
	}
	if len(missing) > 0 {
		rows, err := tx.Query(ctx, `
			SELECT host, robots_fetched_at, coalesce(robots_status, 0), coalesce(robots_agent, ''), coalesce(robots_body, '')
			FROM hosts WHERE host = ANY($1) AND robots_fetched_at IS NOT NULL`, missing)
		if err != nil {
			return nil, fmt.Errorf("robots bodies: %w", err)
		}
		for rows.Next() {
			var host, agent, body string
			var version time.Time
			var status int
			if err := rows.Scan(&host, &version, &status, &agent, &body); err != nil {
				rows.Close()
				return nil, fmt.Errorf("robots bodies: %w", err)
			}
			f.Learn(host, version, status, agent, body)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("robots bodies: %w", err)
		}
	}
	kept := jobs[:0:0]
	var denied []int64
	var tids []int64
	for _, j := range jobs {
		hi, ok := byURL[j.URLID]
		if ok && !f.Allowed(hi.host, hi.version, j.URL) {
			denied = append(denied, j.URLID)
			tids = append(tids, j.TargetID)
			continue
		}
		kept = append(kept, j)
	}
	if len(denied) == 0 {
		return kept, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE urls SET state = 'failed', error_class = $2, last_error = 'disallowed by robots.txt',
			lease_until = NULL, dispatches = dispatches - 1
		WHERE id = ANY($1)`, denied, RobotsErrorClass); err != nil {
		return nil, fmt.Errorf("fail disallowed: %w", err)
	}
	if _, _, err := finishTargets(ctx, tx, tids); err != nil {
		return nil, err
	}
	return kept, nil
}

// robotsDueSQL leases up to $1 hosts whose robots.txt is due (older than $3) for $2, and returns
// each with the scheme of one of its queued URLs.
const robotsDueSQL = `
		WITH due AS (
			SELECT h.host FROM hosts h
			WHERE coalesce(h.robots_fetched_at, '-infinity'::timestamptz) <= now() - $3::interval -- hosts_robots_due_idx
			  AND (h.robots_lease_until IS NULL OR h.robots_lease_until < now())
			  AND (h.robots_retry_at IS NULL OR h.robots_retry_at <= now())
			  AND (h.backoff_until IS NULL OR h.backoff_until <= now())
			  AND h.next_fetch_at <= now()
			  -- A paced host's slots in flight may run late (a slow page): wait for them.
			  AND (greatest(h.min_interval_ms, h.crawl_delay_ms) = 0
			       OR NOT EXISTS (SELECT 1 FROM urls d WHERE d.host = h.host AND d.state = 'dispatched'))
			  AND EXISTS (
			      SELECT 1 FROM target_hosts th JOIN targets t ON t.id = th.target_id
			      WHERE th.host = h.host AND t.state = 'active')
			  AND ` + queuedProbeHead + queuedProbeTail + `
			ORDER BY h.host
			LIMIT $1
			FOR UPDATE OF h SKIP LOCKED
		)
		UPDATE hosts SET robots_lease_until = now() + $2::interval,
			next_fetch_at = CASE WHEN greatest(min_interval_ms, crawl_delay_ms) > 0
				THEN now() + greatest(min_interval_ms, crawl_delay_ms) * interval '1 millisecond' ELSE next_fetch_at END
		FROM due WHERE hosts.host = due.host
		RETURNING hosts.host, coalesce((SELECT split_part(q.url, '://', 1) FROM urls q
			WHERE q.host = hosts.host AND q.state = 'queued' AND NOT q.paused ORDER BY q.next_attempt_at LIMIT 1), 'http')`
