//! Router-level tests: the real router over a real SQLite file, driven with `oneshot` (no
//! sockets). Covers what any bytes do to the OAuth endpoints: always a 4xx JSON error in the
//! RFC 6749 shape, never a panic or a 5xx.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

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

/// A runtime and a fresh SQLite database in a temporary directory.
struct Fixture {
    rt: tokio::runtime::Runtime,
    store: Arc<SqliteStore>,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Arc::new(rt.block_on(SqliteStore::connect(&url)).unwrap());
    Fixture { rt, store, dir }
}

impl Fixture {
    /// The server state over this database, with `config` and `clock`.
    fn state(&self, config: Config, clock: Arc<dyn tessera_core::clock::Clock>) -> AppState {
        self.rt
            .block_on(AppState::start(
                config,
                HttpConfig::default(),
                self.store.clone(),
                Sealer::from_secret(b"router-test-secret-0123456789").unwrap(),
                clock,
            ))
            .unwrap()
    }
}

struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let f = fixture();
    let router = app(f.state(Config::new("http://127.0.0.1:1"), Arc::new(SystemClock)));
    Harness {
        rt: f.rt,
        router,
        _dir: f.dir,
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
        "(grant_type|client_id|client_secret|scope|token|jwt|env)=[a-z%&=]{0,20}(&[a-z_]{1,12}=[A-Za-z0-9%+]{0,12}){0,5}"
            .prop_map(String::into_bytes),
        "\\{(\"(jwt|env|[a-z_]{1,12})\":(\"[a-z]{0,8}\"|[0-9]{1,3}|null|\\[\\]|\\{\\}),?){0,4}\\}"
            .prop_map(String::into_bytes),
        "--X\r\nContent-Disposition: form-data; name=\"[a-z_]{0,12}\"\r\n\r\n[a-z]{0,10}\r\n(--X--\r\n)?"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_body_with_any_content_type_gets_a_4xx_json_error(
        path in prop_oneof![
            Just("/oauth2/token"),
            Just("/oauth2/introspect"),
            Just("/oauth2/revoke"),
            Just("/sdk/token"),
        ],
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

/// A router over a fresh database whose clock the test moves, with one JWT and one opaque
/// client registered directly in the store.
struct Timed {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    clock: Arc<tessera_core::clock::FixedClock>,
    store: Arc<SqliteStore>,
    jwt: (String, String),
    opaque: (String, String),
    _dir: tempfile::TempDir,
}

fn timed() -> Timed {
    use tessera_core::model::{ClientRecord, TokenFormat};
    use tessera_core::store::ClientStore;
    let f = fixture();
    let clock = Arc::new(tessera_core::clock::FixedClock::new(1_800_000_000));
    let mut made = Vec::new();
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let secret = tessera_core::secret::generate("tcs_");
        let c = ClientRecord {
            client_id: tessera_core::secret::generate_id(),
            name: "timed".into(),
            secret_hash: Some(secret.hash()),
            old_secret_hash: None,
            old_secret_expires_at: None,
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scopes: tessera_core::scope::ScopeSet::parse("read").unwrap(),
            audiences: vec![],
            public: false,
            jwks: None,
            access_token_format: format,
            access_token_ttl: 60,
            token_epoch: 0,
            env: "default".into(),
            single_use_tokens: false,
            created_at: 1_800_000_000,
            user_flow: Default::default(),
        };
        f.rt.block_on(f.store.insert_client(&c)).unwrap();
        made.push((c.client_id, secret.expose().to_owned()));
    }
    let router = app(f.state(Config::new("http://127.0.0.1:1"), clock.clone()));
    let opaque = made.pop().unwrap();
    let jwt = made.pop().unwrap();
    Timed {
        rt: f.rt,
        router,
        clock,
        store: f.store,
        jwt,
        opaque,
        _dir: f.dir,
    }
}

fn form(
    h: &Timed,
    path: &str,
    creds: &(String, String),
    body: &str,
) -> (StatusCode, serde_json::Value) {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.0, creds.1));
    let req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(Body::from(body.to_owned()))
        .unwrap();
    h.rt.block_on(async {
        let res = h.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    })
}

