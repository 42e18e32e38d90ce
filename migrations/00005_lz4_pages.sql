-- +goose Up
-- Compress the large columns of pages with lz4 instead of pglz (issue #6): pglz was the top of
-- the database's profile while persisting batches, and lz4 costs a fraction of its CPU for a
-- similar ratio on page text. Only values written from now on use lz4; existing rows keep pglz
-- (both stay readable) until they are rewritten by a re-crawl. SET COMPRESSION changes only the
-- catalog, so this is instant even on a large table. A server built without lz4 keeps pglz
-- rather than failing the migration.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE pages
        ALTER COLUMN body_text SET COMPRESSION lz4,
        ALTER COLUMN tsv       SET COMPRESSION lz4,
        ALTER COLUMN links     SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not supported by this server; pages keeps the default compression';
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE pages
    ALTER COLUMN body_text SET COMPRESSION DEFAULT,
    ALTER COLUMN tsv       SET COMPRESSION DEFAULT,
    ALTER COLUMN links     SET COMPRESSION DEFAULT;
