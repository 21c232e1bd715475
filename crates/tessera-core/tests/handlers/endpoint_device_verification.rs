//! The device verification page's rules (RFC 8628 §3.3): a typed user code is found
//! case-insensitively with dashes and white space ignored (§6.1); it can be decided on only
//! while pending and unexpired; an unknown, an expired and a decided code are told apart; a
//! decision is recorded once, and the device's poll then gets tokens for the approving user
//! (or `access_denied`).

use tessera_core::endpoint::device_authorization::{self, DeviceAuthorization};
use tessera_core::endpoint::device_verification::{self, Found};
use tessera_core::error::ErrorCode;
use tessera_core::grant::device_code::GRANT_TYPE;
use tessera_core::scope::ScopeSet;

use crate::support::*;

fn device_client(w: &World) -> Creds {
    w.client(|c| {
        c.public = true;
        c.grant_types = vec![GRANT_TYPE.into()];
        c.scopes = ScopeSet::parse("openid read").unwrap();
    })
}

fn authorize(w: &World, c: &Creds) -> DeviceAuthorization {
    run(device_authorization::handle(
        &w.cx(),
        None,
        &World::params(c, &[("scope", "openid read")]),
    ))
    .unwrap()
}

fn find(w: &World, typed: &str) -> Found {
    run(device_verification::find(&w.cx(), typed)).unwrap()
}

fn pending(
    w: &World,
    typed: &str,
) -> Box<(
    tessera_core::model::DeviceCodeRecord,
    tessera_core::model::ClientRecord,
)> {
    match find(w, typed) {
        Found::Pending(p) => p,
        other => panic!("{typed}: {other:?}"),
    }
}

#[test]
fn a_code_is_found_however_it_is_typed_and_only_while_pending_and_unexpired() {
    let w = World::new();
    let c = device_client(&w);
    let d = authorize(&w, &c);
    let plain = d.user_code.replace('-', "");
    for typed in [
        d.user_code.clone(),
        d.user_code.to_lowercase(),
        format!(" {} ", plain),
        format!("{} {}", &plain[..4], &plain[4..]),
        plain.chars().map(|ch| format!("{ch}-")).collect::<String>(),
    ] {
        let p = pending(&w, &typed);
        assert_eq!(p.1.client_id, c.id, "{typed}");
        assert_eq!(device_verification::shown(&p.0), d.user_code);
    }
    for typed in ["", "BCDF", "AEIO-UAEI", "<script>", &format!("{plain}B")] {
        assert!(matches!(find(&w, typed), Found::Unknown), "{typed}");
    }
    w.advance(device_authorization::DEVICE_CODE_TTL);
    assert!(matches!(find(&w, &d.user_code), Found::Expired));
}

#[test]
fn a_decision_is_recorded_once_and_the_poll_follows_it() {
    let w = World::new();
    let c = device_client(&w);
    let alice = w.user("alice");
    let bob = w.user("bob");
    let approved = authorize(&w, &c);
    let p = pending(&w, &approved.user_code);
    assert!(run(device_verification::decide(
        &w.cx(),
        &p.0,
        &alice,
        w.now(),
        true
    ))
    .unwrap());
    // A second decision (another tab, another user) changes nothing.
    assert!(!run(device_verification::decide(
        &w.cx(),
        &p.0,
        &bob,
        w.now(),
        false
    ))
    .unwrap());
    assert!(matches!(find(&w, &approved.user_code), Found::Decided));
    let tokens = w
        .token(
            &c,
            &[
                ("grant_type", GRANT_TYPE),
                ("device_code", approved.device_code.expose()),
            ],
        )
        .unwrap();
    let active = w
        .look(tokens.access_token.expose())
        .expect("an active token");
    assert_eq!(active.sub, alice.user_id);

    let denied = authorize(&w, &c);
    let p = pending(&w, &denied.user_code);
    assert!(run(device_verification::decide(
        &w.cx(),
        &p.0,
        &alice,
        w.now(),
        false
    ))
    .unwrap());
    let err = w
        .token(
            &c,
            &[
                ("grant_type", GRANT_TYPE),
                ("device_code", denied.device_code.expose()),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AccessDenied);
    // An expired one cannot be decided on.
    let late = authorize(&w, &c);
    let p = pending(&w, &late.user_code);
    w.advance(device_authorization::DEVICE_CODE_TTL);
    assert!(!run(device_verification::decide(
        &w.cx(),
        &p.0,
        &alice,
        w.now(),
        true
    ))
    .unwrap());
}
