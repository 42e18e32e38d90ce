package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Every query here reads through an index and touches at most a page of rows plus small
// aggregates: the dashboard renders each page in a few milliseconds with millions of URLs
// (see BenchmarkDashboardQueries). Optional filters are added to the SQL text rather than
// written as "$1 = 0 OR col = $1", so that every variant gets a plan that uses its index.

func clampLimit(limit, def, most int) int {
	switch {
	case limit <= 0:
		return def
	case limit > most:
		return most
	}
	return limit
}

// cursor is the opaque keyset position of a listing: the last row's sort key and id.
type cursor struct {
	K  json.RawMessage `json:"k,omitempty"`
	ID int64           `json:"id"`
}

func encodeCursor(key any, id int64) string {
	var raw json.RawMessage
	if key != nil {
		raw, _ = json.Marshal(key) // keys are strings, numbers and times: never fails
	}
	b, _ := json.Marshal(cursor{K: raw, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor decodes s into its id and, when key is non-nil, its sort key.
func decodeCursor(s string, key any) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	if key != nil {
		if len(c.K) == 0 || json.Unmarshal(c.K, key) != nil {
			return 0, fmt.Errorf("%w: cursor does not match the sort order", ErrInvalidQuery)
		}
	}
	return c.ID, nil
}

// args collects query parameters and hands out their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

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
		&s.Sitemaps, &s.IncludeRegex, &s.ExcludeRegex,
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

// Overview returns the frontier across every target and the active targets. Totals come from
// the targets' counters; only in-flight and retrying URLs are counted, on their partial indexes.
func (s *Store) Overview(ctx context.Context) (Overview, error) {
	o := Overview{Targets: map[string]int64{}}
	var cancelled int64
	b := &pgx.Batch{}
	b.Queue(`SELECT coalesce(sum(urls_total), 0)::bigint, coalesce(sum(urls_done), 0)::bigint,
			coalesce(sum(urls_failed), 0)::bigint, coalesce(sum(urls_cancelled), 0)::bigint FROM targets`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&o.Discovered, &o.Done, &o.Failed, &cancelled) })
	b.Queue(`SELECT count(*) FROM urls WHERE state = 'dispatched'`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&o.Dispatched) })
	b.Queue(`SELECT count(*) FROM urls WHERE state = 'queued' AND attempts > 0`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&o.Retrying) })
	b.Queue(searchBacklogSQL).QueryRow(func(row pgx.Row) error { return row.Scan(&o.SearchBacklog) })
	b.Queue(`SELECT state, count(*) FROM targets GROUP BY state`).Query(func(rows pgx.Rows) error {
		var st string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&st, &n}, func() error { o.Targets[st] = n; return nil })
		return err
	})
	b.Queue(`SELECT `+summaryColumns+` FROM `+summaryFrom+`
		WHERE targets.state IN ('active', 'paused') ORDER BY targets.id DESC LIMIT $1`, OverviewActiveLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			o.Active, err = collectSummaries(rows)
			return err
		})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return Overview{}, fmt.Errorf("store: overview: %w", err)
	}
	o.Queued = max(0, o.Discovered-o.Done-o.Failed-cancelled-o.Dispatched-o.Retrying)
	if o.Active == nil {
		o.Active = []TargetSummary{}
	}
	return o, nil
}

