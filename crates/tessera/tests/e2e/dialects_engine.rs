//! Dialects end to end: a server started with a config file that switches on the Workfront
//! custom OAuth2 apps dialect (with `domain` and `lane`) and the ABBYY Vantage dialect. The
//! code flow runs on the `/integrations/oauth2/...` paths (pages posting back there), tokens
//! are exchanged and refreshed in both body styles (JSON with HTTP Basic, or everything
//! form-encoded), labelled `sessionID` with a `wid` stable across grants, the access token
//! is accepted in a `sessionID` header, codes live 2 minutes; Vantage's standard-path flow
//! gives day-long tokens and carries `productId` into introspection, refreshed tokens too.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::browser_support::*;
use crate::support::{http_client, Creds, Server};

const CONFIG: &str = r#"
[dialects.workfront]
redirect_params = { domain = "myorganization", lane = "my" }

[dialects.vantage]
"#;

const AUTHORIZE: &str = "/integrations/oauth2/authorize";
const TOKEN: &str = "/integrations/oauth2/api/v1/token";

struct Setup {
    server: Server,
    client: Creds,
    _config_dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let path = path.display().to_string();
    let server = Server::start_with(&[("TESSERA_CONFIG", path.as_str())]).await;
    server.create_user("alice", PASSWORD).await;
    let client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid profile email offline_access read",
        ])
        .await;
    Setup {
        server,
        client,
        _config_dir: dir,
    }
}

