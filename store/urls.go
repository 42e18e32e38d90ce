package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLCancelled is the state of a URL whose target was cancelled before it was fetched. It is
// final: a cancelled target has nothing pending once its in-flight fetches are applied.
const URLCancelled = "cancelled"

// ErrorGroup is one error class of a target's URLs that currently carry an error (retrying,
// failed, or fetched with an HTTP error status), with one sample.
type ErrorGroup struct {
	Class string // network classes (timeout, dns, ...) or http_NNN
	Count int64
	// Count by the URLs' state: Failed were given up on (a network error, or a retryable status
	// after the last attempt), Retrying wait for another attempt (in flight included), Stored
	// were fetched and stored with an HTTP error status that is not retried (a 404, say).
	Failed, Retrying, Stored int64
	SampleURLID              int64
	SampleURL                string
	SampleError              string
	SampleStatus             int
	// LastSeen is when the sample (the group's most recently discovered URL) was last fetched.
	LastSeen time.Time
}

// URLFilter selects frontier URLs for the retry and failure lists; zero fields match all.
type URLFilter struct {
	TargetID   int64
	Host       string
	ErrorClass string
	After      string // cursor from URLList.NextCursor
	Before     string // cursor from URLList.PrevCursor (not with After)
	Limit      int    // 1..500; 0 means 50
	Count      bool   // fill URLList.Total
}

// URLRowInfo is a URL waiting for a retry or failed for good.
type URLRowInfo struct {
	URLID         int64
	TargetID      int64
	URL           string
	Host          string
	Attempts      int
	NextAttemptAt time.Time // for retrying URLs
	LastStatus    int
	LastError     string
	ErrorClass    string
	FetchedAt     *time.Time
}

// URLList is one page of URLRowInfo.
type URLList struct {
	Rows []URLRowInfo
	// PrevCursor and NextCursor fetch the neighbouring pages; empty at either end.
	PrevCursor string
	NextCursor string
	Total      Total // with URLFilter.Count
}

