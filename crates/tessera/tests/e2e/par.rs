//! Pushed authorization requests (RFC 9126) against a real server: the code flow through a
//! push to tokens, the `request_uri` used once and only by its client, the parameters of the
//! front channel ignored, the push's checks and errors (§2.3), its client-authentication
//! budget, and `require_par` for one client and for the server (discovery says which).

use reqwest::{header, StatusCode};
use serde_json::Value;

use crate::browser_support::*;
use crate::support::{Creds, Server};

/// Pushes `pairs` (the authorization parameters of `c` with `extra` replacing or adding)
/// with HTTP Basic.
async fn push(server: &Server, c: &Creds, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &c.id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid read"),
        ("state", "pushed-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("nonce", "n-1"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, v));
    }
    server
        .http
        .post(server.url("/oauth2/par"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&pairs)
        .send()
        .await
        .expect("push")
}

/// A push that must succeed: its `request_uri`.
async fn request_uri(server: &Server, c: &Creds, extra: &[(&str, &str)]) -> String {
    let res = push(server, c, extra).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["expires_in"], 60, "{body}");
    body["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned()
}

/// A case of a refused push: what it is, the parameters changed, the error expected.
type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

fn front(client_id: &str, request_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![("client_id", client_id), ("request_uri", request_uri)];
    pairs.extend_from_slice(extra);
    format!("/oauth2/authorize?{}", url_encode(&pairs))
}

fn assert_request_uri_refused(case: &str, page: &Page) {
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "{case}: {}",
        page.body
    );
    assert!(page.location().is_none(), "{case}: redirected");
    assert!(
        page.body.contains("invalid_request_uri"),
        "{case}: {}",
        page.body
    );
}

#[tokio::test]
async fn the_code_flow_through_a_push_gives_tokens_and_the_request_uri_is_used_once() {
    let (server, c) = setup(&[]).await;
    let res = push(&server, &c, &[]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = res.json().await.expect("json");
    let uri = body["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    // What the front channel adds is ignored: the pushed state and scope win.
    let mut b = Browser::new(&server);
    let path = front(
        &c.id,
        &uri,
        &[("state", "front-state"), ("scope", "openid profile")],
    );
    let login = b.get(&path).await;
    assert!(login.is_login(), "{}", login.body);
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent(), "{}", consent.body);
    assert!(!consent.body.contains("profile"), "{}", consent.body);
    let done = b.consent(&consent, true).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().unwrap().starts_with(REDIRECT));
    let p = done.redirect_params();
    assert_eq!(p["state"], "pushed-state");
    let res = exchange(&server, &c, &p["code"], Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.expect("json");
    assert_eq!(tokens["scope"], "openid read", "{tokens}");
    assert!(tokens["id_token"].is_string());
    // The request_uri is spent.
    let again = b.get(&path).await;
    assert_request_uri_refused("used twice", &again);
    // The value is never logged.
    let random = uri.rsplit(':').next().unwrap_or_default();
    assert!(!server.logs().contains(random));
}

#[tokio::test]
async fn a_request_uri_serves_only_its_client_and_an_altered_one_nobody() {
    let (server, c) = setup(&[]).await;
    let other = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://other.example.com/cb",
            "--scope",
            "openid",
        ])
        .await;
    let uri = request_uri(&server, &c, &[]).await;
    let mut b = Browser::new(&server);
    assert_request_uri_refused("another client", &b.get(&front(&other.id, &uri, &[])).await);
    let mut altered = uri.clone();
    let last = altered.pop().unwrap_or('A');
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert_request_uri_refused("altered", &b.get(&front(&c.id, &altered, &[])).await);
    // The owner's request was not spent by the other client's try; its pages speak the
    // pushed language, not the one sent beside request_uri.
    let login = b.get(&front(&c.id, &uri, &[("ui_locales", "ja")])).await;
    assert!(login.is_login(), "{}", login.body);
    assert!(login.body.contains("lang=\"en\""), "{}", login.body);
    let ja = request_uri(&server, &c, &[("ui_locales", "ja")]).await;
    let login = b.get(&front(&c.id, &ja, &[])).await;
    assert!(login.body.contains("lang=\"ja\""), "{}", login.body);
}

