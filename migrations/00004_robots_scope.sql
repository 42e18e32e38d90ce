-- +goose Up
-- robots.txt through the pipeline: one file per host, fetched by a 'robots' crawl job and shared by
-- every replica. robots_fetched_at is when the rules now in force were learned (NULL: unknown);
-- page URLs of a host are held while it is NULL or older than 24 hours.
ALTER TABLE hosts
    -- Product token (lower case) the crawl delay was read for.
    ADD COLUMN robots_agent       text,
    -- Failed fetches (5xx, 429, unreachable) since the last good one.
    ADD COLUMN robots_attempts    integer NOT NULL DEFAULT 0,
    -- No robots fetch before this time (backoff after a failure).
    ADD COLUMN robots_retry_at    timestamptz,
    -- A robots job is out until this time.
    ADD COLUMN robots_lease_until timestamptz,
    ADD COLUMN robots_error       text;
-- DispatchRobots looks for hosts whose file is unknown or stale.
CREATE INDEX hosts_robots_due_idx ON hosts ((coalesce(robots_fetched_at, '-infinity'::timestamptz)));

-- Per-target crawl options: sitemap discovery and include/exclude URL regexes (RE2, matched
-- against the canonical URL; '' means none).
ALTER TABLE targets
    ADD COLUMN sitemaps      boolean NOT NULL DEFAULT true,
    ADD COLUMN include_regex text NOT NULL DEFAULT '',
    ADD COLUMN exclude_regex text NOT NULL DEFAULT '';

-- Sitemaps to fetch per target, found in robots.txt Sitemap lines, at /sitemap.xml and in
-- sitemap index files. A target is not done while one of its sitemaps is pending.
CREATE TABLE sitemaps (
    id              bigserial PRIMARY KEY,
    target_id       bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    url             text NOT NULL,
    host            text NOT NULL,
    -- 0: from robots.txt or /sitemap.xml; 1: listed in a sitemap index (no deeper).
    nesting         integer NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dispatched', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    urls_found      integer NOT NULL DEFAULT 0,
    urls_added      integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    fetched_at      timestamptz,
    UNIQUE (target_id, url)
);
CREATE INDEX sitemaps_pending_idx ON sitemaps (target_id) WHERE state IN ('queued', 'dispatched');
CREATE INDEX sitemaps_queued_idx ON sitemaps (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX sitemaps_dispatched_idx ON sitemaps (host) WHERE state = 'dispatched';

-- +goose Down
DROP TABLE sitemaps;
DROP INDEX hosts_robots_due_idx;
ALTER TABLE targets DROP COLUMN exclude_regex, DROP COLUMN include_regex, DROP COLUMN sitemaps;
ALTER TABLE hosts DROP COLUMN robots_error, DROP COLUMN robots_lease_until, DROP COLUMN robots_retry_at,
    DROP COLUMN robots_attempts, DROP COLUMN robots_agent;
