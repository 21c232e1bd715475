//! The token endpoint (RFC 6749 §3.2).
//!
//! Owns the order of the steps common to every grant (duplicate check, `grant_type`, client
//! authentication, then the sender constraint of [`crate::sender::bind`]) and the dispatch to a grant module through [`crate::grant::GRANTS`]; a
//! response through a dialect is shaped by it ([`TokenResponse::through`]: its `token_type`
//! label, `wid`). The body styles a dialect accepts are checked by the HTTP layer, which
//! knows the request's media type ([`crate::dialect::Dialect::check_style`]).

use crate::client_auth::{self, BasicCredentials};
use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::types;
use crate::grant::{self, TokenResponse};
use crate::params::Params;
use crate::sender;

/// Handles a token request whose body was parsed into `params`.
pub async fn handle(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §3.1: parameters MUST NOT be included more than once.
    params.reject_duplicates()?;
    let grant_type = params.require("grant_type")?;
    let (client, method) = client_auth::authenticate(cx, basic, params).await?;
    // RFC 9449 §5, RFC 8705 §3: what the tokens this request mints are bound to.
    let mut bound = cx.clone();
    bound.confirmation = sender::bind(cx, &client, method, params).await?;
    match grant::find(grant_type) {
        Some(grant) => {
            let mut response = (grant.handle)(&bound, &client, params)
                .await?
                .through(cx.dialect);
            // RFC 9449 §5: a DPoP-bound token is of type DPoP, whatever a dialect calls it.
            if let Some(c @ Confirmation::Jkt(_)) = &bound.confirmation {
                c.token_type().clone_into(&mut response.token_type);
            }
            Ok(response)
        }
        // RFC 9700 §2.4: the resource owner password credentials grant MUST NOT be used.
        None if grant_type == types::PASSWORD => Err(OAuthError::unsupported_grant_type(
            "the password grant is not offered (RFC 9700 §2.4)",
        )),
        None => Err(OAuthError::unsupported_grant_type(
            "this grant type is not supported",
        )),
    }
}

/// A short label for a grant type, for metrics (bounded cardinality).
pub fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        Some(g) => grant::find(g).map_or("other", |g| g.label),
        None => "none",
    }
}
