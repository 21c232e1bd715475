//! Token introspection (RFC 7662).
//!
//! Owns the introspection answer. The caller must authenticate as a confidential client
//! (RFC 7662 §2.1, SECURITY row 34); an inactive token gets only `{"active": false}` (§2.2).
//! A token of another deployment environment than the caller's is inactive for it (and is
//! not consumed if single-use). Claims carried from a JWT assertion are part of the answer.

use serde::Serialize;

use crate::client_auth::{self, AuthMethod, BasicCredentials};
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::inspect::inspect;
use crate::params::Params;

/// The introspection response.
#[derive(Debug, Serialize, PartialEq)]
pub struct IntrospectionResponse {
    /// Whether the token is active.
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

#[derive(Debug, Serialize, PartialEq)]
struct Details {
    scope: String,
    client_id: String,
    sub: String,
    aud: crate::resource::Audience,
    iss: String,
    exp: i64,
    iat: i64,
    jti: String,
    token_type: &'static str,
    env: String,
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl IntrospectionResponse {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"active":false}"#.to_owned())
    }
}

/// Handles an introspection request.
pub async fn handle(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<IntrospectionResponse, OAuthError> {
    params.reject_duplicates()?;
    let (caller, method) = client_auth::authenticate(cx, basic, params).await?;
    if method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication",
        ));
    }
    let token = params.require("token")?;
    let inactive = IntrospectionResponse {
        active: false,
        details: None,
    };
    // A token of another environment is not valid here; checked before `inspect`, so that a
    // single-use token is not consumed by a caller that may not see it.
    if token_env(cx, token)
        .await?
        .is_some_and(|env| env != caller.env)
    {
        return Ok(inactive);
    }
    let Some(t) = inspect(cx, token).await? else {
        return Ok(inactive);
    };
    if t.env != caller.env {
        return Ok(inactive);
    }
    Ok(IntrospectionResponse {
        active: true,
        details: Some(Details {
            scope: t.scope,
            client_id: t.client_id,
            sub: t.sub,
            aud: t.aud,
            iss: cx.config.issuer.clone(),
            exp: t.exp,
            iat: t.iat,
            jti: t.jti,
            token_type: "Bearer",
            env: t.env,
            claims: t.claims,
        }),
    })
}

/// The environment a token claims, read without consuming it: from a JWT's verified claims
/// or an opaque token's row. `None` when the token is not ours anyway.
async fn token_env(cx: &Cx<'_>, token: &str) -> Result<Option<String>, OAuthError> {
    if crate::jwt::looks_like_jwt(token) {
        return Ok(crate::inspect::verified_claims(cx, token).map(|c| c.env.clone()));
    }
    let Some(id) = crate::opaque::selector(token) else {
        return Ok(None);
    };
    Ok(cx.store.get_token(id).await?.map(|r| r.env))
}
