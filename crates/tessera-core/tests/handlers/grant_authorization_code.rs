//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6):
//! codes bound to their client, redirect URI and PKCE challenge, spent once, expiring after
//! the client's code lifetime; the refresh policy; replay revoking what the code gave.

use tessera_core::error::ErrorCode;
use tessera_core::model::RefreshPolicy;
use tessera_core::store::UserStore;

use crate::support::*;

#[test]
fn a_code_gives_an_access_token_and_an_id_token() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let r = w.tokens(&c, &alice, "openid read");
    assert_eq!(r.scope, "openid read");
    assert_eq!(r.token_type, "bearer");
    // No offline_access, default policy: no refresh token.
    assert!(r.refresh_token.is_none());
    let access = payload(&at(&r));
    assert_eq!(access["sub"], alice.user_id.as_str());
    assert_eq!(access["auth_time"], T0);
    let id = payload(r.id_token.as_deref().expect("openid gives an ID token"));
    assert_eq!(id["sub"], alice.user_id.as_str());
    assert_eq!(id["aud"], c.id.as_str());
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["auth_time"], T0);
    assert!(id["at_hash"].is_string());
    // Without openid, no ID token.
    let r = w.tokens(&c, &alice, "read");
    assert!(r.id_token.is_none());
}

/// How a row's code is made and exchanged.
struct Row {
    case: &'static str,
    /// Extra parameters of the authorization request.
    authorize: Vec<(&'static str, &'static str)>,
    /// Exchange by the other code-flow client instead.
    other_client: bool,
    /// Parameters of the exchange replacing the defaults (empty value: left out).
    exchange: Vec<(&'static str, &'static str)>,
    /// `None`: success.
    expect: Option<ErrorCode>,
}

fn row(
    case: &'static str,
    authorize: &[(&'static str, &'static str)],
    exchange: &[(&'static str, &'static str)],
    expect: Option<ErrorCode>,
) -> Row {
    Row {
        case,
        authorize: authorize.to_vec(),
        other_client: false,
        exchange: exchange.to_vec(),
        expect,
    }
}

#[test]
fn exchanges_and_their_outcomes() {
    let w = World::new();
    let c = w.code_client(|c| {
        c.redirect_uris = vec![REDIRECT.into(), "https://app.example.com/other".into()];
        c.audiences = vec!["https://api.example.com".into()];
    });
    let other = w.code_client(|_| {});
    let alice = w.user("alice");
    let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
    let rows = vec![
        row("the usual exchange", &[], &[], None),
        row(
            "a wrong verifier",
            &[],
            &[(
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier-x",
            )],
            Some(ErrorCode::InvalidGrant),
        ),
        row(
            "no verifier for a code with a challenge",
            &[],
            &[("code_verifier", "")],
            Some(ErrorCode::InvalidGrant),
        ),
        row(
            "a verifier for a code without a challenge (RFC 9700 §2.1.1: downgrade)",
            &no_pkce,
            &[],
            Some(ErrorCode::InvalidGrant),
        ),
        row(
            "no PKCE at all, for a confidential client",
            &no_pkce,
            &[("code_verifier", "")],
            None,
        ),
        row(
            "another registered redirect URI than the request's",
            &[],
            &[("redirect_uri", "https://app.example.com/other")],
            Some(ErrorCode::InvalidGrant),
        ),
        row(
            "no redirect URI when the request named one (RFC 6749 §4.1.3)",
            &[],
            &[("redirect_uri", "")],
            Some(ErrorCode::InvalidRequest),
        ),
        row("a narrower scope", &[], &[("scope", "openid")], None),
        row(
            "a wider scope than granted",
            &[],
            &[("scope", "openid read email")],
            Some(ErrorCode::InvalidScope),
        ),
        row(
            "a registered resource",
            &[],
            &[("resource", "https://api.example.com")],
            None,
        ),
        row(
            "a resource not registered",
            &[],
            &[("resource", "https://elsewhere.example.com")],
            Some(ErrorCode::InvalidTarget),
        ),
        row(
            "a code that was never issued",
            &[],
            &[("code", "not-a-code")],
            Some(ErrorCode::InvalidGrant),
        ),
        row(
            "a missing code",
            &[],
            &[("code", "")],
            Some(ErrorCode::InvalidRequest),
        ),
        Row {
            other_client: true,
            ..row(
                "another client's code",
                &[],
                &[],
                Some(ErrorCode::InvalidGrant),
            )
        },
    ];
    for r in rows {
        let code = w.code_at(&c, &alice, w.now(), "openid read", &r.authorize);
        let mut exchange: Vec<(&str, &str)> = vec![("code", code.as_str())];
        exchange.retain(|(k, _)| !r.exchange.iter().any(|(n, _)| n == k));
        exchange.extend(r.exchange.iter().copied());
        let by = if r.other_client { &other } else { &c };
        let got = w.exchange(by, "", &exchange);
        match r.expect {
            None => {
                got.unwrap_or_else(|e| panic!("{}: {e}", r.case));
            }
            Some(code) => assert_eq!(code_of(r.case, got), code, "{}", r.case),
        }
    }
}

#[test]
fn a_client_not_registered_for_the_code_flow_cannot_exchange() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let cc_client = w.client(|_| {});
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid");
    refused(
        "client credentials client",
        w.exchange(&cc_client, &code, &[]),
        ErrorCode::UnauthorizedClient,
        "authorization_code",
    );
    // The code was not spent by that refusal.
    assert!(w.exchange(&c, &code, &[]).is_ok());
}

