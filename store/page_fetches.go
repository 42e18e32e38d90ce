package store

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file holds the dashboard's share of ApplyResults: fetch history, per-second rates, the
// links table, and 304 Not Modified results, each written with one statement per batch.

// errorClass classifies a result for the dashboard: the crawler's class for a failed fetch,
// http_NNN for an HTTP error status, "" for a success.
func errorClass(r *Result) string {
	switch {
	case r.ErrorClass != "":
		return r.ErrorClass
	case r.Error != "":
		return "error"
	case r.Status >= http.StatusBadRequest:
		return "http_" + strconv.Itoa(r.Status)
	}
	return ""
}

// fetchRows are page_fetches rows: one per applied result, errors included.
type fetchRows struct {
	urlIDs, targetIDs []int64
	at                []*time.Time
	status            []*int32
	durs, sizes       []int32
	hashes            []*string
	changed           []bool
	classes, errs     []*string
}

func (f *fetchRows) add(r *Result, u *URLRow, class string) {
	var at *time.Time
	if !r.StartedAt.IsZero() {
		t := r.StartedAt
		at = &t
	}
	changed := r.Status != 0 && r.Status != http.StatusNotModified && r.Error == "" &&
		r.ContentHash != "" && r.ContentHash != u.ContentHash
	f.urlIDs = append(f.urlIDs, r.URLID)
	f.targetIDs = append(f.targetIDs, r.TargetID)
	f.at = append(f.at, at)
	f.status = append(f.status, nilIfZero(int32(r.Status)))
	f.durs = append(f.durs, int32(r.DurationMS))
	f.sizes = append(f.sizes, int32(r.Size))
	f.hashes = append(f.hashes, nilIfEmpty(r.ContentHash))
	f.changed = append(f.changed, changed)
	f.classes = append(f.classes, nilIfEmpty(class))
	f.errs = append(f.errs, nilIfEmpty(r.Error))
}

func (f *fetchRows) queue(b *pgx.Batch) {
	b.Queue(`
		INSERT INTO page_fetches (url_id, target_id, fetched_at, status, duration_ms, size, content_hash, changed, error_class, error)
		SELECT v.id, v.tid, coalesce(v.at, now()), v.status, v.dur, v.size, v.hash, v.changed, v.class, v.err
		FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::int[], $5::int[], $6::int[], $7::text[],
		            $8::bool[], $9::text[], $10::text[])
		     AS v(id, tid, at, status, dur, size, hash, changed, class, err)`,
		f.urlIDs, f.targetIDs, f.at, f.status, f.durs, f.sizes, f.hashes, f.changed, f.classes, f.errs)
}

// queueRates adds this batch's applied results and errors to the current second of each target.
// The targets are locked by the batch already, so concurrent batches cannot deadlock here.
func queueRates(b *pgx.Batch, rates map[int64]*[2]int32) {
	if len(rates) == 0 {
		return
	}
	ids, pages, errs := sortedCounts(rates)
	b.Queue(`
		INSERT INTO fetch_rates (target_id, at, pages, errors)
		SELECT v.tid, date_trunc('second', now()), v.p, v.e FROM unnest($1::bigint[], $2::int[], $3::int[]) AS v(tid, p, e)
		ORDER BY v.tid
		ON CONFLICT (target_id, at) DO UPDATE SET pages = fetch_rates.pages + EXCLUDED.pages,
			errors = fetch_rates.errors + EXCLUDED.errors`, ids, pages, errs)
}

// sortedCounts splits counter pairs into parallel arrays for unnest, in key order (the order
// the rows are locked in).
func sortedCounts[K cmp.Ordered](m map[K]*[2]int32) (keys []K, first, second []int32) {
	keys = slices.Sorted(maps.Keys(m))
	first = make([]int32, len(keys))
	second = make([]int32, len(keys))
	for i, k := range keys {
		first[i], second[i] = m[k][0], m[k][1]
	}
	return keys, first, second
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

// linkRows are the edges of this batch's pages, and the pages whose old edges they replace.
// An edge to a URL whose id is cached goes in as a pair of ids; the others are resolved through
// the unique index on (target_id, url), and the ids found are learned for the cache.
type linkRows struct {
	replaced         []int64
	from, targets    []int64
	to               []string
	pairTo, pairFrom []int64
	learned          []knownURL
}

// replace drops the stored edges of a page that is stored again.
func (l *linkRows) replace(urlID int64) { l.replaced = append(l.replaced, urlID) }

func (l *linkRows) add(from, target int64, found []NewURL, known *urlCache) {
	seen := make(map[string]struct{}, len(found))
	for _, n := range found {
		if _, dup := seen[n.URL]; dup {
			continue
		}
		seen[n.URL] = struct{}{}
		if id, ok := known.get(target, n.URL); ok {
			if id != from { // self-links are left out
				l.pairTo = append(l.pairTo, id)
				l.pairFrom = append(l.pairFrom, from)
			}
			continue
		}
		l.from = append(l.from, from)
		l.targets = append(l.targets, target)
		l.to = append(l.to, n.URL)
	}
}

func (l *linkRows) queue(b *pgx.Batch) {
	if len(l.replaced) > 0 {
		b.Queue(`DELETE FROM links WHERE from_url_id = ANY($1)`, l.replaced)
	}
	if len(l.from) == 0 && len(l.pairTo) == 0 {
		return
	}
	// A link resolves to a URL of the same target; links beyond max_pages have no URL and no
	// edge. Self-links are left out.
	b.Queue(`
		WITH m AS (
			SELECT u.id, u.target_id, u.url, v.f
			FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(f, t, url)
			JOIN urls u ON u.target_id = v.t AND u.url = v.url
		), ins AS (
			INSERT INTO links (to_url_id, from_url_id)
			SELECT id, f FROM m WHERE id <> f
			UNION ALL
			SELECT k.t, k.f FROM unnest($4::bigint[], $5::bigint[]) AS k(t, f)
			ON CONFLICT DO NOTHING
		)
		SELECT id, target_id, url FROM m`, l.from, l.targets, l.to, l.pairTo, l.pairFrom).
		Query(func(rows pgx.Rows) error {
			var k knownURL
			_, err := pgx.ForEachRow(rows, []any{&k.id, &k.key.target, &k.key.url}, func() error {
				l.learned = append(l.learned, k)
				return nil
			})
			return err
		})
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

func fetchedAt(r *Result) time.Time {
	if r.StartedAt.IsZero() {
		return time.Now()
	}
	return r.StartedAt
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
