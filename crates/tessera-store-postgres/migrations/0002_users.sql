-- Tessera schema, version 2 (PostgreSQL): users, sessions, consents, authorization codes, user
-- grants (token families) and refresh tokens. The same tables as the SQLite migration of the
-- same name. Codes, sessions and refresh tokens are stored only as SHA-256 hashes.

-- A client's settings for flows that act for a user, as one JSON document.
ALTER TABLE clients ADD COLUMN user_flow TEXT NOT NULL DEFAULT '{}';
-- The grant an access token descends from (NULL for client credentials).
ALTER TABLE access_tokens ADD COLUMN grant_id TEXT;

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email         TEXT,
    name          TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    auth_time    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    auth_time             BIGINT NOT NULL,
    grant_id              TEXT NOT NULL,
    extra                 TEXT NOT NULL,
    issued_at             BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used_at               BIGINT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE grants (
    grant_id           TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    scope              TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    nonce              TEXT,
    token_epoch        BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    refresh_expires_at BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    revoked_at         BIGINT
);
CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE refresh_tokens (
    token_id         TEXT PRIMARY KEY,
    token_hash       TEXT NOT NULL,
    grant_id         TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT,
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
