-- +goose Up
CREATE TABLE targets (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL,
    seed_url         text NOT NULL,
    scope            text NOT NULL DEFAULT 'host' CHECK (scope IN ('host', 'domain', 'prefix')),
    scope_prefix     text NOT NULL DEFAULT '',
    max_depth        integer NOT NULL CHECK (max_depth >= 0),
    max_pages        integer NOT NULL CHECK (max_pages > 0),
    per_host_rps     double precision NOT NULL DEFAULT 0 CHECK (per_host_rps >= 0),
    max_attempts     integer NOT NULL DEFAULT 4 CHECK (max_attempts > 0),
    recrawl_interval interval,
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'done', 'cancelled')),
    -- Counters kept exact by the urls_count_* triggers below.
    urls_total       bigint NOT NULL DEFAULT 0,
    urls_done        bigint NOT NULL DEFAULT 0,
    urls_failed      bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

-- One row per politeness key (lowercase host[:port]), shared by every target and replica.
CREATE TABLE hosts (
    host              text PRIMARY KEY,
    next_fetch_at     timestamptz NOT NULL DEFAULT now(),
    -- Minimum spacing between request starts, from the strictest target's per_host_rps (0 = none).
    min_interval_ms   integer NOT NULL DEFAULT 0 CHECK (min_interval_ms >= 0),
    crawl_delay_ms    integer NOT NULL DEFAULT 0 CHECK (crawl_delay_ms >= 0),
    backoff_until     timestamptz,
    robots_status     integer,
    robots_fetched_at timestamptz,
    robots_body       text,
    fetches           bigint NOT NULL DEFAULT 0,
    errors            bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE urls (
    id              bigserial PRIMARY KEY,
    target_id       bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    url             text NOT NULL,
    host            text NOT NULL,
    depth           integer NOT NULL,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dispatched', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    dispatches      integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    error_class     text,
    etag            text,
    last_modified   text,
    content_hash    text,
    discovered_at   timestamptz NOT NULL DEFAULT now(),
    fetched_at      timestamptz,
    UNIQUE (target_id, url)
);
-- The scheduler's candidate lookup: due queued URLs per host.
CREATE INDEX urls_queued_idx ON urls (host, next_attempt_at) WHERE state = 'queued';
-- In-flight counting and lease expiry.
CREATE INDEX urls_dispatched_idx ON urls (host) WHERE state = 'dispatched';
CREATE INDEX urls_lease_idx ON urls (lease_until) WHERE state = 'dispatched';
CREATE INDEX urls_target_state_idx ON urls (target_id, state);

-- The latest fetch of each URL.
CREATE TABLE pages (
    url_id        bigint PRIMARY KEY REFERENCES urls (id) ON DELETE CASCADE,
    target_id     bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    url           text NOT NULL,
    final_url     text NOT NULL,
    status        integer NOT NULL,
    content_type  text NOT NULL DEFAULT '',
    title         text NOT NULL DEFAULT '',
    body_text     text NOT NULL DEFAULT '',
    tsv           tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('simple', left(title, 1000)), 'A') ||
                      setweight(to_tsvector('simple', left(body_text, 500000)), 'B')) STORED,
    size_bytes    integer NOT NULL DEFAULT 0,
    truncated     boolean NOT NULL DEFAULT false,
    duration_ms   integer NOT NULL DEFAULT 0,
    link_count    integer NOT NULL DEFAULT 0,
    links         text[] NOT NULL DEFAULT '{}',
    content_hash  text NOT NULL DEFAULT '',
    etag          text NOT NULL DEFAULT '',
    last_modified text NOT NULL DEFAULT '',
    fetched_at    timestamptz NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pages_tsv_idx ON pages USING gin (tsv);
CREATE INDEX pages_target_idx ON pages (target_id, url_id);

-- Target counters, maintained per statement from transition tables so that every code path
-- (processor, scheduler, dashboard) keeps them exact without touching them itself.
-- +goose StatementBegin
CREATE FUNCTION urls_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE targets t SET urls_total = t.urls_total + d.n
    FROM (SELECT target_id, count(*) AS n FROM new_rows GROUP BY target_id) d
    WHERE t.id = d.target_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION urls_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE FUNCTION urls_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER urls_count_insert AFTER INSERT ON urls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION urls_count_insert();
CREATE TRIGGER urls_count_update AFTER UPDATE ON urls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION urls_count_update();
CREATE TRIGGER urls_count_delete AFTER DELETE ON urls
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION urls_count_delete();

-- +goose Down
DROP TABLE pages;
DROP TABLE urls;
DROP TABLE hosts;
DROP TABLE targets;
DROP FUNCTION urls_count_insert();
DROP FUNCTION urls_count_update();
DROP FUNCTION urls_count_delete();
