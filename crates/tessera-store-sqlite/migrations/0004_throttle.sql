-- Tessera schema, version 4: attempt budgets of the sign-in and client-authentication
-- throttles, shared by every process on the database. key is a hash the server derives (of an
-- address, a username, a device cookie, or a client at an address), never the value itself;
-- a row lives until its window ends (expires_at) and is purged after.

CREATE TABLE throttle (
    key        TEXT PRIMARY KEY,
    count      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX throttle_expires_at ON throttle (expires_at);
