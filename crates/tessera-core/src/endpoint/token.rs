//! The token endpoint (RFC 6749 §3.2).
//!
//! Owns the order of the steps common to every grant (duplicate check, `grant_type`, client
//! authentication) and the one `match` that dispatches to a grant module.

use crate::client_auth::{self, BasicCredentials};
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::{
    authorization_code, client_credentials, jwt_bearer, refresh_token, TokenResponse,
};
use crate::model::grant_types;
use crate::params::Params;

/// Handles a token request whose body was parsed into `params`.
pub async fn handle(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §3.1: parameters MUST NOT be included more than once.
    params.reject_duplicates()?;
    let grant_type = params.require("grant_type")?;
    let (client, _method) = client_auth::authenticate(cx, basic, params).await?;
    match grant_type {
        client_credentials::GRANT_TYPE => client_credentials::handle(cx, &client, params).await,
        authorization_code::GRANT_TYPE => authorization_code::handle(cx, &client, params).await,
        refresh_token::GRANT_TYPE => refresh_token::handle(cx, &client, params).await,
        jwt_bearer::GRANT_TYPE => jwt_bearer::handle(cx, &client, params).await,
        // RFC 9700 §2.4: the resource owner password credentials grant MUST NOT be used.
        grant_types::PASSWORD => Err(OAuthError::unsupported_grant_type(
            "the password grant is not offered (RFC 9700 §2.4)",
        )),
        _ => Err(OAuthError::unsupported_grant_type(
            "this grant type is not supported",
        )),
    }
}

/// A short label for a grant type, for metrics (bounded cardinality).
pub fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        Some(grant_types::CLIENT_CREDENTIALS) => "client_credentials",
        Some(grant_types::AUTHORIZATION_CODE) => "authorization_code",
        Some(grant_types::REFRESH_TOKEN) => "refresh_token",
        Some(grant_types::JWT_BEARER) => "jwt_bearer",
        Some(_) => "other",
        None => "none",
    }
}
