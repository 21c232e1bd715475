//! Dialects at the router (`tessera_core::dialect`): every extra path of an enabled dialect is
//! served by its endpoint's handler, through that dialect (its `token_type`, its body
//! styles); Tessera's own paths stay; a switched-off dialect's paths are 404; discovery names
//! none of them; a dialect's token header carries an access token to `/userinfo`, and two
//! different tokens in one request are refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use tessera_core::clock::SystemClock;
use tessera_core::config::Config;
use tessera_core::dialect::{DialectOverrides, Dialects};
use tessera_core::keys::Sealer;
use tessera_core::model::{ClientRecord, TokenFormat};
use tessera_core::store::ClientStore;
use tessera_http::{app, AppState, HttpConfig};
use tessera_store_sqlite::SqliteStore;
use tower::ServiceExt;

struct Server {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    creds: (String, String),
    _dir: tempfile::TempDir,
}

/// A server whose config file sets the dialects `json` (the `[dialects]` table, as JSON),
/// with one client-credentials client.
fn server(json: &str) -> Server {
    server_with(json, HttpConfig::default())
}

fn server_with(json: &str, http: HttpConfig) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Arc::new(rt.block_on(SqliteStore::connect(&url)).unwrap());
    let secret = tessera_core::secret::generate("tcs_");
    let client = ClientRecord {
        client_id: "svc".into(),
        name: "svc".into(),
        secret_hash: Some(secret.hash()),
        old_secret_hash: None,
        old_secret_expires_at: None,
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec![],
        scopes: tessera_core::scope::ScopeSet::parse("read").unwrap(),
        audiences: vec![],
        public: false,
        jwks: None,
        access_token_format: TokenFormat::Jwt,
        access_token_ttl: 600,
        token_epoch: 0,
        env: "default".into(),
        single_use_tokens: false,
        created_at: 0,
        user_flow: Default::default(),
    };
    rt.block_on(store.insert_client(&client)).unwrap();
    let changes: BTreeMap<String, DialectOverrides> = serde_json::from_str(json).unwrap();
    let mut config = Config::new("http://127.0.0.1:1");
    config.dialects = Arc::new(Dialects::resolve(&changes).unwrap());
    let state = rt
        .block_on(AppState::start(
            config,
            http,
            store,
            Sealer::from_secret(b"router-test-secret-0123456789").unwrap(),
            Arc::new(SystemClock),
        ))
        .unwrap();
    Server {
        rt,
        router: app(state),
        creds: ("svc".into(), secret.expose().to_owned()),
        _dir: dir,
    }
}

fn send(s: &Server, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    s.rt.block_on(async {
        let res = s.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    })
}

