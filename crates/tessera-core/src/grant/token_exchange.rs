//! The token exchange grant (RFC 8693).
//!
//! Owns the rules of an exchange at the token endpoint, after client authentication:
//! - the client must be confidential and registered for the grant;
//! - the subject token (§2.1) is one of two types: an access token of this server
//!   (`urn:ietf:params:oauth:token-type:access_token`, JWT or opaque), which must be active
//!   ([`crate::inspect::look`]) and issued to this same client in its environment; or a JWT
//!   of an issuer trusted in the client's environment
//!   (`urn:ietf:params:oauth:token-type:jwt`), checked exactly as the JWT-bearer grant checks
//!   an assertion ([`crate::grant::jwt_bearer::verify_assertion`], its `jti` used once);
//! - an actor token (`actor_token` with `actor_token_type`, both or neither, §2.1) makes the
//!   exchange a delegation: the issued token carries an `act` claim naming the actor
//!   (§4.1), nesting the subject token's own `act` when it has one (the outermost `act` is
//!   the current actor, those inside it the earlier ones), at most [`MAX_ACT_DEPTH`] deep.
//!   An access-token actor must be active and issued to this client: a client cannot act with
//!   a token it does not hold. Without an actor it is an impersonation: the token says the
//!   subject's `sub`, and keeps any `act` the subject token already had;
//! - a subject token's `may_act` claim (§4.4) names who may act for its subject: with it, a
//!   delegation's actor must be that party;
//! - `requested_token_type` (§2.1) may be an access token or a JWT (the issued token is then
//!   a JWT whatever the client's token format); any other type is refused;
//! - `resource` and `audience` can only narrow: each must be in the client's exchange policy
//!   (`token_exchange_audiences`) and, for an access-token subject, in the subject token's
//!   audience (`invalid_target`, §2.2.2). None asked: the subject token's audience (which
//!   must lie within the policy), or, for a JWT subject (whose audience is this server), the
//!   whole policy;
//! - `scope` can only narrow the subject token's scope (and the client's registration);
//!   `invalid_scope` otherwise. None asked: the subject token's scope;
//! - the issued token never outlives its subject token, dies with the user grant the subject
//!   token descends from, and carries the subject token's carried claims;
//! - a sender-constrained subject or actor token (`cnf`, RFC 9449 §6, RFC 8705 §3.1), of
//!   this server or of a trusted issuer, is taken only with proof of its key: a DPoP proof by that key, or its certificate on the
//!   connection ([`crate::sender::check_presented_binding`]); the issued token is bound to
//!   the request's key as any token the request mints;
//! - a single-use subject token is consumed by the exchange, once every rule has passed.
//!
//! A subject or actor token that is invalid, expired, revoked, another client's, of an
//! unknown type or given without its type is `invalid_request` (§2.2.2). The response names
//! `issued_token_type` and `token_type` `bearer` (§2.2.1). No refresh token is issued: the
//! client can exchange the subject token again while it is active, and a refresh token would
//! let the exchanged grant outlive the token it was derived from.

use serde_json::{Map, Value};

use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::jwt_bearer::{self, AudienceRule};
use crate::grant::types;
use crate::grant::TokenResponse;
use crate::inspect::{self, ActiveToken};
use crate::issue::{issue_access_token_with, Extras, UserGrant};
use crate::model::{ClientRecord, TokenFormat};
use crate::params::Params;
use crate::resource::Audience;
use crate::scope::ScopeSet;
use crate::sender;

/// The grant type this module handles.
pub const GRANT_TYPE: &str = types::TOKEN_EXCHANGE;

/// This grant's row in [`crate::grant::GRANTS`].
pub const GRANT: crate::grant::Grant = crate::grant::Grant {
    grant_type: GRANT_TYPE,
    label: "token_exchange",
    handle: |cx, client, params| Box::pin(handle(cx, client, params)),
    needs_redirect_uri: false,
    public_clients: false,
    acts_for_user: true,
};

