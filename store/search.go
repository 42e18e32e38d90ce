package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SearchQuery is a full-text search over stored pages (websearch syntax: words, "phrases",
// -excluded, or). Results are newest first.
type SearchQuery struct {
	Query    string
	TargetID int64  // 0 searches every target
	After    string // cursor from SearchResults.NextCursor
	Limit    int    // 1..100; 0 means 20
}

// SnippetPart is a piece of a search snippet. Hit parts are the matched words. Text is plain
// text straight from a crawled page: escape it when rendering.
type SnippetPart struct {
	Text string
	Hit  bool
}

// SearchHit is one search result.
type SearchHit struct {
	URLID     int64
	TargetID  int64
	URL       string
	Title     string
	Status    int
	FetchedAt time.Time
	Snippet   []SnippetPart
}

// SearchResults is one page of search hits.
type SearchResults struct {
	Hits       []SearchHit
	NextCursor string
	// Unindexed is the number of stored pages (of every target) that search cannot find yet
	// because the background indexer has not reached them.
	Unindexed int64
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
