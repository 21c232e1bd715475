//! The five products Tessera stands in for, as their documents show them: every example
//! request those documents print, replayed literally (method, path, headers, body style and
//! bytes) against a server started with that product's config from `docs/dialects/`, with
//! the placeholders replaced by real values (client ids and secrets from `tessera client
//! create`, codes from driving the sign-in and consent pages over HTTP). Each test checks the
//! answer the document promises, and an attacker's variant of it.
//!
//! The configs themselves are checked first: every file under `docs/dialects/` starts a
//! server through the real settings loader, and a misspelt key in one stops it.
//!
//! The Workfront flow in a real browser is `workfront_journey.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser_support::{url_encode, Browser, Page, CHALLENGE, PASSWORD, REDIRECT, VERIFIER};
use crate::jwt_bearer::{sign, trust, vendor_key, ISSUER as VENDOR_ISSUER};
use crate::support::{basic, decode_jwt, free_port, unix_now, Creds, Server, BIN};

/// `docs/dialects/` of the repository.
pub fn dialects_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/dialects")
}

/// The example config of `product`.
pub fn product_config(product: &str) -> PathBuf {
    dialects_dir().join(format!("{product}.toml"))
}

/// A server started with `docs/dialects/<product>.toml` (the test harness still picks the
/// listen address, issuer, database and sealing secret, which the environment overrides).
pub async fn start_product(product: &str) -> Server {
    let path = product_config(product);
    assert!(path.is_file(), "{} exists", path.display());
    Server::start_with(&[("TESSERA_CONFIG", path.to_str().expect("UTF-8 path"))]).await
}

/// The status and JSON body of a response.
async fn json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Asserts an RFC 6749 §5.2 error: this status and code, and a description.
fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

/// Sends a request as the document prints it, on its own connection: `head` is the request
/// line and headers (one per line, as printed), `body` the bytes after the blank line. A
/// client adds `Content-Length`; `Connection: close` lets the answer be read to its end.
/// Returns the status and the JSON body.
async fn raw(server: &Server, head: &str, body: &str) -> (StatusCode, Value) {
    let head = head.trim().lines().collect::<Vec<_>>().join("\r\n");
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = crate::support::raw_exchange(&server.addr(), request.as_bytes()).await;
    let status = crate::support::raw_status(&answer);
    let (headers, payload) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let payload = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    (
        StatusCode::from_u16(status).expect("status"),
        serde_json::from_str(&payload).unwrap_or_else(|_| panic!("not JSON ({status}): {answer}")),
    )
}

/// The payload of a chunked body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(rest.get(..n).expect("a whole chunk"));
        s = rest.get(n + 2..).unwrap_or_default();
    }
    out
}

/// The `action` of the page's form.
fn form_action(page: &Page) -> String {
    let start = page.body.find("action=\"").expect("a form with an action") + 8;
    let end = start + page.body[start..].find('"').expect("closing quote");
    page.body[start..end]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Drives the pages of an authorization request that starts at `start` (a path and query):
/// signs `alice` in and allows, each form posted where its `action` says, which must be
/// `posts_to`. Returns the final redirect's query parameters.
async fn authorize(b: &mut Browser, start: &str, posts_to: &str) -> BTreeMap<String, String> {
    let mut page = b.get(start).await;
    if page.is_login() {
        assert_eq!(form_action(&page), posts_to, "the sign-in form posts back");
        let mut fields = page.hidden();
        fields.push(("username".into(), "alice".into()));
        fields.push(("password".into(), PASSWORD.into()));
        page = b.post(posts_to, &fields).await;
    }
    if page.is_consent() {
        assert_eq!(form_action(&page), posts_to, "the consent form posts back");
        let mut fields = page.hidden();
        fields.push(("decision".into(), "allow".into()));
        page = b.post(posts_to, &fields).await;
    }
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location().expect("a redirect");
    assert!(location.starts_with(REDIRECT), "{location}");
    page.redirect_params()
}

/// The seconds between a JWT's `iat` and `exp`.
fn lifetime(jwt: &str) -> i64 {
    let c = decode_jwt(jwt).claims;
    c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat")
}

/// Introspects `token` as `caller`; the answer (200 asserted).
async fn introspect(server: &Server, caller: &Creds, token: &str) -> Value {
    server.introspect(caller, token).await
}

// ---------------------------------------------------------------------------------------------
// The configs

#[tokio::test]
async fn every_example_config_under_docs_dialects_starts_a_server() {
    let mut names: Vec<String> = std::fs::read_dir(dialects_dir())
        .expect("docs/dialects")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "anyflow",
            "vantage",
            "workato",
            "workfront",
            "workfront_documents"
        ],
        "one config per product; a new file is started below like these"
    );
    for name in &names {
        let server = start_product(name).await;
        let meta = server
            .get_json("/.well-known/oauth-authorization-server")
            .await;
        assert_eq!(meta["issuer"], server.issuer(), "{name}");
        assert!(meta["token_endpoint"].is_string(), "{name}: {meta}");
    }
}

