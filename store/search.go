package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SearchQuery is a full-text search over stored pages (websearch syntax: words, "phrases",
// -excluded, or). Results are best first (Search).
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
	// Rank is the hit's relevance (ts_rank_cd, searchWeights): higher is better.
	Rank float32
}

// SearchResults is one page of search hits.
type SearchResults struct {
	Hits       []SearchHit
	NextCursor string
	// Total is the number of pages that match, exact up to SearchCap. TotalCapped says that
	// more match: then Total is SearchCap, and the hits are the best of the SearchCap newest
	// matches.
	Total       int64
	TotalCapped bool
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

// SearchCap bounds the matches one search ranks: Search counts matches exactly up to SearchCap
// and, when more match, ranks the SearchCap newest of them.
const SearchCap = 1000

// searchScan is how many of the newest pages Search checks one by one before it turns to the
// GIN index.
const searchScan = 2000

// searchWeights are ts_rank_cd's weights of the labels D, C, B and A. page_tsv labels title
// words A and body words B, so a title word counts ten times a body word; the weights are
// applied at query time and can change without rebuilding a vector. searchNorm 1 divides a rank
// by 1 + the logarithm of the page's length, so that a long page does not win by repetition.
const (
	searchWeights = `'{0.1, 0.1, 0.1, 1.0}'`
	searchNorm    = "1"
)

// searchLanguage is one text-search language of the targets a search covers: its name
// (targets.search_language), its configuration's oid, and the targets that use it.
type searchLanguage struct {
	name    string
	config  uint32
	targets []int64
}

// searchSQL writes the match condition and the rank of a search over page_search p, adding
// their parameters to a. Each page is matched and ranked with its target's configuration: the
// query is parsed once per language (a constant the planner sees), and with several languages
// each is tried on its own targets' pages. exclude lists targets whose pages must not match.
func searchSQL(a *args, langs []searchLanguage, text string, exclude []int64) (match, rank string) {
	tq := a.add(text)
	tsquery := func(l searchLanguage) string {
		return "websearch_to_tsquery(" + a.add(l.config) + "::oid::regconfig, " + tq + ")"
	}
	rankBy := func(q string) string {
		return "ts_rank_cd(" + searchWeights + ", p.tsv, " + q + ", " + searchNorm + ")"
	}
	if len(langs) == 1 {
		q := tsquery(langs[0])
		match = "p.tsv @@ " + q
		if len(exclude) > 0 {
			match += " AND p.target_id <> ALL(" + a.add(exclude) + ")"
		}
		return match, rankBy(q)
	}
	var ors, whens []string
	for _, l := range langs {
		q, in := tsquery(l), "p.target_id = ANY("+a.add(l.targets)+")"
		ors = append(ors, "("+in+" AND p.tsv @@ "+q+")")
		whens = append(whens, "WHEN "+in+" THEN "+rankBy(q))
	}
	return "(" + strings.Join(ors, " OR ") + ")", "CASE " + strings.Join(whens, " ") + " END"
}

// searchLanguages reads the languages of the targets a search covers (one target, or every
// one), and the targets being deleted, whose pages search leaves out: they stay in page_search
// until their purge batch goes.
func searchLanguages(ctx context.Context, tx pgx.Tx, targetID int64) (langs []searchLanguage, deleting []int64, err error) {
	rows, err := tx.Query(ctx, `SELECT id, state = 'deleting', search_language, search_config(search_language)::oid
		FROM targets WHERE $1::bigint = 0 OR id = $1 ORDER BY id`, targetID)
	if err != nil {
		return nil, nil, err
	}
	var id int64
	var gone bool
	var l searchLanguage
	_, err = pgx.ForEachRow(rows, []any{&id, &gone, &l.name, &l.config}, func() error {
		if gone {
			deleting = append(deleting, id)
			return nil
		}
		i := slices.IndexFunc(langs, func(x searchLanguage) bool { return x.name == l.name })
		if i < 0 {
			langs = append(langs, searchLanguage{name: l.name, config: l.config})
			i = len(langs) - 1
		}
		langs[i].targets = append(langs[i].targets, id)
		return nil
	})
	return langs, deleting, err
}

// searchCandidate is a matching page and its rank.
type searchCandidate struct {
	id   int64
	rank float32
}

// Search runs a full-text search (websearch syntax) over indexed pages, best first, with
// highlighted snippets. Each target's pages are searched in its own text-search language
// (target.Spec.SearchLanguage), so one search spans targets of different languages. A page is
// found once a search indexer has built its vector (IndexPages); until then it counts in
// Unindexed. See docs/adr/0056-ranked-search-per-target-language.md.
//
// Ranking needs every match's vector, so Search ranks at most SearchCap matches: the newest
// ones, found as follows. The planner's guess of how many pages match is often far off (a rare
// word outside the statistics is taken for a common one and the whole table is scanned; a
// common word through the GIN index costs a bitmap of every page), so Search decides by
// measuring, in two steps:
//  1. It checks the newest searchScan pages (of the target) in key order. A common query finds
//     SearchCap + 1 matches there, and a small target is covered whole.
//  2. Otherwise the query matches fewer than about one page in two, and the GIN index finds
//     every match; the newest SearchCap + 1 are kept. This step is pinned to its bitmap plan
//     with transaction-local planner settings.
//
// Their count is Total (TotalCapped past SearchCap). The candidates are ranked with ts_rank_cd
// (searchWeights) and ordered by rank, then url_id, both descending; the cursor holds the last
// hit's rank and url_id, so paging neither skips nor repeats hits of equal rank. Only the hits
// of the page get a ts_headline.
func (s *Store) Search(ctx context.Context, q SearchQuery) (SearchResults, error) {
	text := strings.TrimSpace(q.Query)
	if text == "" {
		return SearchResults{}, fmt.Errorf("%w: search needs a query", ErrInvalidQuery)
	}
	if len(text) > 500 {
		return SearchResults{}, fmt.Errorf("%w: search query is longer than 500 bytes", ErrInvalidQuery)
	}
	var after *searchCandidate
	if q.After != "" {
		var c searchCandidate
		id, err := decodeCursor(q.After, &c.rank)
		if err != nil {
			return SearchResults{}, err
		}
		c.id = id
		after = &c
	}
	limit := clampLimit(q.Limit, 20, 100)
	scan, most := searchScan, SearchCap
	if s.searchProbe > 0 {
		scan = s.searchProbe
	}
	if s.searchCap > 0 {
		most = s.searchCap
	}
	keep := strconv.Itoa(most + 1)

	out := SearchResults{Hits: []SearchHit{}}
	var page []searchCandidate
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, searchBacklogSQL).Scan(&out.Unindexed); err != nil {
			return err
		}
		langs, deleting, err := searchLanguages(ctx, tx, q.TargetID)
		if err != nil || len(langs) == 0 {
			return err
		}
		var a args
		scope := "true"
		if q.TargetID != 0 {
			scope = "p.target_id = " + a.add(q.TargetID)
			deleting = nil
		}
		match, _ := searchSQL(&a, langs, text, deleting)

		var scanned int
		var ids []int64
		err = tx.QueryRow(ctx, `
			SELECT count(*), coalesce((array_agg(p.url_id ORDER BY p.url_id DESC) FILTER (WHERE `+match+`))[1:`+keep+`], '{}')
			FROM (SELECT p.url_id, p.target_id, p.tsv FROM page_search p WHERE `+scope+` ORDER BY p.url_id DESC LIMIT `+strconv.Itoa(scan)+`) p`,
			a...).Scan(&scanned, &ids)
		if err != nil {
			return err
		}
		if len(ids) <= most && scanned == scan {
			if _, err := tx.Exec(ctx, `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT p.url_id FROM page_search p WHERE `+match+` AND `+scope+`
				ORDER BY p.url_id DESC LIMIT `+keep, a...)
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
		if len(ids) > most {
			ids, out.TotalCapped = ids[:most], true
		}
		out.Total = int64(len(ids))
		if len(ids) == 0 {
			return nil
		}

		var ra args
		in := ra.add(ids)
		_, rank := searchSQL(&ra, langs, text, nil)
		rows, err := tx.Query(ctx, `SELECT p.url_id, `+rank+` FROM page_search p WHERE p.url_id = ANY(`+in+`)`, ra...)
		if err != nil {
			return err
		}
		ranked, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (searchCandidate, error) {
			var c searchCandidate
			err := r.Scan(&c.id, &c.rank)
			return c, err
		})
		if err != nil {
			return err
		}
		page, out.NextCursor = searchPage(ranked, after, limit)
		if len(page) == 0 {
			return nil
		}
		out.Hits, err = searchHits(ctx, tx, text, page)
		return err
	})
	if err != nil {
		return SearchResults{}, fmt.Errorf("store: search: %w", err)
	}
	return out, nil
}

