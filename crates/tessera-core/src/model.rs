//! The records Tessera stores.
//!
//! Owns the shapes of stored rows ([`ClientRecord`], [`TokenRecord`], [`KeyRecord`],
//! [`EnvRecord`], [`TrustRecord`], [`Change`]) and the small enums they use. Storage crates
//! map these to tables; nothing here knows SQL. A leaf: it imports only values that import
//! nothing themselves (scopes, secret hashes, audiences); the rules about the records are the
//! modules that use them (grant types in [`crate::grant::types`], environment names in
//! [`crate::environment`], the `/sdk/token` client in [`crate::endpoint::sdk_token`]).

use serde::{Deserialize, Serialize};

use crate::scope::ScopeSet;
use crate::secret::SecretHash;

/// How a client's access tokens look on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// An RFC 9068 JWT, verifiable offline with the JWKS.
    Jwt,
    /// A random string, meaningful only through introspection; stored as a hash.
    Opaque,
}

impl TokenFormat {
    /// The name used in configuration and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }

    /// Parses `jwt` or `opaque`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jwt" => Some(TokenFormat::Jwt),
            "opaque" => Some(TokenFormat::Opaque),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    /// The public identifier.
    pub client_id: String,
    /// A name for people.
    pub name: String,
    /// Hash of the current secret; `None` for a public client.
    pub secret_hash: Option<SecretHash>,
    /// Hash of the previous secret while it is still honoured after a rotation with overlap.
    pub old_secret_hash: Option<SecretHash>,
    /// Until when (Unix seconds) the previous secret is honoured.
    pub old_secret_expires_at: Option<i64>,
    /// Grant types the client may use.
    pub grant_types: Vec<String>,
    /// Registered redirect URIs, compared by exact string match.
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for; also its default when it asks for none.
    pub scopes: ScopeSet,
    /// Resources (APIs) the client may get tokens for (RFC 8707); also its default `aud`.
    pub audiences: Vec<String>,
    /// A public client has no secret (token endpoint auth method `none`).
    pub public: bool,
    /// For `private_key_jwt` clients (RFC 7523 §2.2): the public keys their assertions are
    /// signed with, as `{"keys": [JWK...], "pems": [PEM...]}`.
    pub jwks: Option<String>,
    /// Format of the client's access tokens.
    pub access_token_format: TokenFormat,
    /// Lifetime of the client's access tokens, in seconds.
    pub access_token_ttl: i64,
    /// Tokens issued under an older epoch are revoked; a secret rotation bumps it.
    pub token_epoch: i64,
    /// The deployment environment the client belongs to (see [`EnvRecord`]): its tokens
    /// carry it, and it introspects only tokens of its own environment.
    pub env: String,
    /// Whether the client's access tokens are single-use: the first successful check
    /// consumes one.
    pub single_use_tokens: bool,
    /// When the client was registered.
    pub created_at: i64,
    /// How the client takes part in flows that act for a user (authorization code, refresh
    /// tokens, logout).
    pub user_flow: UserFlowSettings,
}

/// When a client is given refresh tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshPolicy {
    /// With every authorization code exchange.
    Always,
    /// Only when the granted scope includes `offline_access` (OpenID Connect §11).
    #[default]
    OfflineAccess,
    /// Never.
    Never,
}

impl RefreshPolicy {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshPolicy::Always => "always",
            RefreshPolicy::OfflineAccess => "offline_access",
            RefreshPolicy::Never => "never",
        }
    }

    /// Parses `always`, `offline_access` or `never`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(RefreshPolicy::Always),
            "offline_access" => Some(RefreshPolicy::OfflineAccess),
            "never" => Some(RefreshPolicy::Never),
            _ => None,
        }
    }
}

