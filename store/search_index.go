package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Search vectors are built off the persist path (migration 00006): storing a page queues it in
// search_queue (a trigger on pages does it), and IndexPages, run by the processors' search
// indexers, turns queued pages into page_search rows. Search sees a page once it is indexed.

// indexPagesSQL claims up to $1 queued entries (skipping those another indexer holds), builds the
// vectors of their pages and upserts them. A claimed entry whose page is gone is just dropped.
// The claim and the upsert commit together: an indexer that dies leaves its entries queued.
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

// SearchBacklog is the number of stored pages waiting for their search vector.
func (s *Store) SearchBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, searchBacklogSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: search backlog: %w", err)
	}
	return n, nil
}

const searchBacklogSQL = `SELECT count(*) FROM search_queue`
