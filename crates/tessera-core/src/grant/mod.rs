//! Grants at the token endpoint.
//!
//! Owns [`TokenResponse`] (RFC 6749 §5.1) and one module per grant type. The token endpoint
//! dispatches to them with one exhaustive `match` (see [`crate::endpoint::token`]).

pub mod authorization_code;
pub mod client_credentials;
pub mod jwt_bearer;
pub mod refresh_token;
mod user_tokens;

use serde::Serialize;

use crate::secret::Secret;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// Token type; Tessera issues bearer tokens (RFC 6750).
    pub token_type: &'static str,
    /// Lifetime of the access token, seconds.
    pub expires_in: i64,
    /// Granted scope (RFC 6749 §5.1: included as it may differ from the request).
    pub scope: String,
    /// A refresh token (RFC 6749 §6), for grants that act for a user.
    pub refresh_token: Option<Secret>,
    /// An OpenID Connect ID token, when the scope includes `openid`.
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// A response with an access token only.
    pub fn access_only(token: crate::issue::IssuedToken) -> Self {
        Self {
            access_token: token.access_token,
            token_type: "bearer",
            expires_in: token.expires_in,
            scope: token.scope.to_string(),
            refresh_token: None,
            id_token: None,
        }
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    access_token: &'a str,
    token_type: &'a str,
    expires_in: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

impl TokenResponse {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Wire {
            access_token: self.access_token.expose(),
            token_type: self.token_type,
            expires_in: self.expires_in,
            scope: &self.scope,
            refresh_token: self.refresh_token.as_ref().map(Secret::expose),
            id_token: self.id_token.as_deref(),
        })
        .unwrap_or_default()
    }
}
