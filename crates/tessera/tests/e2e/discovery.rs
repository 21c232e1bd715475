//! Discovery metadata, JWKS, health, metrics and graceful shutdown.

use std::time::Duration;

use reqwest::header::CACHE_CONTROL;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    basic, decode_jwt, metric, raw_status, verify_es256, wait_until, Server, SHUTDOWN_DEADLINE,
};

#[tokio::test]
async fn both_metadata_documents_name_the_issuer_of_the_tokens_and_working_endpoints() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let token = s.access_token(&c).await;
    let iss = decode_jwt(&token).claims["iss"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let meta = s.get_json(path).await;
        assert_eq!(
            meta["issuer"].as_str(),
            Some(iss.as_str()),
            "{path}: byte for byte"
        );
        assert_eq!(meta["issuer"], s.issuer(), "{path}");
        for (key, endpoint) in [
            ("token_endpoint", "/oauth2/token"),
            ("introspection_endpoint", "/oauth2/introspect"),
            ("revocation_endpoint", "/oauth2/revoke"),
            ("jwks_uri", "/.well-known/jwks.json"),
        ] {
            assert_eq!(meta[key], format!("{iss}{endpoint}"), "{path}: {key}");
        }
        let has = |key: &str, v: &str| {
            meta[key]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == v))
        };
        assert!(has("grant_types_supported", "client_credentials"), "{path}");
        assert!(
            has(
                "token_endpoint_auth_methods_supported",
                "client_secret_basic"
            ),
            "{path}"
        );
        assert!(
            has(
                "token_endpoint_auth_methods_supported",
                "client_secret_post"
            ),
            "{path}"
        );
        assert!(
            has("access_token_signing_alg_values_supported", "ES256"),
            "{path}"
        );
        // Signed introspection responses (RFC 9701 §7).
        assert!(
            has("introspection_signing_alg_values_supported", "ES256"),
            "{path}"
        );
        assert!(!has("grant_types_supported", "password"), "{path}");

        // The advertised endpoints are the real ones.
        let res = s
            .http
            .post(meta["token_endpoint"].as_str().unwrap())
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let res = s
            .http
            .post(meta["introspection_endpoint"].as_str().unwrap())
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.json::<Value>().await.unwrap()["active"], true, "{path}");
        let jwks: Value = s
            .http
            .get(meta["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(verify_es256(&jwks, &token).is_ok(), "{path}");
    }
}

#[tokio::test]
async fn jwks_publishes_only_public_es256_keys_with_a_bounded_cache_lifetime() {
    let s = Server::start().await;
    let res = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cache = res
        .headers()
        .get(CACHE_CONTROL)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let max_age: u64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache}"));
    // At most half the default key-rotation lead time (600 s).
    assert!(max_age <= 300, "{cache}");
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    for k in keys {
        assert_eq!(k["kty"], "EC");
        assert_eq!(k["crv"], "P-256");
        assert_eq!(k["alg"], "ES256");
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "private member {private} in {k}");
        }
    }
}

#[tokio::test]
async fn health_endpoints_answer_ok() {
    let s = Server::start().await;
    for path in ["/health/alive", "/health/ready"] {
        let body = s.get_json(path).await;
        assert_eq!(body["status"], "ok", "{path}");
    }
}

