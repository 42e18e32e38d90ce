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

-- Per-target crawl options: sitemap discovery and include/exclude URL regexes (RE2, matched
-- against the canonical URL; '' means none).
ALTER TABLE targets
    ADD COLUMN sitemaps      boolean NOT NULL DEFAULT true,
    ADD COLUMN include_regex text NOT NULL DEFAULT '',
    ADD COLUMN exclude_regex text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE targets DROP COLUMN exclude_regex, DROP COLUMN include_regex, DROP COLUMN sitemaps;
ALTER TABLE hosts DROP COLUMN robots_error, DROP COLUMN robots_lease_until, DROP COLUMN robots_retry_at,
    DROP COLUMN robots_attempts, DROP COLUMN robots_agent;
