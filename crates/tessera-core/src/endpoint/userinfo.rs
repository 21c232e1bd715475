//! The UserInfo endpoint (OpenID Connect Core §5.3).
//!
//! Owns the rule: a bearer access token that is active, was issued for a user (it belongs to
//! a grant) and carries the `openid` scope gets the user's claims that its scope releases.

use serde_json::{Map, Value};

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::id_token::user_claims;
use crate::inspect::inspect;
use crate::scope::ScopeSet;

/// Answers a userinfo request carrying `bearer` (the token from the Authorization header).
pub async fn handle(cx: &Cx<'_>, bearer: Option<&str>) -> Result<Map<String, Value>, OAuthError> {
    let token = bearer.ok_or_else(|| OAuthError::invalid_token("a bearer token is required"))?;
    let invalid = || OAuthError::invalid_token("the access token is invalid, expired or revoked");
    let active = inspect(cx, token).await?.ok_or_else(invalid)?;
    if active.grant_id.is_none() {
        return Err(OAuthError::invalid_token(
            "the access token was not issued for a user",
        ));
    }
    let scope = ScopeSet::parse(&active.scope)?;
    if !scope.contains("openid") {
        return Err(OAuthError::new(
            crate::error::ErrorCode::InsufficientScope,
            "the access token lacks the openid scope",
        ));
    }
    let user = cx.store.get_user(&active.sub).await?.ok_or_else(invalid)?;
    Ok(user_claims(&user, &scope))
}
