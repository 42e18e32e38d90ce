package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/politeness"
	"github.com/trawlhq/trawl/target"
)

// targetAction runs a conditional state change on one target in a transaction. update must
// return the number of rows it changed; when it changed nothing the target either does not
// exist (ErrNotFound), is already in a state listed in noop (returned as is), or is in a state
// the action does not apply to (ErrTargetState).
func (s *Store) targetAction(ctx context.Context, id int64, name string, noop []string,
	update func(tx pgx.Tx) (int64, error)) (Target, error) {
	var t Target
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n, err := update(tx)
		if err != nil {
			return err
		}
		t, err = scanTarget(tx.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if n == 0 {
			for _, st := range noop {
				if t.State == st {
					return nil
				}
			}
			if t.State == TargetDeleting {
				return fmt.Errorf("%w: cannot %s it", ErrTargetDeleting, name)
			}
			return fmt.Errorf("%w: cannot %s a target that is %s", ErrTargetState, name, t.State)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Target{}, ErrNotFound
	}
	if err != nil {
		return Target{}, fmt.Errorf("store: %s target %d: %w", name, id, err)
	}
	return t, nil
}

// PauseTarget stops dispatching an active target's URLs from the next scheduler tick on, in
// every processor; in-flight fetches still apply. Pausing a paused target changes nothing.
func (s *Store) PauseTarget(ctx context.Context, id int64) (Target, error) {
	return s.targetAction(ctx, id, "pause", []string{TargetPaused}, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `UPDATE targets SET state = 'paused', updated_at = now() WHERE id = $1 AND state = 'active'`, id)
		if err != nil || tag.RowsAffected() == 0 {
			return tag.RowsAffected(), err
		}
		if err := syncPausedURLs(ctx, tx, id); err != nil {
			return 0, err
		}
		return 1, recomputeTargetHosts(ctx, tx, id)
	})
}

// ResumeTarget dispatches a paused target again, or marks it done when nothing is pending
// (its last fetches were applied while it was paused). Resuming an active target changes
// nothing.
func (s *Store) ResumeTarget(ctx context.Context, id int64) (Target, error) {
	return s.targetAction(ctx, id, "resume", []string{TargetActive}, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `
			UPDATE targets SET
				state = CASE WHEN urls_total = urls_done + urls_failed + urls_cancelled THEN 'done' ELSE 'active' END,
				finished_at = CASE WHEN urls_total = urls_done + urls_failed + urls_cancelled THEN now() END,
				updated_at = now()
			WHERE id = $1 AND state = 'paused'`, id)
		if err != nil || tag.RowsAffected() == 0 {
			return tag.RowsAffected(), err
		}
		if err := syncPausedURLs(ctx, tx, id); err != nil {
			return 0, err
		}
		return 1, recomputeTargetHosts(ctx, tx, id)
	})
}

