//! The token exchange grant (RFC 8693) at the token endpoint: subject tokens of both types,
//! impersonation and delegation (`act`, nested), `requested_token_type` and
//! `issued_token_type`, narrowing of scope and audience, the client's exchange policy, and
//! the refusals: wrong token types, revoked, expired, used or another client's tokens, and
//! attempts to widen what the subject token carries.

use serde_json::{json, Value};
use tessera_core::error::ErrorCode;
use tessera_core::grant::token_exchange::{ACCESS_TOKEN_TYPE, JWT_TYPE, MAX_ACT_DEPTH};
use tessera_core::grant::types as grant_types;
use tessera_core::grant::TokenResponse;
use tessera_core::model::TokenFormat;
use tessera_core::scope::ScopeSet;

use crate::grant_jwt_bearer::claims;
use crate::support::*;

const API_A: &str = "https://api-a.example.com";
const API_B: &str = "https://api-b.example.com";
const API_C: &str = "https://api-c.example.com";

/// A vendor backend: gets user tokens with the JWT-bearer grant (scope `read write`, audience
/// A and B) and client-credentials tokens for itself, and may exchange for A, B and C.
fn vendor_client(w: &World) -> Creds {
    w.client(|c| {
        c.grant_types = vec![
            grant_types::JWT_BEARER.into(),
            grant_types::CLIENT_CREDENTIALS.into(),
            grant_types::TOKEN_EXCHANGE.into(),
        ];
        c.audiences = vec![API_A.into(), API_B.into()];
        c.user_flow.token_exchange_audiences = vec![API_A.into(), API_B.into(), API_C.into()];
    })
}

struct Setup {
    w: World,
    signer: Signer,
    c: Creds,
}

fn setup() -> Setup {
    let w = World::new();
    let signer = w.trust("default", |t, _| {
        t.scopes = ScopeSet::parse("read write").unwrap();
    });
    let c = vendor_client(&w);
    Setup { w, signer, c }
}

impl Setup {
    /// A user token for `user-1` (scope `read write`, audience A and B) from the JWT-bearer
    /// grant.
    fn user_token(&self) -> String {
        self.user_token_for(&self.c)
    }

    fn user_token_for(&self, c: &Creds) -> String {
        let r = self
            .w
            .token(
                c,
                &[
                    ("grant_type", grant_types::JWT_BEARER),
                    ("assertion", &self.signer.sign(&claims(&self.w))),
                ],
            )
            .unwrap();
        at(&r)
    }

    /// A client-credentials token of `c` (its subject is the client).
    fn own_token(&self, c: &Creds) -> String {
        at(&self
            .w
            .token(c, &[("grant_type", grant_types::CLIENT_CREDENTIALS)])
            .unwrap())
    }

    fn exchange(
        &self,
        subject: &str,
        extra: &[(&str, &str)],
    ) -> Result<TokenResponse, tessera_core::OAuthError> {
        self.exchange_by(&self.c, subject, ACCESS_TOKEN_TYPE, extra)
    }