// Throughput returns fetches and errors per bucket over the last window, oldest first, with
// every bucket present; the last bucket is the current, partial one. targetID 0 means every
// target. Buckets are aligned to multiples of bucket since the Unix epoch.
func (s *Store) Throughput(ctx context.Context, targetID int64, window, bucket time.Duration) ([]RatePoint, error) {
	if bucket < time.Second || window < bucket || window/bucket > 10000 {
		return nil, fmt.Errorf("%w: throughput needs a bucket of at least 1s and at most 10000 buckets", ErrInvalidQuery)
	}
	var a args
	b := a.add(fmt.Sprintf("%d milliseconds", bucket.Milliseconds()))
	w := a.add(fmt.Sprintf("%d milliseconds", window.Milliseconds()))
	filter := ""
	if targetID != 0 {
		filter = " AND f.target_id = " + a.add(targetID)
	}
	rows, err := s.pool.Query(ctx, `
		WITH bounds AS (SELECT date_bin(`+b+`::interval, now(), timestamptz 'epoch') AS last),
		buckets AS (
			SELECT generate_series(last - `+w+`::interval + `+b+`::interval, last, `+b+`::interval) AS at FROM bounds),
		r AS (
			SELECT date_bin(`+b+`::interval, f.at, timestamptz 'epoch') AS at, sum(f.pages)::bigint AS p, sum(f.errors)::bigint AS e
			FROM fetch_rates f, bounds
			WHERE f.at >= bounds.last - `+w+`::interval + `+b+`::interval`+filter+`
			GROUP BY 1)
		SELECT buckets.at, coalesce(r.p, 0), coalesce(r.e, 0) FROM buckets LEFT JOIN r ON r.at = buckets.at
		ORDER BY buckets.at`, a...)
	if err != nil {
		return nil, fmt.Errorf("store: throughput: %w", err)
	}
	pts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RatePoint, error) {
		var p RatePoint
		return p, r.Scan(&p.At, &p.Pages, &p.Errors)
	})
	if err != nil {
		return nil, fmt.Errorf("store: throughput: %w", err)
	}
	return pts, nil
}

