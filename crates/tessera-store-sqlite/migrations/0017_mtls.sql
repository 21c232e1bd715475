-- Mutual TLS (RFC 8705 §4): the SHA-256 thumbprint of the certificate a public client's
-- refresh tokens are bound to, for the whole family; NULL for a family not bound to one.
ALTER TABLE grants ADD COLUMN x5t_s256 TEXT;
