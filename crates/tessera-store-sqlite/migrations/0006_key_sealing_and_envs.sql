-- Tessera schema, version 6: which sealing secret sealed each signing key, and clients bound
-- to an existing environment.

-- The fingerprint of the sealing secret (an HKDF output, never the secret) each key's
-- private half is sealed under. A process stores a new key only while every stored key names
-- its own secret, so a command run with a wrong or outdated secret cannot leave keys that no
-- server can open. Keys sealed before this column existed have none.
ALTER TABLE signing_keys ADD COLUMN sealed_by TEXT;

-- Every client belongs to an environment that exists, as every trusted issuer already does
-- (its foreign key): `env delete` and `client create --env` racing could otherwise leave a
-- client in a deleted environment, still issued tokens, and adopted by a later environment of
-- the same name. SQLite cannot add a foreign key to an existing table without rebuilding it,
-- so triggers enforce the same rule; they run inside the writing statement, under SQLite's one
-- write lock. Clients already left in a missing environment get it back (nothing is deleted
-- behind the operator's back: `env list` shows it, and `env delete` refuses while they exist).
INSERT INTO envs (name, single_use_tokens, created_at)
    SELECT DISTINCT env, 0, CAST(strftime('%s', 'now') AS INTEGER) FROM clients
    WHERE env NOT IN (SELECT name FROM envs);

CREATE TRIGGER clients_env_exists_on_insert BEFORE INSERT ON clients
WHEN NOT EXISTS (SELECT 1 FROM envs WHERE name = NEW.env)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the client''s environment does not exist');
END;

CREATE TRIGGER clients_env_exists_on_update BEFORE UPDATE OF env ON clients
WHEN NOT EXISTS (SELECT 1 FROM envs WHERE name = NEW.env)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the client''s environment does not exist');
END;

CREATE TRIGGER envs_keep_their_clients_on_delete BEFORE DELETE ON envs
WHEN EXISTS (SELECT 1 FROM clients WHERE env = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the environment still has clients');
END;

CREATE TRIGGER envs_keep_their_clients_on_rename BEFORE UPDATE OF name ON envs
WHEN EXISTS (SELECT 1 FROM clients WHERE env = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the environment still has clients');
END;
