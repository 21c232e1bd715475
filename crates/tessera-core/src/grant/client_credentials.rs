//! The client credentials grant (RFC 6749 §4.4).
//!
//! Owns the steps after client authentication: the client must be confidential and allowed
//! the grant, the scope must be within the client's (none asked = the client's default), and
//! the token's subject is the client itself (RFC 9068 §2.2). No refresh token (§4.4.3).

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::types;
use crate::grant::TokenResponse;
use crate::issue::issue_access_token;
use crate::model::ClientRecord;
use crate::params::Params;
use crate::resource;
use crate::scope::ScopeSet;

/// The grant type this module handles.
pub const GRANT_TYPE: &str = types::CLIENT_CREDENTIALS;

/// This grant's row in [`crate::grant::GRANTS`].
pub const GRANT: crate::grant::Grant = crate::grant::Grant {
    grant_type: GRANT_TYPE,
    label: "client_credentials",
    handle: |cx, client, params| Box::pin(handle(cx, client, params)),
    needs_redirect_uri: false,
    public_clients: false,
    acts_for_user: false,
};

/// Issues an access token to an authenticated client.
pub async fn handle(
    cx: &Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    check_grant_allowed(client)?;
    let scope = validate_scope(client, params)?;
    let audience = resource::resolve(params, client, cx.config)?;
    let token = issue_access_token(cx, client, &client.client_id, &scope, audience, None).await?;
    Ok(TokenResponse::access_only(token))
}

fn check_grant_allowed(client: &ClientRecord) -> Result<(), OAuthError> {
    // RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    // clients."
    if client.public {
        return Err(OAuthError::unauthorized_client(
            "public clients may not use the client_credentials grant",
        ));
    }
    if !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the client_credentials grant",
        ));
    }
    Ok(())
}

fn validate_scope(client: &ClientRecord, params: &Params) -> Result<ScopeSet, OAuthError> {
    match params.get("scope")? {
        None => Ok(client.scopes.clone()),
        Some(s) => {
            let asked = ScopeSet::parse(s)?;
            // RFC 6749 §3.3: the server may fully or partially ignore a scope; Tessera refuses
            // anything outside the client's registration instead of silently narrowing.
            asked.check_within(&client.scopes)?;
            Ok(asked)
        }
    }
}
