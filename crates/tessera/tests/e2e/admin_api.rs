//! The admin API on its own listener: who may call it (the bootstrap token, admin tokens and
//! their scopes, expiry and revocation), and the clients it manages working at the token
//! endpoint.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{free_port, wait_until, Creds, Server};

/// The bootstrap admin token of these tests.
const BOOTSTRAP: &str = "e2e-bootstrap-admin-token-0123456789";

/// A server with the admin API at `admin` (its base URL).
struct Admin {
    server: Server,
    base: String,
}

impl Admin {
    async fn start() -> Admin {
        Self::start_with(&[("TESSERA_ADMIN_TOKEN", BOOTSTRAP)]).await
    }

    async fn start_with(extra: &[(&str, &str)]) -> Admin {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env = vec![("TESSERA_ADMIN_LISTEN", addr.as_str())];
        env.extend_from_slice(extra);
        let server = Server::start_with(&env).await;
        Admin {
            server,
            base: format!("http://{addr}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.server.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("admin request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {e}: {text}"))
        };
        (status, headers, value)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
        (s, v)
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(reqwest::Method::POST, path, Some(token), Some(body))
            .await;
        (s, v)
    }

    /// How many clients the database holds.
    async fn client_count(&self) -> usize {
        self.server
            .cli_json(&["client", "list", "--json"])
            .await
            .as_array()
            .expect("a list")
            .len()
    }

    /// Makes an admin token with the CLI; returns (id, value).
    async fn admin_token(&self, scopes: &[&str], extra: &[&str]) -> (String, String) {
        let mut args = vec!["admin-token", "create", "--name", "e2e", "--json"];
        for s in scopes {
            args.extend(["--scope", s]);
        }
        args.extend_from_slice(extra);
        let v = self.server.cli_json(&args).await;
        (
            v["id"].as_str().expect("id").to_owned(),
            v["token"].as_str().expect("token").to_owned(),
        )
    }
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn admin_listener_refuses_to_start_without_a_credential() {
    let mut server = Server::start().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let logs = server
        .restart_with(&[("TESSERA_ADMIN_LISTEN", addr.as_str())])
        .await
        .expect_err("no admin credential: the server must not start");
    assert!(logs.contains("needs a credential"), "{logs}");
    assert!(logs.contains("TESSERA_ADMIN_TOKEN"), "{logs}");
    assert!(logs.contains("exited with exit status: 1"), "{logs}");

    // A revoked admin token is no credential either; a live one is.
    let v = server
        .cli_json(&[
            "admin-token",
            "create",
            "--name",
            "a",
            "--scope",
            "admin",
            "--json",
        ])
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    server.cli(&["admin-token", "revoke", &id]).await;
    let logs = server
        .restart_with(&[])
        .await
        .expect_err("only a revoked admin token: the server must not start");
    assert!(logs.contains("needs a credential"), "{logs}");
    server
        .cli(&[
            "admin-token",
            "create",
            "--name",
            "b",
            "--scope",
            "clients:read",
        ])
        .await;
    server
        .restart_with(&[])
        .await
        .expect("a live admin token is a credential");
}

#[tokio::test]
async fn an_admin_token_value_in_the_bootstrap_variable_keeps_its_own_scopes() {
    let mut server = Server::start().await;
    let v = server
        .cli_json(&[
            "admin-token",
            "create",
            "--name",
            "reader",
            "--scope",
            "clients:read",
            "--json",
        ])
        .await;
    let value = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    let addr = format!("127.0.0.1:{}", free_port());
    server
        .restart_with(&[
            ("TESSERA_ADMIN_LISTEN", addr.as_str()),
            ("TESSERA_ADMIN_TOKEN", value.as_str()),
        ])
        .await
        .expect("the admin token is a credential");
    let url = format!("http://{addr}/admin/clients");
    let res = server
        .http
        .get(&url)
        .bearer_auth(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = server
        .http
        .post(&url)
        .bearer_auth(&value)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    server.cli(&["admin-token", "revoke", &id]).await;
    let res = server
        .http
        .get(&url)
        .bearer_auth(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_short_bootstrap_token_is_refused_at_start() {
    let mut server = Server::start().await;
    let logs = server
        .restart_with(&[("TESSERA_ADMIN_TOKEN", "short")])
        .await
        .expect_err("a guessable bootstrap token must be refused");
    assert!(logs.contains("at least 16 characters"), "{logs}");
}

#[tokio::test]
async fn the_public_listener_has_no_admin_api() {
    let a = Admin::start().await;
    for path in [
        "/admin/clients",
        "/admin/openapi.json",
        "/admin/admin-tokens",
    ] {
        let res = a
            .server
            .http
            .get(a.server.url(path))
            .bearer_auth(BOOTSTRAP)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let res = a
        .server
        .http
        .post(a.server.url("/admin/clients"))
        .bearer_auth(BOOTSTRAP)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert_eq!(a.client_count().await, 0);
    // And the admin listener serves no OAuth endpoint.
    let res = a
        .server
        .http
        .get(a.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_bad_expired_or_revoked_credential_gets_in() {
    let a = Admin::start().await;
    // None.
    let (s, h, v) = a
        .call(reqwest::Method::GET, "/admin/clients", None, None)
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(h[reqwest::header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    // Not Bearer.
    let res = a
        .server
        .http
        .get(a.url("/admin/clients"))
        .basic_auth("admin", Some(BOOTSTRAP))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Wrong values: near the bootstrap token, a made-up admin token, garbage.
    let (id, good) = a.admin_token(&["clients:read"], &[]).await;
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('x') { 'y' } else { 'x' });
    for bad in [
        &format!("{BOOTSTRAP}x"),
        &BOOTSTRAP[1..],
        &forged,
        "tsa_00000000000000000000000000000000_abc",
        "tsa_../../etc/passwd",
        &"A".repeat(5000),
    ] {
        let (s, h, v) = a
            .call(reqwest::Method::GET, "/admin/clients", Some(bad), None)
            .await;
        assert_error(s, &v, StatusCode::UNAUTHORIZED, "invalid_token");
        assert!(h[reqwest::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    // Good, then revoked.
    assert_eq!(a.get("/admin/clients", &good).await.0, StatusCode::OK);
    a.server.cli(&["admin-token", "revoke", &id]).await;
    let (s, v) = a.get("/admin/clients", &good).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(v["error_description"].as_str().unwrap().contains("revoked"));
    // Expiring: accepted until it expires, then refused.
    let (_, short) = a
        .admin_token(&["clients:read"], &["--expires-in", "2s"])
        .await;
    wait_until(
        Duration::from_secs(10),
        "the admin token expires",
        || async {
            let (s, v) = a.get("/admin/clients", &short).await;
            s == StatusCode::UNAUTHORIZED
                && v["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains("expired"))
        },
    )
    .await;
    // The list shows no value or hash.
    let (s, v) = a.get("/admin/admin-tokens", BOOTSTRAP).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.to_string();
    assert!(!text.contains(&good) && !text.contains("hash"), "{text}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    // No secret in the logs.
    let logs = a.server.logs();
    assert!(!logs.contains(&good) && !logs.contains(BOOTSTRAP));
}

#[tokio::test]
async fn too_little_scope_is_forbidden() {
    let a = Admin::start().await;
    let (_, reader) = a.admin_token(&["clients:read"], &[]).await;
    let (_, users) = a.admin_token(&["users:write"], &[]).await;
    let (s, h, v) = a
        .call(
            reqwest::Method::POST,
            "/admin/clients",
            Some(&reader),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "insufficient_scope");
    assert!(h[reqwest::header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("clients:write"));
    // The scope is checked before the body is read.
    let res = a
        .server
        .http
        .post(a.url("/admin/clients"))
        .bearer_auth(&reader)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (s, v) = a.get("/admin/clients", &users).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "insufficient_scope");
    // Admin tokens need `admin`, even for a token with every other scope.
    let (_, wide) = a
        .admin_token(&["clients:write", "users:write", "keys:write"], &[])
        .await;
    let (s, v) = a
        .post(
            "/admin/admin-tokens",
            &wide,
            json!({"name": "escalate", "scopes": ["admin"]}),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(a.client_count().await, 0);
}

#[tokio::test]
async fn a_client_made_over_the_api_gets_tokens_and_is_rotated_and_deleted() {
    let a = Admin::start().await;
    let (_, writer) = a.admin_token(&["clients:write"], &[]).await;
    let (s, made) = a
        .post(
            "/admin/clients",
            &writer,
            json!({
                "name": "Vendor product",
                "grant_types": ["client_credentials"],
                "scope": "read write",
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let creds = Creds {
        id: made["client_id"].as_str().unwrap().to_owned(),
        secret: made["client_secret"].as_str().unwrap().to_owned(),
    };
    assert_eq!(made["scope"], "read write");
    a.server.wait_known(&creds).await;
    let token = a.server.token_ok(&creds).await;
    assert_eq!(token["scope"], "read write");

    // Shown: never the secret again.
    let path = format!("/admin/clients/{}", creds.id);
    let (s, shown) = a.get(&path, &writer).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(shown["name"], "Vendor product");
    assert!(!shown.to_string().contains(&creds.secret));
    assert!(shown.get("client_secret").is_none());

    // Changed.
    let (s, _, v) = a
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&writer),
            Some(json!({"scope": "read"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scope"], "read");

    // Rotated with an overlap: both secrets work, then only the new one.
    let (s, r) = a
        .post(
            &format!("{path}/secret"),
            &writer,
            json!({"keep_old_secret_for": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let new = creds.with_secret(r["client_secret"].as_str().unwrap());
    assert!(r["old_secret_valid_until"].is_i64());
    a.server.wait_known(&new).await;
    assert_eq!(a.server.token_status(&creds).await, StatusCode::OK);
    wait_until(
        Duration::from_secs(10),
        "the old secret stops working",
        || async { a.server.token_status(&creds).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert_eq!(a.server.token_status(&new).await, StatusCode::OK);

    // Rotated without: the old one stops at once.
    let res = a
        .server
        .http
        .post(a.url(&format!("{path}/secret")))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let newer = creds.with_secret(v["client_secret"].as_str().unwrap());
    a.server.wait_known(&newer).await;
    wait_until(
        Duration::from_secs(2),
        "the replaced secret stops working",
        || async { a.server.token_status(&new).await == StatusCode::UNAUTHORIZED },
    )
    .await;

    // Every token revoked.
    let access = a.server.access_token(&newer).await;
    let (s, v) = a
        .post(&format!("{path}/revoke-tokens"), &writer, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_until(
        Duration::from_secs(2),
        "the client's tokens are revoked",
        || async { !a.server.is_active(&newer, &access).await },
    )
    .await;

    // Deleted: gone for the API and for the token endpoint; deleting again is 404.
    let (s, _, _) = a
        .call(reqwest::Method::DELETE, &path, Some(&writer), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = a.get(&path, &writer).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, _, v) = a
        .call(reqwest::Method::DELETE, &path, Some(&writer), None)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    wait_until(
        Duration::from_secs(2),
        "the deleted client is refused",
        || async { a.server.token_status(&newer).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    // No client secret in the logs.
    let logs = a.server.logs();
    assert!(!logs.contains(&creds.secret) && !logs.contains(&newer.secret));
}

#[tokio::test]
async fn clients_are_listed_a_page_at_a_time_with_filters() {
    let a = Admin::start().await;
    for i in 0..5 {
        let grant = if i % 2 == 0 {
            json!(["client_credentials"])
        } else {
            json!(["authorization_code"])
        };
        let mut body = json!({"name": format!("Client {i}"), "grant_types": grant});
        if i % 2 == 1 {
            body["redirect_uris"] = json!(["https://app.example/cb"]);
        }
        let (s, v) = a.post("/admin/clients", BOOTSTRAP, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let mut seen = Vec::new();
    let mut path = "/admin/clients?limit=2".to_owned();
    loop {
        let (s, v) = a.get(&path, BOOTSTRAP).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|c| c["client_id"].as_str().unwrap().to_owned()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/admin/clients?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);

    let (_, v) = a
        .get("/admin/clients?grant_type=authorization_code", BOOTSTRAP)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (_, v) = a.get("/admin/clients?name=client%203", BOOTSTRAP).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["name"], "Client 3");

    for bad in [
        "/admin/clients?limit=0",
        "/admin/clients?limit=1000",
        "/admin/clients?limit=abc",
        "/admin/clients?cursor=!!!",
    ] {
        let (s, v) = a.get(bad, BOOTSTRAP).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn hostile_bodies_and_ids_get_json_errors() {
    let a = Admin::start_with(&[
        ("TESSERA_ADMIN_TOKEN", BOOTSTRAP),
        ("TESSERA_BODY_LIMIT", "4096"),
    ])
    .await;
    let send = |body: String, content_type: &'static str| {
        a.server
            .http
            .post(a.url("/admin/clients"))
            .bearer_auth(BOOTSTRAP)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, ct, want) in [
        ("{not json".to_owned(), "application/json", 400),
        ("[]".to_owned(), "application/json", 400),
        ("null".to_owned(), "application/json", 400),
        (r#"{"name": 5}"#.to_owned(), "application/json", 400),
        (
            r#"{"name": "x", "nmae": "y"}"#.to_owned(),
            "application/json",
            400,
        ),
        (
            r#"{"name": "x", "grant_types": ["password"]}"#.to_owned(),
            "application/json",
            400,
        ),
        (
            r#"{"name": "x", "access_token_ttl": -1}"#.to_owned(),
            "application/json",
            400,
        ),
        (r#"{"name": ""}"#.to_owned(), "application/json", 400),
        (r#"{"name": "x"}"#.to_owned(), "text/plain", 415),
        (
            format!(r#"{{"name": "{}"}}"#, "x".repeat(10_000)),
            "application/json",
            413,
        ),
    ] {
        let res = send(body.clone(), ct).await.unwrap();
        let status = res.status().as_u16();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, want, "{body:.80}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    for id in ["..%2F..%2Fetc%2Fpasswd", "%00", "x%0Ay", &"z".repeat(3000)] {
        let (s, v) = a.get(&format!("/admin/clients/{id}"), BOOTSTRAP).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    }
    let (s, _, v) = a
        .call(
            reqwest::Method::PUT,
            "/admin/clients",
            Some(BOOTSTRAP),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(v["error"], "method_not_allowed");
    let (s, v) = a.get("/admin/nothing-here", BOOTSTRAP).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(a.client_count().await, 0);
}

#[tokio::test]
async fn admin_tokens_are_managed_over_the_api() {
    let a = Admin::start().await;
    let (s, made) = a
        .post(
            "/admin/admin-tokens",
            BOOTSTRAP,
            json!({"name": "vendor", "scopes": ["clients:write"], "expires_in": 3600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let value = made["value"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(made["expires_at"].is_i64());
    let (s, v) = a
        .post("/admin/clients", &value, json!({"name": "Made by vendor"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for bad in [
        json!({"name": "x", "scopes": ["root"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["admin"], "expires_in": 0}),
        json!({"name": "x", "scopes": ["admin"], "extra": 1}),
    ] {
        let (s, v) = a.post("/admin/admin-tokens", BOOTSTRAP, bad).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (s, _, _) = a
        .call(
            reqwest::Method::DELETE,
            &format!("/admin/admin-tokens/{id}"),
            Some(BOOTSTRAP),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = a
        .call(
            reqwest::Method::DELETE,
            &format!("/admin/admin-tokens/{id}"),
            Some(BOOTSTRAP),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, v) = a.get("/admin/clients", &value).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let a = Admin::start().await;
    let (_, h, _) = a
        .call(
            reqwest::Method::GET,
            "/admin/clients",
            Some(BOOTSTRAP),
            None,
        )
        .await;
    let made = h["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 32);
    let (_, h2, _) = a
        .call(reqwest::Method::GET, "/admin/clients", None, None)
        .await;
    assert_ne!(h2["x-request-id"].to_str().unwrap(), made);
    for (sent, kept) in [
        ("trace-42.a:b", true),
        ("has space", false),
        ("x\u{7f}", false),
    ] {
        let res = a
            .server
            .http
            .get(a.url("/admin/clients"))
            .bearer_auth(BOOTSTRAP)
            .header("x-request-id", sent)
            .send()
            .await;
        let Ok(res) = res else {
            assert!(!kept, "{sent}");
            continue;
        };
        let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(echoed == sent, kept, "{sent} -> {echoed}");
    }
    assert_eq!(
        h["cache-control"].to_str().unwrap(),
        "no-store",
        "admin answers are never cached"
    );
}

#[tokio::test]
async fn the_openapi_description_is_served_as_checked_in() {
    let a = Admin::start().await;
    let res = a
        .server
        .http
        .get(a.url("/admin/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let served = res.text().await.unwrap();
    let checked_in = include_str!("../../../../docs/admin-openapi.json");
    assert_eq!(served, checked_in);
    let v: Value = serde_json::from_str(&served).unwrap();
    assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(v["paths"]["/admin/clients"]["post"].is_object());
}

#[tokio::test]
async fn a_clients_token_exchange_audiences_are_set_and_shown_over_the_api() {
    let a = Admin::start().await;
    let (_, writer) = a.admin_token(&["clients:write"], &[]).await;
    let (s, made) = a
        .post(
            "/admin/clients",
            &writer,
            json!({
                "name": "Gateway",
                "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                "token_exchange_audiences": ["https://reports.example"],
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(
        made["token_exchange_audiences"],
        json!(["https://reports.example"])
    );
    let path = format!("/admin/clients/{}", made["client_id"].as_str().unwrap());
    let (s, _, v) = a
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&writer),
            Some(json!({"token_exchange_audiences": ["not a uri"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _, v) = a
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&writer),
            Some(json!({"token_exchange_audiences": []})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token_exchange_audiences"], json!([]));
}
