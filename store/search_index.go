package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/target"
)

// Search vectors are built off the persist path (migration 00006): storing a page queues it in
// search_queue (a trigger on pages does it), and IndexPages, run by the processors' search
// indexers, turns queued pages into page_search rows. Search sees a page once it is indexed.

// indexPagesSQL claims up to $1 queued entries (skipping those another indexer holds), builds the
// vectors of their pages with their target's text-search configuration (targets.search_language,
// migration 00012) and upserts them. A claimed entry whose page is gone is just dropped.
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
		SELECT p.url_id, p.target_id, page_tsv(search_config(t.search_language), p.title, p.body_text)
		FROM pages p JOIN targets t ON t.id = p.target_id
		WHERE p.url_id IN (SELECT url_id FROM claimed)
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

// checkSearchLanguage returns target.ErrSearchLanguage (wrapped) unless lang names one of
// PostgreSQL's built-in text-search configurations (pg_ts_config in pg_catalog).
func checkSearchLanguage(ctx context.Context, tx pgx.Tx, lang string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_ts_config
		WHERE cfgname = $1 AND cfgnamespace = 'pg_catalog'::regnamespace)`, lang).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check search language: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w (not %q)", target.ErrSearchLanguage, lang)
	}
	return nil
}

// SetSearchLanguage gives a target another text-search language and queues every stored page
// of it for indexing again, in one transaction: search parses queries for the target's pages in
// the new language at once, and each page's vector follows when an indexer reaches it (until
// then an old vector may miss words whose stem differs between the two). It returns the number
// of pages queued. An unknown language is target.ErrSearchLanguage (wrapped), a target being
// deleted ErrTargetDeleting. See docs/adr/0056-ranked-search-per-target-language.md.
func (s *Store) SetSearchLanguage(ctx context.Context, id int64, lang string) (queued int64, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := checkSearchLanguage(ctx, tx, lang); err != nil {
			return err
		}
		var state, old string
		err := tx.QueryRow(ctx, `SELECT state, search_language FROM targets WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&state, &old)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case state == TargetDeleting:
			return ErrTargetDeleting
		case old == lang:
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE targets SET search_language = $2, updated_at = now() WHERE id = $1`, id, lang); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO search_queue (url_id) SELECT url_id FROM pages WHERE target_id = $1 ORDER BY url_id`, id)
		queued = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: set search language of target %d: %w", id, err)
	}
	return queued, nil
}