/// RFC 8693 §3: an OAuth 2.0 access token issued by this server.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT (RFC 7519).
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// How deep `act` claims may nest: a longer delegation chain is refused.
pub const MAX_ACT_DEPTH: usize = 5;

/// A subject or actor token, checked.
enum Presented {
    /// An active access token of this server, issued to the exchanging client.
    Ours(ActiveToken),
    /// A verified JWT of a trusted issuer.
    Trusted(jwt_bearer::VerifiedAssertion),
}

/// Exchanges a subject token (and, for a delegation, an actor token) for a new access token.
pub async fn handle(
    cx: &Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if client.public || !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the token-exchange grant",
        ));
    }
    // §2.1: requested_token_type; the type of the token issued follows it.
    let issued_type =
        match params.get("requested_token_type")? {
            None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
            Some(JWT_TYPE) => JWT_TYPE,
            Some(_) => return Err(OAuthError::invalid_request(
                "requested_token_type must be urn:ietf:params:oauth:token-type:access_token or \
                 urn:ietf:params:oauth:token-type:jwt",
            )),
        };
    let subject_token = params.require("subject_token")?;
    let subject_type = params.require("subject_token_type")?;
    let actor = match (params.get("actor_token")?, params.get("actor_token_type")?) {
        (None, None) => None,
        (Some(t), Some(ty)) => Some((t, ty)),
        // §2.1: actor_token_type is REQUIRED when actor_token is present, and MUST NOT be
        // included otherwise.
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "actor_token_type is required with actor_token",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "actor_token_type must not be sent without actor_token",
            ))
        }
    };
    // The checks of the request's shape first; then the tokens (a trusted issuer's JWT is
    // used up by its check, as at the JWT-bearer grant, even when a later rule refuses).
    let subject = presented(cx, client, subject_token, subject_type, "subject").await?;
    let actor = match actor {
        Some((t, ty)) => Some(presented(cx, client, t, ty, "actor").await?),
        None => None,
    };
    for (role, t) in [("subject", Some(&subject)), ("actor", actor.as_ref())] {
        let bound = match t {
            Some(Presented::Ours(t)) => Confirmation::of_claims(&t.claims),
            Some(Presented::Trusted(v)) => v.confirmation.clone(),
            None => None,
        };
        sender::check_presented_binding(cx, bound.as_ref(), role)?;
    }
    let scope = narrow_scope(client, &subject, params)?;
    let audience = narrow_audience(client, &subject, params)?;
    if let Some(actor) = &actor {
        may_act(cx, &subject, actor)?;
    }
    let act = act_claim(&subject, actor.as_ref())?;

    let (sub, mut claims, grant, exp) = match &subject {
        Presented::Ours(t) => (
            t.sub.clone(),
            t.claims.clone(),
            user_grant(cx, t).await?,
            Some(t.exp),
        ),
        Presented::Trusted(v) => (v.subject.clone(), v.claims.clone(), None, None),
    };
    claims.remove("act");
    if let Some(act) = act {
        claims.insert("act".into(), act);
    }
    // The issued token never outlives its subject token.
    let ttl = exp.map(|exp| exp.saturating_sub(cx.now).min(client.access_token_ttl));
    if ttl.is_some_and(|t| t <= 0) {
        return Err(OAuthError::invalid_request("the subject_token has expired"));
    }
    // A single-use subject or actor token is used up by this exchange, and only by one.
    for t in [Some(&subject), actor.as_ref()].into_iter().flatten() {
        if let Presented::Ours(t) = t {
            if !inspect::consume(cx, t).await? {
                return Err(OAuthError::invalid_request(
                    "a presented token was already used",
                ));
            }
        }
    }
    let mut issuing = client.clone();
    if issued_type == JWT_TYPE {
        issuing.access_token_format = TokenFormat::Jwt;
    }
    let extras = Extras {
        grant: grant.as_ref().map(|(id, auth_time)| UserGrant {
            grant_id: id,
            auth_time: *auth_time,
        }),
        claims,
        ttl,
        single_use_ttl: ttl,
    };
    let token = issue_access_token_with(cx, &issuing, &sub, &scope, audience, extras).await?;
    let mut response = TokenResponse::access_only(token);
    response.issued_token_type = Some(issued_type.to_owned());
    Ok(response)
}

