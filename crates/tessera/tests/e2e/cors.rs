//! CORS: allowed origins may call the token, introspection, revocation,
//! discovery and JWKS endpoints from a browser; other origins and operational endpoints get
//! no CORS headers.

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use reqwest::{Method, StatusCode};

use crate::support::Server;

const APP: &str = "https://app.example.com";
const OTHER_ALLOWED: &str = "https://admin.example.org";

async fn cors_server() -> Server {
    Server::start_with(&[(
        "TESSERA_CORS_ALLOWED_ORIGINS",
        "https://app.example.com, https://admin.example.org",
    )])
    .await
}

fn acao(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn preflight(s: &Server, path: &str, origin: &str) -> reqwest::Response {
    s.http
        .request(Method::OPTIONS, s.url(path))
        .header(ORIGIN, origin)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn allowed_origins_may_call_the_token_endpoint_from_a_browser() {
    let s = cors_server().await;
    let c = s.create_client(&[]).await;
    for origin in [APP, OTHER_ALLOWED] {
        let res = preflight(&s, "/oauth2/token", origin).await;
        assert!(
            res.status().is_success(),
            "{origin}: preflight {}",
            res.status()
        );
        assert_eq!(acao(&res).as_deref(), Some(origin));
        let methods = res.headers()[ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(methods.contains("POST"), "{methods}");
        let headers = res.headers()[ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"));

        let res = s
            .http
            .post(s.url("/oauth2/token"))
            .header(ORIGIN, origin)
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(acao(&res).as_deref(), Some(origin));
        // The answer depends on Origin, so shared caches must key on it.
        let vary: Vec<String> = res
            .headers()
            .get_all(VARY)
            .iter()
            .map(|v| v.to_str().unwrap().to_lowercase())
            .collect();
        assert!(vary.iter().any(|v| v.contains("origin")), "Vary {vary:?}");
    }
    // Error answers carry it too, so the browser app can read the error.
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .header(ORIGIN, APP)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(acao(&res).as_deref(), Some(APP));
    for path in [
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let res = preflight(&s, path, APP).await;
        assert_eq!(acao(&res).as_deref(), Some(APP), "preflight {path}");
    }
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        let res = s
            .http
            .get(s.url(path))
            .header(ORIGIN, APP)
            .send()
            .await
            .unwrap();
        assert_eq!(acao(&res).as_deref(), Some(APP), "GET {path}");
    }
}

#[tokio::test]
async fn other_origins_and_operational_endpoints_get_no_cors_headers() {
    let s = cors_server().await;
    let c = s.create_client(&[]).await;
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "null",
    ] {
        let res = preflight(&s, "/oauth2/token", origin).await;
        assert_eq!(acao(&res), None, "preflight from {origin}");
        let res = s
            .http
            .post(s.url("/oauth2/token"))
            .header(ORIGIN, origin)
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(acao(&res), None, "POST from {origin}");
    }
    for path in ["/health/alive", "/health/ready", "/metrics"] {
        let res = s
            .http
            .get(s.url(path))
            .header(ORIGIN, APP)
            .bearer_auth(crate::support::METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(acao(&res), None, "GET {path}");
        let res = preflight(&s, path, APP).await;
        assert_eq!(acao(&res), None, "preflight {path}");
    }
}

#[tokio::test]
async fn without_configured_origins_no_endpoint_answers_cors() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let res = preflight(&s, "/oauth2/token", APP).await;
    assert_eq!(acao(&res), None);
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .header(ORIGIN, APP)
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(acao(&res), None);
}
