//! Clients: registering, changing, rotating and deleting them.
//!
//! Owns every rule of a client registration, for the command line and any later API alike:
//! grant types from the grant table ([`crate::grant::GRANTS`]), each with what its row
//! requires (redirect URIs for a grant that starts at the authorization endpoint, RFC 6749
//! §3.1.2; no public client for a grant its row refuses them, RFC 6749 §2.1 and §4.4);
//! redirect URIs ([`crate::redirect_uri::validate_registration`]); scopes, audiences
//! (RFC 8707), token format and lifetimes; the authentication method and its credentials (a
//! generated secret, stored only as its hash, or `private_key_jwt` keys); the defaults of a
//! new client; a client imported from another server with its own client id and its secret's
//! existing hash ([`crate::imported_secret`]); secret rotation with or without an overlap (a
//! rotation always gives a native secret); revoking every token of a client
//! (its token epoch) and deletion.

use serde::{Deserialize, Serialize};

use super::public_keys::PublicKeys;
use super::{AdminError, AdminResult};
use crate::config::Config;
use crate::environment::{valid_env_name, DEFAULT_ENV};
use crate::grant::types as grant_types;
use crate::grant::{self, GRANTS};
use crate::imported_secret::ImportedHash;
use crate::model::{ClientRecord, RefreshPolicy, TokenFormat};
use crate::redirect_uri;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret, SecretHash};
use crate::store::{Store, StoreError};
use crate::username;

/// Prefix of generated client secrets (recognisable by secret scanners; adds no entropy).
pub const SECRET_PREFIX: &str = "tcs_";

/// Longest a code may live: RFC 6749 §4.1.2 recommends at most 10 minutes.
pub const MAX_CODE_TTL: i64 = 600;

/// Longest grace period after a refresh-token rotation.
pub const MAX_REFRESH_GRACE_PERIOD: i64 = 300;

/// How a client authenticates at the token endpoint (RFC 7591 §2
/// `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A secret, by HTTP Basic (RFC 6749 §2.3.1); a secret in the body works as well.
    ClientSecretBasic,
    /// A secret in the request body; registered as `client_secret_basic` (both work).
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A public client: no credentials (RFC 6749 §2.1).
    None,
}

impl AuthMethod {
    /// Parses a method name; `None` for one Tessera does not offer.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(AuthMethod::PrivateKeyJwt),
            "none" => Some(AuthMethod::None),
            _ => None,
        }
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    /// How a registered client authenticates.
    pub fn of(client: &ClientRecord) -> Self {
        if client.public {
            AuthMethod::None
        } else if client.jwks.is_some() {
            AuthMethod::PrivateKeyJwt
        } else {
            AuthMethod::ClientSecretBasic
        }
    }
}