/// Runs `tessera serve` with `config`; returns its output if it exits within 20 s (a server
/// that starts is stopped and reported as `None`).
async fn serve_once(config: &std::path::Path) -> Option<std::process::Output> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut cmd = tokio::process::Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.arg("serve")
        .env("TESSERA_CONFIG", config)
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA_ISSUER", format!("http://127.0.0.1:{port}"))
        .env(
            "TESSERA_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env(
            "TESSERA_SECRET",
            "e2e-test-sealing-secret-not-for-production",
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("spawn tessera serve");
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .ok()
        .map(|o| o.expect("output"))
}

#[tokio::test]
async fn a_misspelt_key_in_an_example_config_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(product_config("workfront")).expect("workfront.toml");
    for (from, to, named) in [
        ("token_type = ", "tokentype = ", "tokentype"),
        (
            "response_fields = [\"wid\"]",
            "response_fields = [\"wdi\"]",
            "wdi",
        ),
        ("[dialects.workfront]", "[dialects.workfrnt]", "workfrnt"),
    ] {
        assert!(good.contains(from), "workfront.toml has {from}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, good.replacen(from, to, 1)).expect("write");
        let out = serve_once(&bad)
            .await
            .unwrap_or_else(|| panic!("a config with {to} must not start a server"));
        assert!(!out.status.success(), "{to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "the error names {named}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Anyflow Embed: `POST /sdk/token`

/// The claims an Anyflow vendor signs: the end user's team and user ids, the issuer the
/// operator gave it, no audience.
fn anyflow_claims() -> Value {
    let now = unix_now() as i64;
    json!({
        "iss": VENDOR_ISSUER,
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "jti": crate::jwt_bearer::jti(),
        "anyflow_team_id": "team-7",
        "anyflow_user_id": "user-1",
    })
}

#[tokio::test]
async fn anyflow_sdk_token_as_printed_five_minutes_each_jwt_once() {
    let server = start_product("anyflow").await;
    let key = vendor_key();
    trust(&server, &key, "default", &[]).await;
    trust(&server, &key, "staging", &[]).await;
    // The vendor's API checks the tokens with credentials of its own.
    let api = server.create_client(&[]).await;
    let staging_api = server.create_client(&["--env", "staging"]).await;
    // POST https://for-product-api.anyflow.jp/sdk/token, JSON: `jwt`, and `env` unless the
    // default environment.
    for (env, caller) in [(None, &api), (Some("staging"), &staging_api)] {
        let jwt = sign(&key, &anyflow_claims());
        let mut body = json!({ "jwt": jwt });
        if let Some(env) = env {
            body["env"] = json!(env);
        }
        let res = server
            .http
            .post(server.url("/sdk/token"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let (status, answer) = json(res).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let token = answer["access_token"].as_str().expect("access_token");
        // "The access token lives 5 minutes."
        assert_eq!(answer["expires_in"], 300);
        assert_eq!(lifetime(token), 300);
        // "Endpoints under /sdk take the token as Authorization: Bearer": the vendor's API
        // asks Tessera about it.
        let info = introspect(&server, caller, token).await;
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(info["anyflow_team_id"], "team-7");
        assert_eq!(info["anyflow_user_id"], "user-1");
        assert_eq!(info["env"], env.unwrap_or("default"));
        // "A JWT already used to get a token is refused: always send a new one."
        let again = server
            .http
            .post(server.url("/sdk/token"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let (status, refused) = json(again).await;
        assert_error(status, &refused, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // Hostile: a JWT signed by another key, and one naming an environment it is not trusted
    // in, get nothing.
    let stranger = vendor_key();
    let (status, body) = json(
        server
            .http
            .post(server.url("/sdk/token"))
            .json(&json!({ "jwt": sign(&stranger, &anyflow_claims()) }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    server.cli(&["env", "create", "elsewhere"]).await;
    let (status, body) = json(
        server
            .http
            .post(server.url("/sdk/token"))
            .json(&json!({ "jwt": sign(&key, &anyflow_claims()), "env": "elsewhere" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn anyflow_hosted_wizard_tokens_are_single_use_and_live_ten_minutes() {
    let server = start_product("anyflow").await;
    let key = vendor_key();
    server.cli(&["env", "create", "hosted"]).await;
    server
        .cli(&["env", "set", "hosted", "--single-use-tokens"])
        .await;
    trust(&server, &key, "hosted", &[]).await;
    let api = server.create_client(&["--env", "hosted"]).await;
    let (status, answer) = json(
        server
            .http
            .post(server.url("/sdk/token"))
            .json(&json!({ "jwt": sign(&key, &anyflow_claims()), "env": "hosted" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["access_token"].as_str().unwrap();
    // "Invalid once used, or 10 minutes after issue."
    assert_eq!(answer["expires_in"], 600);
    assert_eq!(lifetime(token), 600);
    assert!(server.is_active(&api, token).await, "the first use");
    assert!(!server.is_active(&api, token).await, "used: invalid");
}

// ---------------------------------------------------------------------------------------------
// Workato: client credentials in four request styles, data centres and a custom domain

/// The multipart body as a client sends the document's example: the boundary as printed in
/// the header (`----WebKitFormBoundary7MA4YWxkTrZu0gW`), each part opened by `--` and the
/// boundary (RFC 7578 §4.1, RFC 2046 §5.1.1), and the last one closed.
fn workato_multipart(c: &Creds) -> String {
    let b = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let part = |name: &str, value: &str| {
        format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    format!(
        "{}{}{}--{b}--\r\n",
        part("grant_type", "client_credentials"),
        part("client_id", &c.id),
        part("client_secret", &c.secret)
    )
}

/// The four requests of the document: (name, head, body).
fn workato_requests(c: &Creds, host: &str) -> Vec<(&'static str, String, String)> {
    vec![
        (
            "Basic + form",
            format!(
                "POST /oauth2/token HTTP/1.1\nHost: {host}\nAuthorization: {}\nContent-Type: application/x-www-form-urlencoded",
                basic(&c.id, &c.secret)
            ),
            "grant_type=client_credentials".to_owned(),
        ),
        (
            "JSON",
            format!("POST /oauth2/token HTTP/1.1\nHost: {host}\nContent-Type: application/json"),
            format!(
                "{{\n  \"grant_type\": \"client_credentials\",\n  \"client_id\": \"{}\",\n  \"client_secret\": \"{}\"\n}}",
                c.id, c.secret
            ),
        ),
        (
            "form",
            format!(
                "POST /oauth2/token HTTP/1.1\nHost: {host}\nContent-Type: application/x-www-form-urlencoded"
            ),
            format!(
                "client_secret={}&client_id={}&grant_type=client_credentials",
                c.secret, c.id
            ),
        ),
        (
            "multipart",
            format!(
                "POST /oauth2/token HTTP/1.1\nHost: {host}\nContent-Type: multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"
            ),
            workato_multipart(c),
        ),
    ]
}

#[tokio::test]
async fn workato_token_requests_as_printed_in_all_four_styles() {
    let server = start_product("workato").await;
    let profile = server.create_client(&["--scope", "api"]).await;
    let api = server.create_client(&[]).await;
    let mut seen = Vec::new();
    for (style, head, body) in workato_requests(&profile, "apim.workato.com") {
        let (status, answer) = raw(&server, &head, &body).await;
        assert_eq!(status, StatusCode::OK, "{style}: {answer}");
        // {"access_token": "<JWT>", "token_type": "bearer", "expires_in": 3600}
        assert_eq!(answer["token_type"], "bearer", "{style}");
        assert_eq!(answer["expires_in"], 3600, "{style}");
        let token = answer["access_token"].as_str().unwrap().to_owned();
        assert_eq!(lifetime(&token), 3600, "{style}");
        // apim.workato.com is the main issuer of the config, which the test's issuer
        // replaces: an unconfigured Host is answered as the main issuer.
        assert_eq!(decode_jwt(&token).claims["iss"], server.issuer(), "{style}");
        // "API calls carry Authorization: Bearer <ACCESS_TOKEN>": the API asks about it.
        assert!(server.is_active(&api, &token).await, "{style}");
        seen.push(decode_jwt(&token).claims["jti"].clone());
    }
    // "Every request creates a new token with its own expiry."
    seen.sort_by_key(|j| j.to_string());
    seen.dedup();
    assert_eq!(seen.len(), 4);
}

#[tokio::test]
async fn workato_content_type_must_match_the_payload() {
    let server = start_product("workato").await;
    let c = server.create_client(&[]).await;
    let json_body = format!(
        "{{\"grant_type\": \"client_credentials\", \"client_id\": \"{}\", \"client_secret\": \"{}\"}}",
        c.id, c.secret
    );
    let form_body = format!(
        "client_secret={}&client_id={}&grant_type=client_credentials",
        c.secret, c.id
    );
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", json_body.as_str()),
        ("application/json", form_body.as_str()),
        (
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            form_body.as_str(),
        ),
        ("text/plain", form_body.as_str()),
    ] {
        let head = format!(
            "POST /oauth2/token HTTP/1.1\nHost: apim.workato.com\nContent-Type: {content_type}"
        );
        let (status, answer) = raw(&server, &head, body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // The multipart listing exactly as the document's page shows it: its delimiter lines are
    // the boundary without the two hyphens RFC 2046 §5.1.1 puts before it, and it has no
    // close delimiter, so it is no multipart body (a client such as Postman sends
    // `workato_multipart`): refused in the RFC's shape, never a server error.
    let listing = format!(
        "----WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n----WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n{}\r\n----WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\n{}\r\n----WebKitFormBoundary7MA4YWxkTrZu0gW\r\n",
        c.id, c.secret
    );
    let (status, answer) = raw(
        &server,
        "POST /oauth2/token HTTP/1.1\nHost: apim.workato.com\nContent-Type: multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
        &listing,
    )
    .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
    // No Content-Type at all.
    let (status, answer) = raw(
        &server,
        "POST /oauth2/token HTTP/1.1\nHost: apim.workato.com",
        &form_body,
    )
    .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn workato_data_centres_and_the_custom_domain_issue_under_their_own_urls() {
    let server = start_product("workato").await;
    let profile = server.create_client(&[]).await;
    let api = server.create_client(&[]).await;
    // The custom domain serves the `boltcompany` environment alone.
    let bolt = server.create_client(&["--env", "boltcompany"]).await;
    let bolt_api = server.create_client(&["--env", "boltcompany"]).await;
    for (host, client, caller) in [
        ("apim.eu.workato.com", &profile, &api),
        ("apim.jp.workato.com", &profile, &api),
        ("apim.sg.workato.com", &profile, &api),
        ("api.boltcompany.com", &bolt, &bolt_api),
        // The Host header is case-insensitive.
        ("API.BoltCompany.com", &bolt, &bolt_api),
    ] {
        let url = format!("https://{}", host.to_ascii_lowercase());
        for (style, head, body) in workato_requests(client, host) {
            let (status, answer) = raw(&server, &head, &body).await;
            assert_eq!(status, StatusCode::OK, "{host} {style}: {answer}");
            let token = answer["access_token"].as_str().unwrap();
            assert_eq!(decode_jwt(token).claims["iss"], url, "{host} {style}");
            // One JWKS: a token of any host is good on the main one.
            let info = introspect(&server, caller, token).await;
            assert_eq!(info["active"], true, "{host}: {info}");
            assert_eq!(info["iss"], url, "{host}");
        }
        // Discovery, asked on that host, names that host's token endpoint.
        let meta = server
            .http
            .get(server.url("/.well-known/oauth-authorization-server"))
            .header("Host", host)
            .send()
            .await
            .unwrap();
        let (status, meta) = json(meta).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(meta["issuer"], url);
        assert_eq!(meta["token_endpoint"], format!("{url}/oauth2/token"));
    }
    // Hostile: a client of another environment at the custom domain is an unknown client
    // there, in every style.
    for (style, head, body) in workato_requests(&profile, "api.boltcompany.com") {
        let (status, answer) = raw(&server, &head, &body).await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "invalid_client");
        let _ = style;
    }
    // Hostile: a Host that is not configured is never reflected.
    for host in [
        "apim.evil.example",
        "apim.workato.com.evil.example",
        "apim.eu.workato.com:8443",
    ] {
        for (style, head, body) in workato_requests(&profile, host) {
            let (status, answer) = raw(&server, &head, &body).await;
            assert_eq!(status, StatusCode::OK, "{host} {style}: {answer}");
            let token = answer["access_token"].as_str().unwrap();
            assert_eq!(decode_jwt(token).claims["iss"], server.issuer(), "{host}");
        }
    }
}

#[tokio::test]
async fn workato_rotating_the_secret_stops_the_old_one_and_revokes_earlier_tokens() {
    let server = start_product("workato").await;
    let profile = server.create_client(&[]).await;
    let api = server.create_client(&[]).await;
    let before = server.access_token(&profile).await;
    let rotated = server
        .cli_json(&["client", "rotate-secret", &profile.id, "--json"])
        .await;
    let new = profile.with_secret(rotated["client_secret"].as_str().unwrap());
    crate::support::wait_until(
        crate::support::FEED_DEADLINE,
        "the old secret stops working",
        || async { server.token_status(&profile).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert!(
        !server.is_active(&api, &before).await,
        "revoked with the secret"
    );
    for (style, head, body) in workato_requests(&new, "apim.workato.com") {
        let (status, answer) = raw(&server, &head, &body).await;
        assert_eq!(status, StatusCode::OK, "{style}: {answer}");
    }
    for (style, head, body) in workato_requests(&profile, "apim.workato.com") {
        let (status, answer) = raw(&server, &head, &body).await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "invalid_client");
        let _ = style;
    }
}

// ---------------------------------------------------------------------------------------------
// Workfront document provider: the token endpoint at a configured URL

const DOCS_AUTHORIZE: &str = "/document-provider/oauth2/authorize";
const DOCS_TOKEN: &str = "/document-provider/oauth2/token";

/// A code for `client` through the document provider's authorization path. The request
/// names no `redirect_uri` (the client's one registered URI is used, RFC 6749 §3.1.2.3), so
/// the token request, as printed, need not either (§4.1.3).
async fn documents_code(b: &mut Browser, client: &Creds) -> String {
    let query = url_encode(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("state", "doc-1"),
    ]);
    let p = authorize(b, &format!("{DOCS_AUTHORIZE}?{query}"), DOCS_AUTHORIZE).await;
    assert_eq!(p["state"], "doc-1");
    p["code"].clone()
}

#[tokio::test]
async fn workfront_documents_code_and_refresh_as_printed() {
    let server = start_product("workfront_documents").await;
    server.create_user("alice", PASSWORD).await;
    let client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "documents",
            "--refresh-tokens",
            "always",
        ])
        .await;
    let mut b = Browser::new(&server);
    let code = documents_code(&mut b, &client).await;
    // POST <token endpoint URL>
    // grant_type=authorization_code code=... client_id=... client_secret=...
    let res = server
        .http
        .post(server.url(DOCS_TOKEN))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, tokens) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // {access_token, refresh_token, expires_in: 3600}
    let at = tokens["access_token"].as_str().expect("access_token");
    let rt = tokens["refresh_token"].as_str().expect("a refresh token");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(lifetime(at), 3600);
    // grant_type=refresh_token refresh_token=... client_id=... client_secret=...
    let refresh = |rt: String| {
        let server = &server;
        let client = &client;
        async move {
            server
                .http
                .post(server.url(DOCS_TOKEN))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", client.id.as_str()),
                    ("client_secret", client.secret.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let (status, renewed) = json(refresh(rt.to_owned()).await).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert!(renewed["access_token"].is_string());
    assert_eq!(renewed["expires_in"], 3600);
    let next = renewed["refresh_token"]
        .as_str()
        .expect("rotated refresh token");
    assert_ne!(next, rt);
    // Hostile: another client cannot use it, and the rotated-out token is refused (and
    // revokes the family).
    let other = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
        ])
        .await;
    let res = server
        .http
        .post(server.url(DOCS_TOKEN))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", next),
            ("client_id", other.id.as_str()),
            ("client_secret", other.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = json(refresh(rt.to_owned()).await).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = json(refresh(next.to_owned()).await).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // The code is spent (and, replayed, revokes what it gave, RFC 6749 §4.1.2).
    let res = server
        .http
        .post(server.url(DOCS_TOKEN))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // A wrong secret.
    let res = server
        .http
        .post(server.url(DOCS_TOKEN))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "d9ac7asdf6asdf579d7a8"),
            ("client_id", client.id.as_str()),
            ("client_secret", "6asdf7a7a9a4af"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

// ---------------------------------------------------------------------------------------------
// ABBYY Vantage: code + PKCE, productId, 24 h tokens, refresh only with offline_access

const PRODUCT_ID: &str = "a8548c9b-cb90-4c66-8567-d7372bb9b963";

/// The authorization request of the document, on `path`, with this scope.
fn vantage_authorize(path: &str, client: &Creds, scope: &str) -> String {
    let query = url_encode(&[
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "v-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("productId", PRODUCT_ID),
    ]);
    format!("{path}?{query}")
}

/// The token request of the document: form-encoded, the secret in the body.
async fn vantage_exchange(
    server: &Server,
    path: &str,
    client: &Creds,
    code: &str,
    scope: &str,
) -> (StatusCode, Value) {
    json(
        server
            .http
            .post(server.url(path))
            .form(&[
                ("code_verifier", VERIFIER),
                ("client_id", client.id.as_str()),
                ("client_secret", client.secret.as_str()),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("grant_type", "authorization_code"),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn vantage_setup() -> (Server, Creds, Creds) {
    let server = start_product("vantage").await;
    server.create_user("alice", PASSWORD).await;
    let client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid permissions global.wildcard offline_access",
        ])
        .await;
    let api = server.create_client(&[]).await;
    (server, client, api)
}

#[tokio::test]
async fn vantage_code_pkce_and_refresh_as_printed() {
    let (server, client, api) = vantage_setup().await;
    // As printed: the authorization request asks `openid permissions global.wildcard`, the
    // token request adds `offline_access` to get a refresh token.
    let asked = "openid permissions global.wildcard";
    let scope = "openid permissions global.wildcard offline_access";
    for (authorize_path, token_path) in [
        ("/oauth2/authorize", "/oauth2/token"),
        ("/auth2/connect/authorize", "/auth2/connect/token"),
    ] {
        let mut b = Browser::new(&server);
        let p = authorize(
            &mut b,
            &vantage_authorize(authorize_path, &client, asked),
            authorize_path,
        )
        .await;
        assert_eq!(p["state"], "v-state");
        let (status, tokens) =
            vantage_exchange(&server, token_path, &client, &p["code"], scope).await;
        assert_eq!(status, StatusCode::OK, "{token_path}: {tokens}");
        // Access tokens live 24 hours.
        assert_eq!(tokens["expires_in"], 86400);
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(lifetime(at), 86400);
        // productId is kept with the code and carried into the token.
        assert_eq!(decode_jwt(at).claims["productId"], PRODUCT_ID);
        let info = introspect(&server, &api, at).await;
        assert_eq!(info["active"], true);
        assert_eq!(info["productId"], PRODUCT_ID, "{info}");
        // offline_access: a refresh token, 30 days from the first sign-in.
        let rt = tokens["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned();
        let first = introspect(&server, &client, &rt).await;
        assert_eq!(first["active"], true, "{first}");
        let ends = first["exp"].as_i64().expect("exp");
        assert!(
            (ends as f64 - unix_now() - 2_592_000.0).abs() < 60.0,
            "30 days: {first}"
        );
        // client_id, client_secret, refresh_token, grant_type=refresh_token
        let (status, renewed) = json(
            server
                .http
                .post(server.url(token_path))
                .form(&[
                    ("client_id", client.id.as_str()),
                    ("client_secret", client.secret.as_str()),
                    ("refresh_token", rt.as_str()),
                    ("grant_type", "refresh_token"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{renewed}");
        assert_eq!(renewed["expires_in"], 86400);
        let at2 = renewed["access_token"].as_str().unwrap();
        assert_eq!(lifetime(at2), 86400);
        // productId stays with the grant: refreshed tokens carry it too.
        assert_eq!(decode_jwt(at2).claims["productId"], PRODUCT_ID);
        // Refreshing never extends it: only a new sign-in gives a new one.
        let rt2 = renewed["refresh_token"].as_str().expect("rotated");
        let second = introspect(&server, &client, rt2).await;
        assert_eq!(second["active"], true, "{second}");
        assert_eq!(second["exp"].as_i64(), Some(ends), "not extended: {second}");
    }
}

#[tokio::test]
async fn vantage_no_offline_access_no_refresh_token() {
    let (server, client, _) = vantage_setup().await;
    let scope = "openid permissions global.wildcard";
    let mut b = Browser::new(&server);
    let p = authorize(
        &mut b,
        &vantage_authorize("/oauth2/authorize", &client, scope),
        "/oauth2/authorize",
    )
    .await;
    let (status, tokens) =
        vantage_exchange(&server, "/oauth2/token", &client, &p["code"], scope).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    // Hostile: a client not registered for offline_access cannot get a refresh token by
    // asking it at the token request.
    let plain = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid permissions global.wildcard",
        ])
        .await;
    let p = authorize(
        &mut b,
        &vantage_authorize("/oauth2/authorize", &plain, scope),
        "/oauth2/authorize",
    )
    .await;
    let (status, tokens) = vantage_exchange(
        &server,
        "/oauth2/token",
        &plain,
        &p["code"],
        "openid permissions global.wildcard offline_access",
    )
    .await;
    assert!(tokens.get("refresh_token").is_none(), "{status}: {tokens}");
    assert_error(status, &tokens, StatusCode::BAD_REQUEST, "invalid_scope");
    // Hostile: no scope but offline_access is ever added at the token request.
    let p = authorize(
        &mut b,
        &vantage_authorize("/oauth2/authorize", &client, "openid"),
        "/oauth2/authorize",
    )
    .await;
    let (status, tokens) = vantage_exchange(
        &server,
        "/oauth2/token",
        &client,
        &p["code"],
        "openid permissions offline_access",
    )
    .await;
    assert_error(status, &tokens, StatusCode::BAD_REQUEST, "invalid_scope");
    // Hostile: a code without its verifier, or with another one, is refused.
    let p = authorize(
        &mut b,
        &vantage_authorize("/oauth2/authorize", &client, scope),
        "/oauth2/authorize",
    )
    .await;
    let (status, body) = json(
        server
            .http
            .post(server.url("/oauth2/token"))
            .form(&[
                ("code_verifier", "x".repeat(43).as_str()),
                ("client_id", client.id.as_str()),
                ("client_secret", client.secret.as_str()),
                ("code", p["code"].as_str()),
                ("redirect_uri", REDIRECT),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}

// ---------------------------------------------------------------------------------------------
// Workfront custom OAuth2 apps

pub const WF_AUTHORIZE: &str = "/integrations/oauth2/authorize";
pub const WF_TOKEN: &str = "/integrations/oauth2/api/v1/token";

/// A Workfront app: a confidential client with the redirect URL, asking no scope (its
/// registered `openid` is what it gets).
pub async fn workfront_app(server: &Server, redirect: &str) -> Creds {
    server
        .create_client(&[
            "--name",
            "My Workfront app",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            redirect,
            "--scope",
            "openid",
            "--refresh-tokens",
            "always",
        ])
        .await
}

/// `https://<domain>/integrations/oauth2/authorize?client_id=..&redirect_uri=..&response_type=code`
pub fn workfront_authorize(client: &Creds, redirect: &str) -> String {
    format!(
        "{WF_AUTHORIZE}?client_id={}&redirect_uri={}&response_type=code",
        client.id,
        url_encode(&[("x", redirect)]).trim_start_matches("x=")
    )
}

/// Example 1: HTTP Basic and a JSON body, as `curl --data-raw` sends it.
pub async fn workfront_exchange_json(
    server: &Server,
    client: &Creds,
    code: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    let body = format!(
        "{{\n   \"code\": \"{code}\",\n   \"grant_type\": \"authorization_code\",\n   \"redirect_uri\": \"{redirect}\"\n   }}"
    );
    json(
        server
            .http
            .post(server.url(WF_TOKEN))
            .header("Authorization", basic(&client.id, &client.secret))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Example 2: everything form-encoded, in the document's order.
pub async fn workfront_exchange_form(
    server: &Server,
    client: &Creds,
    code: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    json(
        server
            .http
            .post(server.url(WF_TOKEN))
            .form(&[
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect),
                ("code", code),
                ("client_id", client.id.as_str()),
                ("client_secret", client.secret.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The refresh of the document, HTTP Basic and JSON.
pub async fn workfront_refresh_json(
    server: &Server,
    client: &Creds,
    rt: &str,
) -> (StatusCode, Value) {
    let body =
        format!("{{\n   \"grant_type\": \"refresh_token\",\n   \"refresh_token\": \"{rt}\"\n}}");
    json(
        server
            .http
            .post(server.url(WF_TOKEN))
            .header("Authorization", basic(&client.id, &client.secret))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The refresh of the document, form-encoded (with the `redirect_uri` it prints).
pub async fn workfront_refresh_form(
    server: &Server,
    client: &Creds,
    rt: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    json(
        server
            .http
            .post(server.url(WF_TOKEN))
            .form(&[
                ("grant_type", "refresh_token"),
                ("redirect_uri", redirect),
                ("refresh_token", rt),
                ("client_id", client.id.as_str()),
                ("client_secret", client.secret.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Asserts the payload the document promises:
/// `{"token_type": "sessionID", "access_token", "refresh_token", "expires_in", "wid"}`.
pub fn assert_workfront_tokens(status: StatusCode, tokens: &Value) {
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "sessionID", "{tokens}");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    assert!(tokens["expires_in"].is_i64(), "{tokens}");
    assert!(tokens["wid"].is_string(), "{tokens}");
}

/// `GET /userinfo` with the access token as the `sessionID` header.
pub async fn userinfo_with_session_id(server: &Server, token: &str) -> (StatusCode, Value) {
    json(
        server
            .http
            .get(server.url("/userinfo"))
            .header("sessionID", token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn workfront_code_flow_both_exchanges_and_both_refreshes_as_printed() {
    let server = start_product("workfront").await;
    let sub = server.create_user("alice", PASSWORD).await;
    let app = workfront_app(&server, REDIRECT).await;
    let mut b = Browser::new(&server);
    // The link the app gives its users; the pages post back to it.
    let p = authorize(&mut b, &workfront_authorize(&app, REDIRECT), WF_AUTHORIZE).await;
    // Redirect with code, domain and lane.
    assert_eq!(p["domain"], "myorganization");
    assert_eq!(p["lane"], "my");
    let code = p["code"].clone();
    // Example 1.
    let (status, first) = workfront_exchange_json(&server, &app, &code, REDIRECT).await;
    assert_workfront_tokens(status, &first);
    // Example 2, with a new code (consent is remembered: straight back with one).
    let p = authorize(&mut b, &workfront_authorize(&app, REDIRECT), WF_AUTHORIZE).await;
    assert_eq!(
        (p["domain"].as_str(), p["lane"].as_str()),
        ("myorganization", "my")
    );
    let (status, second) = workfront_exchange_form(&server, &app, &p["code"], REDIRECT).await;
    assert_workfront_tokens(status, &second);
    // Hostile: the first code again is refused, and revokes what it gave (RFC 6749 §4.1.2).
    let (status, body) = workfront_exchange_form(&server, &app, &code, REDIRECT).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, _) =
        userinfo_with_session_id(&server, first["access_token"].as_str().unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked with the replayed code"
    );
    let first = second;
    // The access token is a sessionID.
    let at = first["access_token"].as_str().unwrap();
    let (status, me) = userinfo_with_session_id(&server, at).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], sub);
    // Refresh, JSON + Basic, then form.
    let (status, renewed) =
        workfront_refresh_json(&server, &app, first["refresh_token"].as_str().unwrap()).await;
    assert_workfront_tokens(status, &renewed);
    let (status, again) = workfront_refresh_form(
        &server,
        &app,
        renewed["refresh_token"].as_str().unwrap(),
        REDIRECT,
    )
    .await;
    assert_workfront_tokens(status, &again);
    let (status, me) =
        userinfo_with_session_id(&server, again["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], sub);
    // Hostile: the refresh token used before is refused and takes the family with it.
    let (status, body) =
        workfront_refresh_json(&server, &app, first["refresh_token"].as_str().unwrap()).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, _) =
        userinfo_with_session_id(&server, again["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the family is revoked");
}

#[tokio::test]
async fn workfront_hostile_clients_and_tokens_are_refused() {
    let server = start_product("workfront").await;
    server.create_user("alice", PASSWORD).await;
    let app = workfront_app(&server, REDIRECT).await;
    let other = workfront_app(&server, REDIRECT).await;
    let mut b = Browser::new(&server);
    let p = authorize(&mut b, &workfront_authorize(&app, REDIRECT), WF_AUTHORIZE).await;
    // Another app's credentials with this app's code.
    let (status, body) = workfront_exchange_json(&server, &other, &p["code"], REDIRECT).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // A wrong secret, by Basic.
    let p = authorize(&mut b, &workfront_authorize(&app, REDIRECT), WF_AUTHORIZE).await;
    let (status, body) = workfront_exchange_json(
        &server,
        &app.with_secret("tcs_not-the-secret"),
        &p["code"],
        REDIRECT,
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    // Another redirect URL than the code's.
    let (status, body) =
        workfront_exchange_json(&server, &app, &p["code"], "https://evil.example/cb").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // A JSON body sent as a form, and multipart (not a Workfront style).
    let p = authorize(&mut b, &workfront_authorize(&app, REDIRECT), WF_AUTHORIZE).await;
    let res = server
        .http
        .post(server.url(WF_TOKEN))
        .header("Authorization", basic(&app.id, &app.secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "{{\"code\": \"{}\", \"grant_type\": \"authorization_code\", \"redirect_uri\": \"{REDIRECT}\"}}",
            p["code"]
        ))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "authorization_code")
        .text("code", p["code"].clone())
        .text("redirect_uri", REDIRECT);
    let res = server
        .http
        .post(server.url(WF_TOKEN))
        .header("Authorization", basic(&app.id, &app.secret))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // A made-up sessionID.
    let (status, _) = userinfo_with_session_id(&server, "ad8af5ad5ads759").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An unregistered redirect URL is never redirected to.
    let page = b
        .get(&workfront_authorize(&app, "https://evil.example/cb"))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
}

#[tokio::test]
async fn workfront_per_client_redirect_params_from_the_example_config() {
    let mut server = start_product("workfront").await;
    server.create_user("alice", PASSWORD).await;
    let preview = workfront_app(&server, REDIRECT).await;
    let other = workfront_app(&server, REDIRECT).await;
    // The example config's commented-out section, switched on for one app.
    let text = std::fs::read_to_string(product_config("workfront")).unwrap();
    let commented =
        "# [dialects.workfront.clients.\"CLIENT_ID\"]\n# redirect_params = { lane = \"preview\" }";
    assert!(
        text.contains(commented),
        "workfront.toml shows a per-client change"
    );
    let enabled = text.replace(
        commented,
        &format!(
            "[dialects.workfront.clients.\"{}\"]\nredirect_params = {{ lane = \"preview\" }}",
            preview.id
        ),
    );
    let path = server.dir_path().join("workfront-preview.toml");
    std::fs::write(&path, enabled).unwrap();
    server
        .restart_with(&[("TESSERA_CONFIG", path.to_str().unwrap())])
        .await
        .expect("the server starts with the per-client section");
    let mut b = Browser::new(&server);
    let p = authorize(
        &mut b,
        &workfront_authorize(&preview, REDIRECT),
        WF_AUTHORIZE,
    )
    .await;
    assert_eq!(
        (p["domain"].as_str(), p["lane"].as_str()),
        ("myorganization", "preview")
    );
    let p = authorize(&mut b, &workfront_authorize(&other, REDIRECT), WF_AUTHORIZE).await;
    assert_eq!(
        (p["domain"].as_str(), p["lane"].as_str()),
        ("myorganization", "my")
    );
}