fn token(h: &Timed, creds: &(String, String)) -> String {
    let (status, body) = form(h, "/oauth2/token", creds, "grant_type=client_credentials");
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn active(h: &Timed, token: &str) -> bool {
    let body = format!("token={}", urlencode(token));
    let (status, v) = form(h, "/oauth2/introspect", &h.jwt, &body);
    assert_eq!(status, StatusCode::OK, "{v}");
    v["active"].as_bool().unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn tokens_of_both_formats_stop_being_active_when_they_expire() {
    let h = timed();
    let jwt = token(&h, &h.jwt);
    let opaque = token(&h, &h.opaque);
    assert!(active(&h, &jwt) && active(&h, &opaque));
    h.clock.advance(59);
    assert!(
        active(&h, &jwt) && active(&h, &opaque),
        "still valid 1 s before exp"
    );
    h.clock.advance(1);
    assert!(!active(&h, &jwt), "a JWT is inactive at exp");
    assert!(!active(&h, &opaque), "an opaque token is inactive at exp");
}

#[test]
fn an_old_secret_kept_for_an_overlap_works_until_the_overlap_ends() {
    use tessera_core::store::ClientStore;
    let h = timed();
    let new = tessera_core::secret::generate("tcs_");
    let now = tessera_core::clock::Clock::now(h.clock.as_ref());
    h.rt.block_on(
        h.store
            .rotate_client_secret(&h.opaque.0, &new.hash(), Some(now + 30), now),
    )
    .unwrap();
    // The running state learns of the rotation through the change feed: wait until the new
    // secret is accepted (the poll runs every 250 ms).
    let new_creds = (h.opaque.0.clone(), new.expose().to_owned());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while form(
        &h,
        "/oauth2/token",
        &new_creds,
        "grant_type=client_credentials",
    )
    .0 != StatusCode::OK
    {
        assert!(
            std::time::Instant::now() < deadline,
            "new secret never accepted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, _) = form(
        &h,
        "/oauth2/token",
        &h.opaque,
        "grant_type=client_credentials",
    );
    assert_eq!(status, StatusCode::OK, "old secret inside the overlap");
    h.clock.advance(30);
    let (status, body) = form(
        &h,
        "/oauth2/token",
        &h.opaque,
        "grant_type=client_credentials",
    );
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "old secret after the overlap: {body}"
    );
    assert_eq!(body["error"], "invalid_client");
    let (status, _) = form(
        &h,
        "/oauth2/token",
        &new_creds,
        "grant_type=client_credentials",
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn signing_keys_rotate_automatically_once_when_due() {
    use tessera_core::store::KeyStore;
    let f = fixture();
    let clock = Arc::new(tessera_core::clock::FixedClock::new(1_800_000_000));
    let mut config = Config::new("http://127.0.0.1:1");
    config.key_rotation_interval = 1_000;
    config.key_rotation_lead_time = 100;
    let state = f.state(config, clock.clone());
    f.rt.block_on(async {
        assert!(!state.rotate_keys_if_due().await.unwrap(), "not due yet");
        clock.advance(1_000);
        assert!(state.rotate_keys_if_due().await.unwrap(), "due");
        assert!(
            !state.rotate_keys_if_due().await.unwrap(),
            "already rotated"
        );
        let keys = f.store.list_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        let old = keys.iter().find(|k| k.retires_at.is_some()).unwrap();
        let new = keys.iter().find(|k| k.retires_at.is_none()).unwrap();
        assert_eq!(
            new.activates_at,
            1_800_001_000 + 100,
            "signs after the lead time"
        );
        // The old key stays published until its last token can have expired.
        assert_eq!(old.retires_at, Some(new.activates_at + 86_400));
        let jwks = state
            .keys()
            .jwks(tessera_core::clock::Clock::now(clock.as_ref()));
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever a hostile page sends to the callback of an upstream sign-in (any query, any
    /// cookies, a forged sign-in cookie among them): a 4xx page, never a 5xx, never a session.
    #[test]
    fn any_answer_at_the_sso_callback_is_refused_with_a_page(
        query in prop_oneof![
            "[ -~]{0,120}",
            "(code|state|iss|error|error_description)=[A-Za-z0-9%_.-]{0,40}(&(code|state|iss|error)=[A-Za-z0-9%_.-]{0,40}){0,4}",
        ],
        cookie in prop_oneof![
            Just(String::new()),
            "tessera_csrf=[A-Za-z0-9_-]{1,40}; tessera_sso=[A-Za-z0-9_-]{0,400}",
            "[ -~]{0,200}",
        ],
    ) {
        thread_local! { static H: Harness = harness(); }
        H.with(|h| {
            let query = query.replace([' ', '#'], "+");
            let mut req = Request::get(format!("/oauth2/sso/callback?{query}"));
            if !cookie.is_empty() {
                req = req.header("cookie", cookie.as_str());
            }
            let Ok(req) = req.body(Body::empty()) else {
                return Ok(());
            };
            let res = h.rt.block_on(h.router.clone().oneshot(req)).unwrap();
            prop_assert!(res.status().is_client_error(), "status {}", res.status());
            let sets: Vec<_> = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .collect();
            prop_assert!(sets.iter().all(|c| !c.starts_with("tessera_session=")), "{sets:?}");
            // The sign-in in progress, if any, is removed.
            prop_assert!(sets.iter().any(|c| c.starts_with("tessera_sso=;")), "{sets:?}");
            Ok(())
        })?;
    }
}
