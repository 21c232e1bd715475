//! The device authorization grant (RFC 8628): the device authorization endpoint (§3.1,
//! §3.2) and polling at the token endpoint (§3.4, §3.5): `authorization_pending`,
//! `slow_down` raising the interval by 5 s, `access_denied`, `expired_token`, tokens once,
//! a used or foreign device code `invalid_grant`.

use tessera_core::endpoint::device_authorization::{self, DeviceAuthorization};
use tessera_core::error::ErrorCode;
use tessera_core::grant::device_code::{normalise_user_code, GRANT_TYPE};
use tessera_core::grant::types as grant_types;
use tessera_core::model::{DeviceApproval, DeviceStatus, UserRecord};
use tessera_core::scope::ScopeSet;
use tessera_core::store::DeviceStore;

use crate::support::*;

/// A public device client (scopes `openid read write offline_access`).
fn device_client(w: &World) -> Creds {
    w.client(|c| {
        c.public = true;
        c.grant_types = vec![GRANT_TYPE.into()];
        c.scopes = ScopeSet::parse("openid read write offline_access").unwrap();
    })
}

fn authorize(
    w: &World,
    c: &Creds,
    pairs: &[(&str, &str)],
) -> Result<DeviceAuthorization, tessera_core::error::OAuthError> {
    run(device_authorization::handle(
        &w.cx(),
        None,
        &World::params(c, pairs),
    ))
}

fn poll(
    w: &World,
    c: &Creds,
    device_code: &str,
) -> Result<tessera_core::grant::TokenResponse, tessera_core::error::OAuthError> {
    w.token(
        c,
        &[("grant_type", GRANT_TYPE), ("device_code", device_code)],
    )
}

fn approve(w: &World, d: &DeviceAuthorization, user: &UserRecord, scope: &str) {
    let code = normalise_user_code(&d.user_code).unwrap();
    let approval = DeviceApproval {
        user_id: user.user_id.clone(),
        scope: scope.into(),
        auth_time: w.now(),
    };
    assert!(run(w.store.decide_device_code(&code, Some(&approval), w.now())).unwrap());
}

