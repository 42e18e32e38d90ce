-- +goose Up
-- A target's text-search language (issue #19): the PostgreSQL text-search configuration its
-- pages' vectors are built with and its searches are parsed with. 'simple' (no stemming, no
-- stop words) is what every vector was built with so far, so existing targets keep it and their
-- vectors stay valid. Only the built-in configurations (schema pg_catalog) are accepted; the
-- store checks the name against pg_ts_config when a target is created. Kept as text, not
-- regconfig: pg_upgrade refuses tables with regconfig columns.
-- See docs/adr/0056-ranked-search-per-target-language.md.
ALTER TABLE targets ADD COLUMN search_language text NOT NULL DEFAULT 'simple';

-- search_config resolves a language name to its built-in configuration, and to 'simple' for a
-- name that is none (which the store never writes): a bad name must not fail a whole indexing
-- batch or every search.
-- +goose StatementBegin
CREATE FUNCTION search_config(lang text) RETURNS regconfig
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT c.oid FROM pg_catalog.pg_ts_config c
         WHERE c.cfgname = lang AND c.cfgnamespace = 'pg_catalog'::regnamespace),
        'pg_catalog.simple'::regconfig::oid)::regconfig
$$;
-- +goose StatementEnd

-- page_tsv with the configuration as an argument; the two-argument form stays 'simple'.
-- Title words are weight A, body words B, as before: search weighs them at query time
-- (store.Search), so the weights can change without rebuilding a vector.
-- +goose StatementBegin
CREATE FUNCTION page_tsv(cfg regconfig, title text, body text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    BEGIN
        RETURN setweight(to_tsvector(cfg, left(title, 1000)), 'A') ||
               setweight(to_tsvector(cfg, left(body, 500000)), 'B');
    EXCEPTION WHEN program_limit_exceeded THEN
        BEGIN
            RETURN setweight(to_tsvector(cfg, left(title, 1000)), 'A') ||
                   setweight(to_tsvector(cfg, left(body, 20000)), 'B');
        EXCEPTION WHEN program_limit_exceeded THEN
            RETURN setweight(to_tsvector(cfg, left(title, 1000)), 'A');
        END;
    END;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION page_tsv(regconfig, text, text);
DROP FUNCTION search_config(text);
ALTER TABLE targets DROP COLUMN search_language;
