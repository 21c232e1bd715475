//! Introspection (RFC 7662) and revocation (RFC 7009) of both token formats.

use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{decode_jwt, Creds, Server};

/// A JWT client, an opaque client and a third client that only observes.
async fn three_clients(s: &Server) -> (Creds, Creds, Creds) {
    let jwt = s.create_client(&["--scope", "read write"]).await;
    let opaque = s
        .create_client(&["--scope", "read", "--access-token-format", "opaque"])
        .await;
    let observer = s.create_client(&[]).await;
    (jwt, opaque, observer)
}

#[tokio::test]
async fn introspection_describes_active_jwt_and_opaque_tokens() {
    let s = Server::start().await;
    let (jwt_client, opaque_client, observer) = three_clients(&s).await;
    for (label, c) in [("jwt", &jwt_client), ("opaque", &opaque_client)] {
        let body = s.token_ok(c).await;
        let at = body["access_token"].as_str().unwrap();
        let res = s
            .http
            .post(s.url("/oauth2/introspect"))
            .basic_auth(&observer.id, Some(&observer.secret))
            .form(&[("token", at)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{label}");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store", "{label}");
        let info: Value = res.json().await.unwrap();
        assert_eq!(info["active"], true, "{label}: {info}");
        assert_eq!(info["client_id"], c.id.as_str(), "{label}");
        assert_eq!(info["sub"], c.id.as_str(), "{label}");
        assert_eq!(info["scope"], body["scope"], "{label}");
        assert_eq!(info["iss"], s.issuer(), "{label}");
        assert_eq!(info["aud"], s.issuer(), "{label}");
        assert!(info["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")));
        let (iat, exp) = (info["iat"].as_i64().unwrap(), info["exp"].as_i64().unwrap());
        assert_eq!(exp - iat, body["expires_in"].as_i64().unwrap(), "{label}");
        assert!(
            info["jti"].as_str().is_some_and(|j| !j.is_empty()),
            "{label}"
        );
        if label == "jwt" {
            let claims = decode_jwt(at).claims;
            assert_eq!(info["jti"], claims["jti"]);
            assert_eq!(info["iat"], claims["iat"]);
            assert_eq!(info["exp"], claims["exp"]);
        }
        // The owner may introspect its own token as well.
        assert_eq!(s.introspect(c, at).await["active"], true, "{label}");
    }
}