/// A client's settings for the flows that act for a user. Stored as one JSON document:
/// fields added later take their defaults on older rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserFlowSettings {
    /// When refresh tokens are issued.
    pub refresh_tokens: RefreshPolicy,
    /// Absolute lifetime of a refresh-token family, from the user's sign-in, seconds.
    /// Rotation never extends it.
    pub refresh_token_ttl: i64,
    /// A refresh token unused for this long expires, seconds (0: no idle limit).
    pub refresh_token_idle_ttl: i64,
    /// For this long after a rotation, presenting the rotated-out token again returns the
    /// same successor instead of revoking the family, seconds (0: off).
    pub refresh_grace_period: i64,
    /// Lifetime of authorization codes, seconds.
    pub code_ttl: i64,
    /// PKCE is required even though the client is confidential.
    pub require_pkce: bool,
    /// The `plain` PKCE method is accepted (S256 only otherwise).
    pub allow_plain_pkce: bool,
    /// Where RP-initiated logout may send the user back to (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party client: the user is never asked for consent.
    pub skip_consent: bool,
    /// Where logout tokens are sent when a session it signed into ends (OpenID Connect
    /// Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// Whether its logout tokens must carry `sid` (Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_session_required: bool,
    /// Audiences the client may get tokens for by token exchange (RFC 8693 §2.1: `resource`
    /// and `audience`); none: it may not exchange tokens.
    pub token_exchange_audiences: Vec<String>,
    /// The client's authorization requests must be pushed first (RFC 9126 §6,
    /// `require_pushed_authorization_requests`).
    pub require_par: bool,
    /// Every access token of the client is DPoP-bound: a token request without a DPoP proof
    /// is refused (RFC 9449 §5.2, `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
}

impl Default for UserFlowSettings {
    fn default() -> Self {
        Self {
            refresh_tokens: RefreshPolicy::OfflineAccess,
            refresh_token_ttl: 30 * 86_400,
            refresh_token_idle_ttl: 0,
            refresh_grace_period: 0,
            code_ttl: 120,
            require_pkce: false,
            allow_plain_pkce: false,
            post_logout_redirect_uris: Vec::new(),
            skip_consent: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            token_exchange_audiences: Vec::new(),
            require_par: false,
            dpop_bound_access_tokens: false,
        }
    }
}

/// A named deployment environment: trust registrations and clients
/// belong to one, tokens carry the one they were issued in, and a token of one environment
/// is not valid in another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRecord {
    /// The name (see [`crate::environment::valid_env_name`]).
    pub name: String,
    /// Whether every access token issued in this environment is single-use.
    pub single_use_tokens: bool,
    /// When it was created.
    pub created_at: i64,
}

/// A trusted issuer of JWT assertions (RFC 7523 §3): a party whose signed JWTs are exchanged
/// for access tokens in one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustRecord {
    /// Identifier of the registration.
    pub id: String,
    /// The environment it belongs to.
    pub env: String,
    /// The `iss` its assertions carry; unique within the environment.
    pub issuer: String,
    /// Its public keys, in the stored form of [`crate::client_keys::ClientKeys`] (empty
    /// when they come from `jwks_uri` only).
    pub keys: String,
    /// Where its current JWKS is published, fetched (and cached) by the server.
    pub jwks_uri: Option<String>,
    /// The claim of the assertion that names the end user, the issued token's `sub`.
    pub subject_claim: String,
    /// Claims copied from the assertion into the access token and the introspection answer.
    pub claims: Vec<String>,
    /// Scopes tokens obtained with its assertions may have; also their default.
    pub scopes: ScopeSet,
    /// When it was registered.
    pub created_at: i64,
}

/// What deleting an environment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvDeletion {
    /// Deleted, with its trust registrations and its `/sdk/token` client.
    Deleted,
    /// There is no such environment.
    NotFound,
    /// Refused: this many clients are still registered in it.
    InUse(u64),
}

impl ClientRecord {
    /// Whether the client may use a grant type.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// A stored access token (opaque tokens only; JWTs are not stored).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// The token's public id (see [`crate::opaque`]): the key it is found by.
    pub token_id: String,
    /// SHA-256 of the whole token, compared in constant time once the row is found.
    pub token_hash: SecretHash,
    /// Identifier of the token, as a JWT's `jti` would be.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The subject (`sub`): the client itself for client credentials.
    pub subject: String,
    /// Granted scope, space-delimited.
    pub scope: String,
    /// Audience.
    pub audience: crate::audience::Audience,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry time.
    pub expires_at: i64,
    /// The client's token epoch at issue.
    pub token_epoch: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// The user grant it descends from (authorization code and refresh tokens); revoking the
    /// grant revokes the token.
    pub grant_id: Option<String>,
    /// The environment it was issued in.
    pub env: String,
    /// Claims carried from a JWT assertion (a JSON object), if any.
    pub claims: Option<String>,
    /// Whether the first successful check consumes it.
    pub single_use: bool,
}

