-- Tessera schema: dynamic client registration (RFC 7591, RFC 7592).

-- The SHA-256 hash of a registered client's registration access token (RFC 7592 §3), for a
-- client registered through /oauth2/register; never the token itself. It goes with the
-- client.
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;
