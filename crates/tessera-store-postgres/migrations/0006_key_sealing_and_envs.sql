-- Tessera schema, version 6 (PostgreSQL): which sealing secret sealed each signing key, and
-- clients bound to an existing environment. The same changes as the SQLite migration of the
-- same name.

-- The fingerprint of the sealing secret (an HKDF output, never the secret) each key's
-- private half is sealed under. A process stores a new key only while every stored key names
-- its own secret, so a command run with a wrong or outdated secret cannot leave keys that no
-- server can open. Keys sealed before this column existed have none.
ALTER TABLE signing_keys ADD COLUMN sealed_by TEXT;

-- Every client belongs to an environment that exists, as every trusted issuer already does:
-- `env delete` and `client create --env` racing could otherwise leave a client in a deleted
-- environment, still issued tokens, and adopted by a later environment of the same name. With
-- the foreign key, inserting a client locks its environment's row (FOR KEY SHARE), which
-- `env delete`'s FOR UPDATE waits for, and deleting an environment that still has clients
-- fails. Clients already left in a missing environment get it back first (nothing is deleted
-- behind the operator's back: `env list` shows it, and `env delete` refuses while they exist).
INSERT INTO envs (name, single_use_tokens, created_at)
    SELECT DISTINCT env, FALSE, EXTRACT(EPOCH FROM now())::BIGINT FROM clients
    WHERE env NOT IN (SELECT name FROM envs);

ALTER TABLE clients ADD CONSTRAINT clients_env_fkey FOREIGN KEY (env) REFERENCES envs (name);
