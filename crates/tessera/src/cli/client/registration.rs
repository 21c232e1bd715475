//! What a client is registered for, shared by `client create` and `client update`: grant
//! types, redirect URIs, scopes, audiences and its tokens' format and lifetime, each checked
//! before anything is stored.

use anyhow::{anyhow, bail, Context, Result};
use tessera_core::client_assertion::ClientKeys;
use tessera_core::grant::types as grant_types;
use tessera_core::model::{ClientRecord, RefreshPolicy, TokenFormat};
use tessera_core::redirect_uri;
use tessera_core::scope::ScopeSet;

use crate::settings::Settings;

const KNOWN_GRANTS: &[&str] = &[
    grant_types::CLIENT_CREDENTIALS,
    grant_types::AUTHORIZATION_CODE,
    grant_types::REFRESH_TOKEN,
    grant_types::JWT_BEARER,
];

/// Registration flags. On `update`, a flag that is not given leaves its field as it was, and
/// a repeatable flag that is given replaces the whole list.
#[derive(Debug, clap::Args)]
pub struct Registration {
    /// Grant type the client may use (repeatable) [create default: client_credentials].
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Redirect URI (repeatable).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Space-delimited scopes the client may ask for (also its default).
    #[arg(long)]
    pub scope: Option<String>,
    /// A resource (API) the client may get tokens for, the `aud` of its tokens (repeatable;
    /// RFC 8707) [default: the issuer].
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// Access token format: jwt or opaque [create default: jwt].
    #[arg(long)]
    pub access_token_format: Option<String>,
    /// Access token lifetime, seconds [create default: the server's default, 3600].
    #[arg(long)]
    pub access_token_ttl: Option<i64>,
    /// When refresh tokens are issued: always, offline_access (only when the granted scope
    /// includes offline_access) or never [create default: offline_access].
    #[arg(long)]
    pub refresh_tokens: Option<String>,
    /// Absolute lifetime of refresh tokens from the user's sign-in, seconds; rotation never
    /// extends it [create default: 2592000, 30 days].
    #[arg(long)]
    pub refresh_token_ttl: Option<i64>,
    /// A refresh token unused this long expires, seconds (0: no idle limit) [default: 0].
    #[arg(long)]
    pub refresh_token_idle_ttl: Option<i64>,
    /// Seconds after a rotation in which the rotated-out refresh token, presented again,
    /// returns the same successor instead of revoking the family (0: off) [default: 0].
    #[arg(long)]
    pub refresh_grace_period: Option<i64>,
    /// Lifetime of authorization codes, seconds [create default: 120].
    #[arg(long)]
    pub code_ttl: Option<i64>,
    /// Require PKCE from this confidential client too (public clients always need it).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub require_pkce: Option<bool>,
    /// Accept the `plain` PKCE method (S256 only otherwise).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub allow_plain_pkce: Option<bool>,
    /// Where RP-initiated logout may return the user (repeatable, exact match).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A first-party client: users are never asked for consent.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub skip_consent: Option<bool>,
    /// Single-use access tokens: the first successful check (introspection, or anywhere
    /// Tessera accepts a token) consumes one [create default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub single_use_tokens: Option<bool>,
}

