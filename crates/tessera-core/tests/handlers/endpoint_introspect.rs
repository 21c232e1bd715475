//! Token introspection (RFC 7662): who may ask, what an active token's answer says, and
//! every reason a token is inactive, for access tokens of both formats and refresh tokens.

use serde_json::json;
use tessera_core::endpoint::introspect;
use tessera_core::error::ErrorCode;
use tessera_core::model::{RefreshPolicy, TokenFormat};
use tessera_core::store::{ClientStore, TrustStore};

use crate::support::*;

#[test]
fn an_active_access_token_is_described_in_either_format() {
    let w = World::new();
    let caller = w.client(|_| {});
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = w.client(|c| {
            c.access_token_format = format;
            c.audiences = vec!["https://api.example.com".into()];
        });
        let token = at(&w
            .token(
                &c,
                &[("grant_type", "client_credentials"), ("scope", "read")],
            )
            .unwrap());
        let got = w.introspect(&caller, &token).unwrap();
        let active = w.look(&token).unwrap();
        assert_eq!(
            got,
            json!({
                "active": true,
                "scope": "read",
                "client_id": c.id,
                "sub": c.id,
                "aud": "https://api.example.com",
                "iss": ISSUER,
                "exp": T0 + 3600,
                "iat": T0,
                "jti": active.jti,
                "token_type": "Bearer",
                "env": "default",
            }),
            "{format:?}"
        );
    }
}

#[test]
fn inactive_tokens_say_only_that() {
    let w = World::new();
    let caller = w.client(|_| {});
    run(w.store.ensure_env("staging", w.now())).unwrap();
    let staging_caller = w.client(|c| c.env = "staging".into());
    let inactive = json!({"active": false});
    let cc = [("grant_type", "client_credentials")];
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = w.client(|c| {
            c.access_token_format = format;
            c.access_token_ttl = 60;
        });
        let fresh = || at(&w.token(&c, &cc).unwrap());
        assert_eq!(w.introspect(&caller, "garbage").unwrap(), inactive);
        assert_eq!(
            w.introspect(&staging_caller, &fresh()).unwrap(),
            inactive,
            "{format:?}: a token of another environment"
        );
        let revoked = fresh();
        w.revoke(&c, &revoked).unwrap();
        assert_eq!(
            w.introspect(&caller, &revoked).unwrap(),
            inactive,
            "{format:?}: revoked"
        );
        let expiring = fresh();
        w.advance(59);
        assert!(
            w.active(&caller, &expiring),
            "{format:?}: a second before exp"
        );
        w.advance(1);
        assert_eq!(
            w.introspect(&caller, &expiring).unwrap(),
            inactive,
            "{format:?}: expired"
        );
        let epoch = fresh();
        assert!(run(w.store.revoke_client_tokens(&c.id, w.now())).unwrap());
        assert_eq!(
            w.introspect(&caller, &epoch).unwrap(),
            inactive,
            "{format:?}: epoch moved"
        );
        let orphan = at(&w.token(&c, &cc).unwrap());
        assert!(run(w.store.delete_client(&c.id, w.now())).unwrap());
        assert_eq!(
            w.introspect(&caller, &orphan).unwrap(),
            inactive,
            "{format:?}: client gone"
        );
    }
}

#[test]
fn callers_must_authenticate() {
    let w = World::new();
    let c = w.client(|_| {});
    let token = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    let public = w.code_client(|c| c.public = true);
    refused(
        "a public client (RFC 7662 §2.1)",
        w.introspect(&public, &token),
        ErrorCode::InvalidClient,
        "requires client authentication",
    );
    let wrong = Creds {
        id: c.id.clone(),
        secret: Some("wrong".into()),
    };
    assert_eq!(
        code_of("a wrong secret", w.introspect(&wrong, &token)),
        ErrorCode::InvalidClient
    );
    let params = World::params(&c, &[]);
    refused(
        "no token",
        run(tessera_core::endpoint::introspect::handle(
            &w.cx(),
            None,
            &params,
        )),
        ErrorCode::InvalidRequest,
        "token",
    );
}

#[test]
fn a_single_use_token_is_active_once_and_only_for_its_environment() {
    let w = World::new();
    run(w.store.ensure_env("staging", w.now())).unwrap();
    let c = w.client(|c| c.single_use_tokens = true);
    let caller = w.client(|_| {});
    let elsewhere = w.client(|c| c.env = "staging".into());
    let token = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    assert!(!w.active(&elsewhere, &token), "not for another environment");
    assert!(w.active(&caller, &token), "…which did not consume it");
    assert!(!w.active(&caller, &token), "consumed by the first check");
    // An environment made single-use makes its tokens so.
    assert!(run(w.store.set_env_single_use("staging", true, w.now())).unwrap());
    let s = w.client(|c| c.env = "staging".into());
    let token = at(&w
        .token(&s, &[("grant_type", "client_credentials")])
        .unwrap());
    assert!(w.active(&elsewhere, &token));
    assert!(!w.active(&elsewhere, &token));
}