/// Checks a subject or actor token of the given type.
async fn presented(
    cx: &Cx<'_>,
    client: &ClientRecord,
    token: &str,
    token_type: &str,
    role: &'static str,
) -> Result<Presented, OAuthError> {
    let invalid = |why: &str| OAuthError::invalid_request(format!("the {role}_token {why}"));
    match token_type {
        ACCESS_TOKEN_TYPE => {
            let Some(found) = inspect::look(cx, token, Some(&client.env)).await? else {
                return Err(invalid("is not an active access token of this server"));
            };
            if found.client_id != client.client_id {
                return Err(invalid("was not issued to this client"));
            }
            Ok(Presented::Ours(found))
        }
        JWT_TYPE => {
            let mut verified =
                jwt_bearer::verify_assertion(cx, &client.env, token, AudienceRule::Required)
                    .await
                    .map_err(|e| {
                        OAuthError::invalid_request(format!(
                            "the {role}_token is not acceptable: {}",
                            e.description
                        ))
                    })?;
            // Only this server says who acted: a trusted issuer's claims never do.
            verified.claims.remove("act");
            Ok(Presented::Trusted(verified))
        }
        _ => Err(OAuthError::invalid_request(format!(
            "{role}_token_type must be urn:ietf:params:oauth:token-type:access_token or \
             urn:ietf:params:oauth:token-type:jwt"
        ))),
    }
}

/// The scope asked, within what the subject token carries and the client's registration;
/// none asked: all of it.
fn narrow_scope(
    client: &ClientRecord,
    subject: &Presented,
    params: &Params,
) -> Result<ScopeSet, OAuthError> {
    let carried = match subject {
        Presented::Ours(t) => ScopeSet::parse(&t.scope)?,
        Presented::Trusted(v) => v.trust.scopes.clone(),
    };
    let both: Vec<&str> = carried
        .iter()
        .filter(|s| client.scopes.contains(s))
        .collect();
    let allowed = ScopeSet::parse(&both.join(" "))?;
    match params.get("scope")? {
        None => Ok(allowed),
        Some(s) => {
            let asked = ScopeSet::parse(s)?;
            let outside = asked
                .iter()
                .find(|t| !allowed.contains(t))
                .map(|t| t.chars().take(64).collect::<String>());
            match outside {
                Some(t) => Err(OAuthError::invalid_scope(format!(
                    "scope '{t}' is not carried by the subject_token"
                ))),
                None => Ok(asked),
            }
        }
    }
}