/// A stored signing key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Key identifier, published as `kid`.
    pub kid: String,
    /// JWS algorithm (`ES256` or `EdDSA`).
    pub alg: String,
    /// The PKCS#8 private key, sealed with the server's sealing key.
    pub private_sealed: Vec<u8>,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    /// When it was made.
    pub created_at: i64,
    /// From when it signs (it is published from creation on).
    pub activates_at: i64,
    /// After when it is no longer published, once superseded.
    pub retires_at: Option<i64>,
    /// The fingerprint of the sealing secret `private_sealed` is sealed under
    /// ([`crate::keys::Sealer::fingerprint`]); `None` for keys sealed before it was recorded.
    pub sealed_by: Option<String>,
}

/// What a change-feed entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A client was created, changed or deleted; the key is its `client_id`.
    Client,
    /// An opaque token was revoked; the key is its hash.
    Token,
    /// A JWT was revoked; the key is its `jti`.
    Jti,
    /// The signing keys changed; the key is empty.
    Keys,
    /// A user grant was revoked; the key is its id.
    Grant,
    /// An environment was created, changed or deleted; the key is its name.
    Env,
    /// A trust registration was added or removed; the key is its environment.
    Trust,
}

impl ChangeKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Client => "client",
            ChangeKind::Token => "token",
            ChangeKind::Jti => "jti",
            ChangeKind::Keys => "keys",
            ChangeKind::Grant => "grant",
            ChangeKind::Env => "env",
            ChangeKind::Trust => "trust",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client" => Some(ChangeKind::Client),
            "token" => Some(ChangeKind::Token),
            "jti" => Some(ChangeKind::Jti),
            "keys" => Some(ChangeKind::Keys),
            "grant" => Some(ChangeKind::Grant),
            "env" => Some(ChangeKind::Env),
            "trust" => Some(ChangeKind::Trust),
            _ => None,
        }
    }
}

/// One entry of the change feed through which every node learns of writes made elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the feed; increasing.
    pub seq: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// Which one changed.
    pub key: String,
}

/// How many rows a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired opaque tokens.
    pub tokens: u64,
    /// Revocation records of JWTs that have expired anyway.
    pub revoked_jtis: u64,
    /// Replay records of assertions that have expired.
    pub used_jtis: u64,
    /// Old change-feed entries.
    pub changes: u64,
    /// Retired signing keys.
    pub keys: u64,
    /// Expired or used authorization codes.
    pub codes: u64,
    /// Expired login sessions.
    pub sessions: u64,
    /// Expired user grants (refresh-token families) with their refresh tokens.
    pub grants: u64,
    /// Expired refresh tokens of grants that live on.
    pub refresh_tokens: u64,
    /// Throttle budgets whose window has ended.
    pub throttle: u64,
    /// Expired device authorizations (RFC 8628), whatever their status.
    pub device_codes: u64,
}

/// A person who signs in to Tessera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable identifier: the `sub` of their tokens.
    pub user_id: String,
    /// What they sign in with; unique.
    pub username: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// E-mail address, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub name: Option<String>,
    /// When the user was created.
    pub created_at: i64,
    /// When the user was last changed.
    pub updated_at: i64,
}

/// The scope a user consented to for a client (OpenID Connect Core §3.1.2.4), and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// Who consented.
    pub user_id: String,
    /// The client they consented to.
    pub client_id: String,
    /// The scope consented to (space-separated, RFC 6749 §3.3).
    pub scope: String,
    /// When it was last recorded (a consent that widens the scope replaces it).
    pub granted_at: i64,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session cookie's value.
    pub session_hash: SecretHash,
    /// Who signed in.
    pub user_id: String,
    /// When they signed in (OpenID Connect `auth_time`).
    pub auth_time: i64,
    /// When the session ends.
    pub expires_at: i64,
}

/// A logout token owed to a client (OpenID Connect Back-Channel Logout 1.0 §2.5), waiting in
/// the outbox until it is delivered or given up. The token itself is signed at each attempt,
/// so nothing secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDeliveryRecord {
    /// Identifier.
    pub id: String,
    /// The client (the token's `aud`).
    pub client_id: String,
    /// Where it goes: the client's `backchannel_logout_uri` when it was queued.
    pub uri: String,
    /// The user (`sub`).
    pub sub: String,
    /// The ended session (`sid`), when known.
    pub sid: Option<String>,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: i64,
    /// When it was queued: attempts stop some time after.
    pub created_at: i64,
}

