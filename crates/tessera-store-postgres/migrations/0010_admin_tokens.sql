-- Tessera schema, version 10: credentials of the admin API.

-- An admin token. token_hash is the SHA-256 (hex) of the whole value `tsa_<id>_<secret>`;
-- the value itself is never stored. scopes is space-delimited (`clients:write admin`).
CREATE TABLE admin_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