    fn exchange_by(
        &self,
        c: &Creds,
        subject: &str,
        subject_type: &str,
        extra: &[(&str, &str)],
    ) -> Result<TokenResponse, tessera_core::OAuthError> {
        let mut pairs = vec![
            ("grant_type", grant_types::TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", subject_type),
        ];
        pairs.extend_from_slice(extra);
        self.w.token(c, &pairs)
    }
}

#[test]
fn an_impersonation_narrows_the_user_token_to_one_api() {
    let s = setup();
    let subject = s.user_token();
    let r = s
        .exchange(&subject, &[("audience", API_A), ("scope", "read")])
        .unwrap();
    assert_eq!(r.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(r.token_type, "bearer");
    assert_eq!(r.scope, "read");
    assert!(r.refresh_token.is_none());
    let t = payload(&at(&r));
    assert_eq!(t["sub"], "user-1");
    assert_eq!(t["aud"], API_A);
    assert_eq!(t["scope"], "read");
    assert_eq!(t["client_id"], s.c.id.as_str());
    // The subject token's carried claims go with it; no actor, no act.
    assert_eq!(t["anyflow_team_id"], "team-9");
    assert!(t.get("act").is_none());
    // Never beyond the subject token.
    assert!(t["exp"].as_i64().unwrap() <= payload(&subject)["exp"].as_i64().unwrap());
    // `resource` (RFC 8707) narrows as `audience` does.
    let r = s.exchange(&subject, &[("resource", API_B)]).unwrap();
    assert_eq!(payload(&at(&r))["aud"], API_B);
    // None asked: what the subject token carries.
    let r = s.exchange(&subject, &[]).unwrap();
    let t = payload(&at(&r));
    assert_eq!(t["aud"], json!([API_A, API_B]));
    assert_eq!(t["scope"], "read write");
}

#[test]
fn the_exchanged_token_never_outlives_its_subject_token() {
    let s = setup();
    let subject = s.user_token();
    let subject_exp = payload(&subject)["exp"].as_i64().unwrap();
    s.w.advance(3000);
    let r = s.exchange(&subject, &[]).unwrap();
    assert_eq!(r.expires_in, subject_exp - s.w.now());
    assert_eq!(payload(&at(&r))["exp"].as_i64().unwrap(), subject_exp);
}

#[test]
fn scope_and_audience_only_narrow() {
    let s = setup();
    let subject = s.user_token();
    let narrow = at(&s
        .exchange(&subject, &[("audience", API_A), ("scope", "read")])
        .unwrap());
    for (case, extra, code, why) in [
        (
            "a scope the subject token lacks",
            vec![("scope", "read admin")],
            ErrorCode::InvalidScope,
            "admin",
        ),
        (
            "an API in the policy but not in the subject token",
            vec![("audience", API_C)],
            ErrorCode::InvalidTarget,
            "not carried by the subject_token",
        ),
        (
            "an API outside the policy",
            vec![("resource", "https://other.example.com")],
            ErrorCode::InvalidTarget,
            "may not exchange",
        ),
        (
            "one good and one widening",
            vec![("resource", API_A), ("resource", API_C)],
            ErrorCode::InvalidTarget,
            "",
        ),
    ] {
        refused(case, s.exchange(&subject, &extra), code, why);
    }
    // A narrowed token cannot be exchanged back to the wider one.
    refused(
        "widen the scope of a narrowed token",
        s.exchange(&narrow, &[("scope", "read write")]),
        ErrorCode::InvalidScope,
        "write",
    );
    refused(
        "widen the audience of a narrowed token",
        s.exchange(&narrow, &[("audience", API_B)]),
        ErrorCode::InvalidTarget,
        "",
    );
}

#[test]
fn the_policy_names_the_audiences_a_client_may_exchange_for() {
    let s = setup();
    let subject = s.user_token();
    // Audience B leaves the policy: exchanging for it, or for all the subject token
    // carries, is refused; for A it still works.
    s.w.update_client(&s.c, |c| {
        c.user_flow.token_exchange_audiences = vec![API_A.into()];
    });
    refused(
        "B is out of the policy",
        s.exchange(&subject, &[("audience", API_B)]),
        ErrorCode::InvalidTarget,
        "may not exchange",
    );
    refused(
        "the default (A and B) is out of the policy",
        s.exchange(&subject, &[]),
        ErrorCode::InvalidTarget,
        "may not exchange",
    );
    assert!(s.exchange(&subject, &[("audience", API_A)]).is_ok());
    // No policy: no exchange at all.
    s.w.update_client(&s.c, |c| c.user_flow.token_exchange_audiences.clear());
    refused(
        "no policy",
        s.exchange(&subject, &[("audience", API_A)]),
        ErrorCode::InvalidTarget,
        "",
    );
}

#[test]
fn only_clients_registered_for_the_grant_exchange() {
    let s = setup();
    let subject = s.user_token();
    s.w.update_client(&s.c, |c| {
        c.grant_types.retain(|g| g != grant_types::TOKEN_EXCHANGE);
    });
    refused(
        "not registered",
        s.exchange(&subject, &[]),
        ErrorCode::UnauthorizedClient,
        "token-exchange",
    );
}

#[test]
fn malformed_requests_and_wrong_token_types() {
    let s = setup();
    let subject = s.user_token();
    let vendor_jwt = s.signer.sign(&claims(&s.w));
    let actor = s.own_token(&s.c);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "an unknown subject_token_type",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                ),
            ],
        ),
        (
            "no subject_token_type",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
            ],
        ),
        (
            "no subject_token",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        (
            "a refresh token asked for",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
        ),
        (
            "an ID token asked for",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        ),
        (
            "actor_token without its type",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token", &actor),
            ],
        ),
        (
            "actor_token_type without a token",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        (
            "a trusted issuer's JWT said to be our access token",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &vendor_jwt),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        (
            "our access token said to be a trusted issuer's JWT",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", JWT_TYPE),
            ],
        ),
        (
            "garbage",
            vec![
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", "not-a-token"),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
    ];
    for (case, pairs) in cases {
        assert_eq!(
            code_of(case, s.w.token(&s.c, &pairs)),
            ErrorCode::InvalidRequest,
            "{case}"
        );
    }
}