/// The Workfront authorization URL: `client_id`, `redirect_uri`, `response_type=code`.
fn workfront_authorize(c: &Creds) -> String {
    let q = url_encode(&[
        ("client_id", &c.id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid read offline_access"),
    ]);
    format!("{AUTHORIZE}?{q}")
}

/// Runs the Workfront flow through its own path; returns the redirect's parameters.
async fn workfront_code(b: &mut Browser, c: &Creds) -> std::collections::BTreeMap<String, String> {
    let mut page = b.get(&workfront_authorize(c)).await;
    if page.is_login() {
        // The form posts back to the path the flow started on.
        assert!(
            page.body
                .contains(&format!("action=\"{}\"", AUTHORIZE.replace('/', "&#x2f;")))
                || page.body.contains(&format!("action=\"{AUTHORIZE}\"")),
            "{}",
            page.body
        );
        let mut fields = page.hidden();
        fields.push(("username".into(), "alice".into()));
        fields.push(("password".into(), PASSWORD.into()));
        page = b.post(AUTHORIZE, &fields).await;
    }
    if page.is_consent() {
        let mut fields = page.hidden();
        fields.push(("decision".into(), "allow".into()));
        page = b.post(AUTHORIZE, &fields).await;
    }
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page.redirect_params()
}

async fn json_body(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A Workfront token request: HTTP Basic with a JSON body.
async fn post_json(server: &Server, c: &Creds, body: Value) -> (StatusCode, Value) {
    let res = http_client()
        .post(server.url(TOKEN))
        .basic_auth(&c.id, Some(&c.secret))
        .json(&body)
        .send()
        .await
        .unwrap();
    json_body(res).await
}

/// A Workfront token request: everything form-encoded.
async fn post_form(server: &Server, c: &Creds, fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut all = fields.to_vec();
    all.push(("client_id", &c.id));
    all.push(("client_secret", &c.secret));
    let res = http_client()
        .post(server.url(TOKEN))
        .form(&all)
        .send()
        .await
        .unwrap();
    json_body(res).await
}

fn db_url(server: &Server) -> String {
    format!(
        "sqlite://{}",
        server.dir_path().join("tessera.db").display()
    )
}

#[tokio::test]
async fn the_workfront_flow_runs_on_its_own_paths_with_its_response_shape() {
    let Setup { server, client, .. } = setup().await;
    let mut b = Browser::new(&server);
    let p = workfront_code(&mut b, &client).await;
    assert_eq!(p["domain"], "myorganization");
    assert_eq!(p["lane"], "my");
    assert_eq!(p["iss"], server.issuer());
    // JSON body with HTTP Basic.
    let (status, first) = post_json(
        &server,
        &client,
        json!({"code": p["code"], "grant_type": "authorization_code", "redirect_uri": REDIRECT}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["token_type"], "sessionID");
    assert!(first["expires_in"].as_i64().unwrap() > 0);
    let wid = first["wid"].as_str().expect("wid").to_owned();
    let refresh_token = first["refresh_token"].as_str().unwrap().to_owned();
    let access = first["access_token"].as_str().unwrap().to_owned();

    // The access token as a sessionID header.
    let res = http_client()
        .get(server.url("/userinfo"))
        .header("sessionID", &access)
        .send()
        .await
        .unwrap();
    let (status, info) = json_body(res).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert!(info["sub"].is_string());
    // With a different token in Authorization as well: refused (RFC 6750 §2).
    let res = http_client()
        .get(server.url("/userinfo"))
        .header("sessionID", &access)
        .header("authorization", "Bearer something-else")
        .send()
        .await
        .unwrap();
    let (status, err) = json_body(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_request");

    // Refresh in both styles.
    let (status, r1) = post_json(
        &server,
        &client,
        json!({"grant_type": "refresh_token", "refresh_token": refresh_token}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r1}");
    assert_eq!(r1["token_type"], "sessionID");
    assert_eq!(r1["wid"], wid.as_str());
    let (status, r2) = post_form(
        &server,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r2}");
    assert_eq!(r2["token_type"], "sessionID");

    // A second grant (consent remembered), exchanged form-encoded: the same wid.
    let p = workfront_code(&mut b, &client).await;
    let (status, second) = post_form(
        &server,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["wid"], wid.as_str());
    assert_ne!(second["access_token"], first["access_token"]);

    // Multipart is not a Workfront style.
    let form = reqwest::multipart::Form::new().text("grant_type", "client_credentials");
    let res = http_client()
        .post(server.url(TOKEN))
        .basic_auth(&client.id, Some(&client.secret))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, err) = json_body(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_request");
}

#[tokio::test]
async fn a_workfront_code_lives_two_minutes() {
    let Setup { server, client, .. } = setup().await;
    let mut b = Browser::new(&server);
    let p = workfront_code(&mut b, &client).await;
    let url = db_url(&server);
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let lifetimes: Vec<i64> =
        sqlx::query_scalar("SELECT expires_at - issued_at FROM authorization_codes")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(lifetimes, [120]);
    // Age the code by 121 seconds: it is refused.
    sqlx::query(
        "UPDATE authorization_codes SET issued_at = issued_at - 121, expires_at = expires_at - 121",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    let (status, err) = post_json(
        &server,
        &client,
        json!({"code": p["code"], "grant_type": "authorization_code", "redirect_uri": REDIRECT}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_grant");
}

#[tokio::test]
async fn vantage_on_the_standard_paths_gives_day_long_tokens_and_keeps_product_id() {
    let Setup { server, client, .. } = setup().await;
    let mut b = Browser::new(&server);
    let code = b
        .code(
            &authorize_path(&client, "openid read offline_access", "productId=p-42"),
            "alice",
        )
        .await;
    let res = exchange(&server, &client, &code, Some(VERIFIER)).await;
    let (status, tokens) = json_body(res).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 86_400);
    assert!(tokens["refresh_token"].is_string());
    assert!(tokens.get("wid").is_none());
    let access = tokens["access_token"].as_str().unwrap();
    let seen = server.introspect(&client, access).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["productId"], "p-42", "{seen}");
    // Refreshed tokens of the grant keep it (stored with the grant).
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = json_body(refresh(&server, &client, rt).await).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["expires_in"], 86_400);
    let seen = server
        .introspect(&client, refreshed["access_token"].as_str().unwrap())
        .await;
    assert_eq!(seen["productId"], "p-42", "{seen}");
    // Without offline_access, no refresh token.
    let code = b
        .code(&authorize_path(&client, "openid read", ""), "alice")
        .await;
    let (status, tokens) = json_body(exchange(&server, &client, &code, Some(VERIFIER)).await).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert!(tokens.get("productId").is_none());
}

#[tokio::test]
async fn a_flow_keeps_its_dialect_whatever_path_or_field_its_forms_are_posted_with() {
    let Setup { server, client, .. } = setup().await;
    // Started on the standard path (Vantage's), its sign-in form posted to Workfront's path:
    // the sealed flow stays Vantage's, so no Workfront parameters reach the redirect.
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid read", "")).await;
    assert!(login.is_login());
    let mut fields = login.hidden();
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PASSWORD.into()));
    // A field naming a dialect is not one of the form's: refused.
    let mut smuggled = fields.clone();
    smuggled.push(("dialect".into(), "workfront".into()));
    let refused = b.post(AUTHORIZE, &smuggled).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let consent = b.post(AUTHORIZE, &fields).await;
    assert!(consent.is_consent(), "{}", consent.body);
    let mut fields = consent.hidden();
    fields.push(("decision".into(), "allow".into()));
    let done = b.post(AUTHORIZE, &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let p = done.redirect_params();
    assert!(p.contains_key("code"));
    assert!(
        !p.contains_key("domain") && !p.contains_key("lane"),
        "{p:?}"
    );
    // The other way round: a Workfront flow answered on the standard path keeps Workfront's
    // parameters.
    let mut b = Browser::new(&server);
    let login = b.get(&workfront_authorize(&client)).await;
    let mut fields = login.hidden();
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let next = b.post("/oauth2/authorize", &fields).await;
    let next = if next.is_consent() {
        let mut fields = next.hidden();
        fields.push(("decision".into(), "allow".into()));
        b.post("/oauth2/authorize", &fields).await
    } else {
        next
    };
    assert_eq!(next.status, StatusCode::SEE_OTHER, "{}", next.body);
    let p = next.redirect_params();
    assert_eq!(p["domain"], "myorganization");
    assert_eq!(p["lane"], "my");
}