#[test]
fn the_device_authorization_response_has_every_field_of_section_3_2() {
    let w = World::new();
    let c = device_client(&w);
    let d = authorize(&w, &c, &[("scope", "openid read")]).unwrap();
    assert!(d.device_code.expose().len() >= 43, "256 random bits");
    assert_eq!(d.user_code.len(), 9);
    assert_eq!(d.user_code.as_bytes()[4], b'-');
    assert!(d
        .user_code
        .bytes()
        .all(|b| b == b'-' || b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
    assert_eq!(d.verification_uri, format!("{ISSUER}/device"));
    assert_eq!(
        d.verification_uri_complete,
        format!("{ISSUER}/device?user_code={}", d.user_code)
    );
    assert_eq!((d.expires_in, d.interval), (600, 5));
    // Only the hash of the device code is stored.
    let stored = run(w
        .store
        .find_device_user_code(&normalise_user_code(&d.user_code).unwrap()))
    .unwrap()
    .unwrap();
    assert_eq!(stored.device_code_hash, d.device_code.hash());
    assert_ne!(stored.device_code_hash.as_str(), d.device_code.expose());
    assert_eq!(stored.scope, "openid read");
    assert_eq!(stored.status, DeviceStatus::Pending);
}

#[test]
fn device_authorization_requests_are_refused_as_the_rfcs_say() {
    let w = World::new();
    let c = device_client(&w);
    let cc = w.client(|_| {});
    let confidential = w.client(|r| {
        r.grant_types = vec![GRANT_TYPE.into()];
    });
    refused(
        "a client not registered for the grant",
        authorize(&w, &cc, &[]),
        ErrorCode::UnauthorizedClient,
        "device",
    );
    refused(
        "a scope beyond the registration",
        authorize(&w, &c, &[("scope", "admin")]),
        ErrorCode::InvalidScope,
        "",
    );
    refused(
        "a repeated parameter",
        authorize(&w, &c, &[("scope", "read"), ("scope", "write")]),
        ErrorCode::InvalidRequest,
        "",
    );
    let wrong = Creds {
        id: confidential.id.clone(),
        secret: Some("wrong".into()),
    };
    refused(
        "a confidential client with a wrong secret",
        authorize(&w, &wrong, &[]),
        ErrorCode::InvalidClient,
        "",
    );
    assert!(authorize(&w, &confidential, &[]).is_ok());
}

#[test]
fn polling_answers_pending_then_slow_down_then_the_tokens_once() {
    let w = World::new();
    let c = device_client(&w);
    let alice = w.user("alice");
    let d = authorize(&w, &c, &[("scope", "openid read offline_access")]).unwrap();
    let dc = d.device_code.expose();
    refused(
        "before the user decides",
        poll(&w, &c, dc),
        ErrorCode::AuthorizationPending,
        "",
    );
    w.advance(2);
    let e = poll(&w, &c, dc).unwrap_err();
    assert_eq!(e.code, ErrorCode::DevicePollSlowDown);
    assert_eq!(e.code.as_str(), "slow_down");
    // The interval is now 10 s, from the last poll.
    w.advance(9);
    refused(
        "9 s later",
        poll(&w, &c, dc),
        ErrorCode::DevicePollSlowDown,
        "",
    );
    w.advance(15);
    refused(
        "15 s later",
        poll(&w, &c, dc),
        ErrorCode::AuthorizationPending,
        "",
    );
    approve(&w, &d, &alice, "openid read offline_access");
    w.advance(15);
    let r = poll(&w, &c, dc).unwrap();
    assert_eq!(r.scope, "openid read offline_access");
    assert!(r.id_token.is_some());
    assert!(r.refresh_token.is_some());
    assert_eq!(payload(&at(&r))["sub"], alice.user_id.as_str());
    // Tokens once: the device code is spent.
    w.advance(15);
    refused(
        "a second exchange",
        poll(&w, &c, dc),
        ErrorCode::InvalidGrant,
        "",
    );
}

#[test]
fn a_denied_code_is_access_denied_and_an_old_one_expired_token() {
    let w = World::new();
    let c = device_client(&w);
    let d = authorize(&w, &c, &[]).unwrap();
    let code = normalise_user_code(&d.user_code).unwrap();
    assert!(run(w.store.decide_device_code(&code, None, w.now())).unwrap());
    refused(
        "denied",
        poll(&w, &c, d.device_code.expose()),
        ErrorCode::AccessDenied,
        "",
    );
    let d2 = authorize(&w, &c, &[]).unwrap();
    w.advance(600);
    refused(
        "expired",
        poll(&w, &c, d2.device_code.expose()),
        ErrorCode::ExpiredToken,
        "",
    );
}

#[test]
fn another_clients_or_an_unknown_device_code_is_invalid_grant_and_spends_nothing() {
    let w = World::new();
    let c = device_client(&w);
    let other = device_client(&w);
    let alice = w.user("alice");
    let d = authorize(&w, &c, &[("scope", "read")]).unwrap();
    approve(&w, &d, &alice, "read");
    refused(
        "another client",
        poll(&w, &other, d.device_code.expose()),
        ErrorCode::InvalidGrant,
        "",
    );
    refused(
        "unknown",
        poll(&w, &c, "tsd_not-a-device-code"),
        ErrorCode::InvalidGrant,
        "",
    );
    // The rightful client still gets its tokens.
    let r = poll(&w, &c, d.device_code.expose()).unwrap();
    assert_eq!(r.scope, "read");
    // A client no longer registered for the grant may not poll.
    let cc = w.client(|r| r.grant_types = vec![grant_types::CLIENT_CREDENTIALS.into()]);
    refused(
        "not registered",
        poll(&w, &cc, d.device_code.expose()),
        ErrorCode::UnauthorizedClient,
        "",
    );
}