// TargetErrors groups a target's URLs that carry an error now (retrying, failed, or fetched
// with an HTTP error status) by error class, biggest group first, each with its most recently
// discovered URL as a sample.
func (s *Store) TargetErrors(ctx context.Context, targetID int64, limit int) ([]ErrorGroup, error) {
	limit = clampLimit(limit, 20, 200)
	rows, err := s.pool.Query(ctx, `
		SELECT g.class, g.n, g.failed, g.retrying, g.stored, s.id, s.url, coalesce(s.last_error, ''),
		       coalesce(s.last_status, 0), coalesce(s.fetched_at, s.discovered_at)
		FROM (SELECT error_class AS class, count(*) AS n,
		             count(*) FILTER (WHERE state = 'failed') AS failed,
		             count(*) FILTER (WHERE state IN ('queued', 'dispatched')) AS retrying,
		             count(*) FILTER (WHERE state = 'done') AS stored
		      FROM urls WHERE target_id = $1 AND error_class IS NOT NULL GROUP BY error_class) g
		CROSS JOIN LATERAL (
			SELECT id, url, last_error, last_status, fetched_at, discovered_at FROM urls u
			WHERE u.target_id = $1 AND u.error_class = g.class ORDER BY u.id DESC LIMIT 1) s
		ORDER BY g.n DESC, g.class LIMIT $2`, targetID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: target errors: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ErrorGroup, error) {
		var g ErrorGroup
		return g, r.Scan(&g.Class, &g.Count, &g.Failed, &g.Retrying, &g.Stored, &g.SampleURLID, &g.SampleURL, &g.SampleError, &g.SampleStatus, &g.LastSeen)
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
	return s.urlList(ctx, "retrying", "state = 'queued' AND attempts > 0", f, true)
}

// Failed lists URLs that failed for good, most recently discovered first.
func (s *Store) Failed(ctx context.Context, f URLFilter) (URLList, error) {
	return s.urlList(ctx, "failed", "state = 'failed'", f, false)
}

// urlList is one page of the URLs in state (a condition on urls) matching f: by next attempt
// then id when byNext (the retry list), else by id, newest first.
func (s *Store) urlList(ctx context.Context, what, state string, f URLFilter, byNext bool) (URLList, error) {
	if err := bothCursors(f.After, f.Before); err != nil {
		return URLList{}, err
	}
	limit := clampLimit(f.Limit, 50, 500)
	var a args
	where := state + f.where(&a)
	var out URLList
	if f.Count {
		var err error
		if out.Total, err = s.countRows(ctx, "urls", where, a); err != nil {
			return URLList{}, fmt.Errorf("store: %s: count: %w", what, err)
		}
	}
	backward := f.Before != ""
	op, dir := seek(!byNext, backward)
	order := "id " + dir
	if byNext {
		order = "next_attempt_at " + dir + ", id " + dir
	}
	if c := f.After + f.Before; c != "" {
		if byNext {
			var at time.Time
			id, err := decodeCursor(c, &at)
			if err != nil {
				return URLList{}, err
			}
			where += " AND (next_attempt_at, id) " + op + " (" + a.add(at) + ", " + a.add(id) + ")"
		} else {
			id, err := decodeCursor(c, nil)
			if err != nil {
				return URLList{}, err
			}
			where += " AND id " + op + " " + a.add(id)
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+urlInfoColumns+` FROM urls WHERE `+where+`
		ORDER BY `+order+` LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return URLList{}, fmt.Errorf("store: %s: %w", what, err)
	}
	us, err := pgx.CollectRows(rows, scanURLInfo)
	if err != nil {
		return URLList{}, fmt.Errorf("store: %s: %w", what, err)
	}
	if backward && len(us) < limit {
		f.Before, f.Count = "", false
		first, err := s.urlList(ctx, what, state, f, byNext)
		first.Total = out.Total
		return first, err
	}
	var prev, next bool
	out.Rows, prev, next = pageOf(us, limit, backward, f.After != "")
	out.PrevCursor, out.NextCursor = cursors(out.Rows, prev, next, func(u URLRowInfo) (any, int64) {
		if byNext {
			return u.NextAttemptAt, u.URLID
		}
		return nil, u.URLID
	})
	if out.Rows == nil {
		out.Rows = []URLRowInfo{}
	}
	return out, nil
}

// RequeueFailedURLs gives the listed failed URLs a fresh set of attempts: they are queued
// again and their target, if done, becomes active. URLs that are not failed, or belong to a
// cancelled target, are left alone. It reports how many were queued.
func (s *Store) RequeueFailedURLs(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	return s.requeueFailed(ctx, "id = ANY($1)", []any{ids})
}

// RequeueAllFailed queues again every failed URL matching f (its TargetID, Host and
// ErrorClass; After, Before, Limit and Count are ignored), like RequeueFailedURLs.
func (s *Store) RequeueAllFailed(ctx context.Context, f URLFilter) (int, error) {
	f.After, f.Before, f.Limit, f.Count = "", "", 0, false
	var a args
	where := "true" + f.where(&a)
	return s.requeueFailed(ctx, where, a)
}

func (s *Store) requeueFailed(ctx context.Context, where string, a []any) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Targets first, then URLs (see ApplyResults for how a batch crosses this order).
		rows, err := tx.Query(ctx, `
			SELECT id FROM targets WHERE state IN ('active', 'paused', 'done')
			  AND id IN (SELECT DISTINCT target_id FROM urls WHERE state = 'failed' AND `+where+`)
			ORDER BY id FOR UPDATE`, a...)
		if err != nil {
			return err
		}
		targets, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(targets) == 0 {
			return err
		}
		tp := "$" + fmt.Sprint(len(a)+1)
		tag, err := tx.Exec(ctx, `
			UPDATE urls SET state = 'queued', attempts = 0, next_attempt_at = now(), last_error = NULL, error_class = NULL
			WHERE state = 'failed' AND target_id = ANY(`+tp+`) AND `+where, append(a, targets)...)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if _, err = tx.Exec(ctx, `
			UPDATE targets SET state = 'active', finished_at = NULL, updated_at = now()
			WHERE id = ANY($1) AND state = 'done'`, targets); err != nil {
			return err
		}
		if err := syncPausedURLs(ctx, tx, targets...); err != nil {
			return err
		}
		return recomputeTargetHosts(ctx, tx, targets...)
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue failed urls: %w", err)
	}
	return n, nil
}

type urlUpdates struct {
	ids       []int64
	states    []string
	attempts  []int32
	next      []time.Time
	status    []*int32
	errs      []*string
	classes   []*string
	etags     []*string
	lastMods  []*string
	hashes    []*string
	fetchedAt []*time.Time
}

func (u *urlUpdates) add(r *Result, row *URLRow, o Outcome, class string) {
	attempts := row.Attempts
	if o.State != URLDone {
		attempts++
	}
	u.ids = append(u.ids, r.URLID)
	u.states = append(u.states, o.State)
	u.attempts = append(u.attempts, int32(attempts))
	next := o.NextAttemptAt
	if next.IsZero() {
		next = time.Now()
	}
	u.next = append(u.next, next)
	u.status = append(u.status, nilIfZero(int32(r.Status)))
	u.errs = append(u.errs, nilIfEmpty(r.Error))
	u.classes = append(u.classes, nilIfEmpty(class))
	u.etags = append(u.etags, nilIfEmpty(r.ETag))
	u.lastMods = append(u.lastMods, nilIfEmpty(r.LastModified))
	u.hashes = append(u.hashes, nilIfEmpty(r.ContentHash))
	var fetched *time.Time
	if r.Status != 0 {
		t := r.StartedAt
		fetched = &t
	}
	u.fetchedAt = append(u.fetchedAt, fetched)
}

func (u *urlUpdates) queue(b *pgx.Batch) {
	b.Queue(`
		UPDATE urls SET
			state = v.state, attempts = v.attempts, next_attempt_at = v.next, lease_until = NULL,
			last_status = coalesce(v.status, urls.last_status), last_error = v.err, error_class = v.class,
			etag = coalesce(v.etag, urls.etag), last_modified = coalesce(v.lm, urls.last_modified),
			content_hash = coalesce(v.hash, urls.content_hash), fetched_at = coalesce(v.fetched, urls.fetched_at)
		FROM unnest($1::bigint[], $2::text[], $3::int[], $4::timestamptz[], $5::int[], $6::text[], $7::text[],
		            $8::text[], $9::text[], $10::text[], $11::timestamptz[])
		     AS v(id, state, attempts, next, status, err, class, etag, lm, hash, fetched)
		WHERE urls.id = v.id`,
		u.ids, u.states, u.attempts, u.next, u.status, u.errs, u.classes, u.etags, u.lastMods, u.hashes, u.fetchedAt)
}

// discoverURLsSQL inserts the new URLs of one target ($1: target, $2-$4: URLs, hosts, depths;
// $5: room left under max_pages) and counts them. The target row is locked, so no other
// transaction inserts URLs of this target now: NOT EXISTS is exact and the LIMIT keeps
// max_pages. Used only when the target has less room than links. OFFSET 0 keeps NOT EXISTS a
// per-link probe: pulled up into an anti join, the cached plan (made when the table looked
// small) read and compared every URL of the target once per link, a cost that grew with the
// frontier (issue #6, docs/PERFORMANCE.md; TestDiscoverURLsProbesIndex).
const discoverURLsSQL = newURLsHead + `
		WHERE NOT EXISTS (SELECT 1 FROM urls x WHERE x.target_id = $1 AND x.url = v.u OFFSET 0)` + newURLsTail

// insertURLsSQL is discoverURLsSQL for a target with room for every link ($5 >= len($2)): the
// unique index rejects the known URLs itself, one probe per link whatever the statistics say,
// so no NOT EXISTS is needed. Known links still draw (and drop) a value from urls_id_seq.
const insertURLsSQL = newURLsHead + newURLsTail

// newURLsHead and newURLsTail frame the two statements above. URLs found while their target is
// paused (by fetches in flight, or a sitemap) are inserted paused (see syncPausedURLs).
const (
	newURLsHead = `
	WITH ins AS (
		INSERT INTO urls (target_id, url, host, depth, paused)
		SELECT $1, v.u, v.h, v.d, (SELECT t.state = 'paused' FROM targets t WHERE t.id = $1)
		FROM unnest($2::text[], $3::text[], $4::int[]) WITH ORDINALITY AS v(u, h, d, o)`
	newURLsTail = `
		ORDER BY v.o
		LIMIT $5
		ON CONFLICT (target_id, url) DO NOTHING
		RETURNING host
	), th AS (
		INSERT INTO target_hosts (target_id, host)
		SELECT DISTINCT $1::bigint, host FROM ins ORDER BY 2
		ON CONFLICT DO NOTHING
	)
	SELECT count(*) FROM ins`
)

// newURLsSQL picks the statement that inserts a target's newly found URLs: with room for all n
// of them the unique index alone rejects known ones; near max_pages only new URLs may count
// towards the remaining room.
func newURLsSQL(remaining int64, n int) string {
	if remaining >= int64(n) {
		return insertURLsSQL
	}
	return discoverURLsSQL
}
