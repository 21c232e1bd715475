//! No token or secret in the logs, even at debug level.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{basic, wait_until, Creds, Server, FEED_DEADLINE};

/// Gets a token in each of the four request styles; returns them.
async fn tokens_in_every_style(s: &Server, c: &Creds) -> Vec<String> {
    let url = s.url("/oauth2/token");
    let reqs = [
        s.http
            .post(&url)
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")]),
        s.http.post(&url).json(&json!({
            "grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret,
        })),
        s.http.post(&url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.id.as_str()),
            ("client_secret", c.secret.as_str()),
        ]),
        s.http.post(&url).multipart(
            reqwest::multipart::Form::new()
                .text("grant_type", "client_credentials")
                .text("client_id", c.id.clone())
                .text("client_secret", c.secret.clone()),
        ),
    ];
    let mut out = Vec::new();
    for req in reqs {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        out.push(body["access_token"].as_str().unwrap().to_owned());
    }
    out
}

/// The strings that must not appear: the value, and its random part without the prefix; for
/// a JWT also its payload and signature parts.
fn needles(value: &str) -> Vec<String> {
    let mut n = vec![value.to_owned()];
    if let Some(rest) = value
        .strip_prefix("tcs_")
        .or_else(|| value.strip_prefix("tat_"))
    {
        n.push(rest.to_owned());
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() == 3 {
        n.push(parts[1].to_owned());
        n.push(parts[2].to_owned());
    }
    n
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_server_logs() {
    let mut s = Server::start().await;
    let jwt = s.create_client(&["--scope", "read"]).await;
    let opaque = s
        .create_client(&["--scope", "read", "--access-token-format", "opaque"])
        .await;
    let mut secrets = vec![jwt.secret.clone(), opaque.secret.clone()];
    let mut tokens = Vec::new();
    tokens.extend(tokens_in_every_style(&s, &jwt).await);
    tokens.extend(tokens_in_every_style(&s, &opaque).await);

    // Failures that carry secrets: a wrong secret, credentials in the query string, Basic
    // together with a body secret, a malformed body holding the secret.
    let wrong = jwt.with_secret("tcs_wrongwrongwrongwrongwrongwrongwrongwrong1");
    secrets.push(wrong.secret.clone());
    assert_eq!(s.token_status(&wrong).await, StatusCode::UNAUTHORIZED);
    let url = s.url("/oauth2/token");
    let res = s
        .http
        .post(format!(
            "{url}?client_id={}&client_secret={}",
            jwt.id, jwt.secret
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .http
        .post(&url)
        .header("authorization", basic(&jwt.id, &jwt.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &jwt.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"client_id":"{}","client_secret":"{}""#,
            jwt.id, jwt.secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Introspect everything, revoke some.
    for t in &tokens {
        assert!(s.is_active(&jwt, t).await);
    }
    assert_eq!(s.revoke(&jwt, &tokens[0]).await, StatusCode::OK);
    assert_eq!(s.revoke(&opaque, &tokens[4]).await, StatusCode::OK);

    // Vendor assertions (kept like tokens: they are bearer credentials until they expire),
    // at /sdk/token and at the token endpoint, accepted then replayed.
    let key = crate::jwt_bearer::vendor_key();
    crate::jwt_bearer::trust(&s, &key, "default", &[]).await;
    let vendor = crate::jwt_bearer::grant_client(&s, "default", &[]).await;
    secrets.push(vendor.secret.clone());
    for _ in 0..2 {
        let assertion = crate::jwt_bearer::sign(&key, &crate::jwt_bearer::claims(&s));
        tokens.push(assertion.clone());
        let (status, body) = crate::jwt_bearer::exchange(&s, &vendor, &assertion).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        let (status, _) = crate::jwt_bearer::exchange(&s, &vendor, &assertion).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "replayed");
        let mut seed = crate::jwt_bearer::claims(&s);
        seed.as_object_mut().unwrap().remove("aud");
        let sdk_jwt = crate::jwt_bearer::sign(&key, &seed);
        tokens.push(sdk_jwt.clone());
        let res = s
            .http
            .post(s.url("/sdk/token"))
            .json(&json!({ "jwt": sdk_jwt }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        let res = s
            .http
            .post(s.url("/sdk/token"))
            .json(&json!({ "jwt": sdk_jwt }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "replayed");
    }

    // Rotate both secrets and use the new ones.
    let rotated = s
        .cli_json(&["client", "rotate-secret", &jwt.id, "--json"])
        .await;
    let jwt2 = jwt.with_secret(rotated["client_secret"].as_str().unwrap());
    let rotated = s
        .cli_json(&[
            "client",
            "rotate-secret",
            &opaque.id,
            "--keep-old-secret-for",
            "60",
            "--json",
        ])
        .await;
    let opaque2 = opaque.with_secret(rotated["client_secret"].as_str().unwrap());
    secrets.push(jwt2.secret.clone());
    secrets.push(opaque2.secret.clone());
    let (sr, a, b) = (&s, &jwt2, &opaque2);
    wait_until(FEED_DEADLINE, "the new secrets work", move || async move {
        sr.token_status(a).await == StatusCode::OK && sr.token_status(b).await == StatusCode::OK
    })
    .await;
    let more = [s.access_token(&jwt2).await, s.access_token(&opaque2).await];
    for t in &more {
        assert!(s.is_active(&jwt2, t).await);
    }
    assert!(
        !s.is_active(&jwt2, &tokens[1]).await,
        "revoked by the rotation"
    );
    tokens.extend(more);

    let (status, _) = s.stop().await;
    assert!(status.success(), "server exit status {status}");
    let logs = s.logs();
    // The check means something only if the server really logged at debug level.
    assert!(logs.contains("tessera is serving"), "{logs:.2000}");
    assert!(
        logs.contains(r#""level":"DEBUG""#),
        "no debug lines in the logs"
    );
    let mut leaks = Vec::new();
    for (kind, values) in [("secret", &secrets), ("token", &tokens)] {
        for v in values {
            for needle in needles(v) {
                if logs.contains(&needle) {
                    leaks.push(format!("{kind} {needle:.20}…"));
                }
            }
        }
    }
    for c in [&jwt, &jwt2, &opaque, &opaque2] {
        // The HTTP Basic header value carries the secret too.
        let header = basic(&c.id, &c.secret);
        if logs.contains(header.trim_start_matches("Basic ")) {
            leaks.push(format!("Basic credentials of {}", c.id));
        }
    }
    assert!(leaks.is_empty(), "found in the logs: {leaks:?}");
}

#[tokio::test]
async fn no_password_code_session_or_refresh_token_reaches_the_server_logs() {
    use crate::browser_support::{authorize_path, exchange, refresh, setup, Browser, VERIFIER};
    let (mut s, client) = setup(&["--refresh-tokens", "always"]).await;
    let mut b = Browser::new(&s);
    let login = b
        .get(&authorize_path(&client, "openid offline_access", ""))
        .await;
    let wrong_password = "wrong-password-never-logged";
    b.sign_in(&login, "alice", wrong_password).await;
    let code = b
        .code(
            &authorize_path(&client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let session = b
        .cookies
        .iter()
        .find(|(k, _)| k.contains("session"))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    let t: Value = exchange(&s, &client, &code, Some(VERIFIER))
        .await
        .json()
        .await
        .unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let t2: Value = refresh(&s, &client, &rt).await.json().await.unwrap();
    // A replayed code and a reused refresh token: both refused, both logged as refusals only.
    exchange(&s, &client, &code, Some(VERIFIER)).await;
    refresh(&s, &client, &rt).await;
    let mut values = vec![
        crate::browser_support::PASSWORD.to_owned(),
        wrong_password.to_owned(),
        code.clone(),
        session,
        rt.clone(),
        client.secret.clone(),
    ];
    for key in ["access_token", "refresh_token", "id_token"] {
        for body in [&t, &t2] {
            if let Some(v) = body[key].as_str() {
                values.push(v.to_owned());
            }
        }
    }
    let (status, _) = s.stop().await;
    assert!(status.success());
    let logs = s.logs();
    assert!(logs.contains("user signed in"), "{logs:.2000}");
    for v in &values {
        for n in needles(v) {
            assert!(
                !logs.contains(&n),
                "a secret value reached the logs: {n:.12}…"
            );
        }
        if let Some(rest) = v.strip_prefix("trt_") {
            assert!(!logs.contains(rest));
        }
    }
}
