-- +goose Up
-- Full-text search moves off the persist path (issue #6). The generated pages.tsv column made
-- every page insert build its tsvector and GIN entries inside the processor's transaction: about
-- 1 ms of database CPU per 8 KB page, most of the persist cost. Now:
--   * pages keeps only the content;
--   * page_search holds the vector, built by the processors' search indexers in the background
--     (store.IndexPages), with the GIN index;
--   * search_queue lists the pages whose vector is missing or stale. Triggers on pages fill it,
--     so every writer (including a processor of an older version during a rolling upgrade)
--     queues its pages without knowing about search.
-- Search is therefore eventually consistent: a stored page becomes searchable once an indexer
-- has reached it (the dashboard shows the backlog).

-- page_tsv is the vector of one page. A page whose vector would exceed Postgres's 1 MiB limit
-- (hostile text of many distinct words) is indexed on a prefix of its text, and failing that on
-- its title alone, instead of failing the whole indexing batch.
-- +goose StatementBegin
CREATE FUNCTION page_tsv(title text, body text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    BEGIN
        RETURN setweight(to_tsvector('simple', left(title, 1000)), 'A') ||
               setweight(to_tsvector('simple', left(body, 500000)), 'B');
    EXCEPTION WHEN program_limit_exceeded THEN
        BEGIN
            RETURN setweight(to_tsvector('simple', left(title, 1000)), 'A') ||
                   setweight(to_tsvector('simple', left(body, 20000)), 'B');
        EXCEPTION WHEN program_limit_exceeded THEN
            RETURN setweight(to_tsvector('simple', left(title, 1000)), 'A');
        END;
    END;
END $$;
-- +goose StatementEnd

CREATE TABLE page_search (
    url_id    bigint PRIMARY KEY REFERENCES pages (url_id) ON DELETE CASCADE,
    target_id bigint NOT NULL,
    tsv       tsvector NOT NULL
);

-- Pages waiting for their vector. No unique key: a page queued twice is indexed twice, which is
-- harmless, and a writer never waits for an indexer holding the older entry.
CREATE TABLE search_queue (
    id     bigserial PRIMARY KEY,
    url_id bigint NOT NULL
);

-- When indexing may next run while processors are busy persisting (store.IndexPagesPaced): one
-- row shared by every processor, so the indexers together, however many, take a bounded share
-- of the database during a crawl.
CREATE TABLE search_index_pace (
    id      integer PRIMARY KEY CHECK (id = 1),
    next_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO search_index_pace (id) VALUES (1);

-- Existing vectors move over as they are (no recomputation), then the index is built once.
INSERT INTO page_search (url_id, target_id, tsv) SELECT url_id, target_id, tsv FROM pages;
CREATE INDEX page_search_tsv_idx ON page_search USING gin (tsv);
CREATE INDEX page_search_target_idx ON page_search (target_id, url_id);
ALTER TABLE pages DROP COLUMN tsv;

-- +goose StatementBegin
CREATE FUNCTION pages_queue_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_queue (url_id) SELECT url_id FROM new_rows ORDER BY url_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- A rewrite with the same content (same hash, same title) keeps its vector.
-- +goose StatementBegin
CREATE FUNCTION pages_queue_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_queue (url_id)
    SELECT n.url_id FROM new_rows n JOIN old_rows o ON o.url_id = n.url_id
    WHERE n.content_hash = '' OR n.content_hash IS DISTINCT FROM o.content_hash OR n.title IS DISTINCT FROM o.title
    ORDER BY n.url_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER pages_queue_insert AFTER INSERT ON pages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pages_queue_insert();
CREATE TRIGGER pages_queue_update AFTER UPDATE ON pages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pages_queue_update();

-- +goose Down
DROP TRIGGER pages_queue_update ON pages;
DROP TRIGGER pages_queue_insert ON pages;
DROP FUNCTION pages_queue_update();
DROP FUNCTION pages_queue_insert();
ALTER TABLE pages ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', left(title, 1000)), 'A') ||
    setweight(to_tsvector('simple', left(body_text, 500000)), 'B')) STORED;
CREATE INDEX pages_tsv_idx ON pages USING gin (tsv);
DROP TABLE search_index_pace;
DROP TABLE search_queue;
DROP TABLE page_search;
DROP FUNCTION page_tsv(text, text);
