//! Token revocation (RFC 7009): only the owner's request revokes; anything else is answered
//! with success and changes nothing (§2.2); a refresh token revokes its whole grant (§2.1).

use tessera_core::error::ErrorCode;
use tessera_core::model::{RefreshPolicy, TokenFormat};

use crate::support::*;

#[test]
fn only_the_owner_revokes_and_everyone_gets_success() {
    let w = World::new();
    let caller = w.client(|_| {});
    let intruder = w.client(|_| {});
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = w.client(|c| c.access_token_format = format);
        let token = at(&w
            .token(&c, &[("grant_type", "client_credentials")])
            .unwrap());
        // RFC 7009 §2.1: issued to another client: success, token untouched.
        assert!(w.revoke(&intruder, &token).is_ok());
        assert!(
            w.active(&caller, &token),
            "{format:?}: another client's request"
        );
        assert!(w.revoke(&c, &token).is_ok());
        assert!(
            !w.active(&caller, &token),
            "{format:?}: the owner's request"
        );
        assert!(w.revoke(&c, &token).is_ok(), "{format:?}: twice");
    }
    assert!(
        w.revoke(&caller, "no-such-token").is_ok(),
        "an unknown token"
    );
    let hint = World::params(&caller, &[("token", "x"), ("token_type_hint", "nonsense")]);
    assert!(run(tessera_core::endpoint::revoke::handle(&w.cx(), None, &hint)).is_ok());
}

#[test]
fn requests_refused() {
    let w = World::new();
    let c = w.client(|_| {});
    let wrong = Creds {
        id: c.id.clone(),
        secret: Some("wrong".into()),
    };
    assert_eq!(
        code_of("a wrong secret", w.revoke(&wrong, "x")),
        ErrorCode::InvalidClient
    );
    let no_token = World::params(&c, &[]);
    refused(
        "no token",
        run(tessera_core::endpoint::revoke::handle(
            &w.cx(),
            None,
            &no_token,
        )),
        ErrorCode::InvalidRequest,
        "token",
    );
}

#[test]
fn revoking_a_refresh_token_revokes_its_grant_and_access_tokens() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let other = w.code_client(|_| {});
    let caller = w.client(|_| {});
    let alice = w.user("alice");
    let t0 = w.tokens(&c, &alice, "openid");
    let t1 = w.refresh(&c, &rt(&t0), &[]).unwrap();
    // Another client's request changes nothing.
    assert!(w.revoke(&other, &rt(&t1)).is_ok());
    assert!(w.active(&caller, &at(&t1)));
    assert!(w.revoke(&c, &rt(&t1)).is_ok());
    for t in [&t0, &t1] {
        assert!(!w.active(&caller, &at(t)));
    }
    assert!(w.refresh(&c, &rt(&t1), &[]).is_err());
    // Revoking an access token of a grant leaves the grant.
    let t = w.tokens(&c, &alice, "openid");
    w.revoke(&c, &at(&t)).unwrap();
    assert!(w.refresh(&c, &rt(&t), &[]).is_ok());
}

#[test]
fn looking_a_single_use_token_up_does_not_consume_it() {
    let w = World::new();
    let c = w.client(|c| c.single_use_tokens = true);
    let intruder = w.client(|_| {});
    let caller = w.client(|_| {});
    let token = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    assert!(w.revoke(&intruder, &token).is_ok());
    assert!(
        w.active(&caller, &token),
        "still unused after another client's revocation"
    );
}
