//! Sender constraint at the token endpoint: which key the tokens of a request are bound to.
//!
//! Owns [`bind`], which the token endpoint runs right after client authentication: a request
//! with a `DPoP` header gets its proof checked in full ([`crate::dpop::check`]) and every
//! access token it mints bound to the proof's key (RFC 9449 §5, `cnf.jkt`); a client
//! registered with `dpop_bound_access_tokens` that sends no proof is refused (§5.2); without
//! a proof, a client binding its tokens to its certificate gets them bound to the one of the
//! connection (RFC 8705 §3, [`crate::mtls::certificate_binding`]). Owns
//! [`refresh_binding`] and [`check_refresh_binding`]: a public client's refresh tokens are
//! bound to the key of the proof that started the family, and each refresh must prove
//! possession of that same key (§5: "refresh tokens issued to public clients MUST be bound to
//! the DPoP key"); a confidential client's are bound by its authentication already, so it may
//! present a new key at each refresh. And [`check_code_binding`]: a code requested with
//! `dpop_jkt` (§10) is exchanged only with a proof by that key. And
//! [`check_presented_binding`]: a sender-constrained token presented as a token exchange's
//! subject or actor (RFC 8693 §2.1) is taken only from the holder of its key, so that the
//! exchange cannot turn a bound token into an unbound one.

use crate::client_auth::AuthMethod;
use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::dpop;
use crate::error::OAuthError;
use crate::model::ClientRecord;
use crate::params::Params;

/// The binding of the tokens a token request mints, or its refusal.
pub async fn bind(
    cx: &Cx<'_>,
    client: &ClientRecord,
    _method: AuthMethod,
    _params: &Params,
) -> Result<Option<Confirmation>, OAuthError> {
    if let Some(input) = &cx.request.dpop {
        let proof = dpop::check(cx, input, None).await?;
        return Ok(Some(Confirmation::Jkt(proof.jkt)));
    }
    if client.user_flow.dpop_bound_access_tokens {
        return Err(OAuthError::invalid_dpop_proof(
            "this client's access tokens are DPoP-bound: a DPoP proof is required",
        ));
    }
    // Without a proof: the certificate of the connection, for a client binding its tokens
    // to it (RFC 8705 §3).
    Ok(crate::mtls::certificate_binding(cx, client))
}

/// The DPoP key a new family's refresh tokens are bound to: the request's, for a public
/// client (RFC 9449 §5).
pub fn refresh_binding(cx: &Cx<'_>, client: &ClientRecord) -> Option<String> {
    match &cx.confirmation {
        Some(Confirmation::Jkt(jkt)) if client.public => Some(jkt.clone()),
        _ => None,
    }
}

/// Refuses a refresh of a family bound to a DPoP key unless the request proves possession
/// of that key (RFC 9449 §5).
pub fn check_refresh_binding(cx: &Cx<'_>, bound: Option<&str>) -> Result<(), OAuthError> {
    let Some(want) = bound else {
        return Ok(());
    };
    match &cx.confirmation {
        Some(Confirmation::Jkt(have)) if have == want => Ok(()),
        Some(Confirmation::Jkt(_)) => Err(OAuthError::invalid_grant(
            "the refresh token is bound to another DPoP key",
        )),
        _ => Err(OAuthError::invalid_dpop_proof(
            "the refresh token is DPoP-bound: a DPoP proof with its key is required",
        )),
    }
}

/// Refuses a code exchange whose authorization request named a `dpop_jkt` unless the
/// request's proof is by that key (RFC 9449 §10).
pub fn check_code_binding(cx: &Cx<'_>, dpop_jkt: Option<&str>) -> Result<(), OAuthError> {
    let Some(want) = dpop_jkt else {
        return Ok(());
    };
    match &cx.confirmation {
        Some(Confirmation::Jkt(have)) if have == want => Ok(()),
        Some(Confirmation::Jkt(_)) => Err(OAuthError::invalid_grant(
            "the DPoP proof's key is not the dpop_jkt of the authorization request",
        )),
        _ => Err(OAuthError::invalid_dpop_proof(
            "the authorization request named a dpop_jkt: a DPoP proof with that key is required",
        )),
    }
}

/// Refuses a token exchange (RFC 8693 §2.1) whose subject or actor token (`role`) is
/// sender-constrained unless the request proves possession of the same key: a DPoP proof by
/// the key its `cnf.jkt` names (RFC 9449 §6), or, for `cnf.x5t#S256`, the certificate it
/// names presented on the connection (RFC 8705 §3). Otherwise the holder of a stolen bound
/// token and of the client's credentials could exchange it for an unbound one. A bound token
/// is refused as the exchange's tokens are (`invalid_request`, §2.2.2), or with
/// `invalid_dpop_proof` when no proof came at all.
pub fn check_presented_binding(
    cx: &Cx<'_>,
    bound: Option<&Confirmation>,
    role: &str,
) -> Result<(), OAuthError> {
    match bound {
        None => Ok(()),
        Some(Confirmation::Jkt(want)) => match &cx.confirmation {
            Some(Confirmation::Jkt(have))
                if bool::from(subtle::ConstantTimeEq::ct_eq(
                    have.as_bytes(),
                    want.as_bytes(),
                )) =>
            {
                Ok(())
            }
            Some(Confirmation::Jkt(_)) => Err(OAuthError::invalid_request(format!(
                "the {role}_token is bound to another DPoP key than this request's proof"
            ))),
            _ => Err(OAuthError::invalid_dpop_proof(format!(
                "the {role}_token is DPoP-bound: a DPoP proof with its key is required"
            ))),
        },
        Some(bound @ Confirmation::X5tS256(_)) => {
            crate::mtls::check_presented(cx, bound).map_err(|_| {
                OAuthError::invalid_request(format!(
                    "the {role}_token is bound to a client certificate this request did not \
                     present"
                ))
            })
        }
    }
}
