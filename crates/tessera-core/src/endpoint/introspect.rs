//! Token introspection (RFC 7662).
//!
//! Owns the introspection answer. The caller must authenticate as a confidential client
//! (RFC 7662 §2.1, SECURITY row 34); an inactive token gets only `{"active": false}` (§2.2).

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
    let (_caller, method) = client_auth::authenticate(cx, basic, params).await?;
    if method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication",
        ));
    }
    let token = params.require("token")?;
    let Some(t) = inspect(cx, token).await? else {
        return Ok(IntrospectionResponse {
            active: false,
            details: None,
        });
    };
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
        }),
    })
}
