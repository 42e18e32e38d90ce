-- +goose Up
-- Re-crawl RPC requests, claimed by the caller so that a resend with the same request id never
-- causes a second fetch, whichever crawler it would reach. See recrawl.Service for the rules.
CREATE TABLE recrawl_requests (
    request_id     text PRIMARY KEY CHECK (length(request_id) BETWEEN 1 AND 200),
    url_id         bigint NOT NULL REFERENCES urls (id) ON DELETE CASCADE,
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts       integer NOT NULL DEFAULT 1,
    -- The URL's state before the claim leased it for the re-crawl, restored if the request is
    -- certainly never delivered.
    prev_url_state text,
    reply          jsonb,
    error          text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recrawl_requests_url_idx ON recrawl_requests (url_id, created_at DESC);

-- Broker dead letters, mirrored by the processors from the dead-letter queue.
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    -- Hash of the message and its death: a redelivery of the same dead letter (processor
    -- crashed between commit and ack) is inserted once.
    fingerprint    text NOT NULL UNIQUE,
    reason         text NOT NULL DEFAULT '',
    original_queue text NOT NULL DEFAULT '',
    exchange       text NOT NULL DEFAULT '',
    routing_key    text NOT NULL DEFAULT '',
    message_id     text NOT NULL DEFAULT '',
    message_type   text NOT NULL DEFAULT '',
    content_type   text NOT NULL DEFAULT '',
    -- No foreign key: a dead letter outlives its target, and may name one that never existed.
    target_id      bigint,
    host           text NOT NULL DEFAULT '',
    url            text NOT NULL DEFAULT '',
    error_class    text NOT NULL DEFAULT '',
    summary        text NOT NULL DEFAULT '',
    size           integer NOT NULL DEFAULT 0,
    death_count    bigint NOT NULL DEFAULT 0,
    dead_at        timestamptz NOT NULL DEFAULT now(),
    stored_at      timestamptz NOT NULL DEFAULT now(),
    body           bytea NOT NULL,
    headers        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX dead_letters_target_idx ON dead_letters (target_id, id);
CREATE INDEX dead_letters_host_idx ON dead_letters (host, id);
CREATE INDEX dead_letters_class_idx ON dead_letters (error_class, id);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE recrawl_requests;