#[tokio::test]
async fn revoked_tokens_of_both_formats_introspect_as_exactly_active_false() {
    let s = Server::start().await;
    let (jwt_client, opaque_client, observer) = three_clients(&s).await;
    for (label, c) in [("jwt", &jwt_client), ("opaque", &opaque_client)] {
        let at = s.access_token(c).await;
        let keep = s.access_token(c).await;
        assert!(s.is_active(&observer, &at).await, "{label}");
        let res = s
            .http
            .post(s.url("/oauth2/revoke"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("token", at.as_str()), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{label}");
        assert!(
            res.text().await.unwrap().is_empty(),
            "{label}: RFC 7009 §2.2 empty body"
        );
        let info = s.introspect(&observer, &at).await;
        assert_eq!(info, json!({"active": false}), "{label}");
        // Revoking again is still 200; the other token of the client is untouched.
        assert_eq!(s.revoke(c, &at).await, StatusCode::OK, "{label}");
        assert!(s.is_active(&observer, &keep).await, "{label}");
    }
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let s = Server::start().await;
    let (jwt_client, opaque_client, observer) = three_clients(&s).await;
    for (label, c) in [("jwt", &jwt_client), ("opaque", &opaque_client)] {
        let at = s.access_token(c).await;
        assert_eq!(s.revoke(&observer, &at).await, StatusCode::OK, "{label}");
        assert!(
            s.is_active(&observer, &at).await,
            "{label}: revoked by a stranger"
        );
        assert!(s.is_active(c, &at).await, "{label}");
    }
}

#[tokio::test]
async fn revoking_an_unknown_or_malformed_token_answers_200() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let genuine = s.access_token(&c).await;
    let parts: Vec<&str> = genuine.split('.').collect();
    for token in [
        "not-a-token".to_owned(),
        "tat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "a.b.c".to_owned(),
        format!("{}.{}.AAAA", parts[0], parts[1]),
        "x".repeat(5000),
    ] {
        assert_eq!(s.revoke(&c, &token).await, StatusCode::OK, "{token:.40}");
    }
    assert!(s.is_active(&c, &genuine).await);
}

#[tokio::test]
async fn unknown_forged_and_garbage_tokens_introspect_as_exactly_active_false() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read write"]).await;
    let genuine = s.access_token(&c).await;
    let parts: Vec<&str> = genuine.split('.').collect();
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let mut claims = decode_jwt(&genuine).claims;
    claims["scope"] = json!("read write admin");
    let header = decode_jwt(&genuine).header;
    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let cases = [
        ("garbage", "not-a-token".to_owned()),
        (
            "unknown opaque",
            "tat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        ("three dots of nothing", "a.b.c".to_owned()),
        (
            "changed claims",
            format!("{}.{}.{}", parts[0], b64(&claims), parts[2]),
        ),
        ("cut signature", format!("{}.{}.", parts[0], parts[1])),
        ("alg none", format!("{}.{}.", b64(&none_header), parts[1])),
        (
            "alg HS256",
            format!("{}.{}.{}", b64(&hs_header), parts[1], parts[2]),
        ),
    ];
    for (label, token) in cases {
        let info = s.introspect(&c, &token).await;
        assert_eq!(info, json!({"active": false}), "{label}");
    }
    assert!(s.is_active(&c, &genuine).await);
}

#[tokio::test]
async fn introspection_and_revocation_require_client_authentication() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let public = s
        .create_client(&[
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://a.example/cb",
        ])
        .await;
    let at = s.access_token(&c).await;
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let url = s.url(path);
        let attempts = [
            (
                "no authentication",
                s.http.post(&url).form(&[("token", at.as_str())]),
            ),
            (
                "wrong secret",
                s.http
                    .post(&url)
                    .basic_auth(&c.id, Some("tcs_wrong"))
                    .form(&[("token", at.as_str())]),
            ),
        ];
        for (label, req) in attempts {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}: {label}");
            // RFC 6749 §5.2: HTTP Basic was tried, so the answer names the scheme.
            let www = res.headers().get(WWW_AUTHENTICATE);
            assert_eq!(
                www.is_some_and(|v| v.to_str().unwrap().starts_with("Basic ")),
                label == "wrong secret",
                "{path}: {label}: WWW-Authenticate {www:?}"
            );
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client", "{path}: {label}");
            assert!(body.get("active").is_none(), "{path}: {label}");
        }
    }
    // A public client is identified but not authenticated: it may not introspect.
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .form(&[("token", at.as_str()), ("client_id", public.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A missing token parameter is the caller's mistake, not an inactive token.
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(s.is_active(&c, &at).await, "nothing above revoked it");
}

#[tokio::test]
async fn introspection_accepts_json_and_multipart_bodies_too() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let at = s.access_token(&c).await;
    let url = s.url("/oauth2/introspect");
    let json_res = s
        .http
        .post(&url)
        .json(&json!({"token": at, "client_id": c.id, "client_secret": c.secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_res.status(), StatusCode::OK);
    assert_eq!(json_res.json::<Value>().await.unwrap()["active"], true);
    let form = reqwest::multipart::Form::new()
        .text("token", at.clone())
        .text("client_id", c.id.clone())
        .text("client_secret", c.secret.clone());
    let mp_res = s.http.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(mp_res.status(), StatusCode::OK);
    assert_eq!(mp_res.json::<Value>().await.unwrap()["active"], true);
}