/// An authorization code (RFC 6749 §4.1.2), stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub code_hash: SecretHash,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who authorized it.
    pub user_id: String,
    /// The redirect URI the authorization request named (must be repeated at the token
    /// endpoint); empty when it named none and the client's one registered URI was used.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// OpenID Connect `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge (RFC 7636).
    pub code_challenge: Option<String>,
    /// PKCE method: `S256` or `plain`.
    pub code_challenge_method: Option<String>,
    /// When the user signed in.
    pub auth_time: i64,
    /// The grant that tokens issued from this code belong to.
    pub grant_id: String,
    /// The OpenID Connect session id (`sid`) of the sign-in session that authorized it
    /// ([`crate::session::sid`]).
    pub sid: Option<String>,
    /// Authorization request parameters Tessera does not know, as a JSON object.
    pub extra: String,
    /// When it was issued.
    pub issued_at: i64,
    /// When it expires.
    pub expires_at: i64,
}

/// What happened when a code was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// First use: the code is now spent.
    Fresh(CodeRecord),
    /// It was used before: a replay.
    Replayed(CodeRecord),
    /// No such code.
    Unknown,
}

/// Where a device authorization stands (RFC 8628 §3.4, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user to enter the user code and decide.
    Pending,
    /// The user approved; the next poll (not too fast) gets the tokens.
    Approved,
    /// The user refused.
    Denied,
    /// The tokens were issued: the device code is spent.
    Used,
}

impl DeviceStatus {
    /// The name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Used => "used",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeviceStatus::Pending),
            "approved" => Some(DeviceStatus::Approved),
            "denied" => Some(DeviceStatus::Denied),
            "used" => Some(DeviceStatus::Used),
            _ => None,
        }
    }
}

/// A device authorization (RFC 8628 §3.2): the device code, stored only as its hash, and the
/// user code the user types, stored normalised (upper case, no separators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    /// SHA-256 of the device code.
    pub device_code_hash: SecretHash,
    /// The user code, normalised; unique among the stored device authorizations.
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scope asked for; once approved, the scope the user consented to.
    pub scope: String,
    /// When it was issued.
    pub issued_at: i64,
    /// When both codes expire.
    pub expires_at: i64,
    /// The minimum seconds between polls (RFC 8628 §3.2 `interval`), raised by each
    /// `slow_down` (§3.5).
    pub interval: i64,
    /// When the client last polled.
    pub last_poll_at: Option<i64>,
    /// Where it stands.
    pub status: DeviceStatus,
    /// The user who approved or denied it.
    pub user_id: Option<String>,
    /// When that user signed in (OpenID Connect `auth_time`).
    pub auth_time: Option<i64>,
}

/// A user's approval of a device authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceApproval {
    /// The user.
    pub user_id: String,
    /// The scope the user consented to (within the one asked for).
    pub scope: String,
    /// When the user signed in.
    pub auth_time: i64,
}

/// What a poll of the token endpoint with a device code found (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code.
    Unknown,
    /// The device code has expired.
    Expired,
    /// The poll came sooner than the interval after the previous one; the interval is now
    /// this many seconds.
    SlowDown {
        /// The raised interval.
        interval: i64,
    },
    /// The user has not decided yet.
    Pending,
    /// The user refused.
    Denied,
    /// The user approved, and this poll spent the device code: issue the tokens. The record
    /// is as the poll left it (used, with the approving user and consented scope).
    Issued(DeviceCodeRecord),
    /// The tokens were issued to an earlier poll.
    Used,
}

/// A user's authorization of a client, from one sign-in: the family of every access and
/// refresh token issued from one authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Identifier, carried by every token of the family.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// When the user signed in.
    pub auth_time: i64,
    /// OpenID Connect `nonce` of the authorization request.
    pub nonce: Option<String>,
    /// The client's token epoch when it was made: a secret rotation that bumps the epoch
    /// ends the grant, as it revokes every other token of the client.
    pub token_epoch: i64,
    /// When it was created.
    pub created_at: i64,
    /// The end of the family's refresh lifetime: no refresh token outlives it.
    pub refresh_expires_at: i64,
    /// When the row may be purged: after the last token that could name it expired.
    pub expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Claims every access token of the family carries, a JSON object of strings: the
    /// authorization-request parameters the code's dialect carries (`crate::dialect`).
    pub claims: Option<String>,
    /// The OpenID Connect session id (`sid`) of the sign-in session the grant came from:
    /// the record of which clients a session signed into (OpenID Connect Back-Channel
    /// Logout 1.0 §2.1).
    pub sid: Option<String>,
    /// The RFC 7638 thumbprint of the DPoP key the family's refresh tokens are bound to
    /// (RFC 9449 §5: those of a public client that sent a proof).
    pub dpop_jkt: Option<String>,
}

