-- Tessera schema, version 4 (PostgreSQL): attempt budgets of the sign-in and
-- client-authentication throttles, shared by every node. key is a hash the server derives (of
-- an address, a username, a device cookie, or a client at an address), never the value
-- itself; a row lives until its window ends (expires_at) and is purged after. The same table
-- as the SQLite migration of the same name.

CREATE TABLE throttle (
    key        TEXT PRIMARY KEY,
    count      BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX throttle_expires_at ON throttle (expires_at);
