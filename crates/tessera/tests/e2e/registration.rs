//! Dynamic client registration (RFC 7591) and its management (RFC 7592) against the real
//! server: off by default; open registration with the `openidconnect` crate's registration
//! request, then the registered client signs a user in with the same crate; metadata the
//! admin API would refuse is refused here too; a registration is read, replaced and deleted
//! with its own registration access token only, which is stored as its hash; in `token`
//! mode an initial access token (an admin token with the scope `clients:register`) is
//! required, and a registrant vouched for by it may register client credentials.

use openidconnect::core::{
    CoreApplicationType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreRegisterErrorResponseType, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::registration::{
    AdditionalClientMetadata, ClientRegistrationRequest, EmptyAdditionalClientRegistrationResponse,
};
use openidconnect::{RedirectUrl, RegistrationUrl, ResponseTypes};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::browser_support::{Browser, PASSWORD, REDIRECT};
use crate::oidc_client::{finish, start};
use crate::support::{http_client, Creds, Server};

/// A server with registration in `mode` and one user, `alice`.
async fn server(mode: &str) -> Server {
    let s = Server::start_with(&[("TESSERA_DYNAMIC_REGISTRATION", mode)]).await;
    s.create_user("alice", PASSWORD).await;
    s
}

/// `POST /oauth2/register` with a JSON body and an optional bearer token.
async fn register(s: &Server, bearer: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut req = s.http.post(s.url("/oauth2/register")).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A method on `/oauth2/register/{id}` with the registration access token `token`.
async fn manage(
    s: &Server,
    method: reqwest::Method,
    id: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = s
        .http
        .request(method, s.url(&format!("/oauth2/register/{id}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

/// The RFC 7591 §2 `scope` metadata, which OpenID Connect registration does not define.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WithScope {
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

impl AdditionalClientMetadata for WithScope {}

/// The library's registration request, with `scope`.
type RegistrationRequest = ClientRegistrationRequest<
    WithScope,
    EmptyAdditionalClientRegistrationResponse,
    CoreApplicationType,
    CoreClientAuthMethod,
    CoreRegisterErrorResponseType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

fn code_client() -> Value {
    json!({
        "client_name": "Registered app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile email offline_access",
    })
}

fn db_url(s: &Server) -> String {
    format!("sqlite://{}", s.dir_path().join("tessera.db").display())
}

#[tokio::test]
async fn registration_is_off_by_default() {
    let s = Server::start().await;
    let meta = s.get_json("/.well-known/openid-configuration").await;
    assert!(meta.get("registration_endpoint").is_none(), "{meta}");
    let (status, _) = register(&s, None, &code_client()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_registered_by_the_openidconnect_crate_signs_a_user_in() {
    let s = server("open").await;
    let meta = s.get_json("/.well-known/openid-configuration").await;
    let endpoint = meta["registration_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(endpoint, s.url("/oauth2/register"));

    let registered = RegistrationRequest::new(
        vec![RedirectUrl::new(REDIRECT.into()).unwrap()],
        WithScope {
            scope: Some("openid profile email".into()),
        },
    )
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_response_types(Some(vec![ResponseTypes::new(vec![CoreResponseType::Code])]))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretBasic))
    .register_async(&RegistrationUrl::new(endpoint).unwrap(), &http_client())
    .await
    .expect("the library registers a client");
    let client = Creds {
        id: registered.client_id().to_string(),
        secret: registered
            .client_secret()
            .expect("a confidential client gets a secret")
            .secret()
            .clone(),
    };
    let rat = registered
        .registration_access_token()
        .expect("a registration access token")
        .secret()
        .clone();
    assert!(rat.starts_with("trat_"));
    assert_eq!(
        registered.registration_client_uri().unwrap().to_string(),
        s.url(&format!("/oauth2/register/{}", client.id))
    );

    // The library runs the code flow with what it was given; the user is asked to consent
    // (a registered client is never first-party).
    let started = start(&s, &client, REDIRECT, &[]).await;
    let path = started.url.trim_start_matches(s.issuer()).to_owned();
    let mut b = Browser::new(&s);
    let page = b.get(&path).await;
    assert!(page.is_login(), "{:?}", page.location());
    let page = b.sign_in(&page, "alice", PASSWORD).await;
    assert!(page.is_consent(), "{}", page.body);
    let page = b.consent(&page, true).await;
    let p = page.redirect_params();
    let done = finish(&s, &client, REDIRECT, started, &p["code"], &p["state"]).await;
    assert_eq!(done.email.as_deref(), Some("alice@example.com"));

    // RFC 7592 §2.1: the registration reads back, without its secret.
    let res = manage(&s, reqwest::Method::GET, &client.id, Some(&rat), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["redirect_uris"], json!([REDIRECT]));
    assert!(info.get("client_secret").is_none());
    assert!(info.get("registration_access_token").is_none());
}

#[tokio::test]
async fn metadata_the_admin_api_refuses_is_refused_here_too() {
    let s = server("open").await;
    let before = s.cli(&["client", "list"]).await.lines().count();
    let with = |k: &str, v: Value| {
        let mut b = code_client();
        b[k] = v;
        b
    };
    for (body, error) in [
        // Redirect URIs: http on a non-loopback host, a fragment, a wildcard, not absolute.
        (
            with("redirect_uris", json!(["http://app.example.com/cb"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://app.example.com/cb#frag"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://*.example.com/cb"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["/cb"])),
            "invalid_redirect_uri",
        ),
        (with("redirect_uris", json!([])), "invalid_redirect_uri"),
        // Grant and response types that disagree (RFC 7591 §2.1).
        (
            with("response_types", json!(["token"])),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["refresh_token"],
                   "response_types": ["code"]}),
            "invalid_client_metadata",
        ),
        // What needs an operator's trust, and `none` with client credentials.
        (
            json!({"grant_types": ["client_credentials"], "response_types": []}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "response_types": [],
                   "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        // Not offered by a server without mutual TLS (`mtls.rs` registers one with it on).
        (
            with("token_endpoint_auth_method", json!("tls_client_auth")),
            "invalid_client_metadata",
        ),
        (
            with(
                "token_endpoint_auth_method",
                json!("self_signed_tls_client_auth"),
            ),
            "invalid_client_metadata",
        ),
        (
            with("grant_types", json!("authorization_code")),
            "invalid_client_metadata",
        ),
        (with("client_name", json!(["x"])), "invalid_client_metadata"),
        (
            with("jwks_uri", json!("https://app.example.com/jwks")),
            "invalid_client_metadata",
        ),
        (
            with("software_statement", json!("eyJ.x.y")),
            "unapproved_software_statement",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let (status, answer) = register(&s, None, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"], error, "{body}: {answer}");
    }
    // A first-party flag or an audience a registrant slips in is not taken.
    let (status, info) = register(
        &s,
        None,
        &with("skip_consent", json!(true))
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert("audiences".into(), json!(["https://internal.example.com"]));
                Value::Object(o)
            })
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    let shown = s
        .cli_json(&[
            "client",
            "show",
            info["client_id"].as_str().unwrap(),
            "--json",
        ])
        .await;
    assert_eq!(shown["skip_consent"], false);
    assert_eq!(shown["audiences"], json!([]));

    // Not JSON, another content type, and a body over the limit.
    let res = s
        .http
        .post(s.url("/oauth2/register"))
        .header("content-type", "application/json")
        .body("{\"redirect_uris\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .http
        .post(s.url("/oauth2/register"))
        .form(&[("redirect_uris", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // Just over the 64 KiB body limit: refused before it is parsed.
    let huge = json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(70 * 1024)});
    let (status, answer) = register(&s, None, &huge).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid_request");
    assert!(answer["error_description"]
        .as_str()
        .unwrap()
        .contains("larger than"));
    // Nothing of the refused requests was registered: one client more only.
    let list = s.cli(&["client", "list"]).await;
    assert_eq!(list.lines().count(), before + 1, "{list}");
}

#[tokio::test]
async fn a_registration_is_managed_with_its_own_token_only() {
    let s = server("open").await;
    let (status, a) = register(&s, None, &code_client()).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let (_, b) = register(&s, None, &code_client()).await;
    let a_id = a["client_id"].as_str().unwrap();
    let a_rat = a["registration_access_token"].as_str().unwrap();
    let b_id = b["client_id"].as_str().unwrap();
    let b_rat = b["registration_access_token"].as_str().unwrap();
    assert_ne!(a_rat, b_rat);

    // A's token on B, no token, a wrong token, another kind of token (A's client secret):
    // 401 invalid_token with a Bearer challenge, whatever the method.
    let a_secret = a["client_secret"].as_str().unwrap();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        for token in [Some(a_rat), None, Some("trat_wrong"), Some(a_secret)] {
            let body = json!({"client_id": b_id, "redirect_uris": [REDIRECT],
                              "client_name": "taken over"});
            let res = manage(&s, method.clone(), b_id, token, Some(&body)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {token:?}");
            assert!(res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"));
            let e: Value = res.json().await.unwrap();
            assert_eq!(e["error"], "invalid_token");
        }
    }
    // An id that is a path or not a client at all.
    for id in ["..%2F..%2Fadmin", "%00", "nope"] {
        let res = manage(&s, reqwest::Method::GET, id, Some(a_rat), None).await;
        assert!(
            res.status() == StatusCode::UNAUTHORIZED || res.status() == StatusCode::NOT_FOUND,
            "{id}: {}",
            res.status()
        );
    }
    let info: Value = manage(&s, reqwest::Method::GET, b_id, Some(b_rat), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["client_name"], "Registered app", "B is untouched");

    // RFC 7592 §2.2: a replacement, checked as a registration is.
    let other = "https://app.example.com/other";
    let bad = json!({"client_id": a_id, "redirect_uris": ["http://evil.example.com/cb"]});
    let res = manage(&s, reqwest::Method::PUT, a_id, Some(a_rat), Some(&bad)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let new = json!({"client_id": a_id, "client_name": "Renamed", "redirect_uris": [other],
                     "grant_types": ["authorization_code"], "scope": "openid"});
    let res = manage(&s, reqwest::Method::PUT, a_id, Some(a_rat), Some(&new)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["client_name"], "Renamed");
    assert_eq!(info["redirect_uris"], json!([other]));
    assert!(info.get("client_secret").is_none());

    // The token is stored only as its hash.
    let mut db = sqlx::SqliteConnection::connect(&db_url(&s)).await.unwrap();
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT registration_token_hash FROM clients ORDER BY client_id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(stored.len(), 2);
    for h in stored.iter().flatten() {
        assert!(!h.contains("trat_") && h != a_rat && h != b_rat, "{h}");
    }
    assert_eq!(stored.iter().flatten().count(), 2);
    db.close().await.unwrap();

    // RFC 7592 §2.3: deletion, after which the client and its token are gone.
    let creds = Creds {
        id: a_id.into(),
        secret: a_secret.into(),
    };
    let res = manage(&s, reqwest::Method::DELETE, a_id, Some(a_rat), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = manage(&s, reqwest::Method::GET, a_id, Some(a_rat), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let out = s.cli_output(&["client", "show", a_id]).await;
    assert!(!out.status.success());
    let (s_ref, c_ref) = (&s, &creds);
    crate::support::wait_until(
        crate::support::FEED_DEADLINE,
        "the deleted client refused",
        move || async move { s_ref.token_status(c_ref).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    // B still works.
    let res = manage(&s, reqwest::Method::GET, b_id, Some(b_rat), None).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Makes an admin token with `scopes` by the command line; answers its id and value.
async fn admin_token(s: &Server, scopes: &[&str]) -> (String, String) {
    let mut args = vec!["admin-token", "create", "--name", "registrar", "--json"];
    for sc in scopes {
        args.extend(["--scope", sc]);
    }
    let v = s.cli_json(&args).await;
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn token_mode_requires_an_initial_access_token_with_the_register_scope() {
    let s = server("token").await;
    let meta = s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["registration_endpoint"], s.url("/oauth2/register"));
    let service = json!({"client_name": "Batch job", "grant_types": ["client_credentials"],
                         "response_types": [], "scope": "read"});
    let (_, good) = admin_token(&s, &["clients:register"]).await;
    let (_, writer) = admin_token(&s, &["clients:write"]).await;
    let (revoked_id, revoked) = admin_token(&s, &["clients:register"]).await;
    s.cli(&["admin-token", "revoke", &revoked_id]).await;

    // Without a token, with a made-up one or a revoked one: 401 and a Bearer challenge.
    for token in [None, Some("tsa_made_up"), Some(revoked.as_str())] {
        let mut req = s.http.post(s.url("/oauth2/register")).json(&service);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"], "invalid_token");
    }
    // An admin token for other work: 403 insufficient_scope.
    let res = s
        .http
        .post(s.url("/oauth2/register"))
        .bearer_auth(&writer)
        .json(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"], "insufficient_scope");

    // With it: a client credentials client that gets tokens at once.
    let (status, info) = register(&s, Some(&good), &service).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    let creds = Creds {
        id: info["client_id"].as_str().unwrap().into(),
        secret: info["client_secret"].as_str().unwrap().into(),
    };
    s.wait_known(&creds).await;
    let body = s.token_ok(&creds).await;
    assert_eq!(body["scope"], "read");
    // The registration access token is no initial access token, and `none` with client
    // credentials is refused as the admin API refuses it.
    let rat = info["registration_access_token"].as_str().unwrap();
    let (status, _) = register(&s, Some(rat), &service).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut public = service.clone();
    public["token_endpoint_auth_method"] = json!("none");
    let (status, e) = register(&s, Some(&good), &public).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "invalid_client_metadata");
    // The initial access token is stored as its hash like every admin token; the value
    // appears nowhere in the database file or the log.
    let needle = good.as_bytes();
    for file in ["tessera.db", "tessera.db-wal"] {
        let bytes = std::fs::read(s.dir_path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{file}");
    }
    assert!(!s.logs().contains(&good));
}