#[tokio::test]
async fn a_push_is_refused_as_rfc_9126_says() {
    let (server, c) = setup(&["--refresh-tokens", "never"]).await;
    let get = server
        .http
        .get(server.url("/oauth2/par"))
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let rows: [Row; 6] = [
        (
            "an unregistered redirect URI",
            vec![("redirect_uri", "https://evil.example/cb")],
            "invalid_request",
        ),
        (
            "a variant of the registered redirect URI",
            vec![("redirect_uri", "https://app.example.com/cb/")],
            "invalid_request",
        ),
        (
            "a pushed request_uri",
            vec![("request_uri", "urn:ietf:params:oauth:request_uri:abc")],
            "invalid_request",
        ),
        (
            "another response_type",
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            "a scope beyond the registration",
            vec![("scope", "admin")],
            "invalid_scope",
        ),
        (
            "plain PKCE",
            vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
    ];
    for (case, extra, code) in rows {
        let res = push(&server, &c, &extra).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], code, "{case}: {body}");
        assert!(body["error_description"].is_string(), "{case}: {body}");
    }
    // Past the server's bound (8 KiB of parameters): 413, still in the RFC's shape.
    let big = "s".repeat(9000);
    let res = push(&server, &c, &[("state", big.as_str())]).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    // A push of 6 KB whose every value keeps the authorization endpoint's own bounds is taken.
    let k = "v".repeat(1000);
    let res = push(
        &server,
        &c,
        &[
            ("state", k.as_str()),
            ("nonce", k.as_str()),
            ("x_a", k.as_str()),
            ("x_b", k.as_str()),
            ("x_c", k.as_str()),
            ("x_d", k.as_str()),
        ],
    )
    .await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, StatusCode::CREATED, "{text}");
    // Another client's id in the body of an authenticated push.
    let res = push(&server, &c, &[("client_id", "someone-else")]).await;
    assert!(res.status().is_client_error());
    // A wrong secret: 401 with the challenge.
    let res = push(&server, &c.with_secret("wrong"), &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
    // No authentication at all from a confidential client.
    let res = server
        .http
        .post(server.url("/oauth2/par"))
        .form(&[
            ("client_id", c.id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("push");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Credentials in the query string are refused, as at the token endpoint.
    let res = server
        .http
        .post(server.url(&format!("/oauth2/par?client_secret={}", c.secret)))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("response_type", "code")])
        .send()
        .await
        .expect("push");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn failed_pushes_spend_the_client_authentication_budget() {
    let (server, c) = setup_with(&[("TESSERA_AUTH_FAILURES_PER_MINUTE", "2")], &[]).await;
    let wrong = c.with_secret("wrong");
    for _ in 0..2 {
        assert_eq!(
            push(&server, &wrong, &[]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = push(&server, &wrong, &[]).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    // The right secret still works: the budget is not a switch against the client.
    assert_eq!(push(&server, &c, &[]).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn require_par_refuses_plain_requests_for_one_client() {
    let (server, c) = setup(&[]).await;
    let strict = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid read",
            "--require-par",
        ])
        .await;
    let shown = server
        .cli_json(&["client", "show", &strict.id, "--json"])
        .await;
    assert_eq!(
        shown["require_pushed_authorization_requests"], true,
        "{shown}"
    );
    let meta = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        server.url("/oauth2/par")
    );
    assert_eq!(meta["require_pushed_authorization_requests"], false);
    let mut b = Browser::new(&server);
    // A plain request: refused back to the client for the strict one, served for the other.
    let plain = b.get(&authorize_path(&strict, "openid", "")).await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.body);
    assert_eq!(plain.redirect_params()["error"], "invalid_request");
    assert!(b.get(&authorize_path(&c, "openid", "")).await.is_login());
    // Pushed: served.
    let uri = request_uri(&server, &strict, &[]).await;
    let page = b.get(&front(&strict.id, &uri, &[])).await;
    assert!(page.is_login(), "{}", page.body);
}

#[tokio::test]
async fn require_par_on_the_server_refuses_every_plain_request() {
    let (server, c) = setup_with(&[("TESSERA_REQUIRE_PAR", "true")], &[]).await;
    let meta = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["require_pushed_authorization_requests"], true);
    let mut b = Browser::new(&server);
    let plain = b.get(&authorize_path(&c, "openid", "")).await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.body);
    assert_eq!(plain.redirect_params()["error"], "invalid_request");
    let uri = request_uri(&server, &c, &[]).await;
    let code = b.code(&front(&c.id, &uri, &[]), "alice").await;
    let res = exchange(&server, &c, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
}
