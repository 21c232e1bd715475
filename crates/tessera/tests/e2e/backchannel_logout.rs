//! OpenID Connect Back-Channel Logout 1.0: the session id (`sid`, §2.1) that ID tokens carry,
//! so that a client can match a logout token to the sign-in it knows.

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::*;
use crate::support::decode_jwt;

async fn tokens(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON body")
}

fn sid_of(tokens: &Value) -> String {
    let id = decode_jwt(tokens["id_token"].as_str().expect("an ID token"));
    id.claims["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid in {}", id.claims))
        .to_owned()
}

#[tokio::test]
async fn id_tokens_carry_the_sign_in_sessions_sid_across_clients_and_refreshes() {
    let (server, first) = setup(&[]).await;
    let second = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid offline_access",
        ])
        .await;
    let mut b = Browser::new(&server);
    let scope = "openid offline_access";
    let code = b.code(&authorize_path(&first, scope, ""), "alice").await;
    let one = tokens(exchange(&server, &first, &code, Some(VERIFIER)).await).await;
    let sid = sid_of(&one);
    // At least 128 bits, base64url, and not the session cookie's value.
    assert!(sid.len() >= 22, "{sid}");
    assert!(b.cookies.values().all(|v| !v.contains(&sid)));
    // The same browser session signing into another client: the same sid.
    let code = b.code(&authorize_path(&second, scope, ""), "alice").await;
    let two = tokens(exchange(&server, &second, &code, Some(VERIFIER)).await).await;
    assert_eq!(sid_of(&two), sid);
    // A refreshed ID token keeps the sid of the sign-in its grant came from.
    let rt = one["refresh_token"].as_str().expect("a refresh token");
    let refreshed = tokens(refresh(&server, &first, rt).await).await;
    assert_eq!(sid_of(&refreshed), sid);
    // Another browser is another session; signing in again starts another session.
    let mut other = Browser::new(&server);
    let code = other
        .code(&authorize_path(&first, scope, ""), "alice")
        .await;
    let three = tokens(exchange(&server, &first, &code, Some(VERIFIER)).await).await;
    assert_ne!(sid_of(&three), sid);
    let code = b
        .code(&authorize_path(&first, scope, "prompt=login"), "alice")
        .await;
    let four = tokens(exchange(&server, &first, &code, Some(VERIFIER)).await).await;
    assert_ne!(sid_of(&four), sid);
    assert_ne!(sid_of(&four), sid_of(&three));
}

#[tokio::test]
async fn the_logout_uri_and_session_requirement_are_registered_by_cli_and_dcr_and_checked() {
    let server =
        crate::support::Server::start_with(&[("TESSERA_DYNAMIC_REGISTRATION", "open")]).await;
    let c = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--backchannel-logout-uri",
            "https://rp.example.com/bc",
            "--backchannel-logout-session-required",
        ])
        .await;
    let show = server.cli_json(&["client", "show", &c.id, "--json"]).await;
    assert_eq!(show["backchannel_logout_uri"], "https://rp.example.com/bc");
    assert_eq!(show["backchannel_logout_session_required"], true);
    // An empty value removes it.
    server
        .cli(&["client", "update", &c.id, "--backchannel-logout-uri", ""])
        .await;
    let show = server.cli_json(&["client", "show", &c.id, "--json"]).await;
    assert!(show["backchannel_logout_uri"].is_null(), "{show}");
    // Plain http off loopback, credentials in the URI, a fragment: refused, naming the flag.
    for bad in [
        "http://rp.example.com/bc",
        "https://u:p@rp.example.com/bc",
        "https://rp.example.com/bc#x",
    ] {
        let out = server
            .cli_output(&["client", "update", &c.id, "--backchannel-logout-uri", bad])
            .await;
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--backchannel-logout-uri"), "{err}");
    }
    // Dynamic registration: kept and returned; a bad one is invalid_client_metadata.
    let register = |body: Value| {
        let s = &server;
        async move {
            let res = s
                .http
                .post(s.url("/oauth2/register"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, doc) = register(serde_json::json!({
        "redirect_uris": [REDIRECT],
        "backchannel_logout_uri": "http://127.0.0.1:9/bc",
        "backchannel_logout_session_required": true,
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    assert_eq!(doc["backchannel_logout_uri"], "http://127.0.0.1:9/bc");
    assert_eq!(doc["backchannel_logout_session_required"], true);
    for bad in [
        serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "http://rp.example.com/bc"}),
        serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": 7}),
        serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "https://rp.example.com/bc", "backchannel_logout_session_required": "yes"}),
    ] {
        let (status, doc) = register(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {doc}");
        assert_eq!(doc["error"], "invalid_client_metadata", "{bad}: {doc}");
        assert!(doc["error_description"].is_string());
    }
}
