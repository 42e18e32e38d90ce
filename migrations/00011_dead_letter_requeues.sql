-- +goose Up
-- How many times a dead letter's message had been requeued from the dashboard before it died
-- again (issue #17). A requeue carries the count in the message's trawl-requeues header and the
-- mirror stores it here when the message comes back, so the list shows a permanent poison
-- message for what it is instead of as a new one each time.
ALTER TABLE dead_letters ADD COLUMN requeues integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE dead_letters DROP COLUMN requeues;
