package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

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
// (target_id, column, url_id), after or before a cursor; with q.Count, also how many match.
func (s *Store) Pages(ctx context.Context, q PageQuery) (PageList, error) {
	if q.TargetID <= 0 {
		return PageList{}, fmt.Errorf("%w: pages need a target", ErrInvalidQuery)
	}
	if err := bothCursors(q.After, q.Before); err != nil {
		return PageList{}, err
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
	var total Total
	if q.Count {
		var err error
		if total, err = s.countRows(ctx, "pages", where, a); err != nil {
			return PageList{}, fmt.Errorf("store: pages: count: %w", err)
		}
	}
	backward := q.Before != ""
	op, dir := seek(q.Desc, backward)
	if c := q.After + q.Before; c != "" {
		id, err := decodeCursor(c, key)
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
	if backward && len(ps) < limit {
		// Back at the start (or rows before the cursor went): the first page, full.
		q.Before, q.Count = "", false
		out, err := s.Pages(ctx, q)
		out.Total = total
		return out, err
	}
	out := PageList{Total: total}
	var prev, next bool
	out.Rows, prev, next = pageOf(ps, limit, backward, q.After != "")
	out.PrevCursor, out.NextCursor = cursors(out.Rows, prev, next, func(p PageRow) (any, int64) {
		switch col {
		case "url":
			return p.URL, p.URLID
		case "fetched_at":
			return p.FetchedAt, p.URLID
		case "status":
			return p.Status, p.URLID
		}
		return p.Size, p.URLID
	})
	return out, nil
}

// PageDetail returns everything known about one URL, in one round trip.
func (s *Store) PageDetail(ctx context.Context, urlID int64) (PageDetail, error) {
	var d PageDetail
	var p PageInfo
	var hasPage bool
	var links []string
	b := &pgx.Batch{}
	b.Queue(`
		SELECT u.id, u.target_id, u.url, u.host, u.depth, u.state,
		       u.attempts + (u.state = 'done' AND u.fetched_at IS NOT NULL)::int, u.next_attempt_at,
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

// ExportPages streams a target's stored pages to fn in url_id order. Rows are read from the
// connection as fn consumes them, so memory stays flat whatever the size of the target. Without
// withText, ExportRow.Text is left empty and the pages' text is not read (nor decompressed). An
// error from fn stops the export and is returned as is.
func (s *Store) ExportPages(ctx context.Context, targetID int64, withText bool, fn func(ExportRow) error) error {
	if err := s.targetExists(ctx, targetID); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT p.url_id, p.url, p.final_url, u.depth, p.status, p.content_type, p.title, p.size_bytes,
		       p.truncated, p.duration_ms, p.link_count, p.content_hash, p.etag, p.last_modified,
		       p.fetched_at, CASE WHEN $2 THEN p.body_text ELSE '' END
		FROM pages p JOIN urls u ON u.id = p.url_id
		WHERE p.target_id = $1 ORDER BY p.url_id`, targetID, withText)
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

// Page sort columns for PageQuery.Sort.
const (
	SortURL       = "url"
	SortFetchedAt = "fetched_at"
	SortStatus    = "status"
	SortSize      = "size"
)

// PageQuery lists one target's stored pages, keyset-paginated.
type PageQuery struct {
	TargetID int64 // required
	// Status filters by HTTP status: a class like "2xx" or "4xx", or an exact code like "404".
	Status string
	// ContentType filters by media type prefix, case-insensitive: "text/html" matches
	// "text/html; charset=utf-8".
	ContentType string
	Sort        string // SortURL (default), SortFetchedAt, SortStatus or SortSize
	Desc        bool
	After       string // cursor from PageList.NextCursor; only valid with the same filters and sort
	Before      string // cursor from PageList.PrevCursor (not with After)
	Limit       int    // 1..500; 0 means 50
	Count       bool   // fill PageList.Total
}

// PageRow is a stored page in a listing.
type PageRow struct {
	URLID       int64
	TargetID    int64
	URL         string
	Status      int
	ContentType string
	Title       string
	Size        int
	DurationMS  int
	FetchedAt   time.Time
}

// PageList is one page of PageRows.
type PageList struct {
	Rows []PageRow
	// PrevCursor and NextCursor fetch the neighbouring pages; empty at either end.
	PrevCursor string
	NextCursor string
	Total      Total // with PageQuery.Count
}

// PageDetail is everything known about one URL: its frontier row and, once fetched, its page.
type PageDetail struct {
	URLID    int64
	TargetID int64
	URL      string
	Host     string
	Depth    int
	State    string // queued, dispatched, done, failed, cancelled
	// Attempts counts the fetches made since the URL was last queued (by its discovery, a
	// re-crawl or a requeue): the failed ones (urls.attempts, which the retry limit reads) plus,
	// once it is done, the one that succeeded. A URL fetched once says 1.
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	ErrorClass    string
	DiscoveredAt  time.Time
	FetchedAt     *time.Time
	// Page is nil until the URL has a stored page.
	Page *PageInfo
	// Outlinks are the links of the page that are in the target's frontier (canonical).
	Outlinks []LinkRow
	// Links are all links extracted from the page as found, at most DetailLinkLimit.
	Links []string
	// Inlinks are pages of the same target that link to this one, at most DetailLinkLimit.
	Inlinks []LinkRow
	// MoreInlinks is true when there are more inlinks than listed.
	MoreInlinks bool
	// History is the latest fetches, newest first, at most DetailHistoryLimit.
	History []Fetch
}

// DetailLinkLimit and DetailHistoryLimit bound the lists in PageDetail.
const (
	DetailLinkLimit    = 200
	DetailHistoryLimit = 50
)

// PageInfo is the stored latest fetch of a URL.
type PageInfo struct {
	FinalURL     string
	Status       int
	ContentType  string
	Title        string
	Size         int
	Truncated    bool
	DurationMS   int
	LinkCount    int
	ContentHash  string
	ETag         string
	LastModified string
	FetchedAt    time.Time
	StoredAt     time.Time
}

// ExportRow is one stored page in an export, in url_id order.
type ExportRow struct {
	URLID        int64
	URL          string
	FinalURL     string
	Depth        int
	Status       int
	ContentType  string
	Title        string
	Size         int
	Truncated    bool
	DurationMS   int
	LinkCount    int
	ContentHash  string
	ETag         string
	LastModified string
	FetchedAt    time.Time
	Text         string
}

// notModified are results that keep the stored content: 304s, which only record the fetch, and
// fetches of an unchanged body (same), which also take the response's validators.
type notModified struct {
	ids  []int64
	at   []time.Time
	durs []int32
	same struct {
		ids            []int64
		at             []time.Time
		durs           []int32
		etags, lastMod []string
	}
}

func (n *notModified) add(r *Result) {
	n.ids = append(n.ids, r.URLID)
	n.at = append(n.at, fetchedAt(r))
	n.durs = append(n.durs, int32(r.DurationMS))
}

func (n *notModified) addSame(r *Result) {
	s := &n.same
	s.ids = append(s.ids, r.URLID)
	s.at = append(s.at, fetchedAt(r))
	s.durs = append(s.durs, int32(r.DurationMS))
	s.etags = append(s.etags, r.ETag)
	s.lastMod = append(s.lastMod, r.LastModified)
}

func (n *notModified) queue(b *pgx.Batch) {
	if len(n.ids) > 0 {
		b.Queue(`
			UPDATE pages SET fetched_at = v.at, duration_ms = v.dur, stored_at = now()
			FROM unnest($1::bigint[], $2::timestamptz[], $3::int[]) AS v(id, at, dur)
			WHERE pages.url_id = v.id`, n.ids, n.at, n.durs)
	}
	if s := &n.same; len(s.ids) > 0 {
		b.Queue(`
			UPDATE pages SET fetched_at = v.at, duration_ms = v.dur, etag = v.etag, last_modified = v.lm, stored_at = now()
			FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::text[], $5::text[]) AS v(id, at, dur, etag, lm)
			WHERE pages.url_id = v.id`, s.ids, s.at, s.durs, s.etags, s.lastMod)
	}
}

type pageRows struct {
	urlIDs, targetIDs             []int64
	urls, finals, ctypes, titles  []string
	texts, hashes, etags, lastMod []string
	status, sizes, durs, nlinks   []int32
	truncated                     []bool
	links                         []string // JSON array per page
	fetched                       []time.Time
}

func (p *pageRows) add(r *Result) {
	final := r.FinalURL
	if final == "" {
		final = r.URL
	}
	links, err := json.Marshal(r.Links)
	if err != nil || r.Links == nil {
		links = []byte("[]")
	}
	p.urlIDs = append(p.urlIDs, r.URLID)
	p.targetIDs = append(p.targetIDs, r.TargetID)
	p.urls = append(p.urls, r.URL)
	p.finals = append(p.finals, final)
	p.ctypes = append(p.ctypes, r.ContentType)
	p.titles = append(p.titles, r.Title)
	p.texts = append(p.texts, r.Text)
	p.hashes = append(p.hashes, r.ContentHash)
	p.etags = append(p.etags, r.ETag)
	p.lastMod = append(p.lastMod, r.LastModified)
	p.status = append(p.status, int32(r.Status))
	p.sizes = append(p.sizes, int32(r.Size))
	p.durs = append(p.durs, int32(r.DurationMS))
	p.nlinks = append(p.nlinks, int32(len(r.Links)))
	p.truncated = append(p.truncated, r.Truncated)
	p.links = append(p.links, string(links))
	p.fetched = append(p.fetched, r.StartedAt)
}

func (p *pageRows) queue(b *pgx.Batch) {
	// text[][] cannot be ragged, so links travel as one JSON array per page.
	b.Queue(`
		INSERT INTO pages (url_id, target_id, url, final_url, status, content_type, title, body_text,
		                   size_bytes, truncated, duration_ms, link_count, links, content_hash, etag,
		                   last_modified, fetched_at)
		SELECT v.id, v.tid, v.url, v.final, v.status, v.ctype, v.title, v.body, v.size, v.trunc, v.dur,
		       v.nlinks, ARRAY(SELECT jsonb_array_elements_text(v.links::jsonb)), v.hash, v.etag, v.lm, v.fetched
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
		            $8::text[], $9::int[], $10::bool[], $11::int[], $12::int[], $13::text[], $14::text[],
		            $15::text[], $16::text[], $17::timestamptz[])
		     AS v(id, tid, url, final, status, ctype, title, body, size, trunc, dur, nlinks, links, hash, etag, lm, fetched)
		ON CONFLICT (url_id) DO UPDATE SET
			final_url = EXCLUDED.final_url, status = EXCLUDED.status, content_type = EXCLUDED.content_type,
			title = EXCLUDED.title, body_text = EXCLUDED.body_text, size_bytes = EXCLUDED.size_bytes,
			truncated = EXCLUDED.truncated, duration_ms = EXCLUDED.duration_ms, link_count = EXCLUDED.link_count,
			links = EXCLUDED.links, content_hash = EXCLUDED.content_hash, etag = EXCLUDED.etag,
			last_modified = EXCLUDED.last_modified, fetched_at = EXCLUDED.fetched_at, stored_at = now()`,
		p.urlIDs, p.targetIDs, p.urls, p.finals, p.status, p.ctypes, p.titles, p.texts, p.sizes, p.truncated,
		p.durs, p.nlinks, p.links, p.hashes, p.etags, p.lastMod, p.fetched)
}
