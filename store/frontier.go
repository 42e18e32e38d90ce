package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/target"
)

// URL states.
const (
	URLQueued     = "queued"
	URLDispatched = "dispatched"
	URLDone       = "done"
	URLFailed     = "failed"
)

// DispatchLimits bound one scheduler tick.
type DispatchLimits struct {
	// MaxInFlight caps URLs dispatched and not yet processed, across all hosts.
	MaxInFlight int
	// HostMaxInFlight caps in-flight URLs of one host that has no rate limit.
	HostMaxInFlight int
	// Hosts caps how many hosts one tick considers.
	Hosts int
	// Lease is how long a dispatched URL may stay unprocessed before it is queued again.
	Lease time.Duration
	// PaceAhead is how far ahead of a paced host's next slot its URLs may be leased. A paced
	// host (one with a minimum interval) is dispatched once nothing of it is in flight and its
	// next_fetch_at is at most PaceAhead away; it then gets up to PaceAhead / interval URLs (at
	// least 1, at most MaxPacedSlots), each with the delay after which it may start (Job.DelayMS):
	// its next_fetch_at, then one interval more for each. Zero: one URL at a time, once
	// next_fetch_at has come (crawlers that ignore DelayMS need that).
	PaceAhead time.Duration
	// PacedHostsAhead caps how many paced hosts have slots dispatched ahead at once (0: no
	// cap). A crawler holds a message of slots until they have run, one of its prefetched
	// messages, so it can pace only so many hosts at their full rate; beyond the cap, paced hosts
	// are dispatched one URL at a time, once their next_fetch_at has come, and hold a message
	// only while it is fetched.
	PacedHostsAhead int
	// Robots, when set, turns robots.txt on: a host's URLs wait until its file is known and
	// fresh, and URLs it disallows are failed instead of dispatched (see store/robots.go).
	Robots RobotsFilter
}

// Job is a URL leased to be fetched now.
type Job struct {
	URLID        int64
	TargetID     int64
	URL          string
	Depth        int
	Dispatch     int
	ETag         string
	LastModified string
	// LeaseUntil is when the URL's lease runs out: past it the URL is queued again (ReapLeases)
	// and dispatched anew, so a crawler skips a job still waiting in the queue by then.
	LeaseUntil time.Time
	// Host is the URL's politeness key.
	Host string
	// IntervalMS is the host's minimum spacing between request starts (0: not paced), and
	// DelayMS how long after the dispatch the fetch may start at the earliest: a paced host's
	// jobs of one dispatch are its next slots, DelayMS apart by IntervalMS. A crawler counts
	// DelayMS from when it receives the job, which is after the dispatch, so neither its clock
	// nor the time in the queue can bring a fetch forward.
	IntervalMS int
	DelayMS    int64
}

// MaxPacedSlots is the most URLs of a paced host one dispatch leases (DispatchLimits.PaceAhead):
// they travel in one message (message.MaxJobsPerMessage is 64). 48 covers 4 s at 12 req/s.
const MaxPacedSlots = 48

type dueHost struct {
	host     string
	gapMS    int
	inflight int
	waitMS   int64 // until next_fetch_at (0 if it has passed)
}

// slots is how many URLs a paced host gets in one dispatch.
func (h dueHost) slots(ahead time.Duration) int {
	if h.gapMS <= 0 {
		return 0
	}
	n := int(ahead.Milliseconds()-h.waitMS) / h.gapMS
	return min(max(n, 1), MaxPacedSlots)
}