// TargetList returns one page of targets with their live figures, newest first.
func (s *Store) TargetList(ctx context.Context, q TargetQuery) (TargetList, error) {
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
	if q.After != "" {
		id, err := decodeCursor(q.After, nil)
		if err != nil {
			return TargetList{}, err
		}
		where += " AND targets.id < " + a.add(id)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+summaryColumns+` FROM `+summaryFrom+`
		WHERE `+where+` ORDER BY targets.id DESC LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return TargetList{}, fmt.Errorf("store: target list: %w", err)
	}
	ts, err := collectSummaries(rows)
	if err != nil {
		return TargetList{}, fmt.Errorf("store: target list: %w", err)
	}
	out := TargetList{Rows: ts}
	if len(ts) > limit {
		out.Rows = ts[:limit]
		out.NextCursor = encodeCursor(nil, ts[limit-1].ID)
	}
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

// TargetErrors groups a target's URLs that carry an error now (retrying, failed, or fetched
// with an HTTP error status) by error class, biggest group first, each with its most recently
// discovered URL as a sample.
func (s *Store) TargetErrors(ctx context.Context, targetID int64, limit int) ([]ErrorGroup, error) {
	limit = clampLimit(limit, 20, 200)
	rows, err := s.pool.Query(ctx, `
		SELECT g.class, g.n, s.id, s.url, coalesce(s.last_error, ''), coalesce(s.last_status, 0),
		       coalesce(s.fetched_at, s.discovered_at)
		FROM (SELECT error_class AS class, count(*) AS n FROM urls
		      WHERE target_id = $1 AND error_class IS NOT NULL GROUP BY error_class) g
		CROSS JOIN LATERAL (
			SELECT id, url, last_error, last_status, fetched_at, discovered_at FROM urls u
			WHERE u.target_id = $1 AND u.error_class = g.class ORDER BY u.id DESC LIMIT 1) s
		ORDER BY g.n DESC, g.class LIMIT $2`, targetID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: target errors: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ErrorGroup, error) {
		var g ErrorGroup
		return g, r.Scan(&g.Class, &g.Count, &g.SampleURLID, &g.SampleURL, &g.SampleError, &g.SampleStatus, &g.LastSeen)
	})
	if err != nil {
		return nil, fmt.Errorf("store: target errors: %w", err)
	}
	if len(gs) == 0 {
		if err := s.targetExists(ctx, targetID); err != nil {
			return nil, err
		}
	}
	return gs, nil
}

// parseStatus turns "2xx" into [200, 299] and "404" into [404, 404].
func parseStatus(s string) (lo, hi int, err error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5' {
		lo = int(s[0]-'0') * 100
		return lo, lo + 99, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, fmt.Errorf("%w: status must be a class like 2xx or a code like 404, not %q", ErrInvalidQuery, s)
	}
	return n, n, nil
}

// Pages returns one page of a target's stored pages, filtered and sorted on the indexes of
// (target_id, column, url_id).
func (s *Store) Pages(ctx context.Context, q PageQuery) (PageList, error) {
	if q.TargetID <= 0 {
		return PageList{}, fmt.Errorf("%w: pages need a target", ErrInvalidQuery)
	}
	limit := clampLimit(q.Limit, 50, 500)
	var col string
	var key any
	switch q.Sort {
	case "", SortURL:
		col, key = "url", new(string)
	case SortFetchedAt:
		col, key = "fetched_at", new(time.Time)
	case SortStatus:
		col, key = "status", new(int)
	case SortSize:
		col, key = "size_bytes", new(int)
	default:
		return PageList{}, fmt.Errorf("%w: unknown sort %q (url, fetched_at, status or size)", ErrInvalidQuery, q.Sort)
	}
	var a args
	where := "target_id = " + a.add(q.TargetID)
	if q.Status != "" {
		lo, hi, err := parseStatus(q.Status)
		if err != nil {
			return PageList{}, err
		}
		if lo == hi {
			where += " AND status = " + a.add(lo)
		} else {
			where += " AND status BETWEEN " + a.add(lo) + " AND " + a.add(hi)
		}
	}
	if ct := strings.ToLower(strings.TrimSpace(q.ContentType)); ct != "" {
		where += " AND starts_with(lower(content_type), " + a.add(ct) + ")"
	}
	op, dir := ">", "ASC"
	if q.Desc {
		op, dir = "<", "DESC"
	}
	if q.After != "" {
		id, err := decodeCursor(q.After, key)
		if err != nil {
			return PageList{}, err
		}
		var k any
		switch v := key.(type) {
		case *string:
			k = *v
		case *time.Time:
			k = *v
		case *int:
			k = *v
		}
		where += fmt.Sprintf(" AND (%s, url_id) %s (%s, %s)", col, op, a.add(k), a.add(id))
	}
	// The page's keys come from an index-only scan (the filter columns are in every sort
	// index); only the rows shown are read from the table.
	rows, err := s.pool.Query(ctx, `
		SELECT p.url_id, p.target_id, p.url, p.status, p.content_type, p.title, p.size_bytes, p.duration_ms, p.fetched_at
		FROM (SELECT url_id FROM pages WHERE `+where+`
		      ORDER BY `+col+` `+dir+`, url_id `+dir+` LIMIT `+a.add(limit+1)+`) k
		JOIN pages p ON p.url_id = k.url_id
		ORDER BY p.`+col+` `+dir+`, p.url_id `+dir, a...)
	if err != nil {
		return PageList{}, fmt.Errorf("store: pages: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PageRow, error) {
		var p PageRow
		return p, r.Scan(&p.URLID, &p.TargetID, &p.URL, &p.Status, &p.ContentType, &p.Title, &p.Size, &p.DurationMS, &p.FetchedAt)
	})
	if err != nil {
		return PageList{}, fmt.Errorf("store: pages: %w", err)
	}
	out := PageList{Rows: ps}
	if len(ps) > limit {
		out.Rows = ps[:limit]
		last := ps[limit-1]
		var k any
		switch col {
		case "url":
			k = last.URL
		case "fetched_at":
			k = last.FetchedAt
		case "status":
			k = last.Status
		default:
			k = last.Size
		}
		out.NextCursor = encodeCursor(k, last.URLID)
	}
	return out, nil
}

// Snippet markers: private-use characters, removed from the text before ts_headline so that a
// crawled page cannot forge a highlight.
const (
	hitStart = "\uE000"
	hitStop  = "\uE001"
)

// headlineOptions make ts_headline mark hits with the private-use markers.
var headlineOptions = `StartSel="` + hitStart + `", StopSel="` + hitStop +
	`", MaxFragments=2, MaxWords=24, MinWords=8, FragmentDelimiter=" … "`

// headlineInput bounds the text ts_headline parses per hit.
const headlineInput = 50000

// splitSnippet cuts ts_headline output into plain and hit parts.
func splitSnippet(h string) []SnippetPart {
	var parts []SnippetPart
	for h != "" {
		i := strings.Index(h, hitStart)
		if i < 0 {
			parts = append(parts, SnippetPart{Text: h})
			break
		}
		if i > 0 {
			parts = append(parts, SnippetPart{Text: h[:i]})
		}
		h = h[i+len(hitStart):]
		j := strings.Index(h, hitStop)
		if j < 0 {
			j = len(h)
		}
		if j > 0 {
			parts = append(parts, SnippetPart{Text: h[:j], Hit: true})
		}
		h = strings.TrimPrefix(h[j:], hitStop)
	}
	return parts
}

// searchScan is how many of the newest pages Search checks one by one before it turns to the
// GIN index.
const searchScan = 2000

// Search runs a full-text search (websearch syntax, 'simple' configuration) over indexed pages,
// newest first, with highlighted snippets. A page is found once a search indexer has built its
// vector (IndexPages); until then it counts in Overview.SearchBacklog.
//
// The newest-first order cannot come from the GIN index, and the planner's guess of how many
// pages match is often far off (a rare word outside the statistics is taken for a common one
// and the whole table is scanned; a common word through the GIN index costs a bitmap of every
// page). So Search decides by measuring, in two steps:
//  1. It checks the newest searchScan pages (of the target, after the cursor) in key order.
//     A common query finds its page of hits there, and a small target is covered whole.
//  2. Otherwise the query matches fewer than about one page in a hundred, and the GIN index
//     finds every match cheaply; the newest of them are the page. This step is pinned to its
//     bitmap plan with transaction-local planner settings.
//
// Only the hits of the page get a ts_headline.
func (s *Store) Search(ctx context.Context, q SearchQuery) (SearchResults, error) {
	text := strings.TrimSpace(q.Query)
	if text == "" {
		return SearchResults{}, fmt.Errorf("%w: search needs a query", ErrInvalidQuery)
	}
	if len(text) > 500 {
		return SearchResults{}, fmt.Errorf("%w: search query is longer than 500 bytes", ErrInvalidQuery)
	}
	limit := clampLimit(q.Limit, 20, 100)
	scan := searchScan
	if s.searchProbe > 0 {
		scan = s.searchProbe
	}
	var a args
	// Written out (not in a CTE) so that the planner sees a constant tsquery.
	tsq := "websearch_to_tsquery('simple', " + a.add(text) + ")"
	filter := "true"
	if q.TargetID != 0 {
		filter += " AND p.target_id = " + a.add(q.TargetID)
	}
	if q.After != "" {
		after, err := decodeCursor(q.After, nil)
		if err != nil {
			return SearchResults{}, err
		}
		filter += " AND p.url_id < " + a.add(after)
	}
	n := a.add(limit + 1)

	var hits []SearchHit
	var unindexed int64
	var next int64 // the last url_id of this page when there are more
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, searchBacklogSQL).Scan(&unindexed); err != nil {
			return err
		}
		var scanned int
		var ids []int64
		err := tx.QueryRow(ctx, `
			SELECT count(*), coalesce((array_agg(r.url_id ORDER BY r.url_id DESC) FILTER (WHERE r.tsv @@ `+tsq+`))[1:`+n+`], '{}')
			FROM (SELECT p.url_id, p.tsv FROM page_search p WHERE `+filter+` ORDER BY p.url_id DESC LIMIT `+strconv.Itoa(scan)+`) r`,
			a...).Scan(&scanned, &ids)
		if err != nil {
			return err
		}
		if len(ids) <= limit && scanned == scan {
			if _, err := tx.Exec(ctx, `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT p.url_id FROM page_search p WHERE p.tsv @@ `+tsq+` AND `+filter+`
				ORDER BY p.url_id DESC LIMIT `+n, a...)
			if err != nil {
				return err
			}
			if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('enable_seqscan', 'on', true), set_config('enable_indexscan', 'on', true)`); err != nil {
				return err
			}
		}
		if len(ids) > limit {
			next, ids = ids[limit-1], ids[:limit]
		}
		if len(ids) == 0 {
			return nil
		}
		// Pages of a target being deleted stay in page_search until their batch goes; they are
		// left out here, where only a page's worth of rows is looked at (a page of results may
		// then hold fewer hits, and the cursor still goes on).
		rows, err := tx.Query(ctx, `
			SELECT p.url_id, p.target_id, p.url, p.title, p.status, p.fetched_at,
			       ts_headline('simple', translate(left(p.body_text, `+strconv.Itoa(headlineInput)+`), E'\uE000\uE001', ''),
			                   websearch_to_tsquery('simple', $1), $2)
			FROM pages p WHERE p.url_id = ANY($3)
			  AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = p.target_id AND t.state = 'deleting')
			ORDER BY p.url_id DESC`, text, headlineOptions, ids)
		if err != nil {
			return err
		}
		hits, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SearchHit, error) {
			var h SearchHit
			var hl string
			err := r.Scan(&h.URLID, &h.TargetID, &h.URL, &h.Title, &h.Status, &h.FetchedAt, &hl)
			h.Snippet = splitSnippet(hl)
			return h, err
		})
		return err
	})
	if err != nil {
		return SearchResults{}, fmt.Errorf("store: search: %w", err)
	}
	out := SearchResults{Hits: hits, Unindexed: unindexed}
	if next != 0 {
		out.NextCursor = encodeCursor(nil, next)
	}
	if out.Hits == nil {
		out.Hits = []SearchHit{}
	}
	return out, nil
}

const fetchColumns = `fetched_at, coalesce(status, 0), duration_ms, size, coalesce(content_hash, ''), changed,
	coalesce(error_class, ''), coalesce(error, '')`

func scanFetch(r pgx.CollectableRow) (Fetch, error) {
	var f Fetch
	return f, r.Scan(&f.FetchedAt, &f.Status, &f.DurationMS, &f.Size, &f.ContentHash, &f.Changed, &f.ErrorClass, &f.Error)
}

func scanLink(r pgx.CollectableRow) (LinkRow, error) {
	var l LinkRow
	return l, r.Scan(&l.URLID, &l.URL, &l.State, &l.Status, &l.Title)
}

// PageDetail returns everything known about one URL, in one round trip.
func (s *Store) PageDetail(ctx context.Context, urlID int64) (PageDetail, error) {
	var d PageDetail
	var p PageInfo
	var hasPage bool
	var links []string
	b := &pgx.Batch{}
	b.Queue(`
		SELECT u.id, u.target_id, u.url, u.host, u.depth, u.state, u.attempts, u.next_attempt_at,
		       coalesce(u.last_error, ''), coalesce(u.error_class, ''), u.discovered_at, u.fetched_at,
		       p.url_id IS NOT NULL, coalesce(p.final_url, ''), coalesce(p.status, 0), coalesce(p.content_type, ''),
		       coalesce(p.title, ''), coalesce(p.size_bytes, 0), coalesce(p.truncated, false), coalesce(p.duration_ms, 0),
		       coalesce(p.link_count, 0), coalesce(p.content_hash, ''), coalesce(p.etag, ''), coalesce(p.last_modified, ''),
		       coalesce(p.fetched_at, 'epoch'), coalesce(p.stored_at, 'epoch'),
		       coalesce(p.links[1:`+strconv.Itoa(DetailLinkLimit)+`], '{}')
		FROM urls u LEFT JOIN pages p ON p.url_id = u.id WHERE u.id = $1`, urlID).
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&d.URLID, &d.TargetID, &d.URL, &d.Host, &d.Depth, &d.State, &d.Attempts, &d.NextAttemptAt,
				&d.LastError, &d.ErrorClass, &d.DiscoveredAt, &d.FetchedAt,
				&hasPage, &p.FinalURL, &p.Status, &p.ContentType, &p.Title, &p.Size, &p.Truncated, &p.DurationMS,
				&p.LinkCount, &p.ContentHash, &p.ETag, &p.LastModified, &p.FetchedAt, &p.StoredAt, &links)
		})
	b.Queue(`
		SELECT u.id, u.url, u.state, coalesce(u.last_status, 0), coalesce(p.title, '')
		FROM links l JOIN urls u ON u.id = l.to_url_id LEFT JOIN pages p ON p.url_id = u.id
		WHERE l.from_url_id = $1 ORDER BY u.url LIMIT $2`, urlID, DetailLinkLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			d.Outlinks, err = pgx.CollectRows(rows, scanLink)
			return err
		})
	b.Queue(`
		SELECT u.id, u.url, u.state, coalesce(u.last_status, 0), coalesce(p.title, '')
		FROM (SELECT from_url_id FROM links WHERE to_url_id = $1 ORDER BY from_url_id LIMIT $2) l
		JOIN urls u ON u.id = l.from_url_id LEFT JOIN pages p ON p.url_id = u.id
		ORDER BY u.id`, urlID, DetailLinkLimit+1).
		Query(func(rows pgx.Rows) error {
			var err error
			d.Inlinks, err = pgx.CollectRows(rows, scanLink)
			return err
		})
	b.Queue(`SELECT `+fetchColumns+` FROM page_fetches WHERE url_id = $1 ORDER BY fetched_at DESC LIMIT $2`,
		urlID, DetailHistoryLimit).
		Query(func(rows pgx.Rows) error {
			var err error
			d.History, err = pgx.CollectRows(rows, scanFetch)
			return err
		})
	err := s.pool.SendBatch(ctx, b).Close()
	if errors.Is(err, pgx.ErrNoRows) {
		return PageDetail{}, ErrNotFound
	}
	if err != nil {
		return PageDetail{}, fmt.Errorf("store: page detail %d: %w", urlID, err)
	}
	if hasPage {
		d.Page = &p
	}
	d.Links = links
	if len(d.Inlinks) > DetailLinkLimit {
		d.Inlinks, d.MoreInlinks = d.Inlinks[:DetailLinkLimit], true
	}
	if d.Outlinks == nil {
		d.Outlinks = []LinkRow{}
	}
	if d.Inlinks == nil {
		d.Inlinks = []LinkRow{}
	}
	if d.History == nil {
		d.History = []Fetch{}
	}
	return d, nil
}

// FetchHistory returns a URL's latest fetches, newest first.
func (s *Store) FetchHistory(ctx context.Context, urlID int64, limit int) ([]Fetch, error) {
	limit = clampLimit(limit, DetailHistoryLimit, 1000)
	rows, err := s.pool.Query(ctx, `SELECT `+fetchColumns+` FROM page_fetches WHERE url_id = $1
		ORDER BY fetched_at DESC LIMIT $2`, urlID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: fetch history %d: %w", urlID, err)
	}
	fs, err := pgx.CollectRows(rows, scanFetch)
	if err != nil {
		return nil, fmt.Errorf("store: fetch history %d: %w", urlID, err)
	}
	if len(fs) == 0 {
		var ok bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM urls WHERE id = $1)`, urlID).Scan(&ok); err != nil {
			return nil, fmt.Errorf("store: fetch history %d: %w", urlID, err)
		}
		if !ok {
			return nil, ErrNotFound
		}
	}
	return fs, nil
}

