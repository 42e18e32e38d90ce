package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Search vectors are built off the persist path (migration 00006): storing a page queues it in
// search_queue (a trigger on pages does it), and IndexPages, run by the processors' search
// indexers, turns queued pages into page_search rows. Search sees a page once it is indexed.

// indexPagesSQL claims up to $1 queued entries (skipping those another indexer holds), builds the
// vectors of their pages and upserts them. A claimed entry whose page is gone is just dropped.
// The claim and the upsert commit together: an indexer that dies leaves its entries queued.
//
// The pages are read FOR KEY SHARE SKIP LOCKED: the key-share lock is the one the foreign key
// of page_search takes anyway, taken up front, and a page locked for deletion (a deleter purging
// its target, PurgeTarget) is skipped, its entry dropped. Otherwise the indexer could wait for a
// deleter on a page_search row while the deleter waited for the indexer's key-share lock on
// another page, a deadlock; now a deleter may wait for an indexer, never the other way round.
const indexPagesSQL = `
	WITH claimed AS (
		DELETE FROM search_queue
		WHERE id = ANY (ARRAY(SELECT id FROM search_queue ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))
		RETURNING url_id
	), ins AS (
		INSERT INTO page_search (url_id, target_id, tsv)
		SELECT p.url_id, p.target_id, page_tsv(p.title, p.body_text)
		FROM pages p WHERE p.url_id IN (SELECT url_id FROM claimed)
		ORDER BY p.url_id
		FOR KEY SHARE OF p SKIP LOCKED
		ON CONFLICT (url_id) DO UPDATE SET tsv = EXCLUDED.tsv
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM claimed), (SELECT count(*) FROM ins)`

// IndexPages builds the search vectors of up to limit queued pages in one transaction. It returns
// how many queue entries it took (0: nothing was waiting, or everything waiting is claimed by
// other indexers) and how many pages it indexed.
func (s *Store) IndexPages(ctx context.Context, limit int) (claimed, indexed int, err error) {
	if limit < 1 {
		return 0, 0, fmt.Errorf("store: index pages: limit %d < 1", limit)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, indexPagesSQL, limit).Scan(&claimed, &indexed)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: index pages: %w", err)
	}
	return claimed, indexed, nil
}

// IndexPagesPaced is IndexPages for busy times, paced across every processor: it indexes only if
// no other paced call is running and the shared pace allows it now, and then holds the next
// paced call off for rest × the time this one took. So paced indexing takes at most
// 1/(1+rest) of one connection's time, whatever the number of processors. When the pace did
// not allow it, it does nothing and returns how long to wait before asking again.
func (s *Store) IndexPagesPaced(ctx context.Context, limit int, rest float64) (claimed, indexed int, wait time.Duration, err error) {
	if limit < 1 || rest < 0 {
		return 0, 0, 0, fmt.Errorf("store: index pages: limit %d, rest %g", limit, rest)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		claimed, indexed, wait = 0, 0, 0
		var ms float64
		err := tx.QueryRow(ctx, `SELECT CASE WHEN next_at <= now() THEN 0 ELSE extract(epoch FROM next_at - now()) * 1000 END
			FROM search_index_pace WHERE id = 1 FOR UPDATE SKIP LOCKED`).Scan(&ms)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // another processor is indexing now
			wait = pacedPoll
			return nil
		case err != nil:
			return err
		case ms > 0: // its rest is not over
			wait = min(time.Duration(ms*float64(time.Millisecond)), time.Second) + time.Millisecond
			return nil
		}
		if err := tx.QueryRow(ctx, indexPagesSQL, limit).Scan(&claimed, &indexed); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE search_index_pace SET next_at = clock_timestamp() + (clock_timestamp() - now()) * $1::float8 WHERE id = 1`, rest)
		return err
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("store: index pages (paced): %w", err)
	}
	return claimed, indexed, wait, nil
}

// pacedPoll is how long a paced indexer waits when another one holds the pace.
const pacedPoll = 100 * time.Millisecond

// SearchBacklog is the number of stored pages waiting for their search vector.
func (s *Store) SearchBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, searchBacklogSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: search backlog: %w", err)
	}
	return n, nil
}

const searchBacklogSQL = `SELECT count(*) FROM search_queue`
