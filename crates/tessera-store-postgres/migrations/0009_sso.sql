-- Tessera schema, version 8: single sign-on through upstream OpenID providers.

-- An upstream OpenID provider. client_secret_sealed is Tessera's secret at the upstream,
-- sealed (it must be sent back out, so it cannot be hashed); email_domains is a JSON array
-- of the lowercase domains whose users are sent to it, each also a row of idp_email_domains.
CREATE TABLE identity_providers (
    name                 TEXT PRIMARY KEY,
    display_name         TEXT NOT NULL,
    issuer               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BYTEA NOT NULL,
    email_domains        TEXT NOT NULL,
    link_by_email        BOOLEAN NOT NULL,
    created_at           BIGINT NOT NULL
);

-- A domain belongs to at most one provider: the primary key makes two providers claiming it
-- at once a unique violation for one of them.
CREATE TABLE idp_email_domains (
    domain TEXT PRIMARY KEY,
    idp    TEXT NOT NULL REFERENCES identity_providers (name) ON DELETE CASCADE
);
CREATE INDEX idp_email_domains_idp ON idp_email_domains (idp);

-- An upstream identity (iss, sub) linked to a local user. idp is the provider it was first
-- seen through; the link outlives the provider, and goes with the user.
CREATE TABLE external_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    idp        TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX external_identities_user_id ON external_identities (user_id);
