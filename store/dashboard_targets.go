package store

import "context"

// PauseTarget stops dispatching a target's URLs; in-flight fetches still apply.
func (s *Store) PauseTarget(ctx context.Context, id int64) (Target, error) { return Target{}, errTODO }

// ResumeTarget dispatches a paused target again (or finishes it when nothing is pending).
func (s *Store) ResumeTarget(ctx context.Context, id int64) (Target, error) { return Target{}, errTODO }

// CancelTarget stops a target for good: its queued URLs become cancelled.
func (s *Store) CancelTarget(ctx context.Context, id int64) (Target, error) { return Target{}, errTODO }

// DeleteTarget removes a target and everything of it.
func (s *Store) DeleteTarget(ctx context.Context, id int64) error { return errTODO }

// RecrawlTarget queues a target's finished URLs again and makes it active.
func (s *Store) RecrawlTarget(ctx context.Context, id int64) (Target, error) {
	return Target{}, errTODO
}

// RequeueDueTargets recrawls done targets whose recrawl interval has passed, and reports how many.
func (s *Store) RequeueDueTargets(ctx context.Context) (int, error) { return 0, errTODO }
