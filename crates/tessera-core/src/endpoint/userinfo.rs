//! The UserInfo endpoint (OpenID Connect Core §5.3).
//!
//! Owns the rule: a bearer access token that is active, was issued for a user (it belongs to
//! a grant), is meant for this server and carries the `openid` scope gets the user's claims
//! that its scope releases. "Meant for this server" (RFC 9068 §4, RFC 8707 §2): its `aud`
//! names the issuer, the UserInfo URL or the server's default audience (what a token
//! requested for no particular resource gets, see [`crate::resource`]); a token restricted
//! to other APIs is refused. A certificate-bound token must come over a connection with its
//! certificate (RFC 8705 §3, [`crate::mtls::check_presented`]). A single-use token is consumed only once every rule passed.

use serde_json::{Map, Value};

use super::{path, EndpointId};
use crate::audience::Audience;
use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::id_token::user_claims;
use crate::inspect::{consume, look};
use crate::scope::ScopeSet;

/// Whether a token of audience `aud` is meant for the UserInfo endpoint.
pub fn audience_allows_userinfo(cx: &Cx<'_>, aud: &Audience) -> bool {
    let config = cx.config;
    aud.contains(&config.issuer)
        || aud.contains(&config.endpoint(path(EndpointId::Userinfo)))
        || aud.contains(&config.default_audience)
}

/// Answers a userinfo request carrying `bearer` (the token from the Authorization header).
pub async fn handle(cx: &Cx<'_>, bearer: Option<&str>) -> Result<Map<String, Value>, OAuthError> {
    let token = bearer.ok_or_else(|| OAuthError::invalid_token("a bearer token is required"))?;
    let invalid = || OAuthError::invalid_token("the access token is invalid, expired or revoked");
    let active = look(cx, token, None).await?.ok_or_else(invalid)?;
    // A certificate-bound token comes with its certificate (RFC 8705 §3).
    if let Some(c @ Confirmation::X5tS256(_)) = Confirmation::of_claims(&active.claims) {
        crate::mtls::check_presented(cx, &c)?;
    }
    if active.grant_id.is_none() {
        return Err(OAuthError::invalid_token(
            "the access token was not issued for a user",
        ));
    }
    if !audience_allows_userinfo(cx, &active.aud) {
        return Err(OAuthError::invalid_token(
            "the access token is meant for another resource (RFC 9068 §4)",
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
    if !consume(cx, &active).await? {
        return Err(invalid());
    }
    Ok(user_claims(&user, &scope))
}