/// What a client is registered for. Every field is optional: on creation a field not given
/// takes its default; on update it stays as it was, and a list that is given replaces the
/// whole list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    /// Grant types, from [`crate::grant::GRANTS`] [default: `client_credentials`, or
    /// `authorization_code` for a public client].
    pub grant_types: Option<Vec<String>>,
    /// Redirect URIs (exact match).
    pub redirect_uris: Option<Vec<String>>,
    /// Space-delimited scopes the client may ask for (also its default).
    pub scope: Option<String>,
    /// Resources the client may get tokens for, the `aud` of its tokens (RFC 8707).
    pub audiences: Option<Vec<String>>,
    /// `jwt` or `opaque` [default: `jwt`].
    pub access_token_format: Option<String>,
    /// Access token lifetime, seconds [default: the server's].
    pub access_token_ttl: Option<i64>,
    /// `always`, `offline_access` or `never` [default: `offline_access`].
    pub refresh_tokens: Option<String>,
    /// Absolute lifetime of refresh tokens from the user's sign-in, seconds.
    pub refresh_token_ttl: Option<i64>,
    /// Idle lifetime of a refresh token, seconds (0: none).
    pub refresh_token_idle_ttl: Option<i64>,
    /// Grace period after a rotation, seconds (0: off).
    pub refresh_grace_period: Option<i64>,
    /// Lifetime of authorization codes, seconds.
    pub code_ttl: Option<i64>,
    /// Require PKCE from this confidential client too.
    pub require_pkce: Option<bool>,
    /// Accept the `plain` PKCE method.
    pub allow_plain_pkce: Option<bool>,
    /// Where RP-initiated logout may return the user (exact match).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// A first-party client: users are never asked for consent.
    pub skip_consent: Option<bool>,
    /// Where logout tokens are sent (OpenID Connect Back-Channel Logout 1.0 §2.2; `https`,
    /// or `http` on a loopback host); empty removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Whether its logout tokens must carry `sid`.
    pub backchannel_logout_session_required: Option<bool>,
    /// Audiences the client may get tokens for by token exchange (RFC 8693).
    pub token_exchange_audiences: Option<Vec<String>>,
    /// Its authorization requests must be pushed first (RFC 9126 §6).
    pub require_pushed_authorization_requests: Option<bool>,
    /// Every access token is DPoP-bound (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: Option<bool>,
    /// Single-use access tokens.
    pub single_use_tokens: Option<bool>,
}

/// A client to register.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientSpec {
    /// A name for people.
    pub name: String,
    /// Its deployment environment, created if new [default: `default`].
    pub env: Option<String>,
    /// A public client (same as `token_endpoint_auth_method` `none`).
    pub public: bool,
    /// How it authenticates [default: `client_secret_basic`].
    pub token_endpoint_auth_method: Option<String>,
    /// Its public keys, for `private_key_jwt`.
    pub keys: PublicKeys,
    /// Its client id, for a client imported from another server (1 to 128 of RFC 3986's
    /// unreserved characters) [default: a generated one].
    pub client_id: Option<String>,
    /// Its existing secret, as the other server stored it: a hash in one of the forms
    /// [`crate::imported_secret`] accepts, checked in that form at client authentication.
    /// No secret is generated for such a client.
    pub secret_hash: Option<String>,
    /// What it is registered for.
    #[serde(flatten)]
    pub settings: ClientSettings,
}

/// The fields of a [`ClientSpec`] in JSON (its own and those of [`ClientSettings`]).
pub const SPEC_FIELDS: &[&str] = &[
    "name",
    "env",
    "public",
    "token_endpoint_auth_method",
    "keys",
    "client_id",
    "secret_hash",
    "grant_types",
    "redirect_uris",
    "scope",
    "audiences",
    "access_token_format",
    "access_token_ttl",
    "refresh_tokens",
    "refresh_token_ttl",
    "refresh_token_idle_ttl",
    "refresh_grace_period",
    "code_ttl",
    "require_pkce",
    "allow_plain_pkce",
    "post_logout_redirect_uris",
    "skip_consent",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
    "single_use_tokens",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "token_exchange_audiences",
];

impl ClientSpec {
    /// Reads a spec from a JSON object, refusing a field it does not know (a misspelt
    /// `secret_hash` must not quietly give the client a new secret).
    pub fn from_json(text: &str) -> AdminResult<Self> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| AdminError::invalid("client", format!("not JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(AdminError::invalid("client", "not a JSON object"));
        };
        if let Some(unknown) = object.keys().find(|k| !SPEC_FIELDS.contains(&k.as_str())) {
            let shown: String = unknown.chars().take(40).collect();
            return Err(AdminError::invalid(
                "client",
                format!("unknown field '{shown}'"),
            ));
        }
        serde_json::from_value(value)
            .map_err(|e| AdminError::invalid("client", format!("a malformed client: {e}")))
    }
}

