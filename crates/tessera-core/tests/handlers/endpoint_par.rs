//! Pushed authorization requests (RFC 9126): the push (client authentication, the checks of
//! the authorization endpoint at push time, a pushed `request_uri` refused) and the
//! resolution at the authorization endpoint (pushed parameters only, single use, bound to
//! the client, expiry under the clock), and `require_par` for the server and per client.

use tessera_core::client_auth::BasicCredentials;
use tessera_core::endpoint::authorize::AuthorizeError;
use tessera_core::endpoint::par::{self, PushResponse, URN_PREFIX};
use tessera_core::error::{ErrorCode, OAuthError};
use tessera_core::params::Params;
use tessera_core::secret::Secret;

use crate::support::*;

/// Pushes the authorization parameters of `c` for `scope` with `extra`, authenticating with
/// `client_secret_post` (or as a public client).
fn push(w: &World, c: &Creds, extra: &[(&str, &str)]) -> Result<PushResponse, OAuthError> {
    let mut pairs: Vec<(String, String)> = World::authorize_params(c, "openid read", extra)
        .pairs()
        .to_vec();
    if let Some(s) = &c.secret {
        pairs.push(("client_secret".into(), s.clone()));
    }
    run(par::push(
        &w.cx(),
        None,
        &Params::from_pairs(pairs).unwrap(),
    ))
}

/// The authorization request `client_id` + `request_uri` (+ `extra`), resolved.
fn resolve(
    w: &World,
    client_id: &str,
    request_uri: &str,
    extra: &[(&str, &str)],
) -> Result<Params, AuthorizeError> {
    let mut pairs = vec![("client_id", client_id), ("request_uri", request_uri)];
    pairs.extend_from_slice(extra);
    run(par::resolve(&w.cx(), World::raw(&pairs)))
}

fn invalid_request_uri(case: &str, got: Result<Params, AuthorizeError>) {
    match got {
        Err(AuthorizeError::Page(e)) => {
            assert_eq!(e.code, ErrorCode::InvalidRequestUri, "{case}: {e:?}");
        }
        other => panic!("{case}: expected an error page, got {other:?}"),
    }
}

#[test]
fn a_pushed_request_resolves_once_to_its_own_parameters_only() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let pushed = push(&w, &c, &[("state", "pushed-state")]).unwrap();
    assert_eq!(pushed.expires_in, 60);
    let random = pushed.request_uri.strip_prefix(URN_PREFIX).unwrap();
    assert!(random.len() >= 43, "{random}");
    // Parameters sent beside request_uri are ignored: the pushed ones win.
    let params = resolve(
        &w,
        &c.id,
        &pushed.request_uri,
        &[
            ("state", "front-state"),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid profile email"),
        ],
    )
    .unwrap();
    assert_eq!(params.get("state").unwrap(), Some("pushed-state"));
    assert_eq!(params.get("redirect_uri").unwrap(), Some(REDIRECT));
    assert_eq!(params.get("scope").unwrap(), Some("openid read"));
    // The client's secret authenticated the push and is not part of the request.
    assert!(!params.contains("client_secret"));
    let req = w.validate(&params).unwrap();
    assert_eq!(req.redirect_uri, REDIRECT);
    assert_eq!(req.state.as_deref(), Some("pushed-state"));
    assert_eq!(req.scope.to_string(), "openid read");
    // Single use.
    invalid_request_uri("used twice", resolve(&w, &c.id, &pushed.request_uri, &[]));
}

#[test]
fn a_request_uri_expires_and_is_bound_to_its_client() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let other = w.code_client(|_| {});
    let pushed = push(&w, &c, &[]).unwrap();
    // Another client's presentation is refused and does not spend the request.
    invalid_request_uri(
        "another client",
        resolve(&w, &other.id, &pushed.request_uri, &[]),
    );
    match resolve(&w, "", &pushed.request_uri, &[]) {
        Err(AuthorizeError::Page(e)) => assert_eq!(e.code, ErrorCode::InvalidRequest),
        other => panic!("no client_id: {other:?}"),
    }
    w.advance(59);
    let later = push(&w, &c, &[]).unwrap();
    assert!(resolve(&w, &c.id, &pushed.request_uri, &[]).is_ok());
    w.advance(60);
    invalid_request_uri("expired", resolve(&w, &c.id, &later.request_uri, &[]));
    // Unknown, altered or foreign values.
    let altered = {
        let mut s = later.request_uri.clone();
        let last = s.pop().unwrap();
        s.push(if last == 'A' { 'B' } else { 'A' });
        s
    };
    for (case, uri) in [
        ("altered", altered.as_str()),
        (
            "unknown",
            "urn:ietf:params:oauth:request_uri:bm90LWEtcmVxdWVzdA",
        ),
        ("not a URN of ours", "https://client.example/request.jwt"),
    ] {
        invalid_request_uri(case, resolve(&w, &c.id, uri, &[]));
    }
}

