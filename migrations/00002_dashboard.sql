-- +goose Up

-- A cancelled target's URLs that were never fetched become 'cancelled': final, not pending.
ALTER TABLE urls DROP CONSTRAINT urls_state_check;
ALTER TABLE urls ADD CONSTRAINT urls_state_check
    CHECK (state IN ('queued', 'dispatched', 'done', 'failed', 'cancelled'));
ALTER TABLE targets ADD COLUMN urls_cancelled bigint NOT NULL DEFAULT 0;

-- The scheduler picks a host's due URLs in (next_attempt_at, id) order: with id in the index
-- that is an index scan that stops after the few it takes, instead of a sort of the host's
-- whole backlog on every tick.
DROP INDEX urls_queued_idx;
CREATE INDEX urls_queued_idx ON urls (host, next_attempt_at, id) WHERE state = 'queued';

-- Dashboard lists, each on its own small partial index.
-- Retrying: queued again after a failed attempt, soonest first.
CREATE INDEX urls_retrying_idx ON urls (next_attempt_at, id) WHERE state = 'queued' AND attempts > 0;
CREATE INDEX urls_retrying_target_idx ON urls (target_id, next_attempt_at, id) WHERE state = 'queued' AND attempts > 0;
-- Failed for good, newest first, across targets and per target.
CREATE INDEX urls_failed_idx ON urls (id) WHERE state = 'failed';
CREATE INDEX urls_failed_target_idx ON urls (target_id, id) WHERE state = 'failed';
-- URLs that carry an error now, grouped by class per target, the newest of each class first.
CREATE INDEX urls_error_idx ON urls (target_id, error_class, id) WHERE error_class IS NOT NULL;

-- A target's pages, keyset-paginated by each sortable column. The filter columns are included
-- so that a filtered page is found by an index-only scan, without a heap fetch per skipped row.
CREATE INDEX pages_target_url_idx ON pages (target_id, url, url_id) INCLUDE (status, content_type);
CREATE INDEX pages_target_fetched_idx ON pages (target_id, fetched_at, url_id) INCLUDE (status, content_type);
CREATE INDEX pages_target_status_idx ON pages (target_id, status, url_id) INCLUDE (content_type);
CREATE INDEX pages_target_size_idx ON pages (target_id, size_bytes, url_id) INCLUDE (status, content_type);

-- Every fetch applied by the processor (pages and errors): the fetch history of a URL.
CREATE TABLE page_fetches (
    url_id       bigint NOT NULL,
    target_id    bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    fetched_at   timestamptz NOT NULL,
    status       integer,
    duration_ms  integer NOT NULL DEFAULT 0,
    size         integer NOT NULL DEFAULT 0,
    content_hash text,
    changed      boolean NOT NULL DEFAULT false,
    error_class  text,
    error        text
);
CREATE INDEX page_fetches_url_idx ON page_fetches (url_id, fetched_at DESC);
CREATE INDEX page_fetches_target_idx ON page_fetches (target_id, fetched_at);
CREATE INDEX page_fetches_fetched_idx ON page_fetches (fetched_at);

-- Per-second throughput per target, kept by ApplyResults, so the overview's chart reads a few
-- hundred rows whatever the crawl rate.
CREATE TABLE fetch_rates (
    target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL,
    pages     integer NOT NULL DEFAULT 0,
    errors    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (target_id, at)
);
CREATE INDEX fetch_rates_at_idx ON fetch_rates (at);

-- Links between URLs of the same target (canonical, in scope): in-links are an index lookup.
CREATE TABLE links (
    to_url_id   bigint NOT NULL,
    from_url_id bigint NOT NULL,
    PRIMARY KEY (to_url_id, from_url_id)
);
CREATE INDEX links_from_idx ON links (from_url_id);

