//! Minting access tokens.
//!
//! Owns [`issue_access_token`]: one access token for a client and subject, in the client's
//! format. A JWT (RFC 9068) is signed by the current key and not stored; an opaque token is
//! 256 random bits, stored (durably, before the caller answers) only as its hash.

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

/// Mints an access token for `client`, on behalf of `subject`, with `scope`.
pub async fn issue_access_token(
    cx: &Cx<'_>,
    client: &ClientRecord,
    subject: &str,
    scope: &ScopeSet,
    audience: Audience,
    grant: Option<UserGrant<'_>>,
) -> Result<IssuedToken, OAuthError> {
    let ttl = client
        .access_token_ttl
        .clamp(1, cx.config.max_access_token_ttl);
    let exp = cx.now + ttl;
    let jti = jwt::make_jti(client.token_epoch);
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
            };
            Secret::new(jwt::encode(key, &claims).map_err(OAuthError::server_error)?)
        }
        TokenFormat::Opaque => {
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
