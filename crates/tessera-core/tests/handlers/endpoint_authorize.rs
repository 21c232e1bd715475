//! The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, OpenID Connect Core §3.1.2):
//! which errors are shown on a page and which go back to the client, the next step for a
//! session and a consent (sign-in, consent, code), session expiry and `max_age` under the
//! clock, and the code redirect.

use tessera_core::endpoint::authorize::{denied, issue_code, next_step, AuthorizeError, Step};
use tessera_core::error::ErrorCode;
use tessera_core::model::SessionRecord;
use tessera_core::params::Params;
use tessera_core::scope::ScopeSet;
use tessera_core::store::GrantStore;

use crate::support::*;

/// The error parameters of a redirect, or a panic naming `case`.
fn redirected(
    case: &str,
    got: Result<impl std::fmt::Debug, AuthorizeError>,
) -> std::collections::HashMap<String, String> {
    match got {
        Err(AuthorizeError::Redirect(location)) => {
            assert!(location.starts_with(REDIRECT), "{case}: {location}");
            query(&location)
        }
        other => panic!("{case}: expected a redirect, got {other:?}"),
    }
}

#[test]
fn errors_before_the_client_and_redirect_uri_are_trusted_are_shown_on_a_page() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let two = w.code_client(|c| {
        c.redirect_uris = vec![REDIRECT.into(), "https://app.example.com/two".into()];
    });
    let unknown = Creds {
        id: "no-such-client".into(),
        secret: None,
    };
    let rows: Vec<(&str, Params)> = vec![
        (
            "no client_id",
            World::authorize_params(&c, "openid", &[("client_id", "")]),
        ),
        (
            "an unknown client",
            World::authorize_params(&unknown, "openid", &[]),
        ),
        (
            "an unregistered redirect URI",
            World::authorize_params(&c, "openid", &[("redirect_uri", "https://evil.example/cb")]),
        ),
        (
            "a variant of the registered URI",
            World::authorize_params(
                &c,
                "openid",
                &[("redirect_uri", "https://app.example.com/cb/")],
            ),
        ),
        (
            "no redirect URI with two registered",
            World::authorize_params(&two, "openid", &[("redirect_uri", "")]),
        ),
        (
            "a repeated client_id",
            World::raw(&[("client_id", c.id.as_str()), ("client_id", c.id.as_str())]),
        ),
    ];
    for (case, params) in rows {
        match w.validate(&params) {
            Err(AuthorizeError::Page(e)) => assert_eq!(e.code, ErrorCode::InvalidRequest, "{case}"),
            other => panic!("{case}: expected a page, got {other:?}"),
        }
    }
}

