-- Tessera schema: the audit trail (admin changes and security events; never a secret).
-- id orders the trail (AUTOINCREMENT: never reused, so paging by id misses nothing);
-- actor is cli, admin_token:ID, client:ID, user:ID or anonymous; detail is a JSON object.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    target     TEXT,
    outcome    TEXT NOT NULL,
    request_id TEXT,
    source     TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_target ON audit_events (target, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
