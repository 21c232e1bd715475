-- OpenID Connect Back-Channel Logout 1.0: the session id (`sid`) of the sign-in session an
-- authorization code and the grant made from it came from, so that a session's end reaches
-- every client it signed into.
ALTER TABLE authorization_codes ADD COLUMN sid TEXT;
ALTER TABLE grants ADD COLUMN sid TEXT;
CREATE INDEX grants_sid ON grants (sid);

-- The outbox of logout tokens (Back-Channel Logout 1.0 §2.5): one row per client to tell,
-- delivered by a background worker with retries, kept across restarts. No token is stored:
-- each attempt signs a fresh one.
CREATE TABLE logout_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    uri             TEXT NOT NULL,
    sub             TEXT NOT NULL,
    sid             TEXT,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at);
CREATE INDEX logout_deliveries_age ON logout_deliveries (created_at, id);
