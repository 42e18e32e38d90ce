-- +goose Up
-- Deleting a target is a state, not one statement (issue #24). DELETE FROM targets cascaded
-- through urls, pages, links and the history tables in the order of the foreign keys, in one
-- transaction that held the target's row for as long as a million pages took and crossed the
-- lock order of the processors' batches (URLs, then the target), so it could deadlock with them.
-- Now the dashboard only marks the target 'deleting' (which stops its dispatch, re-crawls and
-- actions, and makes the processors drop its results), and the processors' deleters remove its
-- rows in bounded transactions, then the target row (store.PurgeTarget).
ALTER TABLE targets DROP CONSTRAINT targets_state_check;
ALTER TABLE targets ADD CONSTRAINT targets_state_check
    CHECK (state IN ('active', 'paused', 'done', 'cancelled', 'deleting'));
-- The deleters find their work here.
CREATE INDEX targets_deleting_idx ON targets (id) WHERE state = 'deleting';

-- +goose Down
-- A target half deleted cannot go back to what it was: finish the deletion in one statement.
DELETE FROM targets WHERE state = 'deleting';
DROP INDEX targets_deleting_idx;
ALTER TABLE targets DROP CONSTRAINT targets_state_check;
ALTER TABLE targets ADD CONSTRAINT targets_state_check
    CHECK (state IN ('active', 'paused', 'done', 'cancelled'));