const urlInfoColumns = `id, target_id, url, host, attempts, next_attempt_at, coalesce(last_status, 0),
	coalesce(last_error, ''), coalesce(error_class, ''), fetched_at`

func scanURLInfo(r pgx.CollectableRow) (URLRowInfo, error) {
	var u URLRowInfo
	return u, r.Scan(&u.URLID, &u.TargetID, &u.URL, &u.Host, &u.Attempts, &u.NextAttemptAt, &u.LastStatus,
		&u.LastError, &u.ErrorClass, &u.FetchedAt)
}

func (f URLFilter) where(a *args) string {
	var w string
	if f.TargetID != 0 {
		w += " AND target_id = " + a.add(f.TargetID)
	}
	if f.Host != "" {
		w += " AND host = " + a.add(strings.ToLower(f.Host))
	}
	if f.ErrorClass != "" {
		w += " AND error_class = " + a.add(f.ErrorClass)
	}
	return w
}

// Retrying lists URLs waiting for a retry (queued after a failed attempt), soonest next
// attempt first.
func (s *Store) Retrying(ctx context.Context, f URLFilter) (URLList, error) {
	limit := clampLimit(f.Limit, 50, 500)
	var a args
	where := "state = 'queued' AND attempts > 0" + f.where(&a)
	if f.After != "" {
		var at time.Time
		id, err := decodeCursor(f.After, &at)
		if err != nil {
			return URLList{}, err
		}
		where += " AND (next_attempt_at, id) > (" + a.add(at) + ", " + a.add(id) + ")"
	}
	rows, err := s.pool.Query(ctx, `SELECT `+urlInfoColumns+` FROM urls WHERE `+where+`
		ORDER BY next_attempt_at, id LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return URLList{}, fmt.Errorf("store: retrying: %w", err)
	}
	us, err := pgx.CollectRows(rows, scanURLInfo)
	if err != nil {
		return URLList{}, fmt.Errorf("store: retrying: %w", err)
	}
	out := URLList{Rows: us}
	if len(us) > limit {
		out.Rows = us[:limit]
		out.NextCursor = encodeCursor(us[limit-1].NextAttemptAt, us[limit-1].URLID)
	}
	if out.Rows == nil {
		out.Rows = []URLRowInfo{}
	}
	return out, nil
}

// Failed lists URLs that failed for good, most recently discovered first.
func (s *Store) Failed(ctx context.Context, f URLFilter) (URLList, error) {
	limit := clampLimit(f.Limit, 50, 500)
	var a args
	where := "state = 'failed'" + f.where(&a)
	if f.After != "" {
		id, err := decodeCursor(f.After, nil)
		if err != nil {
			return URLList{}, err
		}
		where += " AND id < " + a.add(id)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+urlInfoColumns+` FROM urls WHERE `+where+`
		ORDER BY id DESC LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return URLList{}, fmt.Errorf("store: failed: %w", err)
	}
	us, err := pgx.CollectRows(rows, scanURLInfo)
	if err != nil {
		return URLList{}, fmt.Errorf("store: failed: %w", err)
	}
	out := URLList{Rows: us}
	if len(us) > limit {
		out.Rows = us[:limit]
		out.NextCursor = encodeCursor(nil, us[limit-1].URLID)
	}
	if out.Rows == nil {
		out.Rows = []URLRowInfo{}
	}
	return out, nil
}

