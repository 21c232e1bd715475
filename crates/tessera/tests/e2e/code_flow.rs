//! The authorization code flow over HTTP: pages, codes, PKCE, refresh tokens, prompt values,
//! CSRF, sign-in throttling, logout, userinfo. The same flow in a real browser is in
//! `browser.rs`; the OpenID Connect client library exchange in `oidc_client.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::*;
use crate::support::{decode_jwt, Server};

async fn json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.expect("JSON body"))
}

#[tokio::test]
async fn the_flow_signs_in_consents_and_redirects_with_code_state_and_iss() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b
        .get(&authorize_path(&client, "openid read", "productId=p-42"))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.is_login());
    // The unknown parameter travels with the request, sealed, not in a field of its own.
    assert!(!login.hidden().iter().any(|(k, _)| k == "productId"));
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent(), "{}", consent.body);
    assert!(consent.body.contains("Allow") && consent.body.contains("Deny"));
    let done = b.consent(&consent, true).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let loc = done.location().unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let p = done.redirect_params();
    assert_eq!(p["state"], "st-123");
    assert_eq!(p["iss"], server.issuer());
    // At least 128 bits: 256 random bits in base64url.
    assert!(p["code"].len() >= 43, "{}", p["code"]);
    let (status, tokens) = json(exchange(&server, &client, &p["code"], Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "openid read");
    assert!(tokens["id_token"].is_string());
    // No offline_access, default policy: no refresh token.
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let at = decode_jwt(tokens["access_token"].as_str().unwrap());
    let sub = &at.claims["sub"];
    let id = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(&id.claims["sub"], sub);
    assert_eq!(id.claims["aud"], client.id.as_str());
    assert_eq!(id.claims["nonce"], "n-456");
    assert!(id.claims["auth_time"].is_i64());
    assert!(id.claims["at_hash"].is_string());
}

#[tokio::test]
async fn consent_is_remembered_and_prompt_consent_asks_again() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    b.code(&authorize_path(&client, "openid read", ""), "alice")
        .await;
    // Same scope again: no page at all.
    let again = b.get(&authorize_path(&client, "openid read", "")).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert!(again.redirect_params().contains_key("code"));
    // A subset is covered too; a new scope is asked.
    let subset = b.get(&authorize_path(&client, "openid", "")).await;
    assert_eq!(subset.status, StatusCode::SEE_OTHER);
    let more = b
        .get(&authorize_path(&client, "openid read email", ""))
        .await;
    assert!(more.is_consent());
    let forced = b
        .get(&authorize_path(&client, "openid", "prompt=consent"))
        .await;
    assert!(forced.is_consent());
    let after = b.consent(&forced, true).await;
    assert!(after.redirect_params().contains_key("code"));
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    let denied = b.consent(&consent, false).await;
    let p = denied.redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "st-123");
    assert_eq!(p["iss"], server.issuer());
    assert!(!p.contains_key("code"));
}

#[tokio::test]
async fn prompt_none_login_and_consent_required_and_prompt_login_forces_sign_in() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let none = b
        .get(&authorize_path(&client, "openid", "prompt=none"))
        .await;
    assert_eq!(none.status, StatusCode::SEE_OTHER);
    assert_eq!(none.redirect_params()["error"], "login_required");
    assert_eq!(none.redirect_params()["state"], "st-123");
    // Signed in, not consented.
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent());
    let none = b
        .get(&authorize_path(&client, "openid", "prompt=none"))
        .await;
    assert_eq!(none.redirect_params()["error"], "consent_required");
    b.consent(&consent, true).await;
    let none = b
        .get(&authorize_path(&client, "openid", "prompt=none"))
        .await;
    assert!(
        none.redirect_params().contains_key("code"),
        "{:?}",
        none.location()
    );
    // prompt=login shows the form despite the session, then goes on to the code.
    let forced = b
        .get(&authorize_path(&client, "openid", "prompt=login"))
        .await;
    assert!(forced.is_login());
    let done = b.sign_in(&forced, "alice", PASSWORD).await;
    assert!(done.redirect_params().contains_key("code"), "{}", done.body);
    // `max_age` against the age of the sign-in is decided by the clock, and is checked with
    // a fixed clock in the core's handler tests (endpoint_authorize): a sign-in older than
    // `max_age` asks for a new one, with no waiting here.
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_uri_show_a_page_and_never_redirect() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let path = authorize_path(&client, "openid", "").replace(
        &url_encode(&[("redirect_uri", REDIRECT)]),
        &url_encode(&[("redirect_uri", "https://evil.example/cb")]),
    );
    for p in [
        path,
        authorize_path(&client, "openid", "").replace(&client.id, "nope"),
        "/oauth2/authorize?response_type=code".to_owned(),
    ] {
        let page = b.get(&p).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{p}");
        assert!(page.location().is_none(), "{p} redirected");
        assert!(page.body.contains("<html"), "{p}");
    }
}