#[test]
fn later_errors_go_back_to_the_client_with_state_and_iss() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let public = w.code_client(|c| c.public = true);
    let cc_only = w.client(|_| {});
    let long = "x".repeat(1025);
    let many: Vec<(String, String)> = (0..17).map(|i| (format!("p{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let big = "y".repeat(1100);
    let rows: Vec<(&str, &Creds, Vec<(&str, &str)>, ErrorCode)> = vec![
        (
            "response_type token",
            &c,
            vec![("response_type", "token")],
            ErrorCode::UnsupportedResponseType,
        ),
        (
            "no response_type",
            &c,
            vec![("response_type", "")],
            ErrorCode::InvalidRequest,
        ),
        (
            "response_mode fragment",
            &c,
            vec![("response_mode", "fragment")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a request object",
            &c,
            vec![("request", "eyJ.x.y")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a client not registered for the code flow",
            &cc_only,
            vec![],
            ErrorCode::UnauthorizedClient,
        ),
        (
            "a scope not registered",
            &c,
            vec![("scope", "openid admin")],
            ErrorCode::InvalidScope,
        ),
        (
            "a public client without PKCE",
            &public,
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            ErrorCode::InvalidRequest,
        ),
        (
            "the plain PKCE method, not allowed",
            &c,
            vec![("code_challenge_method", "plain")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a malformed challenge",
            &c,
            vec![("code_challenge", "short")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a method without a challenge",
            &c,
            vec![("code_challenge", "")],
            ErrorCode::InvalidRequest,
        ),
        (
            "an unknown prompt",
            &c,
            vec![("prompt", "maybe")],
            ErrorCode::InvalidRequest,
        ),
        (
            "prompt none with login",
            &c,
            vec![("prompt", "none login")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a negative max_age",
            &c,
            vec![("max_age", "-1")],
            ErrorCode::InvalidRequest,
        ),
        (
            "max_age not a number",
            &c,
            vec![("max_age", "soon")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a nonce too long",
            &c,
            vec![("nonce", &long)],
            ErrorCode::InvalidRequest,
        ),
        (
            "too many unknown parameters",
            &c,
            many,
            ErrorCode::InvalidRequest,
        ),
        (
            "an unknown parameter too long",
            &c,
            vec![("productId", &big)],
            ErrorCode::InvalidRequest,
        ),
    ];
    for (case, by, extra, code) in rows {
        let p = redirected(
            case,
            w.validate(&World::authorize_params(by, "openid", &extra)),
        );
        assert_eq!(p["error"], code.as_str(), "{case}: {p:?}");
        assert_eq!(p["state"], "st-123", "{case}");
        assert_eq!(p["iss"], ISSUER, "{case}");
        assert!(!p.contains_key("code"), "{case}");
    }
    let p = redirected(
        "a state too long",
        w.validate(&World::authorize_params(&c, "openid", &[("state", &long)])),
    );
    assert_eq!(p["error"], "invalid_request");
    // A repeated state cannot be echoed: the error goes back without it.
    let mut pairs = World::authorize_params(&c, "openid", &[]).pairs().to_vec();
    pairs.push(("state".into(), "again".into()));
    let p = redirected(
        "a repeated state",
        w.validate(&Params::from_pairs(pairs).unwrap()),
    );
    assert_eq!(p["error"], "invalid_request");
    assert!(!p.contains_key("state"), "{p:?}");
    assert_eq!(p["iss"], ISSUER);
}

#[test]
fn a_valid_request_is_read_whole() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.allow_plain_pkce = true);
    let req = w
        .validate(&World::authorize_params(
            &c,
            "openid read",
            &[
                ("prompt", "login consent"),
                ("max_age", "30"),
                ("productId", "p-42"),
            ],
        ))
        .unwrap();
    assert_eq!(req.scope.to_string(), "openid read");
    assert!(req.redirect_uri_named);
    assert_eq!(req.state.as_deref(), Some("st-123"));
    assert_eq!(req.nonce.as_deref(), Some("n-456"));
    assert_eq!(req.pkce.as_ref().map(|(_, m)| *m), Some("S256"));
    assert!(req.prompt.login && req.prompt.consent && !req.prompt.none);
    assert_eq!(req.max_age, Some(30));
    assert_eq!(req.extra["productId"], "p-42");
    // No scope: the client's. Plain PKCE, allowed for this client.
    let req = w
        .validate(&World::authorize_params(
            &c,
            "",
            &[
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ))
        .unwrap();
    assert_eq!(
        req.scope.to_string(),
        "openid profile email offline_access read"
    );
    assert_eq!(req.pkce.as_ref().map(|(_, m)| *m), Some("plain"));
}

/// The next step of `params` for `session` and a consent of `consented`.
fn step(
    w: &World,
    params: &Params,
    session: Option<&SessionRecord>,
    consented: Option<&str>,
    just: (bool, bool),
) -> Result<Step, String> {
    let req = w.validate(params).unwrap();
    let consented = consented.map(|s| ScopeSet::parse(s).unwrap());
    next_step(&w.cx(), &req, session, consented.as_ref(), just.0, just.1).map_err(|e| match e {
        AuthorizeError::Redirect(l) => query(&l)["error"].clone(),
        AuthorizeError::Page(e) => format!("page: {e}"),
    })
}

#[test]
fn the_next_step_follows_session_consent_and_prompt() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let first_party = w.code_client(|c| c.user_flow.skip_consent = true);
    let native = w.code_client(|c| {
        c.public = true;
        c.redirect_uris = vec!["http://127.0.0.1/cb".into()];
        c.user_flow.skip_consent = true;
    });
    let alice = w.user("alice");
    let s = w.session(&alice, w.now());
    let p =
        |by: &Creds, scope: &str, extra: &[(&str, &str)]| World::authorize_params(by, scope, extra);
    let native_p = |extra: &[(&str, &str)]| {
        let mut e = vec![("redirect_uri", "http://127.0.0.1/cb")];
        e.extend_from_slice(extra);
        World::authorize_params(&native, "openid", &e)
    };
    let none = [("prompt", "none")];
    let no = (false, false);
    let rows: Vec<(
        &str,
        Params,
        Option<&SessionRecord>,
        Option<&str>,
        (bool, bool),
        Result<Step, &str>,
    )> = vec![
        (
            "no session",
            p(&c, "openid", &[]),
            None,
            None,
            no,
            Ok(Step::Login),
        ),
        (
            "no session, prompt=none",
            p(&c, "openid", &none),
            None,
            None,
            no,
            Err("login_required"),
        ),
        (
            "signed in, no consent",
            p(&c, "openid", &[]),
            Some(&s),
            None,
            no,
            Ok(Step::Consent),
        ),
        (
            "signed in, prompt=none, no consent",
            p(&c, "openid", &none),
            Some(&s),
            None,
            no,
            Err("consent_required"),
        ),
        (
            "consent covers the scope",
            p(&c, "openid read", &[]),
            Some(&s),
            Some("openid read"),
            no,
            Ok(Step::Issue),
        ),
        (
            "a subset is covered",
            p(&c, "openid", &[]),
            Some(&s),
            Some("openid read"),
            no,
            Ok(Step::Issue),
        ),
        (
            "a new scope is asked",
            p(&c, "openid email", &[]),
            Some(&s),
            Some("openid read"),
            no,
            Ok(Step::Consent),
        ),
        (
            "prompt=none with consent",
            p(&c, "openid", &none),
            Some(&s),
            Some("openid"),
            no,
            Ok(Step::Issue),
        ),
        (
            "prompt=consent asks again",
            p(&c, "openid", &[("prompt", "consent")]),
            Some(&s),
            Some("openid"),
            no,
            Ok(Step::Consent),
        ),
        (
            "prompt=consent, just consented",
            p(&c, "openid", &[("prompt", "consent")]),
            Some(&s),
            Some("openid"),
            (false, true),
            Ok(Step::Issue),
        ),
        (
            "prompt=login despite a session",
            p(&c, "openid", &[("prompt", "login")]),
            Some(&s),
            Some("openid"),
            no,
            Ok(Step::Login),
        ),
        (
            "prompt=login, just signed in",
            p(&c, "openid", &[("prompt", "login")]),
            Some(&s),
            Some("openid"),
            (true, false),
            Ok(Step::Issue),
        ),
        (
            "a first-party client",
            p(&first_party, "openid", &[]),
            Some(&s),
            None,
            no,
            Ok(Step::Issue),
        ),
        (
            "a native app is asked every time (RFC 8252 §8.6)",
            native_p(&[]),
            Some(&s),
            Some("openid"),
            no,
            Ok(Step::Consent),
        ),
        (
            "a native app with prompt=none",
            native_p(&none),
            Some(&s),
            Some("openid"),
            no,
            Err("consent_required"),
        ),
    ];
    for (case, params, session, consented, just, want) in rows {
        let got = step(&w, &params, session, consented, just);
        assert_eq!(got, want.map_err(str::to_owned), "{case}");
    }
}

#[test]
fn a_session_ends_at_its_expiry() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let s = w.session(&alice, w.now());
    let params = World::authorize_params(&c, "openid", &[]);
    w.advance(w.config.session_ttl - 1);
    assert_eq!(
        step(&w, &params, Some(&s), Some("openid"), (false, false)),
        Ok(Step::Issue)
    );
    w.advance(1);
    assert_eq!(
        step(&w, &params, Some(&s), Some("openid"), (false, false)),
        Ok(Step::Login)
    );
    let none = World::authorize_params(&c, "openid", &[("prompt", "none")]);
    assert_eq!(
        step(&w, &none, Some(&s), Some("openid"), (false, false)),
        Err("login_required".into())
    );
}

#[test]
fn max_age_asks_for_a_new_sign_in_once_the_sign_in_is_older() {
    // Moved from the end-to-end test that slept 1.1 s after a sign-in and accepted either a
    // sign-in page or a code for a request made in the meantime.
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let s = w.session(&alice, w.now());
    let consent = Some("openid");
    let no = (false, false);
    let aged = |max_age: &str| World::authorize_params(&c, "openid", &[("max_age", max_age)]);
    // A sign-in made by this very request satisfies max_age=0.
    assert_eq!(
        step(&w, &aged("0"), Some(&s), consent, (true, false)),
        Ok(Step::Issue)
    );
    // max_age=0 is prompt=login (OpenID Connect Core §3.1.2.1, errata set 2): a sign-in of
    // this same second, made for another request, is not enough.
    assert_eq!(step(&w, &aged("0"), Some(&s), consent, no), Ok(Step::Login));
    w.advance(1);
    assert_eq!(step(&w, &aged("0"), Some(&s), consent, no), Ok(Step::Login));
    assert_eq!(
        step(
            &w,
            &World::authorize_params(&c, "openid", &[("max_age", "0"), ("prompt", "none")]),
            Some(&s),
            consent,
            no
        ),
        Err("login_required".into())
    );
    w.advance(4);
    assert_eq!(
        step(&w, &aged("5"), Some(&s), consent, no),
        Ok(Step::Issue),
        "5 s old"
    );
    w.advance(1);
    assert_eq!(
        step(&w, &aged("5"), Some(&s), consent, no),
        Ok(Step::Login),
        "6 s old"
    );
    assert_eq!(step(&w, &aged("6"), Some(&s), consent, no), Ok(Step::Issue));
}

#[test]
fn the_code_redirect_carries_code_state_and_iss_and_the_code_what_was_asked() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.code_ttl = 5_000);
    let alice = w.user("alice");
    let req = w
        .validate(&World::authorize_params(
            &c,
            "openid read",
            &[("productId", "p-42")],
        ))
        .unwrap();
    let s = w.session(&alice, w.now() - 10);
    let location = run(issue_code(&w.cx(), &req, &s)).unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let p = query(&location);
    assert_eq!(p["state"], "st-123");
    assert_eq!(p["iss"], ISSUER);
    // At least 128 bits: 256 random bits in base64url.
    assert!(p["code"].len() >= 43, "{}", p["code"]);
    let hash = tessera_core::secret::SecretHash::of(&p["code"]);
    let rec = match run(w.store.use_code(&hash, w.now())).unwrap() {
        tessera_core::model::CodeUse::Fresh(rec) => rec,
        other => panic!("{other:?}"),
    };
    assert_eq!(rec.client_id, c.id);
    assert_eq!(rec.user_id, alice.user_id);
    assert_eq!(rec.redirect_uri, REDIRECT);
    assert_eq!(rec.scope, "openid read");
    assert_eq!(rec.nonce.as_deref(), Some("n-456"));
    assert_eq!(
        rec.code_challenge.as_deref(),
        Some(challenge(VERIFIER).as_str())
    );
    assert_eq!(rec.auth_time, w.now() - 10);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&rec.extra).unwrap(),
        serde_json::json!({"productId": "p-42"})
    );
    // The lifetime is the client's, at most ten minutes.
    assert_eq!(rec.expires_at, w.now() + 600);
    let p = query(&denied(&w.cx(), &req));
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "st-123");
    assert_eq!(p["iss"], ISSUER);
}