/// Longest client id accepted at import.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Checks a client id given at import: 1 to [`MAX_CLIENT_ID_LEN`] of RFC 3986 §2.3's
/// unreserved characters (so it needs no escaping in a URL or in HTTP Basic, RFC 6749
/// §2.3.1).
pub fn check_client_id(id: &str) -> AdminResult<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "client_id",
            format!(
                "client_id must be 1 to {MAX_CLIENT_ID_LEN} of A-Z, a-z, 0-9, '-', '.', '_' \
                 and '~'"
            ),
        ))
    }
}

/// A change to a registered client; fields not given stay as they were.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientPatch {
    /// A new name.
    pub name: Option<String>,
    /// What it is registered for.
    #[serde(flatten)]
    pub settings: ClientSettings,
}

/// A client just registered, with its secret: shown this once, stored only as its hash.
#[derive(Debug)]
pub struct Created {
    /// The stored client.
    pub client: ClientRecord,
    /// Its secret, for a client that authenticates with one (none for a client imported
    /// with its secret's hash: its owner has the secret already).
    pub secret: Option<Secret>,
}

/// A new secret.
#[derive(Debug)]
pub struct Rotated {
    /// The new secret, shown this once.
    pub secret: Secret,
    /// Until when the old secret stays valid; `None`: it no longer works and every token
    /// issued before is revoked.
    pub old_valid_until: Option<i64>,
}

/// Registers a client.
pub async fn create(
    store: &dyn Store,
    config: &Config,
    spec: ClientSpec,
    now: i64,
) -> AdminResult<Created> {
    check_name(&spec.name)?;
    let method = match spec.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            AdminError::invalid(
                "token_endpoint_auth_method",
                format!(
                    "token_endpoint_auth_method '{m}' is not supported (client_secret_basic, \
                     private_key_jwt or none; client_secret_jwt would need the secret kept in \
                     clear, and Tessera keeps only hashes)"
                ),
            )
        })?,
    };
    let public = spec.public || method == AuthMethod::None;
    let jwks = match method {
        AuthMethod::PrivateKeyJwt => {
            if public {
                return Err(AdminError::invalid(
                    "public",
                    "a private_key_jwt client is not public",
                ));
            }
            Some(spec.keys.load()?)
        }
        _ if spec.keys.given() => {
            return Err(AdminError::invalid(
                "keys",
                "keys go with token_endpoint_auth_method private_key_jwt",
            ))
        }
        _ => None,
    };
    let env = spec.env.unwrap_or_else(|| DEFAULT_ENV.to_owned());
    if !valid_env_name(&env) {
        return Err(AdminError::invalid(
            "env",
            "env must be 1 to 64 of a-z, 0-9, '-' and '_'",
        ));
    }
    if let Some(id) = &spec.client_id {
        check_client_id(id)?;
    }
    let imported = match spec.secret_hash {
        None => None,
        Some(_) if public || jwks.is_some() => {
            return Err(AdminError::invalid(
                "secret_hash",
                "secret_hash goes with a client that authenticates with a secret \
                 (client_secret_basic or client_secret_post)",
            ))
        }
        Some(text) => {
            ImportedHash::parse(&text)
                .map_err(|e| AdminError::invalid("secret_hash", format!("secret_hash: {e}")))?;
            Some(SecretHash::from_stored(text))
        }
    };
    let secret =
        (!public && jwks.is_none() && imported.is_none()).then(|| secret::generate(SECRET_PREFIX));
    let mut client = ClientRecord {
        client_id: spec.client_id.unwrap_or_else(secret::generate_id),
        name: spec.name,
        secret_hash: imported.or_else(|| secret.as_ref().map(Secret::hash)),
        old_secret_hash: None,
        old_secret_expires_at: None,
        // A public client cannot use client credentials (RFC 6749 §4.4).
        grant_types: vec![if public {
            grant_types::AUTHORIZATION_CODE.to_owned()
        } else {
            grant_types::CLIENT_CREDENTIALS.to_owned()
        }],
        redirect_uris: Vec::new(),
        scopes: ScopeSet::default(),
        audiences: Vec::new(),
        public,
        jwks,
        access_token_format: TokenFormat::Jwt,
        access_token_ttl: config.default_access_token_ttl,
        token_epoch: 0,
        env,
        single_use_tokens: false,
        created_at: now,
        user_flow: Default::default(),
    };
    apply(&mut client, spec.settings, config)?;
    store.ensure_env(&client.env, now).await?;
    match store.insert_client(&client).await {
        Err(StoreError::Conflict) => {
            return Err(AdminError::Conflict(format!(
                "a client '{}' already exists",
                client.client_id
            )))
        }
        r => r?,
    }
    Ok(Created { client, secret })
}