fn basic(s: &Server) -> String {
    let pair = format!("{}:{}", s.creds.0, s.creds.1);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A client-credentials token request at `path` in the body style `style`.
fn token_at(s: &Server, path: &str, style: &str) -> (StatusCode, serde_json::Value) {
    let (ct, body) = match style {
        "form" => (
            "application/x-www-form-urlencoded".to_owned(),
            "grant_type=client_credentials".to_owned(),
        ),
        "json" => (
            "application/json".to_owned(),
            r#"{"grant_type":"client_credentials"}"#.to_owned(),
        ),
        _ => (
            "multipart/form-data; boundary=XX".to_owned(),
            "--XX\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--XX--\r\n"
                .to_owned(),
        ),
    };
    let req = Request::post(path)
        .header("content-type", ct)
        .header("authorization", basic(s))
        .body(Body::from(body))
        .unwrap();
    send(s, req)
}

const BOTH: &str = r#"{"workfront": {}, "workfront_documents": {}}"#;

#[test]
fn dialect_token_paths_answer_through_their_dialect_and_the_standard_path_stays() {
    let s = server(BOTH);
    let (status, body) = token_at(&s, "/integrations/oauth2/api/v1/token", "form");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "sessionID");
    assert!(
        body.get("wid").is_none(),
        "client credentials act for no user"
    );
    let (status, body) = token_at(&s, "/integrations/oauth2/api/v1/token", "json");
    assert_eq!(status, StatusCode::OK, "{body}");
    // Workfront takes form and JSON only: multipart is refused in the RFC shape.
    let (status, body) = token_at(&s, "/integrations/oauth2/api/v1/token", "multipart");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("form, json"));
    // The document provider's path: every style, bearer.
    for style in ["form", "json", "multipart"] {
        let (status, body) = token_at(&s, "/document-provider/oauth2/token", style);
        assert_eq!(status, StatusCode::OK, "{style}: {body}");
        assert_eq!(body["token_type"], "bearer");
    }
    // Tessera's own path is not through any of them.
    let (status, body) = token_at(&s, "/oauth2/token", "multipart");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    // A dialect's authorize path is the authorization endpoint (a page, not a 404).
    let (status, _) = send(
        &s,
        Request::get("/integrations/oauth2/authorize?client_id=nobody")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // GET on a dialect token path: the token endpoint's 405.
    let (status, body) = send(
        &s,
        Request::get("/integrations/oauth2/api/v1/token")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

#[test]
fn switched_off_dialects_have_no_paths() {
    let s = server(r#"{"anyflow": {"enabled": false}}"#);
    for path in ["/sdk/token", "/integrations/oauth2/api/v1/token"] {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"jwt":"x"}"#))
            .unwrap();
        let (status, body) = send(&s, req);
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // On by default: /sdk/token answers (a bad JWT is a 400, not a 404).
    let s = server("{}");
    let req = Request::post("/sdk/token")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"jwt":"x"}"#))
        .unwrap();
    let (status, body) = send(&s, req);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // A dialect changes the member names of its exchange.
    let s = server(r#"{"anyflow": {"sdk": {"assertion": "token"}}}"#);
    let req = Request::post("/sdk/token")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"jwt":"x"}"#))
        .unwrap();
    let (status, body) = send(&s, req);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("\"token\""));
}

#[test]
fn discovery_names_only_the_standard_paths() {
    let s = server(BOTH);
    for doc in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, body) = send(&s, Request::get(doc).body(Body::empty()).unwrap());
        assert_eq!(status, StatusCode::OK);
        let text = body.to_string();
        assert!(!text.contains("/integrations/"), "{text}");
        assert!(!text.contains("/document-provider/"), "{text}");
        assert_eq!(body["token_endpoint"], "http://127.0.0.1:1/oauth2/token");
        assert_eq!(
            body["authorization_endpoint"],
            "http://127.0.0.1:1/oauth2/authorize"
        );
    }
}

fn userinfo(s: &Server, headers: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let mut req = Request::get("/userinfo");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(s, req.body(Body::empty()).unwrap())
}

#[test]
fn a_session_id_header_carries_the_access_token_and_two_tokens_are_refused() {
    let s = server(BOTH);
    let (_, body) = token_at(&s, "/oauth2/token", "form");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    // Read from either header: the token is checked (it acts for no user, so it is refused
    // for that reason, not for being absent).
    for headers in [
        vec![("sessionID", token.as_str())],
        vec![("authorization", bearer.as_str())],
        vec![
            ("authorization", bearer.as_str()),
            ("sessionID", token.as_str()),
        ],
    ] {
        let (status, body) = userinfo(&s, &headers);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("not issued for a user"),
            "{headers:?}: {body}"
        );
    }
    // Two different tokens: RFC 6750 §2, one method only.
    for headers in [
        vec![("authorization", bearer.as_str()), ("sessionID", "other")],
        vec![("sessionID", token.as_str()), ("sessionID", "other")],
    ] {
        let (status, body) = userinfo(&s, &headers);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(body["error"], "invalid_request");
    }
    // Without a dialect naming it, the header is not a token.
    let plain = server("{}");
    let (status, body) = userinfo(&plain, &[("sessionID", token.as_str())]);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("an access token is required"));
}

#[test]
fn browsers_of_allowed_origins_may_send_the_dialects_token_header() {
    let http = HttpConfig {
        cors_allowed_origins: vec!["https://app.example.com".into()],
        ..HttpConfig::default()
    };
    let s = server_with(BOTH, http);
    let preflight = Request::options("/userinfo")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "sessionid")
        .body(Body::empty())
        .unwrap();
    let allowed = s.rt.block_on(async {
        let res = s.router.clone().oneshot(preflight).await.unwrap();
        res.headers()
            .get("access-control-allow-headers")
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default()
    });
    assert!(allowed.contains("sessionid"), "{allowed}");
    assert!(allowed.contains("authorization"), "{allowed}");
}
