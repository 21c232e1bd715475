-- Tessera schema, version 6: which sealing secret sealed each signing key.

-- The fingerprint of the sealing secret (an HKDF output, never the secret) each key's
-- private half is sealed under. A process stores a new key only while every stored key names
-- its own secret, so a command run with a wrong or outdated secret cannot leave keys that no
-- server can open. Keys sealed before this column existed have none.
ALTER TABLE signing_keys ADD COLUMN sealed_by TEXT;