/// Changes what a client is registered for; returns the client as stored.
pub async fn update(
    store: &dyn Store,
    config: &Config,
    client_id: &str,
    patch: ClientPatch,
    now: i64,
) -> AdminResult<ClientRecord> {
    let mut client = get(store, client_id).await?;
    if let Some(name) = patch.name {
        check_name(&name)?;
        client.name = name;
    }
    apply(&mut client, patch.settings, config)?;
    if !store.update_client(&client, now).await? {
        return Err(AdminError::not_found("client", client_id));
    }
    Ok(client)
}

/// The client with this id.
pub async fn get(store: &dyn Store, client_id: &str) -> AdminResult<ClientRecord> {
    store
        .get_client(client_id)
        .await?
        .ok_or_else(|| AdminError::not_found("client", client_id))
}

/// Every client, oldest first.
pub async fn list(store: &dyn Store) -> AdminResult<Vec<ClientRecord>> {
    Ok(store.list_clients().await?)
}

/// Issues a new secret. With `keep_old_for` (seconds, at least 1) the old secret stays
/// valid that long as well and nothing is revoked; without, the old one stops working at
/// once and every token issued to the client before is revoked.
pub async fn rotate_secret(
    store: &dyn Store,
    client_id: &str,
    keep_old_for: Option<i64>,
    now: i64,
) -> AdminResult<Rotated> {
    if keep_old_for.is_some_and(|s| s < 1) {
        return Err(AdminError::invalid(
            "keep_old_secret_for",
            "keep_old_secret_for must be at least 1 second",
        ));
    }
    let client = get(store, client_id).await?;
    if client.public {
        return Err(AdminError::Conflict(format!(
            "client '{client_id}' is public and has no secret"
        )));
    }
    if client.jwks.is_some() {
        return Err(AdminError::Conflict(format!(
            "client '{client_id}' uses private_key_jwt: replace its keys instead"
        )));
    }
    if client.secret_hash.is_none() {
        return Err(AdminError::Conflict(format!(
            "client '{client_id}' has no secret (an environment's /sdk/token client)"
        )));
    }
    let secret = secret::generate(SECRET_PREFIX);
    let old_valid_until = keep_old_for.map(|s| now.saturating_add(s));
    if !store
        .rotate_client_secret(client_id, &secret.hash(), old_valid_until, now)
        .await?
    {
        return Err(AdminError::not_found("client", client_id));
    }
    Ok(Rotated {
        secret,
        old_valid_until,
    })
}

/// Replaces the public keys of a `private_key_jwt` client (its key rotation); returns the
/// stored form.
pub async fn set_keys(
    store: &dyn Store,
    client_id: &str,
    keys: &PublicKeys,
    now: i64,
) -> AdminResult<String> {
    let client = get(store, client_id).await?;
    if client.jwks.is_none() {
        return Err(AdminError::Conflict(format!(
            "client '{client_id}' does not use private_key_jwt"
        )));
    }
    let stored = keys.load()?;
    if !store.set_client_keys(client_id, &stored, now).await? {
        return Err(AdminError::not_found("client", client_id));
    }
    Ok(stored)
}