impl Registration {
    /// Sets on `client` every field these flags give, checking each.
    pub fn apply(self, client: &mut ClientRecord, settings: &Settings) -> Result<()> {
        if !self.grant_types.is_empty() {
            for g in &self.grant_types {
                if !KNOWN_GRANTS.contains(&g.as_str()) {
                    bail!(
                        "unknown grant type '{g}' (known: {})",
                        KNOWN_GRANTS.join(", ")
                    );
                }
            }
            client.grant_types = self.grant_types;
        }
        if !self.redirect_uris.is_empty() {
            for uri in &self.redirect_uris {
                redirect_uri::validate_registration(uri)?;
            }
            client.redirect_uris = self.redirect_uris;
        }
        if let Some(scope) = self.scope {
            client.scopes = ScopeSet::parse(&scope).map_err(|e| anyhow!("{e}"))?;
        }
        if !self.audiences.is_empty() {
            for a in &self.audiences {
                if a.contains('#') || !a.contains(':') || a.contains(char::is_whitespace) {
                    bail!("--audience '{a}' must be an absolute URI without a fragment");
                }
            }
            client.audiences = self.audiences;
        }
        if let Some(f) = self.access_token_format {
            client.access_token_format = TokenFormat::parse(&f)
                .ok_or_else(|| anyhow!("--access-token-format must be 'jwt' or 'opaque'"))?;
        }
        if let Some(ttl) = self.access_token_ttl {
            if ttl < 1 || ttl > settings.core.max_access_token_ttl {
                bail!(
                    "--access-token-ttl must be between 1 and {} seconds",
                    settings.core.max_access_token_ttl
                );
            }
            client.access_token_ttl = ttl;
        }
        let flow = &mut client.user_flow;
        if let Some(p) = self.refresh_tokens {
            flow.refresh_tokens = RefreshPolicy::parse(&p).ok_or_else(|| {
                anyhow!("--refresh-tokens must be 'always', 'offline_access' or 'never'")
            })?;
        }
        let seconds = |flag: &str, v: Option<i64>, min: i64| -> Result<Option<i64>> {
            match v {
                Some(v) if v < min => bail!("{flag} must be at least {min} seconds"),
                v => Ok(v),
            }
        };
        if let Some(v) = seconds("--refresh-token-ttl", self.refresh_token_ttl, 1)? {
            flow.refresh_token_ttl = v;
        }
        if let Some(v) = seconds("--refresh-token-idle-ttl", self.refresh_token_idle_ttl, 0)? {
            flow.refresh_token_idle_ttl = v;
        }
        if let Some(v) = seconds("--refresh-grace-period", self.refresh_grace_period, 0)? {
            if v > 300 {
                bail!("--refresh-grace-period is at most 300 seconds");
            }
            flow.refresh_grace_period = v;
        }
        if let Some(v) = seconds("--code-ttl", self.code_ttl, 1)? {
            if v > 600 {
                bail!("--code-ttl is at most 600 seconds (RFC 6749 §4.1.2: 10 minutes)");
            }
            flow.code_ttl = v;
        }
        if let Some(v) = self.require_pkce {
            flow.require_pkce = v;
        }
        if let Some(v) = self.allow_plain_pkce {
            flow.allow_plain_pkce = v;
        }
        if let Some(v) = self.skip_consent {
            flow.skip_consent = v;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            for uri in &self.post_logout_redirect_uris {
                redirect_uri::validate_registration(uri)?;
            }
            flow.post_logout_redirect_uris = self.post_logout_redirect_uris;
        }
        if let Some(once) = self.single_use_tokens {
            client.single_use_tokens = once;
        }
        check(client)
    }
}

/// Rules across fields.
fn check(client: &ClientRecord) -> Result<()> {
    if client.public && client.allows_grant(grant_types::CLIENT_CREDENTIALS) {
        bail!("a public client cannot use client_credentials (RFC 6749 §4.4)");
    }
    Ok(())
}

/// The public keys of a `private_key_jwt` client (or of a trusted issuer), from files: at
/// most ten, RSA ones of 2048 to 4096 bits; with several, each has its own `kid`, which
/// assertions then name ([`ClientKeys::check_registration`]). A PEM key gets its RFC 7638
/// thumbprint as `kid` ([`ClientKeys::add_pem`]), the one `tessera jwt sign` puts in its
/// header; the commands print the `kid`s.
#[derive(Debug, clap::Args)]
pub struct KeyFiles {
    /// For private_key_jwt: a JWKS file with the client's public keys (at most 10; with
    /// several, each with its own kid).
    #[arg(long)]
    pub jwks_file: Option<std::path::PathBuf>,
    /// For private_key_jwt: a PEM public key file (repeatable, with --jwks-file or not);
    /// its kid is its RFC 7638 thumbprint.
    #[arg(long = "public-key")]
    pub public_keys: Vec<std::path::PathBuf>,
}

impl KeyFiles {
    /// Whether any key file was named.
    pub fn given(&self) -> bool {
        self.jwks_file.is_some() || !self.public_keys.is_empty()
    }

    /// Reads and checks every key; the stored form.
    pub fn load(&self) -> Result<String> {
        load_keys(self.jwks_file.as_deref(), &self.public_keys)
    }
}

/// The `kid`s of a stored key set, in order (`null` for a key without one): a PEM key's is
/// its RFC 7638 thumbprint, which its signer puts in the JWS header.
pub fn stored_kids(stored: &str) -> Vec<Option<String>> {
    serde_json::from_str::<ClientKeys>(stored)
        .map(|k| k.kids())
        .unwrap_or_default()
}

/// The `kid`s of a stored key set on one line, for the commands' text output.
pub fn kids_line(stored: &str) -> String {
    stored_kids(stored)
        .into_iter()
        .map(|k| k.unwrap_or_else(|| "(none)".into()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a client's public keys from a JWKS file and/or PEM files, checking each.
fn load_keys(jwks_file: Option<&std::path::Path>, pems: &[std::path::PathBuf]) -> Result<String> {
    let mut keys = match jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ClientKeys::from_jwks(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => ClientKeys::default(),
    };
    for path in pems {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        keys.add_pem(&pem)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    }
    if keys.keys.is_empty() && keys.pems.is_empty() {
        bail!("private_key_jwt needs --jwks-file or --public-key");
    }
    // At most ten keys, RSA ones of 2048 to 4096 bits, each with its own kid when several.
    keys.check_registration().map_err(|e| anyhow!("{e}"))?;
    Ok(keys.to_stored())
}