// ExportPages streams a target's stored pages to fn in url_id order. Rows are read from the
// connection as fn consumes them, so memory stays flat whatever the size of the target. An
// error from fn stops the export and is returned as is.
func (s *Store) ExportPages(ctx context.Context, targetID int64, fn func(ExportRow) error) error {
	if err := s.targetExists(ctx, targetID); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT p.url_id, p.url, p.final_url, u.depth, p.status, p.content_type, p.title, p.size_bytes,
		       p.truncated, p.duration_ms, p.link_count, p.content_hash, p.etag, p.last_modified,
		       p.fetched_at, p.body_text
		FROM pages p JOIN urls u ON u.id = p.url_id
		WHERE p.target_id = $1 ORDER BY p.url_id`, targetID)
	if err != nil {
		return fmt.Errorf("store: export target %d: %w", targetID, err)
	}
	defer rows.Close()
	var r ExportRow
	for rows.Next() {
		if err := rows.Scan(&r.URLID, &r.URL, &r.FinalURL, &r.Depth, &r.Status, &r.ContentType, &r.Title, &r.Size,
			&r.Truncated, &r.DurationMS, &r.LinkCount, &r.ContentHash, &r.ETag, &r.LastModified,
			&r.FetchedAt, &r.Text); err != nil {
			return fmt.Errorf("store: export target %d: %w", targetID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: export target %d: %w", targetID, err)
	}
	return nil
}
