-- Tessera schema, version 3 (PostgreSQL): deployment environments and the trusted issuers of
-- JWT assertions (RFC 7523), and the environment and single-use flag of clients and tokens.
-- The same tables as the SQLite migration of the same name.

CREATE TABLE envs (
    name              TEXT PRIMARY KEY,
    single_use_tokens BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        BIGINT NOT NULL
);
-- The default environment always exists.
INSERT INTO envs (name, single_use_tokens, created_at) VALUES ('default', FALSE, 0);

-- One registration per issuer per environment. keys holds the public keys as
-- {"keys": [JWK...], "pems": [PEM...]}; jwks_uri, if set, is where more are published;
-- claims is a JSON array of claim names; scopes is space-delimited.
CREATE TABLE trusted_issuers (
    id            TEXT PRIMARY KEY,
    env           TEXT NOT NULL REFERENCES envs (name),
    issuer        TEXT NOT NULL,
    keys          TEXT NOT NULL,
    jwks_uri      TEXT,
    subject_claim TEXT NOT NULL,
    claims        TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (env, issuer)
);

ALTER TABLE clients ADD COLUMN env TEXT NOT NULL DEFAULT 'default';
ALTER TABLE clients ADD COLUMN single_use_tokens BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX clients_env ON clients (env);

ALTER TABLE access_tokens ADD COLUMN env TEXT NOT NULL DEFAULT 'default';
ALTER TABLE access_tokens ADD COLUMN claims TEXT;
ALTER TABLE access_tokens ADD COLUMN single_use BOOLEAN NOT NULL DEFAULT FALSE;
