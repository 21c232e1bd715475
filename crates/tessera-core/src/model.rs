//! The records Tessera stores.
//!
//! Owns the shapes of stored rows ([`ClientRecord`], [`TokenRecord`], [`KeyRecord`],
//! [`EnvRecord`], [`TrustRecord`], [`Change`]) and the small enums they use. Storage crates map these to tables; nothing here
//! knows SQL.

use crate::scope::ScopeSet;
use crate::secret::SecretHash;

/// The grant type names Tessera knows.
pub mod grant_types {
    /// RFC 6749 §4.4.
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    /// RFC 6749 §4.1.
    pub const AUTHORIZATION_CODE: &str = "authorization_code";
    /// RFC 6749 §6.
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// RFC 7523 §2.1.
    pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    /// RFC 6749 §4.3: never offered (RFC 9700 §2.4).
    pub const PASSWORD: &str = "password";
}

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
}

/// The name of the environment that exists from the start and cannot be deleted.
pub const DEFAULT_ENV: &str = "default";

/// Whether a string is an acceptable environment name: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The client id under which `/sdk/token` issues the tokens of an environment. It has no
/// secret and no keys, so nothing can authenticate as it; deleting it revokes those tokens.
pub fn sdk_client_id(env: &str) -> String {
    format!("sdk:{env}")
}

/// A named deployment environment (seed 000's デプロイ環境): trust registrations and clients
/// belong to one, tokens carry the one they were issued in, and a token of one environment
/// is not valid in another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRecord {
    /// The name (see [`valid_env_name`]).
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
    /// Its public keys, in the stored form of [`crate::client_assertion::ClientKeys`] (empty
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
    pub audience: crate::resource::Audience,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry time.
    pub expires_at: i64,
    /// The client's token epoch at issue.
    pub token_epoch: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
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
}
