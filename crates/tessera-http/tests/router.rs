//! Router-level tests: the real router over a real SQLite file, driven with `oneshot` (no
//! sockets). Covers what any bytes do to the OAuth endpoints: always a 4xx JSON error in the
//! RFC 6749 shape, never a panic or a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tessera_core::clock::SystemClock;
use tessera_core::config::Config;
use tessera_core::keys::Sealer;
use tessera_http::{app, AppState, HttpConfig};
use tessera_store_sqlite::SqliteStore;
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let router = rt.block_on(async {
        let store = SqliteStore::connect(&url).await.unwrap();
        let state = AppState::start(
            Config::new("http://127.0.0.1:1"),
            HttpConfig::default(),
            Arc::new(store),
            Sealer::from_secret(b"router-test-secret-0123456789").unwrap(),
            Arc::new(SystemClock),
        )
        .await
        .unwrap();
        app(state)
    });
    Harness {
        rt,
        router,
        _dir: dir,
    }
}

fn send(h: &Harness, path: &str, ct: Option<&str>, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let mut req = Request::post(path);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let req = req.body(Body::from(body)).unwrap();
    h.rt.block_on(async {
        let res = h.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, bytes)
    })
}

fn assert_rfc_error(status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(status.is_client_error(), "status {status}");
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
    prop_assert!(v["error"].is_string(), "no error member: {v}");
    Ok(())
}

fn content_types() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        Just(Some("application/json".to_owned())),
        Just(Some("multipart/form-data; boundary=X".to_owned())),
        Just(Some("multipart/form-data".to_owned())),
        "\\PC{0,30}".prop_map(Some),
    ]
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "(grant_type|client_id|client_secret|scope|token)=[a-z%&=]{0,20}(&[a-z_]{1,12}=[A-Za-z0-9%+]{0,12}){0,5}"
            .prop_map(String::into_bytes),
        "\\{(\"[a-z_]{1,12}\":(\"[a-z]{0,8}\"|[0-9]{1,3}|null|\\[\\]|\\{\\}),?){0,4}\\}"
            .prop_map(String::into_bytes),
        "--X\r\nContent-Disposition: form-data; name=\"[a-z_]{0,12}\"\r\n\r\n[a-z]{0,10}\r\n(--X--\r\n)?"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_body_with_any_content_type_gets_a_4xx_json_error(
        path in prop_oneof![Just("/oauth2/token"), Just("/oauth2/introspect"), Just("/oauth2/revoke")],
        ct in content_types(),
        body in bodies(),
    ) {
        thread_local! { static H: Harness = harness(); }
        H.with(|h| {
            let (status, bytes) = send(h, path, ct.as_deref(), body);
            // Revocation with a valid client but an unknown token is 200; an anonymous
            // request like these can never reach that.
            assert_rfc_error(status, &bytes)
        })?;
    }
}

#[test]
fn oversized_body_is_invalid_request_not_a_crash() {
    let h = harness();
    let body = vec![b'a'; 200 * 1024];
    let (status, bytes) = send(
        &h,
        "/oauth2/token",
        Some("application/x-www-form-urlencoded"),
        body,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"], "invalid_request");
}

#[test]
fn token_endpoint_refuses_get_with_405() {
    let h = harness();
    let res = h.rt.block_on(async {
        h.router
            .clone()
            .oneshot(Request::get("/oauth2/token").body(Body::empty()).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
}
