//! Minting access tokens.
//!
//! Owns [`issue_access_token`]: one access token for a client and subject, in the client's
//! format. A JWT (RFC 9068) is signed by the current key and not stored; an opaque token is
//! 256 random bits, stored (durably, before the caller answers) only as its hash. Every token
//! carries the client's deployment environment, and is single-use when the client or its
//! environment says so ([`crate::inspect`] consumes it). Claims carried from an assertion
//! ([`Extras`]) never replace a registered claim ([`jwt::REGISTERED_CLAIMS`]). A token issued
//! through a dialect with an `access_token_ttl` lives that long (capped by the server's
//! maximum) unless the grant sets a lifetime of its own.

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::jwt::{self, AccessClaims};
use crate::model::{ClientRecord, TokenFormat, TokenRecord};
use crate::opaque;
use crate::resource::Audience;
use crate::scope::ScopeSet;
use crate::secret::Secret;

/// A freshly minted access token.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token itself.
    pub access_token: Secret,
    /// Lifetime, seconds.
    pub expires_in: i64,
    /// Granted scope.
    pub scope: ScopeSet,
}

/// The user grant a token is issued under, for tokens that act for a user.
#[derive(Debug, Clone, Copy)]
pub struct UserGrant<'a> {
    /// The grant (token family) id.
    pub grant_id: &'a str,
    /// When the user signed in.
    pub auth_time: i64,
}

/// What a grant adds to a token beyond the client's registration.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    /// The user grant, for tokens that act for a user.
    pub grant: Option<UserGrant<'a>>,
    /// Claims carried from an assertion; registered claims among them are dropped.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Lifetime instead of the client's, seconds.
    pub ttl: Option<i64>,
    /// Lifetime instead of the usual one when the token is single-use, seconds.
    pub single_use_ttl: Option<i64>,
}

/// Mints an access token for `client`, on behalf of `subject`, with `scope`.
pub async fn issue_access_token(
    cx: &Cx<'_>,
    client: &ClientRecord,
    subject: &str,
    scope: &ScopeSet,
    audience: Audience,
    grant: Option<UserGrant<'_>>,
) -> Result<IssuedToken, OAuthError> {
    let extras = Extras {
        grant,
        ..Extras::default()
    };
    issue_access_token_with(cx, client, subject, scope, audience, extras).await
}

/// [`issue_access_token`] with what a grant adds.
pub async fn issue_access_token_with(
    cx: &Cx<'_>,
    client: &ClientRecord,
    subject: &str,
    scope: &ScopeSet,
    audience: Audience,
    extras: Extras<'_>,
) -> Result<IssuedToken, OAuthError> {
    let grant = extras.grant;
    let single_use = client.single_use_tokens
        || cx
            .store
            .get_env(&client.env)
            .await?
            .is_some_and(|e| e.single_use_tokens);
    // A lifetime the grant sets wins; else the dialect's the request came through.
    let ttl_override = extras.ttl.or(cx.dialect.and_then(|d| d.access_token_ttl));
    let ttl = match (single_use, extras.single_use_ttl, ttl_override) {
        (true, Some(t), _) | (_, _, Some(t)) => t,
        _ => client.access_token_ttl,
    }
    .clamp(1, cx.config.max_access_token_ttl);
    let exp = cx.now + ttl;
    let jti = jwt::make_jti(client.token_epoch);
    let mut carried = extras.claims;
    carried.retain(|k, _| !jwt::REGISTERED_CLAIMS.contains(&k.as_str()));
    // A sender-constrained token carries its key (RFC 9449 §6, RFC 8705 §3.1); an opaque
    // one keeps it with its stored claims, which introspection returns.
    if let Some(c) = &cx.confirmation {
        carried.insert("cnf".into(), c.cnf());
    }
    let access_token = match client.access_token_format {
        TokenFormat::Jwt => {
            let key = cx
                .keys
                .signing_key(cx.now)
                .map_err(OAuthError::server_error)?;
            let claims = AccessClaims {
                iss: cx.config.issuer.clone(),
                sub: subject.to_owned(),
                aud: audience,
                client_id: client.client_id.clone(),
                scope: scope.to_string(),
                jti,
                iat: cx.now,
                exp,
                auth_time: grant.map(|g| g.auth_time),
                gid: grant.map(|g| g.grant_id.to_owned()),
                env: client.env.clone(),
                single_use,
                extra: carried,
            };
            Secret::new(jwt::encode(key, &claims).map_err(OAuthError::server_error)?)
        }
        TokenFormat::Opaque => {
            // The issuer is kept with the token when it is a host's, for introspection.
            if cx.config.issuer != cx.config.main_issuer() {
                carried.insert("iss".into(), cx.config.issuer.clone().into());
            }
            let (token, token_id) = opaque::mint(exp);
            cx.store
                .insert_token(&TokenRecord {
                    token_id,
                    token_hash: token.hash(),
                    jti,
                    client_id: client.client_id.clone(),
                    subject: subject.to_owned(),
                    scope: scope.to_string(),
                    audience,
                    issued_at: cx.now,
                    expires_at: exp,
                    token_epoch: client.token_epoch,
                    revoked_at: None,
                    grant_id: grant.map(|g| g.grant_id.to_owned()),
                    env: client.env.clone(),
                    claims: (!carried.is_empty())
                        .then(|| serde_json::Value::Object(carried).to_string()),
                    single_use,
                })
                .await?;
            token
        }
    };
    Ok(IssuedToken {
        access_token,
        expires_in: ttl,
        scope: scope.clone(),
    })
}