// CancelTarget stops an active or paused target for good: nothing more is dispatched, its
// queued URLs become cancelled, and in-flight fetches still apply (without retries or new
// links), after which nothing is pending. Cancelling a cancelled target changes nothing.
func (s *Store) CancelTarget(ctx context.Context, id int64) (Target, error) {
	return s.targetAction(ctx, id, "cancel", []string{TargetCancelled}, func(tx pgx.Tx) (int64, error) {
		// Target first, then its URLs (see ApplyResults for how a batch crosses this order).
		tag, err := tx.Exec(ctx, `
			UPDATE targets SET state = 'cancelled', finished_at = now(), updated_at = now()
			WHERE id = $1 AND state IN ('active', 'paused')`, id)
		if err != nil || tag.RowsAffected() == 0 {
			return tag.RowsAffected(), err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE urls SET state = 'cancelled', lease_until = NULL
			WHERE target_id = $1 AND state = 'queued'`, id); err != nil {
			return 0, fmt.Errorf("cancel urls: %w", err)
		}
		return 1, recomputeTargetHosts(ctx, tx, id)
	})
}

// DeleteTarget marks a target deleting and returns it. That is all it does to the database, in
// one short transaction that locks the target's row (taken first, as by every writer that
// locks a target before its URLs), then its hosts' rows: from its commit on nothing of the target is dispatched or
// re-crawled, no action applies to it (ErrTargetDeleting), and its results are acked and
// dropped (ApplyResults). The processors' deleters then remove its rows in bounded
// transactions, and the target row last (PurgeTarget). Deleting a deleting target changes
// nothing; an unknown one is ErrNotFound. The hosts it had URLs on then follow the targets
// still active on them (recomputeHosts): a deleting target is not active.
func (s *Store) DeleteTarget(ctx context.Context, id int64) (Target, error) {
	return s.targetAction(ctx, id, "delete", []string{TargetDeleting}, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `
			UPDATE targets SET state = 'deleting', updated_at = now() WHERE id = $1 AND state <> 'deleting'`, id)
		if err != nil || tag.RowsAffected() == 0 {
			return tag.RowsAffected(), err
		}
		return 1, recomputeTargetHosts(ctx, tx, id)
	})
}

// RecrawlTarget queues a target's finished URLs (done, failed or cancelled) again, with fresh
// attempts, and makes the target active (a paused target stays paused). URLs an edit cut off at
// max_pages stay cancelled (UpdateTarget); those it found out of scope are queued and checked
// again as they are dispatched. Stored ETags and
// Last-Modified dates travel with the jobs, so unchanged pages cost a 304.
func (s *Store) RecrawlTarget(ctx context.Context, id int64) (Target, error) {
	return s.targetAction(ctx, id, "recrawl", nil, func(tx pgx.Tx) (int64, error) {
		return recrawl(ctx, tx, id)
	})
}

func recrawl(ctx context.Context, tx pgx.Tx, id int64) (int64, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE targets SET state = CASE WHEN state = 'paused' THEN 'paused' ELSE 'active' END,
			finished_at = NULL, updated_at = now()
		WHERE id = $1 AND state <> 'deleting'`, id)
	if err != nil || tag.RowsAffected() == 0 {
		return tag.RowsAffected(), err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE urls SET state = 'queued', attempts = 0, next_attempt_at = now(), lease_until = NULL,
			last_error = NULL, error_class = NULL
		WHERE target_id = $1 AND state IN ('done', 'failed', 'cancelled')
		  AND NOT (state = 'cancelled' AND error_class IS NOT DISTINCT FROM $2)`, id, MaxPagesErrorClass); err != nil {
		return 0, fmt.Errorf("requeue urls: %w", err)
	}
	if err := syncPausedURLs(ctx, tx, id); err != nil {
		return 0, err
	}
	return 1, recomputeTargetHosts(ctx, tx, id)
}

// syncPausedURLs marks the queued URLs of the given targets paused exactly when their target is
// paused. Paused URLs are outside the scheduler's index (migration 00007), so every change of a
// target's state that queues URLs or pauses or resumes the target ends with this, in the same
// transaction, after the target row is updated (target first, then URLs; see ApplyResults).
func syncPausedURLs(ctx context.Context, tx pgx.Tx, ids ...int64) error {
	_, err := tx.Exec(ctx, `
		UPDATE urls u SET paused = (t.state = 'paused')
		FROM targets t
		WHERE t.id = ANY($1) AND u.target_id = t.id AND u.state = 'queued' AND u.paused <> (t.state = 'paused')`, ids)
	if err != nil {
		return fmt.Errorf("sync paused urls: %w", err)
	}
	return nil
}

// RequeueDueTargets recrawls every done target whose recrawl interval has passed since it
// finished, one transaction per target, and reports how many it recrawled. Any number of
// schedulers may call it at once: a target is claimed with SKIP LOCKED and recrawled once.
func (s *Store) RequeueDueTargets(ctx context.Context) (int, error) {
	n := 0
	for {
		found := false
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var id int64
			err := tx.QueryRow(ctx, `
				SELECT id FROM targets
				WHERE state = 'done' AND recrawl_interval IS NOT NULL AND finished_at + recrawl_interval <= now()
				ORDER BY finished_at LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			found = true
			_, err = recrawl(ctx, tx, id)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("store: requeue due targets: %w", err)
		}
		if !found {
			return n, nil
		}
		n++
	}
}

// Error classes of the queued URLs an edit of their target sets aside: cancelled, never deleted
// (docs/adr/0057-editing-targets.md).
const (
	// ScopeErrorClass marks a URL that an edit took out of its target's scope (include, exclude
	// or max depth). Dispatch cancels it when it comes due; a later edit of the scope or a
	// re-crawl queues it again, to be checked once more.
	ScopeErrorClass = "out_of_scope"
	// MaxPagesErrorClass marks a queued URL beyond a lowered max_pages, the newest first. An edit
	// that raises max_pages queues such URLs again, the oldest first, as far as there is room.
	MaxPagesErrorClass = "max_pages"
)

// UpdateTarget edits a target's spec. edit gets the stored spec, read under the target's row
// lock, and returns the new one (target.Patch.Apply); an error from it, such as a
// target.FieldErrors, comes back wrapped (errors.As finds it). The seed, scope kind and prefix
// cannot change (ErrInvalidTarget). An unknown target is ErrNotFound, a deleting one
// ErrTargetDeleting.
//
// In the same transaction, after the target row (lock order: target, URLs, hosts), the edit
//   - cuts the queued URLs beyond a lowered max_pages (MaxPagesErrorClass), so that the target
//     holds no more than max_pages URLs and, when nothing is left pending, is done;
//   - queues again what an earlier edit set aside and may now belong: URLs cut at max_pages as
//     far as a raised max_pages has room, and URLs found out of scope when the scope's fields
//     changed (Dispatch checks them again); a done target with URLs queued again is active;
//   - fails the queued sitemaps of a target whose sitemaps were turned off;
//   - recomputes its hosts' intervals, so a changed rate paces them at once (recomputeHosts);
//   - wakes the scheduler.
//
// Everything else takes effect at the next scheduler tick and the next batch of every
// processor, which read the target afresh: the scope (narrowed: Dispatch cancels the queued
// URLs it no longer holds, ScopeErrorClass), max_depth, max_attempts and the recrawl interval.
func (s *Store) UpdateTarget(ctx context.Context, id int64, edit func(target.Spec) (target.Spec, error)) (Target, error) {
	var t Target
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanTarget(tx.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1 FOR NO KEY UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if old.State == TargetDeleting {
			return fmt.Errorf("%w: cannot edit it", ErrTargetDeleting)
		}
		spec, err := edit(old.Spec)
		if err != nil {
			return err
		}
		switch {
		case spec.SeedURL != old.SeedURL || spec.Scope != old.Scope || spec.ScopePrefix != old.ScopePrefix:
			return fmt.Errorf("%w: its seed and scope cannot change", ErrInvalidTarget)
		case politeness.CheckRPS(spec.PerHostRPS) != nil || spec.MaxPages < 1 || spec.MaxDepth < 0 || spec.MaxAttempts < 1:
			return fmt.Errorf("%w: the edit is not valid (target.Spec.Validate)", ErrInvalidTarget)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE targets SET name = $2, max_depth = $3, max_pages = $4, per_host_rps = $5, max_attempts = $6,
				recrawl_interval = $7::interval, sitemaps = $8, include_regex = $9, exclude_regex = $10, updated_at = now()
			WHERE id = $1`,
			id, spec.Name, spec.MaxDepth, spec.MaxPages, spec.PerHostRPS, spec.MaxAttempts, recrawlInterval(spec),
			spec.Sitemaps, spec.Include, spec.Exclude); err != nil {
			return fmt.Errorf("update target: %w", err)
		}
		if err := setAside(ctx, tx, old, spec); err != nil {
			return err
		}
		if err := recomputeTargetHosts(ctx, tx, id); err != nil {
			return err
		}
		if _, _, err := finishTargets(ctx, tx, []int64{id}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, FrontierChannel); err != nil {
			return fmt.Errorf("notify the scheduler: %w", err)
		}
		t, err = scanTarget(tx.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return Target{}, ErrNotFound
	}
	if err != nil {
		return Target{}, fmt.Errorf("store: edit target %d: %w", id, err)
	}
	return t, nil
}

// setAside is UpdateTarget's work on the URLs and sitemaps of target old, whose spec is now
// spec; the target row is locked and updated.
func setAside(ctx context.Context, tx pgx.Tx, old Target, spec target.Spec) error {
	if old.URLsTotal > int64(spec.MaxPages) {
		// The URLs held are all but those cut earlier. The newest queued ones go first: they
		// would not have been admitted under this max_pages.
		if _, err := tx.Exec(ctx, `
			UPDATE urls SET state = 'cancelled', lease_until = NULL, error_class = $3,
				last_error = 'beyond the target''s max_pages after an edit'
			WHERE id IN (SELECT id FROM urls WHERE target_id = $1 AND state = 'queued' ORDER BY id DESC
				LIMIT greatest($4::bigint - $2 - (SELECT count(*) FROM urls
					WHERE target_id = $1 AND state = 'cancelled' AND error_class = $3), 0))`,
			old.ID, spec.MaxPages, MaxPagesErrorClass, old.URLsTotal); err != nil {
			return fmt.Errorf("cut urls beyond max_pages: %w", err)
		}
	}
	if old.Sitemaps && !spec.Sitemaps {
		if _, err := tx.Exec(ctx, `
			UPDATE sitemaps SET state = 'failed', last_error = 'sitemaps turned off for the target'
			WHERE target_id = $1 AND state = 'queued'`, old.ID); err != nil {
			return fmt.Errorf("drop queued sitemaps: %w", err)
		}
	}
	switch old.State {
	case TargetActive, TargetPaused, TargetDone:
	default:
		return nil // a cancelled target is final
	}
	var requeued int64
	if spec.MaxPages > old.MaxPages {
		// Room: max_pages less the URLs held, which are all but those cut.
		tag, err := tx.Exec(ctx, `
			WITH cut AS (SELECT id FROM urls WHERE target_id = $1 AND state = 'cancelled' AND error_class = $3)
			UPDATE urls SET state = 'queued', attempts = 0, next_attempt_at = now(), lease_until = NULL,
				last_error = NULL, error_class = NULL
			WHERE id IN (SELECT id FROM cut ORDER BY id
				LIMIT greatest($2::bigint - ((SELECT urls_total FROM targets WHERE id = $1) - (SELECT count(*) FROM cut)), 0))`,
			old.ID, spec.MaxPages, MaxPagesErrorClass)
		if err != nil {
			return fmt.Errorf("queue urls within max_pages again: %w", err)
		}
		requeued += tag.RowsAffected()
	}
	if spec.Include != old.Include || spec.Exclude != old.Exclude || spec.MaxDepth != old.MaxDepth {
		tag, err := tx.Exec(ctx, `
			UPDATE urls SET state = 'queued', attempts = 0, next_attempt_at = now(), lease_until = NULL,
				last_error = NULL, error_class = NULL
			WHERE target_id = $1 AND state = 'cancelled' AND error_class = $2`, old.ID, ScopeErrorClass)
		if err != nil {
			return fmt.Errorf("queue urls out of scope again: %w", err)
		}
		requeued += tag.RowsAffected()
	}
	if requeued == 0 {
		return nil
	}
	if old.State == TargetDone {
		if _, err := tx.Exec(ctx, `
			UPDATE targets SET state = 'active', finished_at = NULL, updated_at = now() WHERE id = $1`, old.ID); err != nil {
			return fmt.Errorf("reactivate target: %w", err)
		}
	}
	return syncPausedURLs(ctx, tx, old.ID)
}