#[tokio::test]
async fn later_errors_redirect_with_error_state_and_iss() {
    let (server, client) = setup(&["--public"]).await;
    let mut b = Browser::new(&server);
    let base = authorize_path(&client, "openid", "");
    let cases = [
        (
            base.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (base.replace("scope=openid", "scope=admin"), "invalid_scope"),
        // PKCE is required for a public client.
        (
            base.replace(
                &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
                "",
            ),
            "invalid_request",
        ),
        (base.replace("S256", "plain"), "invalid_request"),
        (format!("{base}&prompt=none+login"), "invalid_request"),
        (format!("{base}&state=again"), "invalid_request"),
    ];
    for (path, error) in cases {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}: {}", page.body);
        let p = page.redirect_params();
        assert_eq!(p["error"], error, "{path}");
        assert!(p.contains_key("error_description"));
        assert_eq!(p["iss"], server.issuer());
        // A repeated state cannot be echoed; every other error carries it back.
        assert_eq!(
            p.contains_key("state"),
            !path.ends_with("state=again"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn code_replay_is_refused_and_revokes_the_tokens_issued_from_it() {
    let (server, client) = setup(&[
        "--refresh-tokens",
        "always",
        "--access-token-format",
        "opaque",
    ])
    .await;
    let caller = server.create_client(&[]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid read", ""), "alice")
        .await;
    let (status, first) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let at = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    assert!(server.is_active(&caller, at).await);
    let (status, second) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(second["error"], "invalid_grant");
    assert!(
        !server.is_active(&caller, at).await,
        "replay must revoke the access token"
    );
    let (status, r) = json(refresh(&server, &client, rt).await).await;
    assert_eq!(
        (status, r["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn pkce_mismatch_missing_verifier_and_downgrade_are_invalid_grant() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let wrong = "x".repeat(43);
    let (status, body) = json(exchange(&server, &client, &code, Some(&wrong)).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The failed attempt spent the code.
    let (_, body) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(body["error"], "invalid_grant");
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (_, body) = json(exchange(&server, &client, &code, None).await).await;
    assert_eq!(body["error"], "invalid_grant");
    // A code issued without a challenge refuses a verifier (PKCE downgrade).
    let no_pkce = authorize_path(&client, "openid", "").replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let code = b.code(&no_pkce, "alice").await;
    let (_, body) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(body["error"], "invalid_grant");
    let code = b.code(&no_pkce, "alice").await;
    let (status, _) = json(exchange(&server, &client, &code, None).await).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a confidential client without --require-pkce"
    );
}

#[tokio::test]
async fn require_pkce_and_plain_only_when_enabled() {
    let (server, client) = setup(&["--require-pkce"]).await;
    let mut b = Browser::new(&server);
    let no_pkce = authorize_path(&client, "openid", "").replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let page = b.get(&no_pkce).await;
    assert_eq!(page.redirect_params()["error"], "invalid_request");
    server
        .cli(&["client", "update", &client.id, "--allow-plain-pkce"])
        .await;
    let plain = authorize_path(&client, "openid", "")
        .replace(CHALLENGE, VERIFIER)
        .replace("S256", "plain");
    // The server learns of the change through its change feed: wait until the request is
    // no longer refused (it then shows the sign-in page).
    crate::support::wait_until(
        Duration::from_secs(3),
        "the server honours --allow-plain-pkce",
        || async { Browser::new(&server).get(&plain).await.is_login() },
    )
    .await;
    let code = b.code(&plain, "alice").await;
    let (status, body) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn redirect_uri_must_match_at_the_token_endpoint_and_codes_bind_to_their_client() {
    let (server, client) = setup(&["--redirect-uri", "https://app.example.com/other"]).await;
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
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://app.example.com/other"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (_, body) = json(exchange(&server, &other, &code, Some(VERIFIER)).await).await;
    assert_eq!(body["error"], "invalid_grant");
}

/// The lifetimes a client is registered with, as the server stores them. That codes and
/// refresh tokens expire by them (code lifetime, absolute refresh lifetime from sign-in,
/// idle refresh lifetime) is checked with a fixed clock in the core's handler tests
/// (grant_authorization_code, grant_refresh_token), not by waiting here.
#[tokio::test]
async fn the_code_and_refresh_lifetimes_are_registered_as_given() {
    let (server, client) = setup(&[
        "--code-ttl",
        "1",
        "--refresh-token-ttl",
        "3",
        "--refresh-token-idle-ttl",
        "1",
    ])
    .await;
    let shown = server
        .cli_json(&["client", "show", &client.id, "--json"])
        .await;
    assert_eq!(shown["code_ttl"], 1, "{shown}");
    assert_eq!(shown["refresh_token_ttl"], 3, "{shown}");
    assert_eq!(shown["refresh_token_idle_ttl"], 1, "{shown}");
    // A code exchanged at once is still good under a one-second lifetime.
    let mut b = Browser::new(&server);
    let code = b
        .code(
            &authorize_path(&client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let (status, body) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn tokens_with_refresh(server: &Server, client: &crate::support::Creds) -> Value {
    let mut b = Browser::new(server);
    let code = b
        .code(
            &authorize_path(client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let (status, body) = json(exchange(server, client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn refresh_policy_offline_access_always_and_never() {
    let (server, client) = setup(&[]).await;
    let t = tokens_with_refresh(&server, &client).await;
    let rt = t["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token");
    assert!(rt.starts_with("trt_"));
    let never = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid offline_access",
            "--refresh-tokens",
            "never",
        ])
        .await;
    let t = tokens_with_refresh(&server, &never).await;
    assert!(t.get("refresh_token").is_none());
    let always = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
            "--refresh-tokens",
            "always",
        ])
        .await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&always, "openid", ""), "alice")
        .await;
    let (_, t) = json(exchange(&server, &always, &code, Some(VERIFIER)).await).await;
    assert!(t["refresh_token"].is_string(), "{t}");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let (server, client) = setup(&["--access-token-format", "opaque"]).await;
    let caller = server.create_client(&[]).await;
    let t0 = tokens_with_refresh(&server, &client).await;
    let rt0 = t0["refresh_token"].as_str().unwrap();
    let (status, t1) = json(refresh(&server, &client, rt0).await).await;
    assert_eq!(status, StatusCode::OK, "{t1}");
    let rt1 = t1["refresh_token"].as_str().unwrap();
    assert_ne!(rt0, rt1);
    assert!(t1["id_token"].is_string());
    let (status, t2) = json(refresh(&server, &client, rt1).await).await;
    assert_eq!(status, StatusCode::OK);
    let at2 = t2["access_token"].as_str().unwrap();
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert!(server.is_active(&caller, at2).await);
    // rt0 was rotated out long ago: presenting it again revokes everything of the family.
    let (status, e) = json(refresh(&server, &client, rt0).await).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    for at in [
        t0["access_token"].as_str().unwrap(),
        t1["access_token"].as_str().unwrap(),
        at2,
    ] {
        assert!(!server.is_active(&caller, at).await);
    }
    let (_, e) = json(refresh(&server, &client, rt2).await).await;
    assert_eq!(
        e["error"], "invalid_grant",
        "the newest refresh token dies too"
    );
    // Another client cannot use someone's refresh token. One registered for neither the
    // code flow nor refresh tokens may not use the grant at all (RFC 6749 §5.2
    // `unauthorized_client`); another code-flow client is refused the token, which is bound
    // to the client it was issued to (RFC 6749 §6, §10.4: `invalid_grant`).
    let t = tokens_with_refresh(&server, &client).await;
    let theirs = t["refresh_token"].as_str().unwrap();
    let (_, e) = json(refresh(&server, &caller, theirs).await).await;
    assert_eq!(e["error"], "unauthorized_client", "{e}");
    let other_code_client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid offline_access",
        ])
        .await;
    let (_, e) = json(refresh(&server, &other_code_client, theirs).await).await;
    assert_eq!(e["error"], "invalid_grant", "{e}");
    // Neither refusal used the token up.
    let (status, _) = json(refresh(&server, &client, theirs).await).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn parallel_refreshes_with_one_token_have_exactly_one_winner() {
    let (server, client) = setup(&[]).await;
    for _round in 0..3 {
        let t = tokens_with_refresh(&server, &client).await;
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let attempts = (0..16).map(|_| {
            let (s, c, rt) = (&server, &client, rt.clone());
            async move { refresh(s, c, &rt).await.status() }
        });
        let results = futures_util::future::join_all(attempts).await;
        let ok = results.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "{results:?}");
        assert!(results
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST));
    }
}

#[tokio::test]
async fn within_the_grace_period_a_repeated_refresh_returns_the_same_successor() {
    let (server, client) = setup(&["--refresh-grace-period", "30"]).await;
    let caller = server.create_client(&[]).await;
    let t = tokens_with_refresh(&server, &client).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, a) = json(refresh(&server, &client, rt).await).await;
    let (status, b) = json(refresh(&server, &client, rt).await).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    assert!(
        server
            .is_active(&caller, a["access_token"].as_str().unwrap())
            .await
    );
    // Once the successor itself was used, the old token is plain reuse again.
    let (_, c) = json(refresh(&server, &client, a["refresh_token"].as_str().unwrap()).await).await;
    assert!(c["refresh_token"].is_string());
    let (_, e) = json(refresh(&server, &client, rt).await).await;
    assert_eq!(e["error"], "invalid_grant");
    assert!(
        !server
            .is_active(&caller, c["access_token"].as_str().unwrap())
            .await
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_access_tokens() {
    let (server, client) = setup(&[]).await;
    let caller = server.create_client(&[]).await;
    let t = tokens_with_refresh(&server, &client).await;
    let at = t["access_token"].as_str().unwrap();
    assert!(server.is_active(&caller, at).await);
    assert_eq!(
        server
            .revoke(&client, t["refresh_token"].as_str().unwrap())
            .await,
        StatusCode::OK
    );
    assert!(!server.is_active(&caller, at).await);
    let (_, e) = json(refresh(&server, &client, t["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(e["error"], "invalid_grant");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let mut fields: Vec<(String, String)> = login
        .hidden()
        .into_iter()
        .filter(|(k, _)| k != "_csrf")
        .collect();
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let page = b.post("/oauth2/authorize", &fields).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.location().is_none());
    assert!(
        !b.cookies.keys().any(|k| k.contains("session")),
        "no session was made"
    );
    // A token from another browser's cookie does not pass either.
    let mut other = Browser::new(&server);
    other.get(&authorize_path(&client, "openid", "")).await;
    let mut fields = login.hidden();
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let page = other.post("/oauth2/authorize", &fields).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_message_and_lock_out() {
    let (server, client) = setup_with(&[("TESSERA_LOGIN_FAILURES_PER_USER", "3")], &[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let wrong = b.sign_in(&login, "alice", "not the password").await;
    let unknown = b.sign_in(&login, "mallory", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    let msg = |p: &Page| {
        p.body
            .split("role=\"alert\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(!msg(&wrong).is_empty());
    assert_eq!(msg(&wrong), msg(&unknown));
    b.sign_in(&login, "alice", "still not it").await;
    b.sign_in(&login, "alice", "nor this").await;
    // Locked out: even the right password is refused now.
    let locked = b.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!(!b.cookies.keys().any(|k| k.contains("session")));
}

#[tokio::test]
async fn pages_carry_security_headers_and_cookies_are_httponly_lax() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let h = &login.headers;
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(!login.body.contains("<script"));
    let consent_res = {
        let mut fields = login.hidden();
        fields.push(("username".into(), "alice".into()));
        fields.push(("password".into(), PASSWORD.into()));
        server
            .http
            .post(server.url("/oauth2/authorize"))
            .header(
                "cookie",
                format!("tessera_csrf={}", b.cookies["tessera_csrf"]),
            )
            .form(&fields)
            .send()
            .await
            .unwrap()
    };
    let cookies: Vec<String> = consent_res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("tessera_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    // The session cookie holds a secret; the database only its hash (checked in the store).
    let css = server
        .http
        .get(server.url("/assets/tessera.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
}

#[tokio::test]
async fn pages_speak_japanese_by_ui_locales_or_accept_language() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let ja = b
        .get(&authorize_path(&client, "openid", "ui_locales=ja"))
        .await;
    assert!(ja.body.contains("lang=\"ja\"") && ja.body.contains("サインイン"));
    b.accept_language = Some("ja-JP,ja;q=0.9,en;q=0.5".into());
    let ja = b.get(&authorize_path(&client, "openid", "")).await;
    assert!(ja.body.contains("パスワード"));
    let consent = b.sign_in(&ja, "alice", PASSWORD).await;
    assert!(consent.body.contains("許可する") && consent.body.contains("拒否する"));
    let en = b
        .get(&authorize_path(&client, "openid email", "ui_locales=en"))
        .await;
    assert!(en.body.contains("Allow") && en.body.contains("Deny"));
}

#[tokio::test]
async fn logout_ends_the_session_and_returns_to_a_registered_uri_only() {
    let (server, client) =
        setup(&["--post-logout-redirect-uri", "https://app.example.com/bye"]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (_, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    let id_token = t["id_token"].as_str().unwrap();
    let bad = b
        .get(&format!(
            "/oauth2/logout?{}",
            url_encode(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://evil.example/")
            ])
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.location().is_none());
    let confirm = b
        .get(&format!(
            "/oauth2/logout?{}",
            url_encode(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://app.example.com/bye"),
                ("state", "bye-1"),
            ])
        ))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    let done = b.post("/oauth2/logout", &confirm.hidden()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        done.location().unwrap(),
        "https://app.example.com/bye?state=bye-1"
    );
    let again = b.get(&authorize_path(&client, "openid", "")).await;
    assert!(again.is_login(), "signed out");
}

#[tokio::test]
async fn userinfo_releases_claims_by_scope() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid email", ""), "alice")
        .await;
    let (_, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    let at = t["access_token"].as_str().unwrap();
    let info: Value = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "alice@example.com");
    assert!(info.get("name").is_none(), "no profile scope: {info}");
    assert_eq!(info["sub"], decode_jwt(at).claims["sub"]);
    let code = b.code(&authorize_path(&client, "read", ""), "alice").await;
    let (_, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    let res = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn deleting_a_user_revokes_their_tokens_and_a_password_change_ends_sessions() {
    let (server, client) = setup(&[]).await;
    let caller = server.create_client(&[]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid", ""), "alice")
        .await;
    let (_, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    let at = t["access_token"].as_str().unwrap();
    let out = server
        .cli_with_stdin(
            &["user", "set-password", "alice", "--password-stdin"],
            "a new password 123\n",
        )
        .await;
    assert!(out.status.success());
    assert!(b
        .get(&authorize_path(&client, "openid", ""))
        .await
        .is_login());
    assert!(server.is_active(&caller, at).await);
    server.cli(&["user", "delete", "alice"]).await;
    crate::support::wait_until(
        Duration::from_secs(2),
        "tokens of a deleted user",
        || async { !server.is_active(&caller, at).await },
    )
    .await;
    let dup = server.create_user("bob", PASSWORD).await;
    assert!(!dup.is_empty());
    let out = server
        .cli_with_stdin(
            &["user", "create", "--username", "bob", "--password-stdin"],
            "another password\n",
        )
        .await;
    assert!(!out.status.success());
    let short = server
        .cli_with_stdin(
            &["user", "create", "--username", "carol", "--password-stdin"],
            "short\n",
        )
        .await;
    assert!(!short.status.success());
}

#[tokio::test]
async fn public_clients_exchange_with_pkce_and_no_secret() {
    let (server, client) = setup(&["--public"]).await;
    assert!(client.secret.is_empty());
    let mut b = Browser::new(&server);
    let code = b
        .code(
            &authorize_path(&client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let (status, t) = json(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let (status, _) =
        json(refresh(&server, &client, t["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn seed_004_json_body_with_basic_and_seed_003_form_with_scope() {
    let (server, client) = setup(&["--refresh-tokens", "always"]).await;
    let mut b = Browser::new(&server);
    let code = b
        .code(&authorize_path(&client, "openid read", ""), "alice")
        .await;
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .json(&serde_json::json!({
            "code": code, "grant_type": "authorization_code", "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        }))
        .send()
        .await
        .unwrap();
    let (status, t) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .json(&serde_json::json!({
            "grant_type": "refresh_token", "refresh_token": t["refresh_token"],
            "client_id": client.id, "client_secret": client.secret, "scope": "read",
        }))
        .send()
        .await
        .unwrap();
    let (status, r) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["scope"], "read", "a refresh may narrow the scope");
    let code = b
        .code(&authorize_path(&client, "openid read", ""), "alice")
        .await;
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .form(&[
            ("code_verifier", VERIFIER),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("grant_type", "authorization_code"),
            ("scope", "openid read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn redirect_uri_variants_are_not_the_registered_one_and_never_redirected_to() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    for variant in [
        "https://app.example.com/cb/",
        "https://app.example.com/cb?x=1",
        "https://APP.example.com/cb",
        "https://app.example.com/cb#f",
        "https://app.example.com/cb/sub",
        "https://app.example.com/%63b",
        "https://app.example.com:443/cb",
        "http://app.example.com/cb",
    ] {
        let path = authorize_path(&client, "openid", "").replace(
            &url_encode(&[("redirect_uri", REDIRECT)]),
            &url_encode(&[("redirect_uri", variant)]),
        );
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{variant}");
        assert!(page.location().is_none(), "{variant} was redirected to");
    }
}

#[tokio::test]
async fn the_authorization_endpoint_sends_no_cors_headers_and_loads_nothing_from_elsewhere() {
    let (server, client) = setup_with(
        &[("TESSERA_CORS_ALLOWED_ORIGINS", "https://app.example.com")],
        &[],
    )
    .await;
    let res = server
        .http
        .get(server.url(&authorize_path(&client, "openid", "")))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let body = res.text().await.unwrap();
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "<script",
    ] {
        assert!(!body.contains(external), "{external} in the page");
    }
    // The token endpoint does honour the allowed origin.
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .header("origin", "https://app.example.com")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_some());
}

#[tokio::test]
async fn a_refresh_cannot_widen_the_scope() {
    let (server, client) = setup(&[]).await;
    let t = tokens_with_refresh(&server, &client).await;
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "openid offline_access read"),
        ])
        .send()
        .await
        .unwrap();
    let (status, e) = json(res).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn discovery_lists_the_code_flow_truthfully() {
    let (server, _) = setup(&[]).await;
    let meta = server.get_json("/.well-known/openid-configuration").await;
    let iss = server.issuer();
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{iss}/oauth2/authorize")
    );
    assert_eq!(meta["userinfo_endpoint"], format!("{iss}/userinfo"));
    assert_eq!(meta["end_session_endpoint"], format!("{iss}/oauth2/logout"));
    assert_eq!(
        meta["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert!(meta["code_challenge_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"S256".into()));
    assert_eq!(
        meta["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert!(meta["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&"ES256".into()));
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(
            meta["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&g.into()),
            "{g}"
        );
    }
    // Every advertised endpoint answers something other than 404.
    for key in [
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let res = server
            .http
            .get(meta[key].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{key}");
    }
}

#[tokio::test]
async fn failures_from_one_address_lock_out_every_username_from_it() {
    let (server, client) = setup_with(&[("TESSERA_LOGIN_FAILURES_PER_ADDRESS", "3")], &[]).await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    for name in ["u1", "u2", "u3"] {
        let page = b.sign_in(&login, name, "guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let locked = b.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_refresh_token_introspects_active_only_for_its_client_until_rotated() {
    let (server, client) = setup(&[]).await;
    let other = server.create_client(&[]).await;
    let t = tokens_with_refresh(&server, &client).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let v = server.introspect(&client, rt).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["token_type"], "refresh_token");
    assert_eq!(v["client_id"], client.id.as_str());
    assert_eq!(
        v["sub"],
        decode_jwt(t["access_token"].as_str().unwrap()).claims["sub"]
    );
    assert!(v["auth_time"].is_i64());
    let v = server.introspect(&other, rt).await;
    assert_eq!(v, serde_json::json!({"active": false}));
    let (status, _) = json(refresh(&server, &client, rt).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.introspect(&client, rt).await,
        serde_json::json!({"active": false})
    );
}
