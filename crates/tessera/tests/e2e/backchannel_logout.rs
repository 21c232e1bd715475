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