#[test]
fn a_push_is_checked_as_the_authorization_endpoint_would_check_it() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let public = w.code_client(|c| c.public = true);
    let cc = w.client(|_| {});
    let rows: Vec<(&str, Result<PushResponse, OAuthError>, ErrorCode)> = vec![
        (
            "an unregistered redirect URI",
            push(&w, &c, &[("redirect_uri", "https://evil.example/cb")]),
            ErrorCode::InvalidRequest,
        ),
        (
            "a request_uri pushed (RFC 9126 §2.1)",
            push(
                &w,
                &c,
                &[("request_uri", "urn:ietf:params:oauth:request_uri:x")],
            ),
            ErrorCode::InvalidRequest,
        ),
        (
            "another response_type",
            push(&w, &c, &[("response_type", "token")]),
            ErrorCode::UnsupportedResponseType,
        ),
        (
            "a scope beyond the registration",
            push(&w, &c, &[("scope", "admin")]),
            ErrorCode::InvalidScope,
        ),
        (
            "a public client without PKCE",
            push(
                &w,
                &public,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ),
            ErrorCode::InvalidRequest,
        ),
        (
            "a client not registered for the code flow",
            push(&w, &cc, &[]),
            ErrorCode::UnauthorizedClient,
        ),
        (
            "a wrong secret",
            push(
                &w,
                &Creds {
                    id: c.id.clone(),
                    secret: Some("wrong".into()),
                },
                &[],
            ),
            ErrorCode::InvalidClient,
        ),
    ];
    for (case, got, code) in rows {
        match got {
            Err(e) => assert_eq!(e.code, code, "{case}: {e:?}"),
            Ok(r) => panic!("{case}: pushed {r:?}"),
        }
    }
    // A public client pushes with its client_id and PKCE.
    assert!(push(&w, &public, &[]).is_ok());
}

#[test]
fn a_push_by_basic_authentication_names_the_client_or_is_refused() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let other = w.code_client(|_| {});
    let basic = BasicCredentials {
        client_id: c.id.clone(),
        secret: Secret::new(c.secret.clone().unwrap()),
    };
    let without_id: Vec<(String, String)> = World::authorize_params(&c, "openid", &[])
        .pairs()
        .iter()
        .filter(|(k, _)| k != "client_id")
        .cloned()
        .collect();
    let pushed = run(par::push(
        &w.cx(),
        Some(&basic),
        &Params::from_pairs(without_id).unwrap(),
    ))
    .unwrap();
    assert!(resolve(&w, &c.id, &pushed.request_uri, &[]).is_ok());
    // The pushed client_id must be the authenticated client.
    let err = run(par::push(
        &w.cx(),
        Some(&basic),
        &World::authorize_params(&other, "openid", &[]),
    ))
    .unwrap_err();
    assert!(
        matches!(
            err.code,
            ErrorCode::InvalidRequest | ErrorCode::InvalidClient
        ),
        "{err:?}"
    );
}

#[test]
fn require_par_refuses_plain_requests_for_the_server_or_one_client() {
    let mut w = World::new();
    let c = w.code_client(|_| {});
    let strict = w.code_client(|c| c.user_flow.require_par = true);
    // Plain requests: fine for c, refused (back to the client) for the strict one.
    assert!(w
        .validate(&World::authorize_params(&c, "openid", &[]))
        .is_ok());
    match w.validate(&World::authorize_params(&strict, "openid", &[])) {
        Err(AuthorizeError::Redirect(url)) => {
            assert!(url.starts_with(REDIRECT), "{url}");
            assert!(url.contains("error=invalid_request"), "{url}");
        }
        other => panic!("plain request of a require_par client: {other:?}"),
    }
    // Pushed: accepted for the strict client.
    let pushed = push(&w, &strict, &[]).unwrap();
    let params = resolve(&w, &strict.id, &pushed.request_uri, &[]).unwrap();
    assert!(w.validate(&params).is_ok());
    // Server-wide.
    w.config.require_par = true;
    assert!(matches!(
        w.validate(&World::authorize_params(&c, "openid", &[])),
        Err(AuthorizeError::Redirect(_))
    ));
    let pushed = push(&w, &c, &[]).unwrap();
    let params = resolve(&w, &c.id, &pushed.request_uri, &[]).unwrap();
    assert!(w.validate(&params).is_ok());
}