/// Revokes every token issued to the client so far (access tokens of both formats, refresh
/// tokens and the grants behind them), keeping its secret: its token epoch moves on.
pub async fn revoke_tokens(store: &dyn Store, client_id: &str, now: i64) -> AdminResult<()> {
    if !store.revoke_client_tokens(client_id, now).await? {
        return Err(AdminError::not_found("client", client_id));
    }
    Ok(())
}

/// Deletes a client; its tokens stop being valid.
pub async fn delete(store: &dyn Store, client_id: &str, now: i64) -> AdminResult<()> {
    if !store.delete_client(client_id, now).await? {
        return Err(AdminError::not_found("client", client_id));
    }
    Ok(())
}

fn check_name(name: &str) -> AdminResult<()> {
    username::check_display_name(name).map_err(|e| AdminError::invalid("name", e.to_string()))
}

/// Sets on `client` every field `settings` gives, checking each, then the rules across
/// fields.
pub fn apply(
    client: &mut ClientRecord,
    settings: ClientSettings,
    config: &Config,
) -> AdminResult<()> {
    if let Some(grants) = settings.grant_types {
        if grants.is_empty() {
            return Err(AdminError::invalid(
                "grant_types",
                "grant_types must name at least one grant type",
            ));
        }
        for g in &grants {
            if grant::find(g).is_none() {
                let known: Vec<&str> = GRANTS.iter().map(|g| g.grant_type).collect();
                return Err(AdminError::invalid(
                    "grant_types",
                    format!("unknown grant type '{g}' (known: {})", known.join(", ")),
                ));
            }
        }
        client.grant_types = grants;
    }
    if let Some(uris) = settings.redirect_uris {
        for uri in &uris {
            redirect_uri::validate_registration(uri)
                .map_err(|e| AdminError::invalid("redirect_uris", e.to_string()))?;
        }
        client.redirect_uris = uris;
    }
    if let Some(scope) = settings.scope {
        client.scopes =
            ScopeSet::parse(&scope).map_err(|e| AdminError::invalid("scope", e.to_string()))?;
    }
    if let Some(audiences) = settings.audiences {
        for a in &audiences {
            if a.contains('#') || !a.contains(':') || a.contains(char::is_whitespace) {
                return Err(AdminError::invalid(
                    "audiences",
                    format!("audience '{a}' must be an absolute URI without a fragment"),
                ));
            }
        }
        client.audiences = audiences;
    }
    if let Some(f) = settings.access_token_format {
        client.access_token_format = TokenFormat::parse(&f).ok_or_else(|| {
            AdminError::invalid(
                "access_token_format",
                "access_token_format must be 'jwt' or 'opaque'",
            )
        })?;
    }
    if let Some(ttl) = settings.access_token_ttl {
        if ttl < 1 || ttl > config.max_access_token_ttl {
            return Err(AdminError::invalid(
                "access_token_ttl",
                format!(
                    "access_token_ttl must be between 1 and {} seconds",
                    config.max_access_token_ttl
                ),
            ));
        }
        client.access_token_ttl = ttl;
    }
    let flow = &mut client.user_flow;
    if let Some(p) = settings.refresh_tokens {
        flow.refresh_tokens = RefreshPolicy::parse(&p).ok_or_else(|| {
            AdminError::invalid(
                "refresh_tokens",
                "refresh_tokens must be 'always', 'offline_access' or 'never'",
            )
        })?;
    }
    if let Some(v) = seconds("refresh_token_ttl", settings.refresh_token_ttl, 1, None)? {
        flow.refresh_token_ttl = v;
    }
    if let Some(v) = seconds(
        "refresh_token_idle_ttl",
        settings.refresh_token_idle_ttl,
        0,
        None,
    )? {
        flow.refresh_token_idle_ttl = v;
    }
    if let Some(v) = seconds(
        "refresh_grace_period",
        settings.refresh_grace_period,
        0,
        Some((MAX_REFRESH_GRACE_PERIOD, "")),
    )? {
        flow.refresh_grace_period = v;
    }
    if let Some(v) = seconds(
        "code_ttl",
        settings.code_ttl,
        1,
        Some((MAX_CODE_TTL, " (RFC 6749 §4.1.2: 10 minutes)")),
    )? {
        flow.code_ttl = v;
    }
    if let Some(v) = settings.require_pkce {
        flow.require_pkce = v;
    }
    if let Some(v) = settings.allow_plain_pkce {
        flow.allow_plain_pkce = v;
    }
    if let Some(v) = settings.skip_consent {
        flow.skip_consent = v;
    }
    if let Some(v) = settings.require_pushed_authorization_requests {
        flow.require_par = v;
    }
    if let Some(v) = settings.dpop_bound_access_tokens {
        flow.dpop_bound_access_tokens = v;
    }
    if let Some(uris) = settings.post_logout_redirect_uris {
        for uri in &uris {
            redirect_uri::validate_registration(uri)
                .map_err(|e| AdminError::invalid("post_logout_redirect_uris", e.to_string()))?;
        }
        flow.post_logout_redirect_uris = uris;
    }
    if let Some(uri) = settings.backchannel_logout_uri {
        flow.backchannel_logout_uri = if uri.is_empty() {
            None
        } else {
            crate::backchannel_logout::validate_uri(&uri)
                .map_err(|e| AdminError::invalid("backchannel_logout_uri", e.to_string()))?;
            Some(uri)
        };
    }
    if let Some(v) = settings.backchannel_logout_session_required {
        flow.backchannel_logout_session_required = v;
    }
    if let Some(audiences) = settings.token_exchange_audiences {
        for a in &audiences {
            // RFC 8707 §2, as for `audiences`: an absolute URI without a fragment.
            if a.contains('#') || !a.contains(':') || a.contains(char::is_whitespace) {
                return Err(AdminError::invalid(
                    "token_exchange_audiences",
                    format!(
                        "token_exchange_audiences must be absolute URIs without a fragment: \
                         '{}' is not",
                        a.chars().take(100).collect::<String>()
                    ),
                ));
            }
        }
        flow.token_exchange_audiences = audiences;
    }
    if let Some(once) = settings.single_use_tokens {
        client.single_use_tokens = once;
    }
    check(client)
}