/// A refresh token, stored only as its hash; found by the public id inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Public id (see [`crate::opaque`]).
    pub token_id: String,
    /// SHA-256 of the whole token.
    pub token_hash: SecretHash,
    /// The family it belongs to.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// Scope it may refresh.
    pub scope: String,
    /// When it was issued.
    pub issued_at: i64,
    /// When it expires (never after its grant's `refresh_expires_at`).
    pub expires_at: i64,
    /// When it was exchanged for a successor.
    pub used_at: Option<i64>,
    /// The successor, sealed, kept only for a client with a grace period.
    pub successor_sealed: Option<Vec<u8>>,
}

/// An upstream OpenID provider users may sign in through (OpenID Connect Core §3.1: Tessera
/// is then the relying party of the upstream, and the authorization server of its own
/// clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpRecord {
    /// Unique name, `[a-z0-9_-]{1,64}`; shown as "Sign in with NAME" unless a display name
    /// is set.
    pub name: String,
    /// What the sign-in page shows (defaults to the name).
    pub display_name: String,
    /// The upstream issuer URL (its discovery document is at
    /// `ISSUER/.well-known/openid-configuration`, OpenID Connect Discovery §4).
    pub issuer: String,
    /// Tessera's client id at the upstream.
    pub client_id: String,
    /// Tessera's client secret at the upstream, sealed with the
    /// [`crate::keys::Sealer`]: it must be sent back out, so it cannot be hashed.
    pub client_secret_sealed: Vec<u8>,
    /// Lowercase e-mail domains whose users are sent to this provider; a domain belongs to
    /// at most one provider.
    pub email_domains: Vec<String>,
    /// Whether a first sign-in may link to an existing user with the same, verified, e-mail
    /// address.
    pub link_by_email: bool,
    /// When it was added.
    pub created_at: i64,
}

/// A user's identity at an upstream provider (its `iss` and `sub`, OpenID Connect Core
/// §5.7: the pair is the only stable identifier of an upstream user), linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentityRecord {
    /// The upstream `iss`.
    pub issuer: String,
    /// The upstream `sub`.
    pub subject: String,
    /// The name of the [`IdpRecord`] it was first seen through.
    pub idp: String,
    /// The local user.
    pub user_id: String,
    /// When it was linked.
    pub created_at: i64,
}

/// One stored entry of the audit trail ([`crate::audit`]): an admin change or a security
/// event. Never holds a secret. The typed form is [`crate::audit::AuditEvent`]; stored, its
/// enums are their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the trail, increasing (assigned by the store; 0 before insertion).
    pub id: i64,
    /// When it happened, Unix seconds.
    pub at: i64,
    /// What happened (`client_created`, `client_auth_failed`, …).
    pub kind: String,
    /// Who did it: `cli`, `admin_token:ID`, `client:ID`, `user:ID` or `anonymous`.
    pub actor: String,
    /// What it was done to (a client id, a user id, a token's id), if anything.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The request it happened in, if it came through HTTP.
    pub request_id: Option<String>,
    /// The address the request came from, if it came through HTTP.
    pub source: Option<String>,
    /// Further facts as a JSON object (never a secret).
    pub detail: String,
}

/// Which audit entries [`crate::store::AuditStore::list_audit`] returns; every field set
/// narrows it. Entries come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries at or after this second.
    pub from: Option<i64>,
    /// Only entries at or before this second.
    pub to: Option<i64>,
    /// Only entries of this actor (exact, as stored: `client:ID`, `cli`, …).
    pub actor: Option<String>,
    /// Only entries with this target (exact).
    pub target: Option<String>,
    /// Only entries of this kind (exact).
    pub kind: Option<String>,
    /// Only entries with this outcome (`success` or `failure`).
    pub outcome: Option<String>,
    /// Paging: only entries older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
    /// Most entries returned (the store caps it at [`AUDIT_PAGE_MAX`]).
    pub limit: i64,
}

/// Most audit entries one listing returns.
pub const AUDIT_PAGE_MAX: i64 = 1000;

/// A credential for the admin API: its value (`tsa_<id>_<secret>`) is shown once and stored
/// only as its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    /// Identifier, 32 lowercase hex characters; the part of the value that is not secret.
    pub id: String,
    /// Hash of the whole token value.
    pub token_hash: SecretHash,
    /// A name for people.
    pub name: String,
    /// What it may do (`clients:write`, `admin`, ...), without duplicates.
    pub scopes: Vec<String>,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it was last accepted, if ever.
    pub last_used_at: Option<i64>,
}
