//! `POST /sdk/token`: seed 000's exchange of a vendor-signed JWT for an access token.
//!
//! Owns the endpoint's rules over the JWT-bearer checks of
//! [`crate::grant::jwt_bearer::verify_assertion`]: no client credentials; the environment is
//! the request's `env` (none = [`DEFAULT_ENV`]) and must exist; the JWT's `aud` is optional
//! (seed 000's JWTs name none) and checked when present; `jti`, `exp` and the signature are
//! always required, and a JWT already used is refused. The token is issued to the
//! environment's SDK client ([`sdk_client_id`], made on first use; when requests or nodes
//! make it at the same moment, every one issues under the one stored) and lives 5 minutes, or
//! 10 minutes when it is single-use (seed 000's hosted case: invalid once used, or 10 minutes
//! after issue). Its scope is the trust registration's.

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::jwt_bearer::{verify_assertion, AudienceRule};
use crate::grant::types;
use crate::grant::TokenResponse;
use crate::issue::{issue_access_token_with, Extras};
use crate::model::{sdk_client_id, valid_env_name, ClientRecord, TokenFormat, DEFAULT_ENV};
use crate::resource::Audience;
use crate::scope::ScopeSet;
use crate::store::StoreError;

/// Lifetime of the tokens of `/sdk/token`, seconds (seed 000: 5 minutes).
pub const TTL: i64 = 300;
/// Lifetime of single-use tokens of `/sdk/token`, seconds (seed 000's hosted case).
pub const SINGLE_USE_TTL: i64 = 600;

/// A request: the JWT and the environment.
#[derive(Debug, serde::Deserialize)]
pub struct SdkTokenRequest {
    /// The vendor-signed JWT naming the end user.
    pub jwt: String,
    /// The deployment environment; none = the default one.
    #[serde(default)]
    pub env: Option<String>,
}

impl SdkTokenRequest {
    /// Parses the JSON body; anything else is `invalid_request`.
    pub fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        serde_json::from_slice(body).map_err(|_| {
            OAuthError::invalid_request(
                "the body must be a JSON object with a string \"jwt\" and an optional string \"env\"",
            )
        })
    }
}

/// Handles an `/sdk/token` request.
pub async fn handle(cx: &Cx<'_>, req: &SdkTokenRequest) -> Result<TokenResponse, OAuthError> {
    let env = req.env.as_deref().unwrap_or(DEFAULT_ENV);
    if !valid_env_name(env) || cx.store.get_env(env).await?.is_none() {
        return Err(OAuthError::invalid_request("unknown env"));
    }
    if req.jwt.is_empty() {
        return Err(OAuthError::invalid_request("jwt is required"));
    }
    let verified = verify_assertion(cx, env, &req.jwt, AudienceRule::Optional).await?;
    let client = sdk_client(cx, env).await?;
    let extras = Extras {
        claims: verified.claims,
        ttl: Some(TTL),
        single_use_ttl: Some(SINGLE_USE_TTL),
        grant: None,
    };
    let token = issue_access_token_with(
        cx,
        &client,
        &verified.subject,
        &verified.trust.scopes,
        Audience::one(cx.config.default_audience.clone()),
        extras,
    )
    .await?;
    let mut response = TokenResponse::access_only(token);
    response.scope = String::new();
    Ok(response)
}

/// A random token epoch (48 bits, so that `jti`s stay short).
fn random_epoch() -> i64 {
    let b = crate::secret::random_bytes::<6>();
    b.iter()
        .fold(0i64, |acc, byte| (acc << 8) | i64::from(*byte))
}

/// The environment's SDK client, registered on first use.
async fn sdk_client(cx: &Cx<'_>, env: &str) -> Result<ClientRecord, OAuthError> {
    let id = sdk_client_id(env);
    if let Some(c) = cx.store.get_client(&id).await? {
        return Ok(c);
    }
    let client = ClientRecord {
        client_id: id.clone(),
        name: format!("/sdk/token of environment {env}"),
        // No secret and no keys: nothing can authenticate as this client.
        secret_hash: None,
        old_secret_hash: None,
        old_secret_expires_at: None,
        grant_types: vec![types::JWT_BEARER.to_owned()],
        redirect_uris: Vec::new(),
        scopes: ScopeSet::default(),
        audiences: Vec::new(),
        public: false,
        jwks: None,
        access_token_format: TokenFormat::Jwt,
        access_token_ttl: TTL,
        // The id is the same every time the client is made; a random first epoch keeps the
        // tokens of a deleted one (with its environment, say) from coming back to life.
        token_epoch: random_epoch(),
        env: env.to_owned(),
        single_use_tokens: false,
        created_at: cx.now,
        user_flow: crate::model::UserFlowSettings {
            refresh_tokens: crate::model::RefreshPolicy::Never,
            ..Default::default()
        },
    };
    match cx.store.insert_client(&client).await {
        Ok(()) => Ok(client),
        // Made at the same moment by another request or node: that one's record, with its
        // own random token epoch, is the one stored, and tokens are only good under the
        // stored epoch, so it is read back (a conflicting insert makes the cache forget the
        // id, so the read reaches the database).
        // Gone again already: the environment was deleted meanwhile.
        Err(StoreError::Conflict) => cx
            .store
            .get_client(&id)
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown env")),
        // The environment was deleted between its lookup and this insert.
        Err(StoreError::Invalid(_)) => Err(OAuthError::invalid_request("unknown env")),
        Err(e) => Err(e.into()),
    }
}
