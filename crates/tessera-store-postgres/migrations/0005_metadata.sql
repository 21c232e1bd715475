-- Tessera schema, version 5: facts about the database itself. 'issuer' is the issuer the
-- database was first served under; a server configured with another is refused, since every
-- token stored here names that issuer (README, "Configuration").

CREATE TABLE metadata (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
