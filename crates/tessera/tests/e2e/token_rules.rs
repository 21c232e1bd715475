//! Who may consume, revoke and read a token, and what the token endpoint checks: single-use
//! tokens used up only by a caller entitled to them, code replay revoking a grant only for
//! the code's own client, `/userinfo` only for tokens meant for it, the refresh grant only
//! for clients registered for it, `redirect_uri` repeated when the authorization request
//! named it, and loopback redirect ports that are real ports.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::*;
use crate::support::{wait_until, Creds, Server};

async fn json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.expect("JSON body"))
}

/// `/userinfo` with `token` as a bearer token.
async fn userinfo(s: &Server, token: &str) -> reqwest::Response {
    s.http
        .get(s.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A client whose access tokens are single-use, one of its tokens, and a resource server
/// (another client of the same environment) that introspects.
async fn single_use_setup(s: &Server) -> (Creds, String, Creds) {
    let owner = s.create_client(&["--single-use-tokens"]).await;
    let token = s.access_token(&owner).await;
    let api = s.create_client(&[]).await;
    (owner, token, api)
}

/// The first introspection of an unused single-use token sees it active, the second not.
async fn assert_unused(s: &Server, api: &Creds, token: &str) {
    assert!(
        s.is_active(api, token).await,
        "the token was consumed by a caller with no right to it"
    );
    assert!(!s.is_active(api, token).await, "the token is single-use");
}

#[tokio::test]
async fn revocation_by_another_client_does_not_consume_a_single_use_token() {
    let s = Server::start().await;
    let (_, token, api) = single_use_setup(&s).await;
    let other = s.create_client(&[]).await;
    assert_eq!(s.revoke(&other, &token).await, StatusCode::OK);
    assert_unused(&s, &api, &token).await;
}

#[tokio::test]
async fn revocation_by_a_public_client_does_not_consume_a_single_use_token() {
    let s = Server::start().await;
    let (_, token, api) = single_use_setup(&s).await;
    let public = s
        .create_client(&["--public", "--redirect-uri", REDIRECT])
        .await;
    let res = s
        .http
        .post(s.url("/oauth2/revoke"))
        .form(&[("token", token.as_str()), ("client_id", public.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_unused(&s, &api, &token).await;
}

#[tokio::test]
async fn userinfo_with_a_client_credentials_token_does_not_consume_it() {
    let s = Server::start().await;
    let (_, token, api) = single_use_setup(&s).await;
    let res = userinfo(&s, &token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_unused(&s, &api, &token).await;
}

#[tokio::test]
async fn an_operators_look_does_not_consume_a_single_use_token() {
    let s = Server::start().await;
    let (_, token, api) = single_use_setup(&s).await;
    for _ in 0..2 {
        let look = s.cli_json(&["token", "introspect", &token, "--json"]).await;
        assert_eq!(look["active"], true, "{look}");
        assert_eq!(look["single_use"], true, "{look}");
    }
    assert_unused(&s, &api, &token).await;
    // Once used, the operator sees it inactive.
    let look = s.cli_json(&["token", "introspect", &token, "--json"]).await;
    assert_eq!(look["active"], false, "{look}");
}

#[tokio::test]
async fn the_owners_revocation_still_ends_a_single_use_token() {
    let s = Server::start().await;
    let (owner, token, api) = single_use_setup(&s).await;
    assert_eq!(s.revoke(&owner, &token).await, StatusCode::OK);
    assert!(!s.is_active(&api, &token).await);
}

/// A user-flow single-use token is consumed by the one `/userinfo` call it passes.
#[tokio::test]
async fn userinfo_consumes_a_single_use_token_it_accepts() {
    let (server, client) = setup(&["--single-use-tokens"]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid email", ""), "alice")
        .await;
    let (_, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, at).await.status(), StatusCode::OK);
    assert_eq!(
        userinfo(&server, at).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_the_grant_only_when_its_own_client_replays_it() {
    let (server, client) = setup(&["--access-token-format", "opaque"]).await;
    let api = server.create_client(&[]).await;
    let other = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
        ])
        .await;
    let public = server
        .create_client(&["--public", "--redirect-uri", REDIRECT, "--scope", "openid"])
        .await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (status, first) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let at = first["access_token"].as_str().unwrap();
    // Another confidential client, and a public one (no credentials at all), replay it.
    for intruder in [&other, &public] {
        let (status, body) = json(exchange(&server, intruder, &code, Some(VERIFIER)).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        assert!(
            server.is_active(&api, at).await,
            "a replay by {} revoked another client's grant",
            intruder.id
        );
    }
    // The code's own client replaying it is the RFC 6749 §4.1.2 case: the grant is revoked.
    let (status, _) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!server.is_active(&api, at).await);
}

#[tokio::test]
async fn a_public_clients_replayed_code_revokes_only_with_its_verifier() {
    let (server, client) = setup(&["--public", "--access-token-format", "opaque"]).await;
    let api = server.create_client(&[]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (status, first) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let at = first["access_token"].as_str().unwrap();
    // Anyone may send the public client's id: without the verifier, no revocation.
    let wrong = "w".repeat(43);
    for verifier in [None, Some(wrong.as_str())] {
        let (status, _) = json(exchange(&server, &client, &code, verifier).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(server.is_active(&api, at).await, "{verifier:?}");
    }
    let (status, _) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!server.is_active(&api, at).await);
}

/// Exchanges `code` asking for `resource`.
async fn exchange_for(server: &Server, c: &Creds, code: &str, resource: &str) -> Value {
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", resource),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn userinfo_refuses_a_token_meant_for_another_api() {
    let server = Server::start().await;
    server.create_user("alice", PASSWORD).await;
    let issuer = server.issuer().to_owned();
    let client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid email",
            "--audience",
            "https://api.example.com",
            "--audience",
            &issuer,
        ])
        .await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid email", ""), "alice")
        .await;
    let t = exchange_for(&server, &client, &code, "https://api.example.com").await;
    let res = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    // A token whose audience includes this server is accepted.
    let code = b
        .code(&authorize_path(&client, "openid email", ""), "alice")
        .await;
    let t = exchange_for(&server, &client, &code, &issuer).await;
    let res = userinfo(&server, t["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_taken_off_the_code_flow_may_not_refresh() {
    let (server, client) = setup(&["--refresh-tokens", "always"]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (_, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    server
        .cli(&[
            "client",
            "update",
            &client.id,
            "--grant-type",
            "client_credentials",
        ])
        .await;
    // The server learns of the change through its change feed: wait until it lets the
    // client use client credentials (a refresh meanwhile would rotate the token).
    wait_until(
        Duration::from_secs(3),
        "the server knows the client's new grant types",
        || async { server.token_status(&client).await == StatusCode::OK },
    )
    .await;
    let (status, body) = json(refresh(&server, &client, &rt).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client")),
        "{body}"
    );
    // Registered for refresh_token explicitly (and the code flow), it may again.
    server
        .cli(&[
            "client",
            "update",
            &client.id,
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "authorization_code",
        ])
        .await;
    // Wait until the server knows the change: client credentials are refused again.
    wait_until(
        Duration::from_secs(3),
        "the server lets the client refresh again",
        || async { server.token_status(&client).await == StatusCode::BAD_REQUEST },
    )
    .await;
    let (status, body) = json(refresh(&server, &client, &rt).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Exchanges `code` without a `redirect_uri`, or with `redirect_uri`.
async fn exchange_with_redirect(
    server: &Server,
    c: &Creds,
    code: &str,
    redirect_uri: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
    ];
    if let Some(uri) = redirect_uri {
        form.push(("redirect_uri", uri));
    }
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    json(res).await
}

#[tokio::test]
async fn redirect_uri_is_required_at_the_token_endpoint_when_the_request_named_it() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    // Named in the authorization request (the client has one registered URI): required.
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (status, body) = exchange_with_redirect(&server, &client, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    // Left out of the authorization request: it may be left out here too, or repeated.
    let without = authorize_path(&client, "openid", "").replace(
        &format!("&{}", url_encode(&[("redirect_uri", REDIRECT)])),
        "",
    );
    assert!(!without.contains("redirect_uri"), "{without}");
    let code = b.code(&without, "alice").await;
    let (status, body) = exchange_with_redirect(&server, &client, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = b.code(&without, "alice").await;
    let (status, body) = exchange_with_redirect(&server, &client, &code, Some(REDIRECT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_loopback_redirect_with_another_port_must_be_repeated_exactly() {
    let server = Server::start().await;
    server.create_user("alice", PASSWORD).await;
    // One registered URI, so leaving it out of both requests would be allowed.
    let client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--scope",
            "openid",
        ])
        .await;
    let mut b = Browser::new(&server);
    let asked = "http://127.0.0.1:51234/cb";
    let path = authorize_path(&client, "openid", "").replace(
        &url_encode(&[("redirect_uri", REDIRECT)]),
        &url_encode(&[("redirect_uri", asked)]),
    );
    let code = b.code(&path, "alice").await;
    let (status, body) = exchange_with_redirect(&server, &client, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    let code = b.code(&path, "alice").await;
    let (status, body) =
        exchange_with_redirect(&server, &client, &code, Some("http://127.0.0.1/cb")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
    let code = b.code(&path, "alice").await;
    let (status, body) = exchange_with_redirect(&server, &client, &code, Some(asked)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_loopback_redirect_port_must_be_a_real_port_written_canonically() {
    let (server, client) = setup(&["--redirect-uri", "http://127.0.0.1/cb"]).await;
    let mut b = Browser::new(&server);
    let with_port = |port: &str| {
        authorize_path(&client, "openid", "").replace(
            &url_encode(&[("redirect_uri", REDIRECT)]),
            &url_encode(&[("redirect_uri", &format!("http://127.0.0.1:{port}/cb"))]),
        )
    };
    for port in ["0", "99999", "08080", "65536"] {
        let page = b.get(&with_port(port)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "port {port}");
        assert!(page.location().is_none(), "port {port} redirected");
    }
    let page = b.get(&with_port("8080")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.is_login(), "{}", page.body);
}
