-- +goose Up
-- Dashboard logins live on the server (issue #17): the session cookie carries a random token,
-- and this table holds the SHA-256 of that token, never the token itself. Logging out deletes
-- the row; "log out everywhere" deletes every row. password_fingerprint is a PBKDF2 of the
-- dashboard password that created the session: a session is valid only under the same
-- password, so changing TRAWL_DASHBOARD_PASSWORD ends every session. Expired rows are deleted
-- at each login.
CREATE TABLE dashboard_sessions (
    id                   text PRIMARY KEY,
    password_fingerprint text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL,
    last_seen_at         timestamptz NOT NULL DEFAULT now(),
    user_agent           text NOT NULL DEFAULT '',
    remote_addr          text NOT NULL DEFAULT ''
);
CREATE INDEX dashboard_sessions_expires_idx ON dashboard_sessions (expires_at);

-- +goose Down
DROP TABLE dashboard_sessions;