#[tokio::test]
async fn metrics_count_requests_and_token_outcomes() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let before = s.metrics().await;
    let success = [("grant_type", "client_credentials"), ("outcome", "success")];
    let error = [("grant_type", "client_credentials"), ("outcome", "error")];
    let ok_200 = [
        ("endpoint", "/oauth2/token"),
        ("method", "POST"),
        ("status", "200"),
    ];
    let ok_401 = [
        ("endpoint", "/oauth2/token"),
        ("method", "POST"),
        ("status", "401"),
    ];
    let invalid_client = [("endpoint", "/oauth2/token"), ("error", "invalid_client")];
    for _ in 0..3 {
        s.access_token(&c).await;
    }
    let wrong = c.with_secret("tcs_wrong");
    for _ in 0..2 {
        assert_eq!(s.token_status(&wrong).await, StatusCode::UNAUTHORIZED);
    }
    let after = s.metrics().await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    assert_eq!(
        grew("tessera_token_requests_total", &success),
        3.0,
        "{after}"
    );
    assert_eq!(grew("tessera_token_requests_total", &error), 2.0, "{after}");
    assert_eq!(grew("tessera_http_requests_total", &ok_200), 3.0, "{after}");
    assert_eq!(grew("tessera_http_requests_total", &ok_401), 2.0, "{after}");
    assert_eq!(
        grew("tessera_http_errors_total", &invalid_client),
        2.0,
        "{after}"
    );
    assert!(after.contains("tessera_http_request_duration_seconds_bucket"));
    assert!(after.contains("tessera_token_request_duration_seconds_bucket"));
    // Unknown URLs are counted under one label, never by their raw path.
    let _ = s
        .http
        .get(s.url("/secret-looking/path/123"))
        .send()
        .await
        .unwrap();
    let last = s.metrics().await;
    assert!(!last.contains("/secret-looking/path/123"));
    assert!(
        metric(
            &last,
            "tessera_http_requests_total",
            &[
                ("endpoint", "unmatched"),
                ("method", "GET"),
                ("status", "404"),
            ]
        ) >= 1.0,
        "{last}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully_with_exit_code_zero() {
    let mut s = Server::start().await;
    let c = s.create_client(&[]).await;
    s.access_token(&c).await;
    let (status, took) = s.stop().await;
    assert!(status.success(), "exit status {status}");
    assert!(took < SHUTDOWN_DEADLINE, "took {took:?}");
    let logs = s.logs();
    assert!(logs.contains("shutdown signal received"), "{logs:.3000}");
    assert!(logs.contains("tessera stopped"), "{logs:.3000}");
    // Nothing answers any more.
    assert!(s.http.get(s.url("/health/alive")).send().await.is_err());
}

/// "In-flight requests finish first": a token request whose body is still arriving when
/// SIGTERM comes is answered, and only then does the process exit.
#[tokio::test]
async fn a_request_in_flight_at_sigterm_is_still_answered() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = Server::start().await;
    let c = s.create_client(&[]).await;
    let body = "grant_type=client_credentials";
    let (first, rest) = body.split_at(10);
    let mut stream = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        s.addr(),
        basic(&c.id, &c.secret),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // "100 Continue" means the handler is reading the body: the request is in flight.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("100 Continue in time")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    stream.write_all(first.as_bytes()).await.unwrap();

    let pid = s.pid();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    // Once shutdown has begun the server takes no new connections.
    let addr = s.addr();
    wait_until(
        Duration::from_secs(2),
        "new connections are refused",
        || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.is_err() }
        },
    )
    .await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("the response in time")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert_eq!(raw_status(&response), 200, "{response}");
    assert!(response.contains("access_token"), "{response}");
    let (status, _) = s.stop().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn operational_endpoints_can_listen_apart_from_the_oauth_endpoints() {
    let ops = format!("127.0.0.1:{}", crate::support::free_port());
    let s = Server::start_with(&[("TESSERA_OPS_LISTEN", ops.as_str())]).await;
    let http = crate::support::http_client();
    for path in ["/health/alive", "/health/ready", "/metrics"] {
        let apart = http
            .get(format!("http://{ops}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            apart.status(),
            reqwest::StatusCode::OK,
            "{path} on the ops listener"
        );
        let main = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(
            main.status(),
            reqwest::StatusCode::NOT_FOUND,
            "{path} not on the main one"
        );
    }
    // The OAuth endpoints stay on the main listener and are counted in the metrics.
    let c = s.create_client(&[]).await;
    s.token_ok(&c).await;
    let metrics = http
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tessera_token_requests_total"));
    let jwks = http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), reqwest::StatusCode::OK);
}
