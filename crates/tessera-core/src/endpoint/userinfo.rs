//! The UserInfo endpoint (OpenID Connect Core §5.3).
//!
//! Owns the rule: a bearer access token that is active, was issued for a user (it belongs to
//! a grant), is meant for this server and carries the `openid` scope gets the user's claims
//! that its scope releases. "Meant for this server" (RFC 9068 §4, RFC 8707 §2): its `aud`
//! names the issuer, the UserInfo URL or the server's default audience (what a token
//! requested for no particular resource gets, see [`crate::resource`]); a token restricted
//! to other APIs is refused. A single-use token is consumed only once every rule passed.
//!
//! A DPoP-bound token (RFC 9449 §7) is taken only with the `DPoP` scheme and a proof by its
//! key that carries its hash (`ath`); presented as a bearer token it is refused, and the
//! `DPoP` scheme with a token bound to no key is refused too. Such refusals are marked for a
//! `DPoP` challenge ([`Refusal::dpop`], §7.1).

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

/// How the access token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (RFC 6750 §2.1), or a header a dialect names.
    Bearer,
    /// `Authorization: DPoP`, with a `DPoP` proof header (RFC 9449 §7.1).
    Dpop,
}

/// A refused userinfo request: the error, and whether its challenge is DPoP's (RFC 9449
/// §7.1) rather than Bearer's.
#[derive(Debug)]
pub struct Refusal {
    /// The error.
    pub error: OAuthError,
    /// The answer challenges with the `DPoP` scheme.
    pub dpop: bool,
}

impl From<OAuthError> for Refusal {
    fn from(error: OAuthError) -> Self {
        Refusal { error, dpop: false }
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(error: crate::store::StoreError) -> Self {
        OAuthError::from(error).into()
    }
}

fn dpop_refusal(error: OAuthError) -> Refusal {
    Refusal { error, dpop: true }
}

/// Answers a userinfo request carrying `presented` (the token from the Authorization header
/// and its scheme).
pub async fn handle(
    cx: &Cx<'_>,
    presented: Option<(&str, Scheme)>,
) -> Result<Map<String, Value>, Refusal> {
    let (token, scheme) =
        presented.ok_or_else(|| OAuthError::invalid_token("an access token is required"))?;
    let invalid = || OAuthError::invalid_token("the access token is invalid, expired or revoked");
    let active = match look(cx, token, None).await? {
        Some(a) => a,
        None if scheme == Scheme::Dpop => return Err(dpop_refusal(invalid())),
        None => return Err(invalid().into()),
    };
    match (Confirmation::of_claims(&active.claims), scheme) {
        (Some(Confirmation::Jkt(jkt)), Scheme::Dpop) => {
            let input = cx.request.dpop.as_ref().ok_or_else(|| {
                dpop_refusal(OAuthError::invalid_dpop_proof("a DPoP proof is required"))
            })?;
            let proof = crate::dpop::check(cx, input, Some(token))
                .await
                .map_err(dpop_refusal)?;
            if proof.jkt != jkt {
                return Err(dpop_refusal(OAuthError::invalid_token(
                    "the DPoP proof's key is not the one the access token is bound to",
                )));
            }
        }
        (Some(Confirmation::Jkt(_)), Scheme::Bearer) => {
            return Err(dpop_refusal(OAuthError::invalid_token(
                "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
            )))
        }
        (_, Scheme::Dpop) => {
            return Err(dpop_refusal(OAuthError::invalid_token(
                "the access token is not DPoP-bound: present it as a bearer token",
            )))
        }
        (_, Scheme::Bearer) => {}
    }
    if active.grant_id.is_none() {
        return Err(OAuthError::invalid_token("the access token was not issued for a user").into());
    }
    if !audience_allows_userinfo(cx, &active.aud) {
        return Err(OAuthError::invalid_token(
            "the access token is meant for another resource (RFC 9068 §4)",
        )
        .into());
    }
    let scope = ScopeSet::parse(&active.scope)?;
    if !scope.contains("openid") {
        return Err(OAuthError::new(
            crate::error::ErrorCode::InsufficientScope,
            "the access token lacks the openid scope",
        )
        .into());
    }
    let user = cx.store.get_user(&active.sub).await?.ok_or_else(invalid)?;
    if !consume(cx, &active).await? {
        return Err(invalid().into());
    }
    Ok(user_claims(&user, &scope))
}
