//! Token introspection (RFC 7662).
//!
//! Owns the introspection answer. The caller must authenticate as a confidential client
//! (RFC 7662 §2.1); an inactive token gets only `{"active": false}` (§2.2).
//! A token of another deployment environment than the caller's is inactive for it (and is
//! not consumed if single-use). Claims carried from a JWT assertion are part of the answer.
//! A refresh token is active only for the client it was issued to, while it is unused,
//! unexpired and its grant stands (`token_type: "refresh_token"`).
//! Every active answer carries `iss` (RFC 7662 §2.2): for an access token, the issuer it was
//! issued as (the main issuer or a configured host, [`crate::config::Host`]); for a refresh
//! token, which keeps no such record, the issuer answering.
//!
//! The same answer may also be given as a signed JWT (RFC 9701), built by [`signed`]: the
//! route asks for it when the caller's `Accept` names `application/token-introspection+jwt`
//! (RFC 9701 §4). The JWT is signed with the server's current signing key (published in its
//! JWKS), has the header `typ: token-introspection+jwt` (§5, §8.1) and carries
//! `iss` (the issuer answering), `aud` (the authenticated caller's client id), `iat` and
//! `token_introspection`, the JSON object the plain answer would have been — `{"active":
//! false}` for an inactive token (§5). The token's own claims (`sub`, `exp`, `scope`, …)
//! are only inside `token_introspection`, never at the top level, so the response cannot
//! pass for an access token or an ID token (§5, §8.1; Tessera's access tokens must also
//! carry `typ: at+jwt`). Encrypted responses (§5, `introspection_encrypted_response_alg`)
//! are not built: a caller asking for the JWT always gets it signed, not encrypted.

use serde::Serialize;
use serde_json::json;

use crate::client_auth::{self, AuthMethod, BasicCredentials};
use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::refresh_token;
use crate::inspect::inspect_in_env;
use crate::model::ClientRecord;
use crate::opaque;
use crate::params::Params;

/// The introspection response.
#[derive(Debug, Serialize, PartialEq)]
pub struct IntrospectionResponse {
    /// Whether the token is active.
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    refresh: Option<RefreshDetails>,
    /// The client that authenticated and asked: the audience of a signed answer.
    #[serde(skip)]
    caller: String,
}

impl IntrospectionResponse {
    /// The id of the client that authenticated and asked.
    pub fn caller(&self) -> &str {
        &self.caller
    }
}

/// The answer `r` as a signed introspection response (RFC 9701 §5): a JWT with header
/// `typ: token-introspection+jwt`, signed with the server's current key, whose claims are
/// `iss`, `aud` (the caller), `iat` and `token_introspection` (the plain answer).
pub fn signed(cx: &Cx<'_>, r: &IntrospectionResponse) -> Result<String, OAuthError> {
    let key = cx
        .keys
        .signing_key(cx.now)
        .map_err(OAuthError::server_error)?;
    let answer = serde_json::to_value(r).map_err(OAuthError::server_error)?;
    let claims = json!({
        "iss": cx.config.issuer,
        "aud": r.caller,
        "iat": cx.now,
        "token_introspection": answer,
    });
    crate::jwt::encode_introspection(key, &claims).map_err(OAuthError::server_error)
}

#[derive(Debug, Serialize, PartialEq)]
struct RefreshDetails {
    scope: String,
    client_id: String,
    sub: String,
    iss: String,
    exp: i64,
    iat: i64,
    auth_time: i64,
    token_type: &'static str,
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

/// Handles an introspection request.
pub async fn handle(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<IntrospectionResponse, OAuthError> {
    params.reject_duplicates()?;
    let (caller, method) = client_auth::authenticate(cx, basic, params).await?;
    crate::profile::check_client_auth(&caller, method, params, &cx.config.issuer)?;
    if method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication",
        ));
    }
    let token = params.require("token")?;
    let inactive = IntrospectionResponse {
        active: false,
        details: None,
        refresh: None,
        caller: caller.client_id.clone(),
    };
    if token.starts_with(opaque::REFRESH_PREFIX) {
        return Ok(match refresh_details(cx, &caller, token).await? {
            Some(r) => IntrospectionResponse {
                active: true,
                details: None,
                refresh: Some(r),
                caller: caller.client_id.clone(),
            },
            None => inactive,
        });
    }
    // A token of another environment is not valid here (and a single-use one is not
    // consumed by a caller that may not see it).
    let Some(t) = inspect_in_env(cx, token, Some(&caller.env)).await? else {
        return Ok(inactive);
    };
    // A DPoP-bound token says so (RFC 9449 §6.2): its resource server must ask for a proof.
    let token_type = Confirmation::of_claims(&t.claims).map_or("Bearer", |c| c.token_type());
    Ok(IntrospectionResponse {
        active: true,
        details: Some(Details {
            scope: t.scope,
            client_id: t.client_id,
            sub: t.sub,
            aud: t.aud,
            iss: t.iss,
            exp: t.exp,
            iat: t.iat,
            jti: t.jti,
            token_type,
            env: t.env,
            claims: t.claims,
        }),
        refresh: None,
        caller: caller.client_id.clone(),
    })
}

/// What an active refresh token of `caller` says.
async fn refresh_details(
    cx: &Cx<'_>,
    caller: &ClientRecord,
    token: &str,
) -> Result<Option<RefreshDetails>, OAuthError> {
    let Some(rec) = refresh_token::find(cx, caller, token)
        .await?
        .filter(|r| r.used_at.is_none() && r.expires_at > cx.now)
    else {
        return Ok(None);
    };
    let Some(grant) = refresh_token::standing_grant(cx, caller, &rec.grant_id).await? else {
        return Ok(None);
    };
    Ok(Some(RefreshDetails {
        scope: rec.scope,
        client_id: rec.client_id,
        sub: grant.user_id,
        iss: cx.config.issuer.clone(),
        exp: rec.expires_at,
        iat: rec.issued_at,
        auth_time: grant.auth_time,
        token_type: "refresh_token",
    }))
}