#[test]
fn revoked_expired_and_foreign_subject_tokens_are_refused() {
    let s = setup();
    let revoked = s.user_token();
    s.w.revoke(&s.c, &revoked).unwrap();
    refused(
        "revoked",
        s.exchange(&revoked, &[]),
        ErrorCode::InvalidRequest,
        "not an active access token",
    );
    let other = vendor_client(&s.w);
    let theirs = s.user_token_for(&other);
    refused(
        "another client's token",
        s.exchange(&theirs, &[]),
        ErrorCode::InvalidRequest,
        "not issued to this client",
    );
    let expiring = s.user_token();
    s.w.advance(3600);
    refused(
        "expired",
        s.exchange(&expiring, &[]),
        ErrorCode::InvalidRequest,
        "not an active access token",
    );
}

#[test]
fn a_token_of_another_environment_is_refused() {
    let s = setup();
    // Makes the environment.
    s.w.trust("staging", |_, _| {});
    let staging = s.w.client(|c| {
        c.env = "staging".into();
        c.grant_types = vec![grant_types::TOKEN_EXCHANGE.into()];
        c.user_flow.token_exchange_audiences = vec![API_A.into()];
    });
    let subject = s.user_token();
    refused(
        "another environment",
        s.exchange_by(&staging, &subject, ACCESS_TOKEN_TYPE, &[]),
        ErrorCode::InvalidRequest,
        "not an active access token",
    );
}

#[test]
fn delegation_names_the_actor_and_nests_earlier_ones() {
    let s = setup();
    let subject = s.user_token();
    let actor = s.own_token(&s.c);
    let r = s
        .exchange(
            &subject,
            &[
                ("actor_token", &actor),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
                ("audience", API_A),
            ],
        )
        .unwrap();
    let first = at(&r);
    let t = payload(&first);
    assert_eq!(t["sub"], "user-1");
    assert_eq!(t["act"], json!({"sub": s.c.id}));
    // Delegating the delegated token again, with a trusted issuer's JWT as the actor.
    let vendor_actor = s.signer.sign(&edited_sub(claims(&s.w), "service-7"));
    let r = s
        .exchange(
            &first,
            &[
                ("actor_token", &vendor_actor),
                ("actor_token_type", JWT_TYPE),
            ],
        )
        .unwrap();
    let second = at(&r);
    assert_eq!(
        payload(&second)["act"],
        json!({"iss": VENDOR, "sub": "service-7", "act": {"sub": s.c.id}})
    );
    // An impersonation keeps the chain the subject token already has.
    let r = s.exchange(&second, &[]).unwrap();
    assert_eq!(payload(&at(&r))["act"], payload(&second)["act"]);
    // Introspection shows the actor.
    let seen = s.w.introspect(&s.c, &second).unwrap();
    assert_eq!(seen["active"], true);
    assert_eq!(seen["act"]["sub"], "service-7");
    assert_eq!(seen["act"]["act"]["sub"], s.c.id.as_str());
}

fn edited_sub(mut claims: Value, sub: &str) -> Value {
    claims["sub"] = sub.into();
    claims
}

