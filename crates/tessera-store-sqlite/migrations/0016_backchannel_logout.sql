-- OpenID Connect Back-Channel Logout 1.0: the session id (`sid`) of the sign-in session an
-- authorization code and the grant made from it came from, so that a session's end reaches
-- every client it signed into.
ALTER TABLE authorization_codes ADD COLUMN sid TEXT;
ALTER TABLE grants ADD COLUMN sid TEXT;
CREATE INDEX grants_sid ON grants (sid);
