-- Tessera schema, version 1. Timestamps are INTEGER Unix seconds; secret columns end in _hash
-- and hold lowercase hex SHA-256.

CREATE TABLE clients (
    client_id             TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    secret_hash           TEXT,
    old_secret_hash       TEXT,
    old_secret_expires_at INTEGER,
    grant_types           TEXT NOT NULL,
    redirect_uris         TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    audiences             TEXT NOT NULL,
    public                INTEGER NOT NULL,
    jwks                  TEXT,
    access_token_format   TEXT NOT NULL,
    access_token_ttl      INTEGER NOT NULL,
    token_epoch           INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- Opaque access tokens, keyed by the public id inside the token, which starts with the
-- expiry second: inserts land together and expired rows are one key range (no expiry index).
-- The whole token is stored only as its SHA-256.
CREATE TABLE access_tokens (
    token_id    TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    jti         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    audience    TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    token_epoch INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;

CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis (expires_at);

-- Assertion ids (jti) already used, kept until the assertion would have expired.
CREATE TABLE used_jtis (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    activates_at   INTEGER NOT NULL,
    retires_at     INTEGER
);

CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);