#[test]
fn a_delegation_chain_has_a_bounded_length() {
    let s = setup();
    let mut token = s.user_token();
    for _ in 0..MAX_ACT_DEPTH {
        let actor = s.own_token(&s.c);
        token = at(&s
            .exchange(
                &token,
                &[
                    ("actor_token", &actor),
                    ("actor_token_type", ACCESS_TOKEN_TYPE),
                ],
            )
            .unwrap());
    }
    let actor = s.own_token(&s.c);
    refused(
        "one actor too many",
        s.exchange(
            &token,
            &[
                ("actor_token", &actor),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        ErrorCode::InvalidRequest,
        "delegation chain",
    );
}

#[test]
fn an_actor_token_the_client_does_not_hold_is_refused() {
    let s = setup();
    let subject = s.user_token();
    let other = vendor_client(&s.w);
    let theirs = s.own_token(&other);
    refused(
        "another client's actor token",
        s.exchange(
            &subject,
            &[
                ("actor_token", &theirs),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        ErrorCode::InvalidRequest,
        "actor_token was not issued to this client",
    );
    let revoked = s.own_token(&s.c);
    s.w.revoke(&s.c, &revoked).unwrap();
    refused(
        "a revoked actor token",
        s.exchange(
            &subject,
            &[
                ("actor_token", &revoked),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        ),
        ErrorCode::InvalidRequest,
        "actor_token is not an active",
    );
}

#[test]
fn a_trusted_issuers_jwt_is_a_subject_token_once() {
    let s = setup();
    let jwt = s.signer.sign(&claims(&s.w));
    let r = s
        .exchange_by(
            &s.c,
            &jwt,
            JWT_TYPE,
            &[("audience", API_C), ("scope", "read")],
        )
        .unwrap();
    let t = payload(&at(&r));
    assert_eq!(t["sub"], "user-1");
    assert_eq!(t["aud"], API_C);
    assert_eq!(t["anyflow_team_id"], "team-9");
    // Its jti is used up, as for the JWT-bearer grant.
    refused(
        "replayed",
        s.exchange_by(&s.c, &jwt, JWT_TYPE, &[]),
        ErrorCode::InvalidRequest,
        "already used",
    );
    // None asked: the whole policy; a scope beyond the trust registration is refused.
    let r = s
        .exchange_by(&s.c, &s.signer.sign(&claims(&s.w)), JWT_TYPE, &[])
        .unwrap();
    assert_eq!(payload(&at(&r))["aud"], json!([API_A, API_B, API_C]));
    refused(
        "beyond the trust registration",
        s.exchange_by(
            &s.c,
            &s.signer.sign(&claims(&s.w)),
            JWT_TYPE,
            &[("scope", "admin")],
        ),
        ErrorCode::InvalidScope,
        "",
    );
    // A JWT claiming an actor of its own does not put it in the token.
    let with_act = s.signer.sign(&json!({
        "iss": VENDOR, "sub": "user-1", "aud": format!("{ISSUER}/oauth2/token"),
        "exp": s.w.now() + 300, "iat": s.w.now(), "jti": "j-act",
        "act": {"sub": "someone-else"},
    }));
    let r = s.exchange_by(&s.c, &with_act, JWT_TYPE, &[]).unwrap();
    assert!(payload(&at(&r)).get("act").is_none());
}

#[test]
fn may_act_names_the_only_party_that_may_act_for_the_subject() {
    let s = setup();
    let jti = std::cell::Cell::new(0);
    let subject = |may_act: Value| {
        jti.set(jti.get() + 1);
        s.signer.sign(&json!({
            "iss": VENDOR, "sub": "user-1", "aud": format!("{ISSUER}/oauth2/token"),
            "exp": s.w.now() + 300, "iat": s.w.now(), "jti": format!("may-act-{}", jti.get()),
            "may_act": may_act,
        }))
    };
    let actor = |sub: &str| {
        jti.set(jti.get() + 1);
        let mut c = edited_sub(claims(&s.w), sub);
        c["jti"] = json!(format!("actor-{}", jti.get()));
        s.signer.sign(&c)
    };
    let delegate = |subject: &str, actor: &str| {
        s.exchange_by(
            &s.c,
            subject,
            JWT_TYPE,
            &[("actor_token", actor), ("actor_token_type", JWT_TYPE)],
        )
    };
    // The party named acts; with its issuer named too.
    let r = delegate(&subject(json!({"sub": "service-7"})), &actor("service-7")).unwrap();
    assert_eq!(
        payload(&at(&r))["act"],
        json!({"iss": VENDOR, "sub": "service-7"})
    );
    delegate(
        &subject(json!({"iss": VENDOR, "sub": "service-7"})),
        &actor("service-7"),
    )
    .unwrap();
    // Anyone else is refused: another subject, another issuer, a claim that cannot be
    // checked, a may_act that is not an object or names nothing.
    for (case, may_act) in [
        ("another party", json!({"sub": "service-8"})),
        (
            "another issuer",
            json!({"iss": "https://other.example", "sub": "service-7"}),
        ),
        (
            "an unchecked claim",
            json!({"sub": "service-7", "email": "a@example.com"}),
        ),
        ("not an object", json!("service-7")),
        ("an empty object", json!({})),
    ] {
        refused(
            case,
            delegate(&subject(may_act), &actor("service-7")),
            ErrorCode::InvalidRequest,
            "may_act",
        );
    }
    // An access token of this server as the actor: this server is its issuer.
    let own = |may_act: Value| {
        s.exchange_by(
            &s.c,
            &subject(may_act),
            JWT_TYPE,
            &[
                ("actor_token", &s.own_token(&s.c)),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
    };
    own(json!({"iss": ISSUER, "sub": s.c.id})).unwrap();
    refused(
        "this server's token, the vendor's issuer",
        own(json!({"iss": VENDOR, "sub": s.c.id})),
        ErrorCode::InvalidRequest,
        "may_act",
    );
    // Without an actor, may_act does not stand in the way of an impersonation.
    s.exchange_by(&s.c, &subject(json!({"sub": "service-8"})), JWT_TYPE, &[])
        .unwrap();
}

#[test]
fn opaque_subject_tokens_and_the_requested_type() {
    let s = setup();
    s.w.update_client(&s.c, |c| c.access_token_format = TokenFormat::Opaque);
    let subject = s.user_token();
    assert!(!subject.contains('.'));
    let r = s.exchange(&subject, &[("audience", API_A)]).unwrap();
    assert_eq!(r.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
    let issued = at(&r);
    assert!(!issued.contains('.'));
    let seen = s.w.introspect(&s.c, &issued).unwrap();
    assert_eq!(seen["sub"], "user-1");
    assert_eq!(seen["aud"], API_A);
    // A JWT asked for: a JWT, whatever the client's format.
    let r = s
        .exchange(&subject, &[("requested_token_type", JWT_TYPE)])
        .unwrap();
    assert_eq!(r.issued_token_type.as_deref(), Some(JWT_TYPE));
    assert_eq!(payload(&at(&r))["sub"], "user-1");
    // The opaque subject token, once revoked, is refused.
    s.w.revoke(&s.c, &subject).unwrap();
    assert_eq!(
        code_of("revoked opaque", s.exchange(&subject, &[])),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn a_single_use_subject_token_is_used_up_by_the_exchange() {
    let s = setup();
    s.w.update_client(&s.c, |c| c.single_use_tokens = true);
    let subject = s.user_token();
    // A refused exchange does not use it.
    assert!(s.exchange(&subject, &[("audience", API_C)]).is_err());
    assert!(s.exchange(&subject, &[]).is_ok());
    refused(
        "used",
        s.exchange(&subject, &[]),
        ErrorCode::InvalidRequest,
        "",
    );
}

#[test]
fn a_public_client_cannot_exchange() {
    let s = setup();
    let public = s.w.client(|c| {
        c.public = true;
        c.grant_types = vec![grant_types::TOKEN_EXCHANGE.into()];
        c.user_flow.token_exchange_audiences = vec![API_A.into()];
    });
    let subject = s.user_token();
    assert_eq!(
        code_of(
            "public",
            s.exchange_by(&public, &subject, ACCESS_TOKEN_TYPE, &[])
        ),
        ErrorCode::UnauthorizedClient
    );
}

#[test]
fn an_exchanged_user_token_dies_with_the_users_grant() {
    let w = World::new();
    let c = w.code_client(|c| {
        c.grant_types.push(grant_types::TOKEN_EXCHANGE.into());
        c.user_flow.refresh_tokens = tessera_core::model::RefreshPolicy::Always;
        c.user_flow.token_exchange_audiences = vec![ISSUER.into()];
    });
    let user = w.user("alice");
    let tokens = w.tokens(&c, &user, "openid read");
    let r = w
        .token(
            &c,
            &[
                ("grant_type", grant_types::TOKEN_EXCHANGE),
                ("subject_token", &at(&tokens)),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("scope", "read"),
            ],
        )
        .unwrap();
    let exchanged = at(&r);
    assert_eq!(payload(&exchanged)["sub"], user.user_id.as_str());
    assert!(r.id_token.is_none() && r.refresh_token.is_none());
    assert!(w.active(&c, &exchanged));
    // Revoking the refresh token revokes the grant, and every token descending from it.
    w.revoke(&c, &rt(&tokens)).unwrap();
    assert!(!w.active(&c, &exchanged));
}
