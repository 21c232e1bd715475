-- Tessera schema, version 14: device authorizations (RFC 8628). device_code_hash is the
-- SHA-256 of the device code, never the code itself; user_code is the code a user types,
-- normalised (upper case, no separators), unique while its row lives. status is pending,
-- approved, denied or used; user_id and auth_time name who decided; scope is the scope asked
-- for until approval, then the scope consented to. poll_interval is the minimum seconds
-- between polls, raised by each slow_down; poll_outcome is the answer of the last poll,
-- decided by the same statement that records it. A row lives until it expires and is purged
-- after.

CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code        TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    poll_interval    INTEGER NOT NULL,
    last_poll_at     INTEGER,
    status           TEXT NOT NULL,
    user_id          TEXT,
    auth_time        INTEGER,
    poll_outcome     TEXT
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
