//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14): who may refresh, the scope, the family's absolute lifetime from sign-in, the idle
//! lifetime, the grace period for a repeated refresh, and what ends a family.

use tessera_core::error::ErrorCode;
use tessera_core::grant::types as grant_types;
use tessera_core::model::RefreshPolicy;
use tessera_core::store::ClientStore;

use crate::support::*;

/// A code-flow client that always gets refresh tokens, with `f` applied, and a first set of
/// tokens for a new user signed in now.
fn family(
    w: &World,
    f: impl FnOnce(&mut tessera_core::model::ClientRecord),
) -> (Creds, tessera_core::grant::TokenResponse) {
    let c = w.code_client(|c| {
        c.user_flow.refresh_tokens = RefreshPolicy::Always;
        f(c);
    });
    let user = w.user(&format!("u{}", tessera_core::secret::generate_id()));
    let t = w.tokens(&c, &user, "openid read");
    (c, t)
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let w = World::new();
    let (c, t0) = family(&w, |_| {});
    let rt0 = rt(&t0);
    let t1 = w.refresh(&c, &rt0, &[]).unwrap();
    let rt1 = rt(&t1);
    assert_ne!(rt0, rt1);
    assert!(t1.id_token.is_some(), "openid in the scope");
    assert_eq!(t1.scope, "openid read");
    let t2 = w.refresh(&c, &rt1, &[]).unwrap();
    let rt2 = rt(&t2);
    assert!(w.look(&at(&t2)).is_some());
    // rt0 was rotated out: presenting it again revokes everything of the family.
    refused(
        "a rotated-out token",
        w.refresh(&c, &rt0, &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    for t in [&t0, &t1, &t2] {
        assert!(w.look(&at(t)).is_none(), "every access token of the family");
    }
    refused(
        "the newest refresh token dies too",
        w.refresh(&c, &rt2, &[]),
        ErrorCode::InvalidGrant,
        "",
    );
}

#[test]
fn requests_and_their_outcomes() {
    let w = World::new();
    let (c, t) = family(&w, |_| {});
    let other_code_client = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let cc_client = w.client(|_| {});
    let never = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Never);
    let token = rt(&t);
    let rows: Vec<(&str, &Creds, Vec<(&str, &str)>, ErrorCode)> = vec![
        (
            "another code-flow client's token (RFC 6749 §6: bound to its client)",
            &other_code_client,
            vec![("refresh_token", &token)],
            ErrorCode::InvalidGrant,
        ),
        (
            "a client registered for neither refresh_token nor the code flow",
            &cc_client,
            vec![("refresh_token", &token)],
            ErrorCode::UnauthorizedClient,
        ),
        (
            "a client whose refresh policy is never",
            &never,
            vec![("refresh_token", &token)],
            ErrorCode::UnauthorizedClient,
        ),
        (
            "a wider scope than granted",
            &c,
            vec![("refresh_token", &token), ("scope", "openid read email")],
            ErrorCode::InvalidScope,
        ),
        (
            "a resource not registered",
            &c,
            vec![
                ("refresh_token", &token),
                ("resource", "https://elsewhere.example"),
            ],
            ErrorCode::InvalidTarget,
        ),
        ("no refresh token", &c, vec![], ErrorCode::InvalidRequest),
        (
            "a token that was never issued",
            &c,
            vec![("refresh_token", "trt_00000000000000000000000000000000abc")],
            ErrorCode::InvalidGrant,
        ),
        (
            "something that is not a refresh token",
            &c,
            vec![("refresh_token", "not-a-token")],
            ErrorCode::InvalidGrant,
        ),
    ];
    for (case, by, extra, code) in rows {
        let mut pairs = vec![("grant_type", "refresh_token")];
        pairs.extend(extra);
        assert_eq!(code_of(case, w.token(by, &pairs)), code, "{case}");
    }
    // None of these refusals used the token up.
    let narrowed = w.refresh(&c, &token, &[("scope", "read")]).unwrap();
    assert_eq!(narrowed.scope, "read");
    assert!(narrowed.id_token.is_none());
    // RFC 6749 §6: the new refresh token keeps the scope of the old one.
    let wide = w.refresh(&c, &rt(&narrowed), &[]).unwrap();
    assert_eq!(wide.scope, "openid read");
}

#[test]
fn the_refresh_lifetime_is_absolute_from_sign_in() {
    // Moved from the end-to-end test that refreshed every 700 ms under a 3 s lifetime.
    let w = World::new();
    let (c, t) = family(&w, |c| c.user_flow.refresh_token_ttl = 3);
    let caller = w.client(|_| {});
    let mut token = rt(&t);
    for _ in 0..2 {
        w.advance(1);
        let next = w.refresh(&c, &token, &[]).unwrap();
        token = rt(&next);
        // Rotation never extends the three seconds.
        let seen = w.introspect(&c, &token).unwrap();
        assert_eq!(seen["exp"], T0 + 3, "{seen}");
        assert!(w.active(&caller, &at(&next)));
    }
    w.advance(1);
    refused(
        "at the end of the lifetime",
        w.refresh(&c, &token, &[]),
        ErrorCode::InvalidGrant,
        "",
    );
}

#[test]
fn an_idle_refresh_token_expires() {
    // Moved from the end-to-end test that slept 2.1 s under a 1 s idle lifetime.
    let w = World::new();
    let (c, t) = family(&w, |c| c.user_flow.refresh_token_idle_ttl = 1);
    w.advance(2);
    refused(
        "idle two seconds",
        w.refresh(&c, &rt(&t), &[]),
        ErrorCode::InvalidGrant,
        "",
    );
    // Each use starts a new idle period, never past the absolute lifetime.
    let (c, t) = family(&w, |c| {
        c.user_flow.refresh_token_idle_ttl = 10;
        c.user_flow.refresh_token_ttl = 25;
    });
    let start = w.now();
    let mut token = rt(&t);
    for _ in 0..2 {
        w.advance(9);
        token = rt(&w.refresh(&c, &token, &[]).unwrap());
    }
    assert_eq!(w.introspect(&c, &token).unwrap()["exp"], start + 25);
    w.advance(7);
    assert_eq!(
        code_of("past the absolute lifetime", w.refresh(&c, &token, &[])),
        ErrorCode::InvalidGrant
    );
    let (c, t) = family(&w, |c| c.user_flow.refresh_token_idle_ttl = 10);
    w.advance(10);
    assert_eq!(
        code_of("idle exactly its lifetime", w.refresh(&c, &rt(&t), &[])),
        ErrorCode::InvalidGrant
    );
}

#[test]
fn within_the_grace_period_a_repeated_refresh_returns_the_same_successor() {
    let w = World::new();
    let (c, t) = family(&w, |c| c.user_flow.refresh_grace_period = 30);
    let caller = w.client(|_| {});
    let old = rt(&t);
    let a = w.refresh(&c, &old, &[]).unwrap();
    w.advance(30);
    let b = w.refresh(&c, &old, &[]).unwrap();
    assert_eq!(rt(&a), rt(&b));
    assert!(w.active(&caller, &at(&a)));
    // Once the successor itself was used, the old token is plain reuse again.
    let next = w.refresh(&c, &rt(&a), &[]).unwrap();
    refused(
        "the old token after its successor was used",
        w.refresh(&c, &old, &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    assert!(!w.active(&caller, &at(&next)));
    // Past the grace period, a repeat is reuse.
    let (c, t) = family(&w, |c| c.user_flow.refresh_grace_period = 30);
    let old = rt(&t);
    let a = w.refresh(&c, &old, &[]).unwrap();
    w.advance(31);
    assert_eq!(
        code_of("a repeat after the grace period", w.refresh(&c, &old, &[])),
        ErrorCode::InvalidGrant
    );
    assert!(
        w.refresh(&c, &rt(&a), &[]).is_err(),
        "the family is revoked"
    );
    // Without a grace period, even at once.
    let (c, t) = family(&w, |_| {});
    let old = rt(&t);
    w.refresh(&c, &old, &[]).unwrap();
    assert_eq!(
        code_of("a repeat without grace", w.refresh(&c, &old, &[])),
        ErrorCode::InvalidGrant
    );
}

#[test]
fn a_revoked_grant_or_a_bumped_epoch_ends_the_family() {
    let w = World::new();
    let (c, t) = family(&w, |_| {});
    w.revoke(&c, &rt(&t)).unwrap();
    assert_eq!(
        code_of("after revocation", w.refresh(&c, &rt(&t), &[])),
        ErrorCode::InvalidGrant
    );
    let (c, t) = family(&w, |_| {});
    assert!(run(w.store.revoke_client_tokens(&c.id, w.now())).unwrap());
    assert_eq!(
        code_of(
            "after the client's tokens were revoked",
            w.refresh(&c, &rt(&t), &[])
        ),
        ErrorCode::InvalidGrant
    );
}

#[test]
fn a_client_taken_off_the_code_flow_may_not_refresh() {
    // Moved from the end-to-end test that slept 1.1 s after each registration change.
    let w = World::new();
    let (c, t) = family(&w, |_| {});
    let token = rt(&t);
    w.update_client(&c, |r| {
        r.grant_types = vec![grant_types::CLIENT_CREDENTIALS.into()]
    });
    refused(
        "registered for client credentials only",
        w.refresh(&c, &token, &[]),
        ErrorCode::UnauthorizedClient,
        "refresh_token",
    );
    w.update_client(&c, |r| {
        r.grant_types = vec![
            grant_types::REFRESH_TOKEN.into(),
            grant_types::AUTHORIZATION_CODE.into(),
        ]
    });
    assert!(w.refresh(&c, &token, &[]).is_ok());
}