/// The audience asked (`resource`, RFC 8707, and `audience`, RFC 8693 §2.1), within the
/// client's exchange policy and the subject token's audience.
fn narrow_audience(
    client: &ClientRecord,
    subject: &Presented,
    params: &Params,
) -> Result<Audience, OAuthError> {
    let policy = &client.user_flow.token_exchange_audiences;
    let carried: Option<&[String]> = match subject {
        Presented::Ours(t) => Some(t.aud.values()),
        Presented::Trusted(_) => None,
    };
    let mut asked: Vec<String> = params.get_all("resource").map(str::to_owned).collect();
    if let Some(a) = params.get("audience")? {
        asked.extend(a.split(' ').filter(|v| !v.is_empty()).map(str::to_owned));
    }
    if asked.is_empty() {
        asked = carried.map_or_else(|| policy.clone(), <[String]>::to_vec);
    }
    if asked.is_empty() {
        return Err(OAuthError::invalid_target(
            "this client may not exchange tokens for any audience",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(asked.len());
    for a in asked {
        let shown = a.chars().take(100).collect::<String>();
        if !policy.contains(&a) {
            return Err(OAuthError::invalid_target(format!(
                "this client may not exchange tokens for audience '{shown}'"
            )));
        }
        if carried.is_some_and(|c| !c.contains(&a)) {
            return Err(OAuthError::invalid_target(format!(
                "audience '{shown}' is not carried by the subject_token"
            )));
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(Audience::many(out))
}

/// RFC 8693 §4.4: a subject token's `may_act` claim names the party that may act for its
/// subject; with one, the actor of a delegation must be that party. Each claim it gives must
/// match the actor's: `sub`, and `iss` when given (this server's own issuer for an access
/// token of this server, the trusted issuer for a JWT). A `may_act` that is not an object, or
/// that names a claim this server cannot check of an actor, refuses the delegation rather
/// than being half-honoured. Without `may_act` any actor the client holds may act.
fn may_act(cx: &Cx<'_>, subject: &Presented, actor: &Presented) -> Result<(), OAuthError> {
    let allowed = match subject {
        Presented::Ours(t) => t.claims.get("may_act"),
        Presented::Trusted(v) => v.may_act.as_ref(),
    };
    let Some(allowed) = allowed else {
        return Ok(());
    };
    let refused = || {
        OAuthError::invalid_request(
            "the actor_token's party is not the one the subject_token's may_act claim names",
        )
    };
    let Some(allowed) = allowed.as_object() else {
        return Err(refused());
    };
    let (iss, sub) = match actor {
        Presented::Ours(t) => (cx.config.issuer.as_str(), t.sub.as_str()),
        Presented::Trusted(v) => (v.trust.issuer.as_str(), v.subject.as_str()),
    };
    if allowed.is_empty() {
        return Err(refused());
    }
    for (name, value) in allowed {
        let matches = match name.as_str() {
            "sub" => value.as_str() == Some(sub),
            "iss" => value.as_str() == Some(iss),
            _ => false,
        };
        if !matches {
            return Err(refused());
        }
    }
    Ok(())
}

/// The `act` claim of the issued token (RFC 8693 §4.1): the actor, with the subject token's
/// own `act` nested inside; without an actor, the subject token's `act` as it was.
fn act_claim(subject: &Presented, actor: Option<&Presented>) -> Result<Option<Value>, OAuthError> {
    let prior = match subject {
        Presented::Ours(t) => t.claims.get("act").cloned(),
        Presented::Trusted(_) => None,
    };
    let Some(actor) = actor else {
        return Ok(prior);
    };
    let mut act = Map::new();
    match actor {
        Presented::Ours(t) => {
            act.insert("sub".into(), t.sub.clone().into());
        }
        Presented::Trusted(v) => {
            act.insert("iss".into(), v.trust.issuer.clone().into());
            act.insert("sub".into(), v.subject.clone().into());
        }
    }
    if let Some(prior) = prior {
        if depth(&prior) >= MAX_ACT_DEPTH {
            return Err(OAuthError::invalid_request(format!(
                "the delegation chain would be longer than {MAX_ACT_DEPTH} actors"
            )));
        }
        act.insert("act".into(), prior);
    }
    Ok(Some(Value::Object(act)))
}

/// How many actors an `act` claim names.
fn depth(act: &Value) -> usize {
    let mut n = 0;
    let mut cur = Some(act);
    while let Some(Value::Object(m)) = cur {
        n += 1;
        cur = m.get("act");
    }
    n
}

/// The user grant a subject token descends from, and when its user signed in.
async fn user_grant(cx: &Cx<'_>, t: &ActiveToken) -> Result<Option<(String, i64)>, OAuthError> {
    let Some(id) = &t.grant_id else {
        return Ok(None);
    };
    let auth_time = match t.auth_time {
        Some(a) => a,
        None => cx.store.get_grant(id).await?.map_or(t.iat, |g| g.auth_time),
    };
    Ok(Some((id.clone(), auth_time)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_depth_of_an_act_claim_counts_its_actors() {
        assert_eq!(depth(&json!({"sub": "a"})), 1);
        assert_eq!(depth(&json!({"sub": "a", "act": {"sub": "b"}})), 2);
        assert_eq!(depth(&json!("a")), 0);
    }
}
