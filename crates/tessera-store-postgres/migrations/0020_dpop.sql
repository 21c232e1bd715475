-- DPoP (RFC 9449 §5): the thumbprint of the key a public client's refresh tokens are bound
-- to, for the whole family; NULL for a family not bound to a key.
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