// Dispatch leases due URLs and returns them as jobs. It holds politeness across every replica:
// a host with a minimum interval (from per_host_rps or Crawl-delay) is dispatched only when
// nothing of it is in flight, and gets its next slots (DispatchLimits.PaceAhead): the jobs'
// DelayMS start at its next_fetch_at and are one interval apart, and next_fetch_at moves to one
// interval after the last of them. Other hosts get up to HostMaxInFlight.
// Hosts and URLs are claimed with FOR UPDATE SKIP LOCKED, so any number of schedulers can run.
func (s *Store) Dispatch(ctx context.Context, lim DispatchLimits) ([]Job, error) {
	var jobs []Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		jobs = nil
		var inflight int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM urls WHERE state = 'dispatched'`).Scan(&inflight); err != nil {
			return fmt.Errorf("count in flight: %w", err)
		}
		budget := lim.MaxInFlight - inflight
		if budget <= 0 {
			return nil
		}
		rows, err := tx.Query(ctx, dueHostsSQL, lim.Hosts, lim.HostMaxInFlight, lim.Robots != nil, interval(RobotsTTL),
			interval(max(lim.PaceAhead, 0)))
		if err != nil {
			return fmt.Errorf("due hosts: %w", err)
		}
		hosts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dueHost, error) {
			var h dueHost
			return h, r.Scan(&h.host, &h.gapMS, &h.inflight, &h.waitMS)
		})
		if err != nil {
			return fmt.Errorf("due hosts: %w", err)
		}
		if len(hosts) == 0 {
			return nil
		}
		aheadHosts := -1 // no cap
		if lim.PacedHostsAhead > 0 && lim.PaceAhead > 0 {
			var busy int
			if err := tx.QueryRow(ctx, pacedBusySQL).Scan(&busy); err != nil {
				return fmt.Errorf("count paced hosts in flight: %w", err)
			}
			aheadHosts = max(lim.PacedHostsAhead-busy, 0)
		}
		names, counts := allot(hosts, budget, lim.HostMaxInFlight, lim.PaceAhead, aheadHosts)
		if len(names) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, leaseSQL,
			names, counts, fmt.Sprintf("%d milliseconds", lim.Lease.Milliseconds()))
		if err != nil {
			return fmt.Errorf("lease urls: %w", err)
		}
		jobs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
			var j Job
			return j, r.Scan(&j.URLID, &j.TargetID, &j.URL, &j.Depth, &j.Dispatch, &j.ETag, &j.LastModified, &j.LeaseUntil, &j.Host)
		})
		if err != nil {
			return fmt.Errorf("lease urls: %w", err)
		}
		if jobs, err = filterScope(ctx, tx, jobs); err != nil {
			return err
		}
		if lim.Robots != nil {
			if jobs, err = filterRobots(ctx, tx, lim.Robots, jobs); err != nil {
				return err
			}
		}
		// Paced hosts: each job gets its slot, and the host's next slot is one interval after
		// the last one given out.
		names, next := assignSlots(hosts, jobs)
		if len(names) > 0 {
			if _, err := tx.Exec(ctx, `
				UPDATE hosts SET next_fetch_at = greatest(next_fetch_at, now() + v.ms * interval '1 millisecond')
				FROM unnest($1::text[], $2::bigint[]) AS v(h, ms) WHERE hosts.host = v.h`,
				names, next); err != nil {
				return fmt.Errorf("pace hosts: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: dispatch: %w", err)
	}
	return jobs, nil
}

// filterScope cancels the leased URLs whose target no longer holds them (target.Spec.Holds:
// an edit narrowed its include or exclude pattern or its max depth) and returns the other
// jobs. The targets are read afresh on every dispatch, so an edit takes effect at the next
// tick; the URLs are cancelled, not deleted (ScopeErrorClass), and do not count as dispatched.
// A target whose spec does not compile keeps its URLs. Like filterRobots, it updates URLs it
// holds and then, through the counter trigger, their targets: a writer that locked the
// target first and waits for one of these URLs deadlocks with it, and inTx tries again
// (docs/adr/0057-editing-targets.md).
func filterScope(ctx context.Context, tx pgx.Tx, jobs []Job) ([]Job, error) {
	if len(jobs) == 0 {
		return jobs, nil
	}
	ids := make([]int64, 0, 4)
	for _, j := range jobs {
		ids = append(ids, j.TargetID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := tx.Query(ctx, `
		SELECT id, seed_url, scope, scope_prefix, max_depth, include_regex, exclude_regex FROM targets WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("target scopes: %w", err)
	}
	specs := make(map[int64]target.Spec, len(ids))
	var id int64
	var sp target.Spec
	_, err = pgx.ForEachRow(rows, []any{&id, &sp.SeedURL, &sp.Scope, &sp.ScopePrefix, &sp.MaxDepth, &sp.Include, &sp.Exclude},
		func() error {
			specs[id] = sp
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("target scopes: %w", err)
	}
	kept := jobs[:0:0]
	var out, tids []int64
	for _, j := range jobs {
		sp, ok := specs[j.TargetID]
		if ok {
			if sc, err := target.Scopes.Scope(j.TargetID, sp); err == nil && !sp.Holds(sc, j.URL, j.Depth) {
				out, tids = append(out, j.URLID), append(tids, j.TargetID)
				continue
			}
		}
		kept = append(kept, j)
	}
	if len(out) == 0 {
		return kept, nil
	}
	if _, err := tx.Exec(ctx, `
		UPDATE urls SET state = 'cancelled', error_class = $2, last_error = 'out of the target''s scope after an edit',
			lease_until = NULL, dispatches = dispatches - 1
		WHERE id = ANY($1)`, out, ScopeErrorClass); err != nil {
		return nil, fmt.Errorf("cancel urls out of scope: %w", err)
	}
	slices.Sort(tids)
	if _, _, err := finishTargets(ctx, tx, slices.Compact(tids)); err != nil {
		return nil, err
	}
	return kept, nil
}

