-- +goose Up
-- Queued URLs of a paused target leave the scheduler's index (issue #6). The scheduler asks, on
-- every tick and for every due host, whether the host has a due URL of an active target, by
-- reading urls_queued_idx in order. A paused target's backlog on the same host as an active
-- target sat in front of the active target's URLs, so each tick read through all of it (70 ms
-- per tick at 200,000 paused URLs). Pausing now marks the target's queued URLs paused, which
-- takes them out of the partial index; every change of a target's state re-syncs the mark
-- (store.syncPausedURLs).
-- The statement-level counter trigger joins its transition tables (old_rows, new_rows). plpgsql
-- keeps the plan of that join for the whole session, and a processor's connection makes it
-- first for a small batch: a nested loop, which a later statement updating N URLs on the same
-- connection reuses at N² comparisons (2.6 s for 5,000 URLs; cancelling, pausing or re-crawling
-- a target of a million URLs would not finish). Without nested loops the join is merged or
-- hashed whatever the size. The same for the page trigger of migration 00006.
-- (TestCounterTriggerHashesBulkUpdates)
ALTER FUNCTION urls_count_update() SET enable_nestloop = off;
ALTER FUNCTION pages_queue_update() SET enable_nestloop = off;

ALTER TABLE urls ADD COLUMN paused boolean NOT NULL DEFAULT false;
UPDATE urls u SET paused = true FROM targets t
WHERE t.id = u.target_id AND t.state = 'paused' AND u.state = 'queued';
DROP INDEX urls_queued_idx;
CREATE INDEX urls_queued_idx ON urls (host, next_attempt_at, id) WHERE state = 'queued' AND NOT paused;

-- +goose Down
DROP INDEX urls_queued_idx;
CREATE INDEX urls_queued_idx ON urls (host, next_attempt_at, id) WHERE state = 'queued';
ALTER TABLE urls DROP COLUMN paused;
ALTER FUNCTION pages_queue_update() RESET enable_nestloop;
ALTER FUNCTION urls_count_update() RESET enable_nestloop;
