-- Tessera schema, version 1 (PostgreSQL). The same tables as the SQLite schema of the same
-- name. Timestamps are BIGINT Unix seconds; secret columns end in _hash and hold lowercase hex
-- SHA-256. Keys compared by range use the "C" collation (byte order).

CREATE TABLE clients (
    client_id             TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    secret_hash           TEXT,
    old_secret_hash       TEXT,
    old_secret_expires_at BIGINT,
    grant_types           TEXT NOT NULL,
    redirect_uris         TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    audiences             TEXT NOT NULL,
    public                BOOLEAN NOT NULL,
    jwks                  TEXT,
    access_token_format   TEXT NOT NULL,
    access_token_ttl      BIGINT NOT NULL,
    token_epoch           BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

-- Opaque access tokens, keyed by the public id inside the token, which starts with the
-- expiry second: inserts land together and expired rows are one key range (no expiry index).
-- The whole token is stored only as its SHA-256.
CREATE TABLE access_tokens (
    token_id    TEXT COLLATE "C" PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    jti         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    audience    TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    token_epoch BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis (expires_at);

-- Assertion ids (jti) already used, kept until the assertion would have expired.
CREATE TABLE used_jtis (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    private_sealed BYTEA NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    retires_at     BIGINT
);

-- The change feed. A writer inserts its entry with `seq` NULL, in the transaction of the
-- write. `seq`, the position readers follow, is given later by publish_changes() to entries
-- that have committed, in one serialised step: positions therefore follow commit order, and a
-- reader that has seen position N will never find an entry below N appear later (which a
-- sequence default could not promise: a transaction holding value 10 may commit after one
-- holding 11).
CREATE TABLE changes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq        BIGINT UNIQUE,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX changes_unpublished ON changes (id) WHERE seq IS NULL;
CREATE INDEX changes_created_at ON changes (created_at);

-- The last position given; never goes back, even when old entries are purged.
CREATE TABLE change_feed_head (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    seq      BIGINT NOT NULL
);
INSERT INTO change_feed_head (seq) VALUES (0);

-- Gives positions to every committed entry that has none, after every position given before.
-- Callers (each node's feed poll) may run it at once: the advisory lock serialises them, and
-- each statement after it sees every entry committed before the lock was taken. Returns how
-- many entries it published.
CREATE FUNCTION publish_changes() RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    published BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changes WHERE seq IS NULL) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(5412865376023517001);
    WITH pending AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n FROM changes WHERE seq IS NULL
    ), head AS (
        UPDATE change_feed_head SET seq = seq + (SELECT count(*) FROM pending)
        RETURNING seq - (SELECT count(*) FROM pending) AS base
    )
    UPDATE changes c SET seq = head.base + pending.n FROM pending, head WHERE c.id = pending.id;
    GET DIAGNOSTICS published = ROW_COUNT;
    RETURN published;
END
$$;
