//! The flags of what a client is registered for, shared by `client create` and `client
//! update` (grant types, redirect URIs, scopes, audiences, its tokens' format and lifetime),
//! and the key-file flags shared with `trust`. The rules they are checked by live in
//! [`tessera_core::admin`]; this module only turns flags and files into its input.

use anyhow::{Context, Result};
use tessera_core::admin::clients::ClientSettings;
use tessera_core::admin::public_keys::{self, KeyDocument, PublicKeys};
use tessera_core::admin::AdminError;

/// Registration flags. On `update`, a flag that is not given leaves its field as it was, and
/// a repeatable flag that is given replaces the whole list.
#[derive(Debug, clap::Args)]
pub struct Registration {
    /// Grant type the client may use (repeatable; one of the grant table's) [create default:
    /// client_credentials].
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
    /// Where logout tokens are sent when a session the client signed into ends (OpenID
    /// Connect Back-Channel Logout 1.0; https, or http on a loopback host; "" removes it).
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Logout tokens sent to this client must carry the session id `sid`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub backchannel_logout_session_required: Option<bool>,
    /// Refuse this client's authorization requests unless pushed first to `/oauth2/par`
    /// (RFC 9126 §6, `require_pushed_authorization_requests`).
    #[arg(long = "require-par", num_args = 0..=1, default_missing_value = "true")]
    pub require_par: Option<bool>,
    /// Refuse this client's token requests without a DPoP proof: every access token it gets
    /// is DPoP-bound (RFC 9449 §5.2, `dpop_bound_access_tokens`).
    #[arg(long = "dpop-bound", num_args = 0..=1, default_missing_value = "true")]
    pub dpop_bound: Option<bool>,
    /// Single-use access tokens: the first successful check (introspection, or anywhere
    /// Tessera accepts a token) consumes one [create default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub single_use_tokens: Option<bool>,
    /// An audience the client may get tokens for by token exchange (RFC 8693; repeatable;
    /// none: it may not exchange tokens).
    #[arg(long = "token-exchange-audience")]
    pub token_exchange_audiences: Vec<String>,
}

impl Registration {
    /// The settings these flags give (a repeatable flag not given leaves its list as it
    /// was), for [`tessera_core::admin::clients`], which checks them.
    pub fn settings(self) -> ClientSettings {
        let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
        ClientSettings {
            grant_types: list(self.grant_types),
            redirect_uris: list(self.redirect_uris),
            scope: self.scope,
            audiences: list(self.audiences),
            access_token_format: self.access_token_format,
            access_token_ttl: self.access_token_ttl,
            refresh_tokens: self.refresh_tokens,
            refresh_token_ttl: self.refresh_token_ttl,
            refresh_token_idle_ttl: self.refresh_token_idle_ttl,
            refresh_grace_period: self.refresh_grace_period,
            code_ttl: self.code_ttl,
            require_pkce: self.require_pkce,
            allow_plain_pkce: self.allow_plain_pkce,
            post_logout_redirect_uris: list(self.post_logout_redirect_uris),
            skip_consent: self.skip_consent,
            require_pushed_authorization_requests: self.require_par,
            dpop_bound_access_tokens: self.dpop_bound,
            single_use_tokens: self.single_use_tokens,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            token_exchange_audiences: list(self.token_exchange_audiences),
        }
    }
}

/// An error of the application layer as the commands say it: a message about one field
/// names the flag that gives it.
pub fn flagged(e: AdminError) -> anyhow::Error {
    if let AdminError::Invalid { field, reason } = &e {
        if let Some(rest) = reason.strip_prefix(field) {
            let flag = match *field {
                "grant_types" => "--grant-type".to_owned(),
                "redirect_uris" => "--redirect-uri".to_owned(),
                "post_logout_redirect_uris" => "--post-logout-redirect-uri".to_owned(),
                "audiences" => "--audience".to_owned(),
                "token_exchange_audiences" => "--token-exchange-audience".to_owned(),
                "claims" => "--claim".to_owned(),
                "jwks_url" => "--jwks-url".to_owned(),
                other => format!("--{}", other.replace('_', "-")),
            };
            return anyhow::anyhow!("{flag}{rest}");
        }
    }
    e.into()
}

/// The public keys of a `private_key_jwt` client (or of a trusted issuer), from files: at
/// most ten, RSA ones of 2048 to 4096 bits; with several, each has its own `kid`, which
/// assertions then name ([`PublicKeys::load`]). A PEM key gets its RFC 7638
/// thumbprint as `kid` (`ClientKeys::add_pem`), the one `tessera jwt sign` puts in its
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
    /// Reads the key files, each named by its path in messages about it; the application
    /// layer checks them ([`PublicKeys::load`]).
    pub fn read(&self) -> Result<PublicKeys> {
        let read = |path: &std::path::Path| -> Result<KeyDocument> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(KeyDocument {
                source: Some(path.display().to_string()),
                text,
            })
        };
        Ok(PublicKeys {
            jwks: self.jwks_file.as_deref().map(read).transpose()?,
            pems: self
                .public_keys
                .iter()
                .map(|p| read(p))
                .collect::<Result<_>>()?,
        })
    }
}

/// The `kid`s of a stored key set on one line, for the commands' text output.
pub fn kids_line(stored: &str) -> String {
    public_keys::kids(stored)
        .into_iter()
        .map(|k| k.unwrap_or_else(|| "(none)".into()))
        .collect::<Vec<_>>()
        .join(" ")
}
