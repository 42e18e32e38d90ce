package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// hostIntervalSQL is MinIntervalMS(t.per_host_rps) in SQL, for a targets row t: the same
// rounding up and the same clamp to politeness.MaxIntervalMS, guarded so that no stored rate,
// however small (or NaN, which Postgres sorts above every number), overflows the division or
// the int (TestHostIntervalSQLMatchesGo).
const hostIntervalSQL = `CASE
		WHEN t.per_host_rps = 'NaN' OR t.per_host_rps <= 0 THEN 0
		WHEN t.per_host_rps < 1000.0 / 86400000 THEN 86400000
		ELSE least(ceil(1000 / t.per_host_rps), 86400000)::int END`

// recomputeHostsSQL sets the minimum interval of hosts $1 to the strictest of the active
// targets that have URLs on them (0 when none has), locking the host rows in name order. A
// host whose interval shrinks has its next_fetch_at brought forward to at most one new gap
// from now, so that a host a stricter target was holding back (for days, before rates were
// bounded) is free again at once; a fetch started before now is still at least the new gap
// from the next. Paused, done and cancelled targets dispatch nothing, so they do not count;
// resuming or re-crawling a target recomputes again.
const recomputeHostsSQL = `
	WITH h AS (
		SELECT host, min_interval_ms, crawl_delay_ms FROM hosts WHERE host = ANY($1)
		ORDER BY host FOR NO KEY UPDATE),
	v AS (
		SELECT h.host, h.min_interval_ms AS old_ms, h.crawl_delay_ms, coalesce((
			SELECT max(` + hostIntervalSQL + `)
			FROM target_hosts th JOIN targets t ON t.id = th.target_id
			WHERE th.host = h.host AND t.state = 'active'), 0) AS ms
		FROM h)
	UPDATE hosts SET min_interval_ms = v.ms,
		next_fetch_at = CASE WHEN v.ms < v.old_ms
			THEN least(hosts.next_fetch_at, now() + greatest(v.ms, v.crawl_delay_ms) * interval '1 millisecond')
			ELSE hosts.next_fetch_at END
	FROM v WHERE hosts.host = v.host AND hosts.min_interval_ms <> v.ms`

// recomputeHosts makes the minimum interval of each listed host follow the targets active on it
// now. Every change of which targets are active on a host ends with it, in the same
// transaction, after the target rows changed (lock order: targets, URLs, hosts). Its cost is
// one index probe of target_hosts (by host) per host, reading the targets on that host: a
// domain-scope target spread over many hosts pays it once per host when it changes state.
func recomputeHosts(ctx context.Context, tx pgx.Tx, hosts []string) error {
	if len(hosts) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, recomputeHostsSQL, hosts); err != nil {
		return fmt.Errorf("recompute host intervals: %w", err)
	}
	return nil
}

// targetHosts lists the hosts the given targets have URLs on.
func targetHosts(ctx context.Context, tx pgx.Tx, ids []int64) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT host FROM target_hosts WHERE target_id = ANY($1) ORDER BY host`, ids)
	if err != nil {
		return nil, fmt.Errorf("target hosts: %w", err)
	}
	hosts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("target hosts: %w", err)
	}
	return hosts, nil
}

// recomputeTargetHosts is recomputeHosts for every host the given targets have URLs on: called
// after they are created, paused, resumed, re-crawled, cancelled, finished or marked deleting
// (their target_hosts rows stay until the purge, and a deleting target is not active).
func recomputeTargetHosts(ctx context.Context, tx pgx.Tx, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	hosts, err := targetHosts(ctx, tx, ids)
	if err != nil {
		return err
	}
	return recomputeHosts(ctx, tx, hosts)
}

// HostState is one host of a target with its politeness state, shared by all targets.
type HostState struct {
	Host          string
	NextFetchAt   time.Time
	MinIntervalMS int
	CrawlDelayMS  int
	BackoffUntil  *time.Time
	// RobotsStatus is the HTTP status of the last robots.txt fetch; nil when not fetched yet.
	RobotsStatus    *int
	RobotsFetchedAt *time.Time
	InFlight        int64 // URLs of this host dispatched now (all targets)
	Fetches         int64 // fetches applied for this host (all targets)
	Errors          int64 // of which errors: network or HTTP status >= 400
}

// HostList is one page of a target's hosts, by host name.
type HostList struct {
	Rows       []HostState
	NextCursor string
}

// TargetHosts returns one page of a target's hosts with their politeness state, by host name.
func (s *Store) TargetHosts(ctx context.Context, targetID int64, after string, limit int) (HostList, error) {
	limit = clampLimit(limit, 50, 500)
	var a args
	where := "th.target_id = " + a.add(targetID)
	if after != "" {
		var host string
		if _, err := decodeCursor(after, &host); err != nil {
			return HostList{}, err
		}
		where += " AND th.host > " + a.add(host)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT h.host, h.next_fetch_at, h.min_interval_ms, h.crawl_delay_ms, h.backoff_until, h.robots_status,
		       h.robots_fetched_at, (SELECT count(*) FROM urls d WHERE d.host = h.host AND d.state = 'dispatched'),
		       h.fetches, h.errors
		FROM target_hosts th JOIN hosts h ON h.host = th.host
		WHERE `+where+` ORDER BY th.host LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return HostList{}, fmt.Errorf("store: target hosts: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HostState, error) {
		var h HostState
		return h, r.Scan(&h.Host, &h.NextFetchAt, &h.MinIntervalMS, &h.CrawlDelayMS, &h.BackoffUntil, &h.RobotsStatus,
			&h.RobotsFetchedAt, &h.InFlight, &h.Fetches, &h.Errors)
	})
	if err != nil {
		return HostList{}, fmt.Errorf("store: target hosts: %w", err)
	}
	if len(hs) == 0 && after == "" {
		if err := s.targetExists(ctx, targetID); err != nil {
			return HostList{}, err
		}
	}
	out := HostList{Rows: hs}
	if len(hs) > limit {
		out.Rows = hs[:limit]
		out.NextCursor = encodeCursor(hs[limit-1].Host, 0)
	}
	return out, nil
}

// queueHostCounts adds this batch's fetches and errors to each host's counters, in host order.
func queueHostCounts(b *pgx.Batch, hits map[string]*[2]int32) {
	if len(hits) == 0 {
		return
	}
	names, n, e := sortedCounts(hits)
	b.Queue(`
		UPDATE hosts SET fetches = fetches + v.n, errors = errors + v.e
		FROM unnest($1::text[], $2::int[], $3::int[]) AS v(h, n, e)
		WHERE hosts.host = v.h`, names, n, e)
}
