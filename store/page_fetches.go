package store

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// page_fetches is the fetch history: one row per applied result, written by ApplyResults with
// one statement per batch, read by PageDetail and FetchHistory.

// fetchRows are page_fetches rows: one per applied result, errors included.
type fetchRows struct {
	urlIDs, targetIDs []int64
	at                []*time.Time
	status            []*int32
	durs, sizes       []int32
	hashes            []*string
	changed, first    []bool
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
	// The first content a URL stores: it had no hash before (it is set by every fetch with a body).
	f.first = append(f.first, changed && u.ContentHash == "")
	f.classes = append(f.classes, nilIfEmpty(class))
	f.errs = append(f.errs, nilIfEmpty(r.Error))
}

func (f *fetchRows) queue(b *pgx.Batch) {
	b.Queue(`
		INSERT INTO page_fetches (url_id, target_id, fetched_at, status, duration_ms, size, content_hash, changed,
		                          error_class, error, first_content)
		SELECT v.id, v.tid, coalesce(v.at, now()), v.status, v.dur, v.size, v.hash, v.changed, v.class, v.err, v.first
		FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::int[], $5::int[], $6::int[], $7::text[],
		            $8::bool[], $9::text[], $10::text[], $11::bool[])
		     AS v(id, tid, at, status, dur, size, hash, changed, class, err, first)`,
		f.urlIDs, f.targetIDs, f.at, f.status, f.durs, f.sizes, f.hashes, f.changed, f.classes, f.errs, f.first)
}

// Fetch is one fetch attempt of a URL, as applied by the processor.
type Fetch struct {
	FetchedAt   time.Time
	Status      int // 0 when no response (network error)
	DurationMS  int
	Size        int
	ContentHash string
	// Changed is true when the content hash differs from the previous fetch's (always true for
	// the first successful fetch; false for 304 Not Modified and for errors).
	Changed bool
	// New is true for the fetch that stored the URL's first content (Changed is true too).
	// Fetches recorded before migration 00013 never have it.
	New        bool
	ErrorClass string
	Error      string
}

const fetchColumns = `fetched_at, coalesce(status, 0), duration_ms, size, coalesce(content_hash, ''), changed,
	coalesce(error_class, ''), coalesce(error, ''), first_content`

func scanFetch(r pgx.CollectableRow) (Fetch, error) {
	var f Fetch
	return f, r.Scan(&f.FetchedAt, &f.Status, &f.DurationMS, &f.Size, &f.ContentHash, &f.Changed, &f.ErrorClass, &f.Error, &f.New)
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
