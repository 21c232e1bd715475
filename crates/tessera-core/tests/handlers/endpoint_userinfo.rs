//! The UserInfo endpoint (OpenID Connect Core §5.3): claims by scope, for an active token
//! issued for a user, meant for this server, with `openid`.

use serde_json::json;
use tessera_core::endpoint::userinfo;
use tessera_core::error::ErrorCode;
use tessera_core::store::UserStore;

use crate::support::*;

fn ask(w: &World, token: Option<&str>) -> Result<serde_json::Value, tessera_core::OAuthError> {
    run(userinfo::handle(
        &w.cx(),
        token.map(|t| (t, userinfo::Scheme::Bearer)),
    ))
    .map(serde_json::Value::Object)
    .map_err(|r| r.error)
}

#[test]
fn claims_are_released_by_scope() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    for (scope, want) in [
        ("openid", json!({"sub": alice.user_id})),
        (
            "openid profile",
            json!({"sub": alice.user_id, "preferred_username": "alice", "name": "User alice"}),
        ),
        (
            "openid email",
            json!({"sub": alice.user_id, "email": "alice@example.com", "email_verified": false}),
        ),
    ] {
        let t = w.tokens(&c, &alice, scope);
        assert_eq!(ask(&w, Some(&at(&t))).unwrap(), want, "{scope}");
    }
}

#[test]
fn tokens_refused() {
    let w = World::new();
    let c = w.code_client(|c| {
        c.audiences = vec!["https://api.example.com".into(), ISSUER.into()];
        c.access_token_ttl = 60;
    });
    let cc = w.client(|_| {});
    let alice = w.user("alice");
    let for_api = {
        let code = w.code(&c, &alice, "openid");
        at(&w
            .exchange(&c, &code, &[("resource", "https://api.example.com")])
            .unwrap())
    };
    let for_us = {
        let code = w.code(&c, &alice, "openid");
        at(&w.exchange(&c, &code, &[("resource", ISSUER)]).unwrap())
    };
    let without_openid = at(&w.tokens(&c, &alice, "read"));
    let client_token = at(&w
        .token(&cc, &[("grant_type", "client_credentials")])
        .unwrap());
    let rows: Vec<(&str, Option<&str>, ErrorCode, &str)> = vec![
        ("no token", None, ErrorCode::InvalidToken, "required"),
        (
            "garbage",
            Some("garbage"),
            ErrorCode::InvalidToken,
            "invalid",
        ),
        (
            "a client credentials token",
            Some(&client_token),
            ErrorCode::InvalidToken,
            "not issued for a user",
        ),
        (
            "a token for another resource (RFC 9068 §4)",
            Some(&for_api),
            ErrorCode::InvalidToken,
            "another resource",
        ),
        (
            "a token without openid",
            Some(&without_openid),
            ErrorCode::InsufficientScope,
            "openid",
        ),
    ];
    for (case, token, code, why) in rows {
        refused(case, ask(&w, token), code, why);
    }
    assert!(ask(&w, Some(&for_us)).is_ok(), "a token naming the issuer");
    w.advance(60);
    refused(
        "expired",
        ask(&w, Some(&for_us)),
        ErrorCode::InvalidToken,
        "expired",
    );
}

#[test]
fn a_deleted_users_tokens_are_refused() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let t = w.tokens(&c, &alice, "openid");
    assert!(run(w.store.delete_user(&alice.user_id, w.now())).unwrap());
    assert_eq!(
        code_of("deleted user", ask(&w, Some(&at(&t)))),
        ErrorCode::InvalidToken
    );
}

#[test]
fn a_single_use_token_is_consumed_only_by_a_request_that_passes() {
    let w = World::new();
    let c = w.code_client(|c| c.single_use_tokens = true);
    let alice = w.user("alice");
    let t = w.tokens(&c, &alice, "openid");
    assert!(ask(&w, Some(&at(&t))).is_ok());
    assert_eq!(
        code_of("second use", ask(&w, Some(&at(&t)))),
        ErrorCode::InvalidToken
    );
    let read_only = w.tokens(&c, &alice, "read");
    assert!(ask(&w, Some(&at(&read_only))).is_err(), "no openid");
    let caller = w.client(|_| {});
    assert!(
        w.active(&caller, &at(&read_only)),
        "the refusal did not use it up"
    );
}