#[test]
fn a_refresh_token_is_active_only_for_its_client_until_rotated() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let other = w.code_client(|_| {});
    let alice = w.user("alice");
    let t = w.tokens(&c, &alice, "openid read");
    let token = rt(&t);
    let got = w.introspect(&c, &token).unwrap();
    assert_eq!(
        got,
        json!({
            "active": true,
            "scope": "openid read",
            "client_id": c.id,
            "sub": alice.user_id,
            "iss": ISSUER,
            "exp": T0 + 30 * 86_400,
            "iat": T0,
            "auth_time": T0,
            "token_type": "refresh_token",
        })
    );
    assert!(!w.active(&other, &token), "another client");
    w.refresh(&c, &token, &[]).unwrap();
    assert!(!w.active(&c, &token), "rotated out");
}

#[test]
fn carried_claims_are_part_of_the_answer() {
    let w = World::new();
    let signer = w.trust("default", |_, _| {});
    let c = crate::grant_jwt_bearer::bearer_client(&w, "default");
    let assertion = signer.sign(&crate::grant_jwt_bearer::claims(&w));
    let r = w
        .token(
            &c,
            &[
                ("grant_type", tessera_core::grant::types::JWT_BEARER),
                ("assertion", &assertion),
            ],
        )
        .unwrap();
    let got = w.introspect(&c, &at(&r)).unwrap();
    assert_eq!(got["anyflow_team_id"], "team-9");
    assert_eq!(got["sub"], "user-1");
}

/// The payload and header of a signed introspection response, after checking its signature
/// with the key its `kid` names.
fn open_signed(w: &World, jwt: &str) -> (serde_json::Value, serde_json::Value) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let cx = w.cx();
    let (signing_input, sig) = jwt.rsplit_once('.').unwrap();
    let (header, payload) = signing_input.split_once('.').unwrap();
    let part = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    let header = part(header);
    let key = cx
        .keys
        .verifier(header["kid"].as_str().unwrap(), cx.now)
        .unwrap();
    assert_eq!(header["alg"], key.alg.as_str());
    assert!(key.verify(
        signing_input.as_bytes(),
        &URL_SAFE_NO_PAD.decode(sig).unwrap()
    ));
    (header, part(payload))
}

#[test]
fn a_signed_answer_wraps_the_plain_one_for_the_caller() {
    let w = World::new();
    let caller = w.client(|_| {});
    let c = w.client(|_| {});
    let token = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    for (label, t) in [("active", token.as_str()), ("unknown", "not-a-token")] {
        let params = World::params(&caller, &[("token", t)]);
        let r = run(introspect::handle(&w.cx(), None, &params)).unwrap();
        assert_eq!(r.caller(), caller.id, "{label}");
        let jwt = introspect::signed(&w.cx(), &r).unwrap();
        let (header, claims) = open_signed(&w, &jwt);
        assert_eq!(header["typ"], "token-introspection+jwt", "{label}");
        assert_eq!(
            claims,
            json!({
                "iss": ISSUER,
                "aud": caller.id,
                "iat": T0,
                "token_introspection": serde_json::to_value(&r).unwrap(),
            }),
            "{label}"
        );
    }
    let params = World::params(&caller, &[("token", "not-a-token")]);
    let r = run(introspect::handle(&w.cx(), None, &params)).unwrap();
    let (_, claims) = open_signed(&w, &introspect::signed(&w.cx(), &r).unwrap());
    assert_eq!(claims["token_introspection"], json!({"active": false}));
}

#[test]
fn a_signed_answer_passes_for_no_token_the_server_accepts() {
    let w = World::new();
    let caller = w.client(|_| {});
    let c = w.client(|_| {});
    let token = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    let params = World::params(&caller, &[("token", token.as_str())]);
    let r = run(introspect::handle(&w.cx(), None, &params)).unwrap();
    let jwt = introspect::signed(&w.cx(), &r).unwrap();
    let cx = w.cx();
    // Not an access token (its typ is not at+jwt) ...
    assert!(
        tessera_core::jwt::verify(cx.keys, &jwt, ISSUER, cx.now)
            == Err(tessera_core::jwt::JwtError::Header)
    );
    assert_eq!(
        w.introspect(&caller, &jwt).unwrap(),
        json!({"active": false})
    );
    // ... nor an ID token hint (it has no top-level sub).
    assert!(tessera_core::id_token::verify_hint(cx.keys, &jwt, cx.config, cx.now).is_none());
}