// assignSlots gives the jobs of each paced host their start delays, in order: the host's wait,
// then one interval more for each. It returns the paced hosts that got jobs (in name order, as
// hosts rows are locked) and, for each, the delay of its next free slot.
func assignSlots(hosts []dueHost, jobs []Job) ([]string, []int64) {
	paced := make(map[string]dueHost)
	for _, h := range hosts {
		if h.gapMS > 0 {
			paced[h.host] = h
		}
	}
	next := make(map[string]int64)
	for i := range jobs {
		h, ok := paced[jobs[i].Host]
		if !ok {
			continue
		}
		d, ok := next[h.host]
		if !ok {
			d = h.waitMS
		}
		jobs[i].IntervalMS, jobs[i].DelayMS = h.gapMS, d
		next[h.host] = d + int64(h.gapMS)
	}
	names := make([]string, 0, len(next))
	for h := range next {
		names = append(names, h)
	}
	slices.Sort(names)
	delays := make([]int64, len(names))
	for i, h := range names {
		delays[i] = next[h]
	}
	return names, delays
}

// allot shares the global budget among due hosts: a paced host's slots (dueHost.slots) for the
// first aheadHosts paced hosts (all when negative), one URL for the others once they are due,
// up to the per-host cap for unpaced hosts, round-robin so that no single host takes the whole
// budget.
func allot(hosts []dueHost, budget, hostMax int, ahead time.Duration, aheadHosts int) ([]string, []int32) {
	want := make([]int, len(hosts))
	for i, h := range hosts {
		switch {
		case h.gapMS > 0 && aheadHosts != 0:
			want[i] = h.slots(ahead)
			aheadHosts--
		case h.gapMS > 0 && h.waitMS == 0:
			want[i] = 1
		case h.gapMS > 0:
			want[i] = 0 // not due yet, and no room to dispatch it ahead
		default:
			want[i] = hostMax - h.inflight
		}
	}
	got := make([]int, len(hosts))
	for budget > 0 {
		progress := false
		for i := range hosts {
			if budget == 0 {
				break
			}
			if got[i] < want[i] {
				got[i]++
				budget--
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	var names []string
	var counts []int32
	for i, h := range hosts {
		if got[i] > 0 {
			names = append(names, h.host)
			counts = append(counts, int32(got[i]))
		}
	}
	return names, counts
}

// Undispatch returns leased URLs to the queue, for jobs that could not be published. URLs of a
// target cancelled meanwhile become cancelled instead.
func (s *Store) Undispatch(ctx context.Context, ids []int64) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE urls SET state = CASE WHEN t.state = 'cancelled' THEN 'cancelled' ELSE 'queued' END, lease_until = NULL
		FROM targets t
		WHERE urls.id = ANY($1) AND urls.state = 'dispatched' AND t.id = urls.target_id`, ids)
	if err != nil {
		return fmt.Errorf("store: undispatch: %w", err)
	}
	return nil
}

// ReapLeases returns URLs whose lease expired to the queue, and reports how many. A lost job or
// a lost result thus delays a URL but never loses it. Locked rows are skipped, never waited on.
// URLs of a cancelled target become cancelled instead, so that the target is final.
func (s *Store) ReapLeases(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE urls SET state = CASE WHEN t.state = 'cancelled' THEN 'cancelled' ELSE 'queued' END, lease_until = NULL
		FROM targets t
		WHERE t.id = urls.target_id AND urls.id IN (
			SELECT id FROM urls WHERE state = 'dispatched' AND lease_until < now()
			ORDER BY id LIMIT 10000 FOR UPDATE SKIP LOCKED)`)
	if err != nil {
		return 0, fmt.Errorf("store: reap leases: %w", err)
	}
	return tag.RowsAffected(), nil
}

func sortedHosts(hosts map[string]int) ([]string, []int32) {
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	slices.Sort(names)
	vals := make([]int32, len(names))
	for i, h := range names {
		vals[i] = int32(hosts[h])
	}
	return names, vals
}

// dueHostsSQL picks the hosts a scheduler tick dispatches from ($1: hosts at most; $2: in-flight
// cap per unpaced host; $3: only hosts with a fresh robots.txt; $4: its time to live; $5: how
// far ahead of its next_fetch_at a paced host may be dispatched), each with its gap, its
// fetches in flight and the wait until its next_fetch_at, locked so that concurrent schedulers
// split them. A paced host has nothing in flight when dispatched: its slots of one dispatch go
// to one crawler, which fetches them one after another, so fetches never overlap (a slow page
// delays the next slot instead), and ApplyResults has seen the previous slots' fetches.
const dueHostsSQL = `
			SELECT h.host, greatest(h.min_interval_ms, h.crawl_delay_ms) AS gap_ms, f.n,
			       greatest(ceil(extract(epoch FROM h.next_fetch_at - now()) * 1000), 0)::bigint AS wait_ms
			FROM hosts h
			CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM urls d WHERE d.host = h.host AND d.state = 'dispatched') f0
			-- Sitemap fetches in flight count too (store/sitemap.go).
			CROSS JOIN LATERAL (SELECT f0.n + (SELECT count(*)::int FROM sitemaps sd WHERE sd.host = h.host AND sd.state = 'dispatched') AS n) f
			WHERE h.next_fetch_at <= now() + $5::interval
			  AND (h.backoff_until IS NULL OR h.backoff_until <= now())
			  AND (NOT $3::bool OR h.robots_fetched_at > now() - $4::interval)
			  AND f.n < CASE WHEN greatest(h.min_interval_ms, h.crawl_delay_ms) > 0 THEN 1 ELSE $2 END
			  -- Cheap first: some active target has URLs on this host. A paused target's backlog
			  -- is then never scanned, however big.
			  AND EXISTS (
			      SELECT 1 FROM target_hosts th JOIN targets t ON t.id = th.target_id
			      WHERE th.host = h.host AND t.state = 'active')
			  AND ` + queuedProbeHead + ` AND q.next_attempt_at <= now()` + queuedProbeTail + `
			ORDER BY h.next_fetch_at
			LIMIT $1
			FOR UPDATE OF h SKIP LOCKED`

// pacedBusySQL counts the paced hosts with URLs in flight (read through the dispatched URLs,
// at most DispatchLimits.MaxInFlight of them, not through every host).
const pacedBusySQL = `
			SELECT count(DISTINCT d.host) FROM urls d JOIN hosts h ON h.host = d.host
			WHERE d.state = 'dispatched' AND greatest(h.min_interval_ms, h.crawl_delay_ms) > 0`

// leaseSQL leases up to $2[i] due URLs of host $1[i] (of active targets, oldest due first) for
// $3, skipping those another scheduler holds. The target's state is a scalar subquery, not a
// join: joined, a target the statistics do not know yet (a new crawl on an old database, which
// autoanalyze sees only once a tenth of urls has changed) looked like a few rows, and the
// planner read all of its queued URLs through urls_target_state_idx and sorted them on every
// tick. This way the only plan is the host's due URLs in urls_queued_idx order, stopping at n
// (TestLeaseReadsTheHostInOrderWithStaleStatistics).
const leaseSQL = `
			WITH picked AS (
				SELECT u.id FROM unnest($1::text[], $2::int[]) AS q(host, n)
				CROSS JOIN LATERAL (
					SELECT u.id FROM urls u
					WHERE u.host = q.host AND u.state = 'queued' AND NOT u.paused AND u.next_attempt_at <= now()
					  AND (SELECT t.state FROM targets t WHERE t.id = u.target_id) = 'active'
					ORDER BY u.next_attempt_at, u.id
					LIMIT q.n
					FOR UPDATE OF u SKIP LOCKED
				) u
			)
			UPDATE urls SET state = 'dispatched', lease_until = now() + $3::interval, dispatches = dispatches + 1
			FROM picked WHERE urls.id = picked.id
			RETURNING urls.id, urls.target_id, urls.url, urls.depth, urls.dispatches,
			          coalesce(urls.etag, ''), coalesce(urls.last_modified, ''), urls.lease_until, urls.host`

// queuedProbeHead and queuedProbeTail make the condition "host h has a queued URL of an active
// target" (with more conditions on q between them): a probe of urls_queued_idx per host, in
// its order, that stops at the first match. Paused targets' URLs are not in that index
// (migration 00007), so a paused backlog on the same host is never read. Pulled up into a semi join (without the OFFSET 0s),
// the planner hashed every queued URL of every active target on each scheduler tick, and
// without the ORDER BY it could scan urls from the start, where the done URLs are: costs that
// grew with the frontier (issue #6, TestDueHostsProbesQueuedPerHost).
const (
	queuedProbeHead = `EXISTS (
			      SELECT 1 FROM (
			          SELECT q.target_id FROM urls q
			          WHERE q.host = h.host AND q.state = 'queued' AND NOT q.paused`
	queuedProbeTail = `
			          ORDER BY q.next_attempt_at OFFSET 0) q
			      JOIN targets t ON t.id = q.target_id
			      WHERE t.state = 'active'
			      OFFSET 0)`
)