-- The hosts each target has URLs on.
CREATE TABLE target_hosts (
    target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    host      text NOT NULL,
    PRIMARY KEY (target_id, host)
);
-- The scheduler skips hosts that no active target has URLs on.
CREATE INDEX target_hosts_host_idx ON target_hosts (host, target_id);
INSERT INTO target_hosts (target_id, host) SELECT DISTINCT target_id, host FROM urls;

-- Counters now include cancelled URLs.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION urls_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targets t
    SET urls_done = t.urls_done + d.done, urls_failed = t.urls_failed + d.failed,
        urls_cancelled = t.urls_cancelled + d.cancelled
    FROM (
        SELECT n.target_id,
               sum((n.state = 'done')::int - (o.state = 'done')::int) AS done,
               sum((n.state = 'failed')::int - (o.state = 'failed')::int) AS failed,
               sum((n.state = 'cancelled')::int - (o.state = 'cancelled')::int) AS cancelled
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.state IS DISTINCT FROM o.state
        GROUP BY n.target_id
    ) d
    WHERE t.id = d.target_id AND (d.done <> 0 OR d.failed <> 0 OR d.cancelled <> 0);
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION urls_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targets t
    SET urls_total = t.urls_total - d.n, urls_done = t.urls_done - d.done, urls_failed = t.urls_failed - d.failed,
        urls_cancelled = t.urls_cancelled - d.cancelled
    FROM (
        SELECT target_id, count(*) AS n,
               sum((state = 'done')::int) AS done, sum((state = 'failed')::int) AS failed,
               sum((state = 'cancelled')::int) AS cancelled
        FROM old_rows GROUP BY target_id
    ) d
    WHERE t.id = d.target_id;
    -- Links have no foreign keys (per-row checks would slow every batch down): drop them here,
    -- once per statement.
    DELETE FROM links l USING old_rows o WHERE l.from_url_id = o.id;
    DELETE FROM links l USING old_rows o WHERE l.to_url_id = o.id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION urls_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targets t
    SET urls_done = t.urls_done + d.done, urls_failed = t.urls_failed + d.failed
    FROM (
        SELECT n.target_id,
               sum((n.state = 'done')::int - (o.state = 'done')::int) AS done,
               sum((n.state = 'failed')::int - (o.state = 'failed')::int) AS failed
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.state IS DISTINCT FROM o.state
        GROUP BY n.target_id
    ) d
    WHERE t.id = d.target_id AND (d.done <> 0 OR d.failed <> 0);
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION urls_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targets t
    SET urls_total = t.urls_total - d.n, urls_done = t.urls_done - d.done, urls_failed = t.urls_failed - d.failed
    FROM (
        SELECT target_id, count(*) AS n,
               sum((state = 'done')::int) AS done, sum((state = 'failed')::int) AS failed
        FROM old_rows GROUP BY target_id
    ) d
    WHERE t.id = d.target_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

DROP TABLE target_hosts;
DROP TABLE links;
DROP TABLE fetch_rates;
DROP TABLE page_fetches;
DROP INDEX pages_target_size_idx;
DROP INDEX pages_target_status_idx;
DROP INDEX pages_target_fetched_idx;
DROP INDEX pages_target_url_idx;
DROP INDEX urls_error_idx;
DROP INDEX urls_failed_target_idx;
DROP INDEX urls_failed_idx;
DROP INDEX urls_retrying_target_idx;
DROP INDEX urls_retrying_idx;
DROP INDEX urls_queued_idx;
CREATE INDEX urls_queued_idx ON urls (host, next_attempt_at) WHERE state = 'queued';
-- Cancelled URLs have no place in the old schema: they become failed (the restored trigger
-- counts them).
UPDATE urls SET state = 'failed', error_class = 'cancelled' WHERE state = 'cancelled';
ALTER TABLE targets DROP COLUMN urls_cancelled;
ALTER TABLE urls DROP CONSTRAINT urls_state_check;
ALTER TABLE urls ADD CONSTRAINT urls_state_check CHECK (state IN ('queued', 'dispatched', 'done', 'failed'));