// searchPage orders the candidates best first (rank, then url_id, both descending) and returns
// the limit of them after the cursor's position, and the cursor of the next page, if any.
func searchPage(cs []searchCandidate, after *searchCandidate, limit int) ([]searchCandidate, string) {
	slices.SortFunc(cs, func(x, y searchCandidate) int {
		if c := cmp.Compare(y.rank, x.rank); c != 0 {
			return c
		}
		return cmp.Compare(y.id, x.id)
	})
	if after != nil {
		i := slices.IndexFunc(cs, func(c searchCandidate) bool {
			return c.rank < after.rank || c.rank == after.rank && c.id < after.id
		})
		if i < 0 {
			i = len(cs)
		}
		cs = cs[i:]
	}
	if len(cs) <= limit {
		return cs, ""
	}
	last := cs[limit-1]
	return cs[:limit], encodeCursor(last.rank, last.id)
}

// searchHits reads the pages of the hits, in the candidates' order, with their snippets.
func searchHits(ctx context.Context, tx pgx.Tx, text string, page []searchCandidate) ([]SearchHit, error) {
	ids := make([]int64, len(page))
	for i, c := range page {
		ids[i] = c.id
	}
	rows, err := tx.Query(ctx, `
		SELECT p.url_id, p.target_id, p.url, p.title, p.status, p.fetched_at,
		       ts_headline(c.cfg, translate(left(p.body_text, `+strconv.Itoa(headlineInput)+`), E'\uE000\uE001', ''),
		                   websearch_to_tsquery(c.cfg, $1), $2)
		FROM pages p JOIN targets t ON t.id = p.target_id
		CROSS JOIN LATERAL (SELECT search_config(t.search_language) AS cfg) c
		WHERE p.url_id = ANY($3) AND t.state <> 'deleting'`, text, headlineOptions, ids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SearchHit, error) {
		var h SearchHit
		var hl string
		err := r.Scan(&h.URLID, &h.TargetID, &h.URL, &h.Title, &h.Status, &h.FetchedAt, &hl)
		h.Snippet = splitSnippet(hl)
		return h, err
	})
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]SearchHit, len(found))
	for _, h := range found {
		byID[h.URLID] = h
	}
	hits := make([]SearchHit, 0, len(page))
	for _, c := range page {
		if h, ok := byID[c.id]; ok {
			h.Rank = c.rank
			hits = append(hits, h)
		}
	}
	return hits, nil
}