#[test]
fn a_request_without_redirect_uri_is_exchanged_without_one_or_with_the_one_registered() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let unnamed = [("redirect_uri", "")];
    for (case, exchange, ok) in [
        ("without", "", true),
        ("with the registered one", REDIRECT, true),
        ("with another", "https://app.example.com/other", false),
    ] {
        let code = w.code_at(&c, &alice, w.now(), "openid", &unnamed);
        let got = w.exchange(&c, &code, &[("redirect_uri", exchange)]);
        assert_eq!(got.is_ok(), ok, "{case}: {got:?}");
    }
}

#[test]
fn a_public_client_exchanges_with_pkce_and_no_secret() {
    let w = World::new();
    let public = w.code_client(|c| c.public = true);
    assert!(public.secret.is_none());
    let alice = w.user("alice");
    let code = w.code(&public, &alice, "openid");
    let r = w.exchange(&public, &code, &[]).unwrap();
    assert!(r.id_token.is_some());
}

#[test]
fn codes_expire_after_the_clients_code_lifetime() {
    // Moved from the end-to-end test that registered `--code-ttl 1` and slept 2.1 s.
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.code_ttl = 1);
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid");
    w.advance(2);
    refused(
        "a code two seconds after a one-second lifetime",
        w.exchange(&c, &code, &[]),
        ErrorCode::InvalidGrant,
        "invalid or expired",
    );
    // The edges: valid before its expiry second, refused at it.
    for (age, ok) in [(0, true), (1, false)] {
        let code = w.code(&c, &alice, "openid");
        w.advance(age);
        assert_eq!(w.exchange(&c, &code, &[]).is_ok(), ok, "age {age}");
    }
    let default = w.code_client(|_| {});
    for (age, ok) in [(119, true), (120, false)] {
        let code = w.code(&default, &alice, "openid");
        w.advance(age);
        assert_eq!(
            w.exchange(&default, &code, &[]).is_ok(),
            ok,
            "default, age {age}"
        );
    }
}

#[test]
fn a_replayed_code_is_refused_and_revokes_what_it_gave() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid read");
    let first = w.exchange(&c, &code, &[]).unwrap();
    assert!(w.look(&at(&first)).is_some());
    refused(
        "the same code again",
        w.exchange(&c, &code, &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    assert!(w.look(&at(&first)).is_none(), "the access token is revoked");
    refused(
        "its refresh token",
        w.refresh(&c, &rt(&first), &[]),
        ErrorCode::InvalidGrant,
        "",
    );
}

#[test]
fn a_replay_by_anyone_but_the_codes_client_with_its_verifier_revokes_nothing() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let other = w.code_client(|_| {});
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid");
    let first = w.exchange(&c, &code, &[]).unwrap();
    let wrong_verifier = [(
        "code_verifier",
        "another-verifier-another-verifier-another-v",
    )];
    for (case, by, extra) in [
        ("another client", &other, &[][..]),
        (
            "its client without the verifier",
            &c,
            &[("code_verifier", "")][..],
        ),
        ("its client with another verifier", &c, &wrong_verifier[..]),
    ] {
        refused(
            case,
            w.exchange(by, &code, extra),
            ErrorCode::InvalidGrant,
            "invalid or expired",
        );
        assert!(w.look(&at(&first)).is_some(), "{case}: nothing revoked");
    }
}

#[test]
fn the_refresh_policy_decides_on_a_refresh_token() {
    let w = World::new();
    let alice = w.user("alice");
    for (policy, scope, gets) in [
        (RefreshPolicy::OfflineAccess, "openid offline_access", true),
        (RefreshPolicy::OfflineAccess, "openid", false),
        (RefreshPolicy::Always, "openid", true),
        (RefreshPolicy::Never, "openid offline_access", false),
    ] {
        let c = w.code_client(|c| c.user_flow.refresh_tokens = policy);
        let r = w.tokens(&c, &alice, scope);
        assert_eq!(r.refresh_token.is_some(), gets, "{policy:?} {scope}");
        if gets {
            assert!(rt(&r).starts_with("trt_"));
        }
    }
}

#[test]
fn no_refresh_token_once_the_refresh_lifetime_from_sign_in_is_over() {
    let w = World::new();
    let c = w.code_client(|c| {
        c.user_flow.refresh_tokens = RefreshPolicy::Always;
        c.user_flow.refresh_token_ttl = 100;
    });
    let alice = w.user("alice");
    // Signed in 100 s ago: the family's lifetime, counted from sign-in, is over.
    let code = w.code_at(&c, &alice, T0 - 100, "openid", &[]);
    let r = w.exchange(&c, &code, &[]).unwrap();
    assert!(r.refresh_token.is_none());
    let code = w.code_at(&c, &alice, T0 - 99, "openid", &[]);
    assert!(w.exchange(&c, &code, &[]).unwrap().refresh_token.is_some());
}

#[test]
fn a_deleted_users_code_gives_nothing() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid");
    assert!(run(w.store.delete_user(&alice.user_id, w.now())).unwrap());
    assert_eq!(
        code_of("deleted user", w.exchange(&c, &code, &[])),
        ErrorCode::InvalidGrant
    );
}