/// A number of seconds of at least `min` and, when given, at most `max` (with a note).
fn seconds(
    field: &'static str,
    value: Option<i64>,
    min: i64,
    max: Option<(i64, &str)>,
) -> AdminResult<Option<i64>> {
    match (value, max) {
        (Some(v), _) if v < min => Err(AdminError::invalid(
            field,
            format!("{field} must be at least {min} seconds"),
        )),
        (Some(v), Some((max, note))) if v > max => Err(AdminError::invalid(
            field,
            format!("{field} is at most {max} seconds{note}"),
        )),
        (v, _) => Ok(v),
    }
}

/// The rules across fields, read from each grant's row in [`GRANTS`].
pub fn check(client: &ClientRecord) -> AdminResult<()> {
    for g in GRANTS.iter().filter(|g| client.allows_grant(g.grant_type)) {
        if client.public && !g.public_clients {
            return Err(AdminError::invalid(
                "grant_types",
                format!(
                    "a public client cannot use {} (RFC 6749 §2.1{})",
                    g.grant_type,
                    if g.grant_type == grant_types::CLIENT_CREDENTIALS {
                        ", §4.4"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if g.needs_redirect_uri && client.redirect_uris.is_empty() {
            return Err(AdminError::invalid(
                "redirect_uris",
                format!(
                    "a client registered for {} needs at least one redirect URI (RFC 6749 \
                     §3.1.2)",
                    g.grant_type
                ),
            ));
        }
    }
    Ok(())
}
