package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Deleting a target (docs/adr/0004-deleting-targets-in-batches.md). DeleteTarget only marks it deleting; the
// processors' deleters (process.Deleter) then call PurgeTarget until it reports Done. Each call
// is one short transaction that removes at most a batch of rows, so deleting a target of a
// million pages neither holds locks for minutes nor writes its WAL in one transaction, and it
// can stop anywhere (a crash, a restart) and go on later: the state is in the target row.
//
// Locks. A purge never waits for a lock on the rows it deletes: it claims them with SKIP
// LOCKED, so a batch of results holding some of the target's URLs (in id order, for a result
// that arrived late) or a pruner holding fetch history is simply passed by, and those rows are
// taken by a later call. Its URL deletes then take the target's row (their counter trigger),
// after the URLs, in the order ApplyResults takes them; ApplyResults does not lock a deleting
// target at all. Deleting URLs cascades to their pages, search vectors and re-crawl requests
// and (by trigger) their links; only the search indexer may hold those (a key-share lock on a
// page), and the indexer never waits for a deleter (it skips pages locked for deletion), so
// the purge may wait for it and not the other way round. Every other writer that locks a
// target refuses a deleting one before it touches its rows. Dead letters have no foreign key
// and outlive their target; entries of search_queue for deleted pages are dropped by the
// indexers.

// historyPerURL is how many rows of fetch history, rates or sitemaps one purge transaction
// deletes per URL of its batch: they are small rows without dependants.
const historyPerURL = 10

// PurgeStep is what one PurgeTarget call did.
type PurgeStep struct {
	// Rows is how many rows it deleted: URLs, or rows of fetch history, rates or sitemaps.
	Rows int64
	// Done means the target row is gone (by this call or another deleter's): nothing is left.
	Done bool
}

// DeletingTargets returns the ids of the targets being deleted, oldest first.
func (s *Store) DeletingTargets(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM targets WHERE state = 'deleting' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: deleting targets: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: deleting targets: %w", err)
	}
	return ids, nil
}

// purgeSteps delete the rows of a deleting target ($1), at most $2 a statement, skipping rows
// that others hold. Each deletes only while the target is deleting, so no call can touch a
// target whose deletion was not asked for.
var purgeSteps = []struct {
	what     string
	perBatch int64
	sql      string
}{
	{"urls", 1, `
		DELETE FROM urls WHERE id = ANY (ARRAY(
			SELECT id FROM urls
			WHERE target_id = $1 AND EXISTS (SELECT 1 FROM targets t WHERE t.id = $1 AND t.state = 'deleting')
			LIMIT $2 FOR UPDATE SKIP LOCKED))`},
	{"page_fetches", historyPerURL, `
		DELETE FROM page_fetches WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM page_fetches
			WHERE target_id = $1 AND EXISTS (SELECT 1 FROM targets t WHERE t.id = $1 AND t.state = 'deleting')
			LIMIT $2 FOR UPDATE SKIP LOCKED))`},
	{"fetch_rates", historyPerURL, `
		DELETE FROM fetch_rates WHERE target_id = $1 AND at = ANY (ARRAY(
			SELECT at FROM fetch_rates
			WHERE target_id = $1 AND EXISTS (SELECT 1 FROM targets t WHERE t.id = $1 AND t.state = 'deleting')
			LIMIT $2 FOR UPDATE SKIP LOCKED))`},
	{"sitemaps", historyPerURL, `
		DELETE FROM sitemaps WHERE id = ANY (ARRAY(
			SELECT id FROM sitemaps
			WHERE target_id = $1 AND EXISTS (SELECT 1 FROM targets t WHERE t.id = $1 AND t.state = 'deleting')
			LIMIT $2 FOR UPDATE SKIP LOCKED))`},
}

// purgeTargetSQL deletes a deleting target ($1) once it has no rows left that a purge step
// deletes; what remains (its target_hosts) cascades.
const purgeTargetSQL = `
	DELETE FROM targets WHERE id = $1 AND state = 'deleting'
	  AND NOT EXISTS (SELECT 1 FROM urls WHERE target_id = $1)
	  AND NOT EXISTS (SELECT 1 FROM page_fetches WHERE target_id = $1)
	  AND NOT EXISTS (SELECT 1 FROM fetch_rates WHERE target_id = $1)
	  AND NOT EXISTS (SELECT 1 FROM sitemaps WHERE target_id = $1)`

// PurgeTarget removes the next rows of a deleting target in one transaction: up to batch URLs
// (with their pages, search vectors, links and re-crawl requests), or else up to 10 × batch rows
// of its fetch history, rates or sitemaps, or else, when none are left, the target itself. A
// step that found rows but could take none (others hold them) deletes nothing and is not Done:
// call again later. Any number of deleters may purge the same target at once. A target that is
// not deleting is left alone: Done is false and nothing is deleted, unless it does not exist,
// which is Done.
func (s *Store) PurgeTarget(ctx context.Context, id int64, batch int) (PurgeStep, error) {
	if batch < 1 {
		return PurgeStep{}, fmt.Errorf("store: purge target %d: batch %d < 1", id, batch)
	}
	for _, st := range purgeSteps {
		var n int64
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, st.sql, id, int64(batch)*st.perBatch)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return PurgeStep{}, fmt.Errorf("store: purge target %d: %s: %w", id, st.what, err)
		}
		if n > 0 {
			return PurgeStep{Rows: n}, nil
		}
	}
	var state string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, purgeTargetSQL, id)
		if err != nil || tag.RowsAffected() == 1 {
			state = ""
			return err
		}
		return tx.QueryRow(ctx, `SELECT state FROM targets WHERE id = $1`, id).Scan(&state)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows): // gone: another deleter finished it
		return PurgeStep{Done: true}, nil
	case err != nil:
		return PurgeStep{}, fmt.Errorf("store: purge target %d: %w", id, err)
	case state == "":
		return PurgeStep{Rows: 1, Done: true}, nil
	}
	return PurgeStep{}, nil // rows left that others hold, or not deleting
}
