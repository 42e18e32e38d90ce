-- +goose Up
-- Marks the fetch that stored a URL's first content (issue #19), so the page detail's history
-- says "new" for it rather than "changed". It is decided when the fetch is applied (the URL had
-- no content hash before) and cannot be worked out later: the history is pruned from its old
-- end (TRAWL_FETCH_HISTORY_RETENTION), so the oldest fetch left is not always the first.
-- Rows written before this migration stay false. docs/adr/0058-lists-page-both-ways-with-a-bounded-total.md
ALTER TABLE page_fetches ADD COLUMN first_content boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE page_fetches DROP COLUMN first_content;
