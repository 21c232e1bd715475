//! The admin API's resources other than clients, through a real server's admin listener:
//! users, a user's consents and grants, trusted issuers, environments, signing keys, tokens
//! by value and upstream identity providers. For each route: what it does, as the next
//! request (on the public listener, or through the CLI) sees it; the scope it needs (a token
//! of another resource, or of read only, is answered 403); an unknown id 404; hostile input
//! 400 JSON, never 5xx; no secret in any answer or in the logs. Revoking one grant makes its
//! access token inactive and its refresh token useless at once, on this node and on a second
//! node over the same PostgreSQL database.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::browser_support::{authorize_path, exchange, refresh, Browser, PASSWORD, VERIFIER};
use crate::support::{free_port, wait_until, Creds, Server, FEED_DEADLINE};

/// The bootstrap admin credential the test servers are given.
const BOOTSTRAP: &str = "e2e-bootstrap-admin-token-0123456789abcdef";

/// A server with an admin listener.
struct Admin {
    server: Server,
    /// The admin listener's base URL.
    base: String,
}

/// The environment that gives a server an admin listener on `addr`.
fn admin_env(addr: &str) -> Vec<(&str, &str)> {
    vec![
        ("TESSERA_ADMIN_LISTEN", addr),
        ("TESSERA_ADMIN_TOKEN", BOOTSTRAP),
    ]
}

impl Admin {
    async fn start() -> Admin {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&str, &str)]) -> Admin {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env = admin_env(&addr);
        env.extend_from_slice(extra);
        let server = Server::start_with(&env).await;
        Admin::over(server, &addr).await
    }

    /// An admin listener started by `server` on `addr`, once it answers.
    async fn over(server: Server, addr: &str) -> Admin {
        let admin = Admin {
            server,
            base: format!("http://{addr}"),
        };
        wait_until(
            std::time::Duration::from_secs(10),
            "the admin listener answering",
            || async {
                admin
                    .server
                    .http
                    .get(format!("{}/admin/openapi.json", admin.base))
                    .send()
                    .await
                    .is_ok()
            },
        )
        .await;
        admin
    }

    /// A new admin token with `scopes`, made through the CLI.
    async fn token(&self, scopes: &[&str]) -> String {
        let mut args = vec!["admin-token", "create", "--name", "e2e", "--json"];
        for s in scopes {
            args.extend_from_slice(&["--scope", s]);
        }
        let out = self.server.cli_json(&args).await;
        out["token"].as_str().expect("token").to_owned()
    }

    /// A request to the admin API with `token`; the status and the JSON answer (`Null` when
    /// the body is empty).
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .server
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("admin request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    /// [`Admin::call`] with the bootstrap credential.
    async fn boot(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(BOOTSTRAP, method, path, body).await
    }

    /// A request with a raw body and content type.
    async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, String) {
        let res = self
            .server
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(BOOTSTRAP)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("admin request");
        (res.status(), res.text().await.expect("body"))
    }
}

/// Asserts an error answer: the status, and the RFC 6749-style JSON body.
#[track_caller]
fn assert_error(got: &(StatusCode, Value), status: StatusCode) {
    assert_eq!(got.0, status, "{}", got.1);
    assert!(got.1["error"].is_string(), "{}", got.1);
    assert!(got.1["error_description"].is_string(), "{}", got.1);
}

// ---------------------------------------------------------------------------------------------
// Scopes: every route of this module, with a token that lacks its scope

/// Every route, the scope it needs, and a body that would pass.
fn routes() -> Vec<(Method, &'static str, &'static str, Option<Value>)> {
    let pw = json!({"password": "another long password"});
    vec![
        (Method::GET, "/admin/users", "users:read", None),
        (
            Method::POST,
            "/admin/users",
            "users:write",
            Some(json!({"username": "zed", "password": PASSWORD})),
        ),
        (Method::GET, "/admin/users/alice", "users:read", None),
        (
            Method::PUT,
            "/admin/users/alice/password",
            "users:write",
            Some(pw),
        ),
        (Method::DELETE, "/admin/users/alice", "users:write", None),
        (
            Method::GET,
            "/admin/users/alice/consents",
            "grants:read",
            None,
        ),
        (
            Method::GET,
            "/admin/users/alice/grants",
            "grants:read",
            None,
        ),
        (
            Method::DELETE,
            "/admin/users/alice/consents/app",
            "grants:write",
            None,
        ),
        (
            Method::DELETE,
            "/admin/users/alice/grants/g1",
            "grants:write",
            None,
        ),
        (
            Method::POST,
            "/admin/users/alice/revoke-tokens",
            "grants:write",
            None,
        ),
        (Method::GET, "/admin/trust", "trust:read", None),
        (
            Method::POST,
            "/admin/trust",
            "trust:write",
            Some(
                json!({"issuer": "https://i.example", "jwks_url": "https://i.example/jwks", "scope": "read"}),
            ),
        ),
        (
            Method::PUT,
            "/admin/trust/x/keys",
            "trust:write",
            Some(json!({"pems": []})),
        ),
        (Method::DELETE, "/admin/trust/x", "trust:write", None),
        (Method::GET, "/admin/envs", "envs:read", None),
        (
            Method::POST,
            "/admin/envs",
            "envs:write",
            Some(json!({"name": "staging"})),
        ),
        (
            Method::PATCH,
            "/admin/envs/default",
            "envs:write",
            Some(json!({"single_use_tokens": true})),
        ),
        (Method::DELETE, "/admin/envs/staging", "envs:write", None),
        (Method::GET, "/admin/keys", "keys:read", None),
        (
            Method::POST,
            "/admin/keys/rotate",
            "keys:write",
            Some(json!({})),
        ),
        (
            Method::POST,
            "/admin/tokens/revoke",
            "tokens:write",
            Some(json!({"token": "x"})),
        ),
        (
            Method::POST,
            "/admin/tokens/introspect",
            "tokens:write",
            Some(json!({"token": "x"})),
        ),
        (Method::GET, "/admin/idps", "idps:read", None),
        (
            Method::POST,
            "/admin/idps",
            "idps:write",
            Some(
                json!({"name": "corp", "issuer": "https://idp.example", "client_id": "c", "client_secret": "s"}),
            ),
        ),
        (Method::DELETE, "/admin/idps/corp", "idps:write", None),
    ]
}

#[tokio::test]
async fn every_route_refuses_a_credential_without_its_scope() {
    let a = Admin::start().await;
    a.server.create_user("alice", PASSWORD).await;
    // A token of clients only, and one that reads everything here but writes nothing.
    let clients = a.token(&["clients:write"]).await;
    let readers = a
        .token(&[
            "users:read",
            "grants:read",
            "trust:read",
            "envs:read",
            "keys:read",
            "idps:read",
        ])
        .await;
    for (method, path, scope, body) in routes() {
        let got = a.call(&clients, method.clone(), path, body.clone()).await;
        assert_error(&got, StatusCode::FORBIDDEN);
        assert!(
            got.1["error_description"].as_str().unwrap().contains(scope)
                || got.1["error"] == "insufficient_scope",
            "{method} {path}: {}",
            got.1
        );
        let got = a.call(&readers, method.clone(), path, body.clone()).await;
        if scope.ends_with(":read") {
            assert!(got.0 != StatusCode::FORBIDDEN, "{method} {path}: {}", got.1);
        } else {
            assert_error(&got, StatusCode::FORBIDDEN);
        }
        // No credential, or a made-up one: 401 with a Bearer challenge.
        let res = a
            .server
            .http
            .request(method.clone(), format!("{}{path}", a.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let got = a.call("tsa_made_up", method.clone(), path, body).await;
        assert_error(&got, StatusCode::UNAUTHORIZED);
    }
    // Nothing was changed by the refused writes.
    let (_, alice) = a.boot(Method::GET, "/admin/users/alice", None).await;
    assert_eq!(alice["username"], "alice");
    // The public listener serves none of it.
    let res = a
        .server
        .http
        .get(a.server.url("/admin/users"))
        .bearer_auth(BOOTSTRAP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// Users

#[tokio::test]
async fn users_are_created_listed_a_page_at_a_time_changed_and_deleted() {
    let a = Admin::start().await;
    let t = a.token(&["users:write"]).await;
    let (status, bob) = a
        .call(
            &t,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "Bob", "password": PASSWORD, "email": "bob@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    assert_eq!(bob["username"], "bob", "prepared (RFC 8265)");
    let body = bob.to_string();
    assert!(
        !body.contains(PASSWORD) && !body.contains("argon2") && !body.contains("password"),
        "{body}"
    );
    let bob_id = bob["user_id"].as_str().unwrap().to_owned();
    for name in ["carol", "dave", "erin"] {
        let (s, _) = a
            .call(
                &t,
                Method::POST,
                "/admin/users",
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // The CLI sees them.
    let listed = a.server.cli_json(&["user", "list", "--json"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");

    // Pages of two, oldest first, to the end.
    let (s, p1) = a.call(&t, Method::GET, "/admin/users?limit=2", None).await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    let names = |p: &Value| -> Vec<String> {
        p["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&p1), ["bob", "carol"]);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = a
        .call(
            &t,
            Method::GET,
            &format!("/admin/users?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(names(&p2), ["dave", "erin"]);
    assert_eq!(p2["next_cursor"], Value::Null);
    let (_, filtered) = a
        .call(&t, Method::GET, "/admin/users?username=AR", None)
        .await;
    assert_eq!(names(&filtered), ["carol"]);
    for bad in [
        "/admin/users?limit=0",
        "/admin/users?limit=100000",
        "/admin/users?limit=-1",
        "/admin/users?limit=two",
        "/admin/users?cursor=%21%21%21",
        "/admin/users?limit=1&limit=2",
        "/admin/users?usrname=bob",
    ] {
        assert_error(
            &a.call(&t, Method::GET, bad, None).await,
            StatusCode::BAD_REQUEST,
        );
    }

    // Shown by name, by its prepared form or by id.
    for name in ["bob", "BOB", bob_id.as_str()] {
        let (s, shown) = a
            .call(&t, Method::GET, &format!("/admin/users/{name}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{name}: {shown}");
        assert_eq!(shown["user_id"], bob_id.as_str());
    }
    for missing in ["nobody", "..%2F..%2Fetc%2Fpasswd", "%00", "bob%2Fgrants"] {
        assert_error(
            &a.call(&t, Method::GET, &format!("/admin/users/{missing}"), None)
                .await,
            StatusCode::NOT_FOUND,
        );
    }

    // Refused: a duplicate, a look-alike, a short password, unknown fields, bad JSON.
    let dup = a
        .call(
            &t,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "bob", "password": PASSWORD})),
        )
        .await;
    assert!(
        dup.0 == StatusCode::CONFLICT || dup.0 == StatusCode::BAD_REQUEST,
        "{}",
        dup.1
    );
    for body in [
        json!({"username": "frank", "password": "short"}),
        json!({"username": "frank"}),
        json!({"username": "fr\u{202e}ank", "password": PASSWORD}),
        json!({"username": "frank", "password": PASSWORD, "password_hash": "$argon2id$x"}),
        json!({"username": "frank", "password": PASSWORD, "name": "x".repeat(5_000)}),
        json!({"username": "frank", "password": "p".repeat(5_000)}),
        json!({"username": "frank", "password": PASSWORD, "email": "frank@x.example\r\nBcc: y@z"}),
        json!(["frank"]),
        json!({"username": 5, "password": PASSWORD}),
    ] {
        let got = a
            .call(&t, Method::POST, "/admin/users", Some(body.clone()))
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST);
    }
    for raw in ["{", "", "null", "{\"username\": \"frank\", \"password\": "] {
        let (s, text) = a.raw(Method::POST, "/admin/users", raw).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{raw:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].is_string(), "{text}");
    }
    let (_, all) = a.call(&t, Method::GET, "/admin/users", None).await;
    assert_eq!(
        all["users"].as_array().unwrap().len(),
        4,
        "nothing refused was made"
    );

    // A new password: the old one no longer signs in (checked through the password rule
    // the CLI shares), the new one is never answered.
    let (s, done) = a
        .call(
            &t,
            Method::PUT,
            "/admin/users/bob/password",
            Some(json!({"password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done, json!({"username": "bob", "password_changed": true}));
    assert_error(
        &a.call(
            &t,
            Method::PUT,
            "/admin/users/bob/password",
            Some(json!({"password": "short"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &a.call(
            &t,
            Method::PUT,
            "/admin/users/nobody/password",
            Some(json!({"password": "a brand new passphrase"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    );

    // Deleted: gone for the API and the CLI; a second delete is 404.
    let (s, body) = a.call(&t, Method::DELETE, "/admin/users/bob", None).await;
    assert_eq!((s, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_error(
        &a.call(&t, Method::GET, &format!("/admin/users/{bob_id}"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &a.call(&t, Method::DELETE, "/admin/users/bob", None).await,
        StatusCode::NOT_FOUND,
    );
    let listed = a.server.cli_json(&["user", "list", "--json"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    // No password, in clear or hashed, reached the logs.
    let logs = a.server.logs();
    assert!(!logs.contains(PASSWORD) && !logs.contains("a brand new passphrase"));
}

// ---------------------------------------------------------------------------------------------
// Consents and grants

/// A server with an admin listener, `alice`, and a code-flow client with refresh tokens.
async fn grants_setup() -> (Admin, Creds) {
    use crate::browser_support::REDIRECT;
    let a = Admin::start().await;
    a.server.create_user("alice", PASSWORD).await;
    let client = a
        .server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid profile email offline_access read",
            "--refresh-tokens",
            "always",
        ])
        .await;
    (a, client)
}

/// A new grant of `alice` to `client` by the code flow: its access and refresh tokens.
async fn grant_tokens(s: &Server, client: &Creds, b: &mut Browser) -> (String, String) {
    let code = b
        .code(
            &authorize_path(client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let res = exchange(s, client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let t: Value = res.json().await.unwrap();
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh token: {t}"))
            .to_owned(),
    )
}

/// The ids of alice's grants, oldest first, through the CLI.
async fn grant_ids(s: &Server) -> Vec<String> {
    let listed = s.cli_json(&["user", "grants", "alice", "--json"]).await;
    listed["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts that `rt` no longer refreshes on `s`.
async fn assert_refresh_refused(s: &Server, client: &Creds, rt: &str) {
    let res = refresh(s, client, rt).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test]
async fn one_grant_revoked_ends_its_tokens_at_once_and_keeps_the_consent() {
    let (a, client) = grants_setup().await;
    let s = &a.server;
    let reader = a.token(&["grants:read"]).await;
    let writer = a.token(&["grants:write"]).await;
    let mut b = Browser::new(s);
    let (at1, rt1) = grant_tokens(s, &client, &mut b).await;
    let first = grant_ids(s).await.pop().unwrap();
    let (at2, rt2) = grant_tokens(s, &client, &mut b).await;

    let (st, consents) = a
        .call(&reader, Method::GET, "/admin/users/alice/consents", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{consents}");
    assert_eq!(consents["username"], "alice");
    let list = consents["consents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{consents}");
    assert_eq!(list[0]["client_id"], client.id.as_str());
    assert!(list[0]["scope"]
        .as_str()
        .unwrap()
        .contains("offline_access"));
    assert!(list[0]["granted_at"].is_i64());
    let (st, grants) = a
        .call(&reader, Method::GET, "/admin/users/alice/grants", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{grants}");
    let list = grants["grants"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{grants}");
    assert!(list.iter().all(|g| g["revoked_at"].is_null()
        && g["client_id"] == client.id.as_str()
        && g["created_at"].is_i64()));

    let (st, done) = a
        .call(
            &writer,
            Method::DELETE,
            &format!("/admin/users/alice/grants/{first}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["revoked"], true);
    assert_eq!(done["client_id"], client.id.as_str());
    // At once on this node: the access token is inactive, the refresh token refused.
    wait_until(
        FEED_DEADLINE,
        "the grant's access token inactive",
        || async { !s.is_active(&client, &at1).await },
    )
    .await;
    assert_refresh_refused(s, &client, &rt1).await;
    // The other grant, and the consent, stand.
    assert!(s.is_active(&client, &at2).await);
    let (_, consents) = a
        .call(&reader, Method::GET, "/admin/users/alice/consents", None)
        .await;
    assert_eq!(consents["consents"].as_array().unwrap().len(), 1);
    let (_, grants) = a
        .call(&reader, Method::GET, "/admin/users/alice/grants", None)
        .await;
    let revoked: Vec<&Value> = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["revoked_at"].is_i64())
        .collect();
    assert_eq!(revoked.len(), 1, "{grants}");
    assert_eq!(revoked[0]["grant_id"], first.as_str());
    // Again: found, nothing to do.
    let (st, again) = a
        .call(
            &writer,
            Method::DELETE,
            &format!("/admin/users/alice/grants/{first}"),
            None,
        )
        .await;
    assert_eq!((st, &again["revoked"]), (StatusCode::OK, &json!(false)));

    // Another user's name does not reach alice's grants; unknown ids are 404.
    s.create_user("mallory", PASSWORD).await;
    let second = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["revoked_at"].is_null())
        .unwrap()["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        (
            Method::DELETE,
            format!("/admin/users/mallory/grants/{second}"),
        ),
        (
            Method::DELETE,
            "/admin/users/alice/grants/no-such-grant".to_owned(),
        ),
        (
            Method::DELETE,
            "/admin/users/alice/grants/..%2F..%2Fgrants".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/admin/users/nobody/grants/{second}"),
        ),
        (
            Method::DELETE,
            "/admin/users/alice/consents/no-such-client".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/admin/users/mallory/consents/{}", client.id),
        ),
        (Method::GET, "/admin/users/nobody/consents".to_owned()),
        (Method::GET, "/admin/users/nobody/grants".to_owned()),
        (Method::POST, "/admin/users/nobody/revoke-tokens".to_owned()),
    ] {
        assert_error(
            &a.call(&writer, method.clone(), &path, None).await,
            StatusCode::NOT_FOUND,
        );
    }
    // One grant is not a route to read.
    assert_error(
        &a.call(
            &writer,
            Method::GET,
            &format!("/admin/users/alice/grants/{second}"),
            None,
        )
        .await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
    assert!(
        s.is_active(&client, &at2).await,
        "untouched by mallory's name"
    );

    // The consent: forgotten, with every grant of alice to the client.
    let (st, done) = a
        .call(
            &writer,
            Method::DELETE,
            &format!("/admin/users/alice/consents/{}", client.id),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["consent_removed"], true);
    assert_eq!(done["grants_revoked"], 1);
    wait_until(
        FEED_DEADLINE,
        "the consent's access token inactive",
        || async { !s.is_active(&client, &at2).await },
    )
    .await;
    assert_refresh_refused(s, &client, &rt2).await;
    let (_, consents) = a
        .call(&reader, Method::GET, "/admin/users/alice/consents", None)
        .await;
    assert_eq!(consents["consents"], json!([]));
    // The next authorization asks for consent again.
    let page = b.get(&authorize_path(&client, "openid", "")).await;
    assert!(page.is_consent(), "{}", page.body);

    // Every token of the user; consents kept.
    let (at3, rt3) = grant_tokens(s, &client, &mut b).await;
    let (st, done) = a
        .call(
            &writer,
            Method::POST,
            "/admin/users/alice/revoke-tokens",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["grants_revoked"], 1);
    wait_until(
        FEED_DEADLINE,
        "the user's access token inactive",
        || async { !s.is_active(&client, &at3).await },
    )
    .await;
    assert_refresh_refused(s, &client, &rt3).await;
    // The CLI sees the same.
    let listed = s.cli_json(&["user", "grants", "alice", "--json"]).await;
    let grants = listed["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3, "{listed}");
    assert!(grants.iter().all(|g| g["revoked_at"].is_i64()), "{listed}");
}

#[tokio::test]
async fn the_cli_lists_a_users_grants_and_revokes_one() {
    let (server, client) = crate::browser_support::setup(&["--refresh-tokens", "always"]).await;
    let s = &server;
    let mut b = Browser::new(s);
    let (at1, rt1) = grant_tokens(s, &client, &mut b).await;
    let first = grant_ids(s).await.pop().unwrap();
    let (at2, _) = grant_tokens(s, &client, &mut b).await;
    let listed = s.cli_json(&["user", "grants", "alice", "--json"]).await;
    assert_eq!(listed["username"], "alice");
    assert!(listed.get("consents").is_none(), "grants only: {listed}");
    let grants = listed["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2, "{listed}");
    let text = s.cli(&["user", "grants", "alice"]).await;
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("live"), "{text}");

    let out = s
        .cli_json(&["user", "revoke-grant", "alice", &first, "--json"])
        .await;
    assert_eq!(out["revoked"], true, "{out}");
    wait_until(
        FEED_DEADLINE,
        "the grant's access token inactive",
        || async { !s.is_active(&client, &at1).await },
    )
    .await;
    assert_refresh_refused(s, &client, &rt1).await;
    assert!(s.is_active(&client, &at2).await);
    let consents = s.cli_json(&["user", "consents", "alice", "--json"]).await;
    assert_eq!(consents["consents"].as_array().unwrap().len(), 1);
    // Unknown grant, another user's grant: refused, non-zero.
    s.create_user("bob", PASSWORD).await;
    for args in [
        ["user", "revoke-grant", "alice", "no-such-grant"],
        ["user", "revoke-grant", "bob", first.as_str()],
        ["user", "revoke-grant", "nobody", first.as_str()],
    ] {
        let out = s.cli_output(&args).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no "),
            "{args:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Trusted issuers

/// A fresh P-256 public key: as PEM, and as a JWK with `kid`.
fn p256_key(kid: &str) -> (String, Value) {
    use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    // SubjectPublicKeyInfo of a P-256 key: a fixed prefix, then the point.
    let prefix = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    let mut der: Vec<u8> = (0..prefix.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&prefix[i..i + 2], 16).unwrap())
        .collect();
    der.extend_from_slice(&point);
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (pem, jwk)
}

#[tokio::test]
async fn trusted_issuers_are_added_listed_rekeyed_and_removed() {
    let a = Admin::start().await;
    let t = a.token(&["trust:write"]).await;
    let (pem, _) = p256_key("unused");
    let (_, jwk) = p256_key("k1");
    let (st, added) = a
        .call(
            &t,
            Method::POST,
            "/admin/trust",
            Some(json!({
                "issuer": "https://issuer.example",
                "jwks": {"keys": [jwk]},
                "pems": [pem],
                "env": "staging",
                "scope": "read write",
                "claims": ["tenant"],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{added}");
    assert_eq!(added["env"], "staging");
    assert_eq!(added["keys"], 2);
    assert_eq!(added["subject_claim"], "sub");
    assert!(
        added["kids"].as_array().unwrap().contains(&json!("k1")),
        "{added}"
    );
    let id = added["id"].as_str().unwrap().to_owned();
    // The CLI sees it, and the environment was created with it.
    let listed = a.server.cli_json(&["trust", "list", "--json"]).await;
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    let (_, envs) = a.boot(Method::GET, "/admin/envs", None).await;
    assert!(envs
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "staging"));

    // By URL alone, in the default environment.
    let (st, by_url) = a
        .call(
            &t,
            Method::POST,
            "/admin/trust",
            Some(json!({"issuer": "https://other.example", "jwks_url": "https://other.example/jwks", "scope": "read"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{by_url}");
    assert_eq!(by_url["env"], "default");
    assert_eq!(by_url["keys"], 0);
    let (_, all) = a.call(&t, Method::GET, "/admin/trust", None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, staging) = a
        .call(&t, Method::GET, "/admin/trust?env=staging", None)
        .await;
    assert_eq!(staging.as_array().unwrap().len(), 1);
    assert_eq!(staging[0]["id"], id.as_str());

    // Refused: the same issuer twice, no keys, bad keys, http JWKS URL, a claim Tessera
    // sets, a bad environment, unknown fields.
    let (_, k2) = p256_key("k2");
    assert_error(
        &a.call(
            &t,
            Method::POST,
            "/admin/trust",
            Some(json!({"issuer": "https://issuer.example", "env": "staging", "jwks": {"keys": [k2.clone()]}, "scope": "read"})),
        )
        .await,
        StatusCode::CONFLICT,
    );
    for body in [
        json!({"issuer": "https://x.example", "scope": "read"}),
        json!({"issuer": "https://x.example", "pems": ["not a key"], "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks": {"keys": [{"kty": "EC"}]}, "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks": "{{{", "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks_url": "http://x.example/jwks", "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks_url": "file:///etc/passwd", "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks": {"keys": [k2.clone()]}, "claims": ["sub"], "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks": {"keys": [k2.clone()]}, "env": "../prod", "scope": "read"}),
        json!({"issuer": "", "jwks": {"keys": [k2.clone()]}, "scope": "read"}),
        json!({"issuer": "x".repeat(300), "jwks": {"keys": [k2.clone()]}, "scope": "read"}),
        json!({"issuer": "https://x.example", "jwks": {"keys": [k2.clone()]}, "scope": "read", "private_key": "x"}),
    ] {
        assert_error(
            &a.call(&t, Method::POST, "/admin/trust", Some(body)).await,
            StatusCode::BAD_REQUEST,
        );
    }

    // New keys replace the old ones.
    let (st, done) = a
        .call(
            &t,
            Method::PUT,
            &format!("/admin/trust/{id}/keys"),
            Some(json!({"jwks": {"keys": [k2]}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["kids"], json!(["k2"]));
    let (_, staging) = a
        .call(&t, Method::GET, "/admin/trust?env=staging", None)
        .await;
    assert_eq!(staging[0]["kids"], json!(["k2"]));
    assert_error(
        &a.call(
            &t,
            Method::PUT,
            &format!("/admin/trust/{id}/keys"),
            Some(json!({})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    let (_, k3) = p256_key("k3");
    assert_error(
        &a.call(
            &t,
            Method::PUT,
            "/admin/trust/no-such-id/keys",
            Some(json!({"jwks": {"keys": [k3]}})),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &a.call(&t, Method::GET, "/admin/trust?environment=staging", None)
            .await,
        StatusCode::BAD_REQUEST,
    );

    // Removed.
    let (st, _) = a
        .call(&t, Method::DELETE, &format!("/admin/trust/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &a.call(&t, Method::DELETE, &format!("/admin/trust/{id}"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    let (_, all) = a.call(&t, Method::GET, "/admin/trust", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Environments

#[tokio::test]
async fn environments_are_created_changed_listed_and_deleted() {
    let a = Admin::start().await;
    let t = a.token(&["envs:write"]).await;
    let (st, made) = a
        .call(
            &t,
            Method::POST,
            "/admin/envs",
            Some(json!({"name": "staging"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["single_use_tokens"], false);
    let (st, again) = a
        .call(
            &t,
            Method::POST,
            "/admin/envs",
            Some(json!({"name": "staging"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "existed: {again}");
    assert_eq!(again["created_at"], made["created_at"]);
    let (st, changed) = a
        .call(
            &t,
            Method::PATCH,
            "/admin/envs/staging",
            Some(json!({"single_use_tokens": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!(changed["single_use_tokens"], true);
    let (_, listed) = a.call(&t, Method::GET, "/admin/envs", None).await;
    let staging = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging")
        .unwrap();
    assert_eq!(staging["single_use_tokens"], true);
    let cli = a.server.cli_json(&["env", "list", "--json"]).await;
    assert!(cli.to_string().contains("staging"), "{cli}");

    for name in ["Staging", "", "a/b", "../etc", &"x".repeat(65)] {
        assert_error(
            &a.call(&t, Method::POST, "/admin/envs", Some(json!({"name": name})))
                .await,
            StatusCode::BAD_REQUEST,
        );
    }
    assert_error(
        &a.call(&t, Method::PATCH, "/admin/envs/staging", Some(json!({})))
            .await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &a.call(
            &t,
            Method::PATCH,
            "/admin/envs/staging",
            Some(json!({"single_use_tokens": "yes"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &a.call(
            &t,
            Method::PATCH,
            "/admin/envs/nowhere",
            Some(json!({"single_use_tokens": true})),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &a.call(&t, Method::DELETE, "/admin/envs/default", None)
            .await,
        StatusCode::CONFLICT,
    );
    // In use by a client: refused until the client goes.
    a.server
        .create_client(&["--grant-type", "client_credentials", "--env", "staging"])
        .await;
    assert_error(
        &a.call(&t, Method::DELETE, "/admin/envs/staging", None)
            .await,
        StatusCode::CONFLICT,
    );
    let (st, _) = a
        .call(
            &t,
            Method::POST,
            "/admin/envs",
            Some(json!({"name": "tmp"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = a.call(&t, Method::DELETE, "/admin/envs/tmp", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &a.call(&t, Method::DELETE, "/admin/envs/tmp", None).await,
        StatusCode::NOT_FOUND,
    );
}

// ---------------------------------------------------------------------------------------------
// Signing keys

#[tokio::test]
async fn a_key_rotated_through_the_api_is_published_at_once() {
    let a = Admin::start().await;
    let t = a.token(&["keys:write"]).await;
    let (st, keys) = a.call(&t, Method::GET, "/admin/keys", None).await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    let keys = keys.as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["state"], "active");
    let text = serde_json::to_string(&keys).unwrap();
    assert!(
        !text.contains("private") && !text.contains("\"d\""),
        "{text}"
    );

    let (st, made) = a
        .call(
            &t,
            Method::POST,
            "/admin/keys/rotate",
            Some(json!({"lead_time": 600})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let kid = made["kid"].as_str().unwrap().to_owned();
    let (_, keys) = a.call(&t, Method::GET, "/admin/keys", None).await;
    let new = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    assert_eq!(new["state"], "pending");
    // This node publishes it now.
    let jwks = a.server.get_json("/.well-known/jwks.json").await;
    assert!(jwks.to_string().contains(&kid), "{jwks}");
    // Too short a lead time: refused, nothing made.
    assert_error(
        &a.call(
            &t,
            Method::POST,
            "/admin/keys/rotate",
            Some(json!({"lead_time": 1})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &a.call(
            &t,
            Method::POST,
            "/admin/keys/rotate",
            Some(json!({"lead_time": "soon"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    let (_, keys) = a.call(&t, Method::GET, "/admin/keys", None).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Tokens by value

#[tokio::test]
async fn a_token_is_looked_at_and_revoked_by_its_value() {
    let a = Admin::start().await;
    let t = a.token(&["tokens:write"]).await;
    let c = a
        .server
        .create_client(&["--grant-type", "client_credentials", "--scope", "read"])
        .await;
    let at = a.server.access_token(&c).await;
    let (st, seen) = a
        .call(
            &t,
            Method::POST,
            "/admin/tokens/introspect",
            Some(json!({"token": at})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{seen}");
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], c.id.as_str());
    assert_eq!(seen["scope"], "read");
    let (st, done) = a
        .call(
            &t,
            Method::POST,
            "/admin/tokens/revoke",
            Some(json!({"token": at})),
        )
        .await;
    assert_eq!(
        (st, &done["revoked"]),
        (StatusCode::OK, &json!(true)),
        "{done}"
    );
    wait_until(FEED_DEADLINE, "the revoked token inactive", || async {
        !a.server.is_active(&c, &at).await
    })
    .await;
    let (_, seen) = a
        .call(
            &t,
            Method::POST,
            "/admin/tokens/introspect",
            Some(json!({"token": at})),
        )
        .await;
    assert_eq!(seen, json!({"active": false}));
    let (_, again) = a
        .call(
            &t,
            Method::POST,
            "/admin/tokens/revoke",
            Some(json!({"token": at})),
        )
        .await;
    assert_eq!(again["revoked"], false);
    // Garbage is not an error (RFC 7009 §2.2), and never 5xx.
    for token in ["", "x", "a.b.c", &"A".repeat(5000), "\u{0}"] {
        let (st, v) = a
            .call(
                &t,
                Method::POST,
                "/admin/tokens/revoke",
                Some(json!({"token": token})),
            )
            .await;
        assert!(
            st == StatusCode::OK || st == StatusCode::BAD_REQUEST,
            "{st} {v}"
        );
        let (st, v) = a
            .call(
                &t,
                Method::POST,
                "/admin/tokens/introspect",
                Some(json!({"token": token})),
            )
            .await;
        assert!(
            st == StatusCode::OK || st == StatusCode::BAD_REQUEST,
            "{st} {v}"
        );
    }
    for body in [
        json!({}),
        json!({"token": 5}),
        json!({"token": "x", "extra": 1}),
    ] {
        assert_error(
            &a.call(&t, Method::POST, "/admin/tokens/revoke", Some(body))
                .await,
            StatusCode::BAD_REQUEST,
        );
    }
    // The value is never in a URL: a query string is not where it is read from.
    let (st, _) = a
        .call(
            &t,
            Method::POST,
            &format!("/admin/tokens/revoke?token={at}"),
            None,
        )
        .await;
    assert!(st.is_client_error(), "{st}");
    assert!(
        !a.server.logs().contains(&at[at.len() - 20..]),
        "the token in the logs"
    );
}

#[tokio::test]
async fn a_refresh_token_revoked_through_the_api_takes_its_grant() {
    let (a, client) = grants_setup().await;
    let s = &a.server;
    let t = a.token(&["tokens:write"]).await;
    let mut b = Browser::new(s);
    let (at, rt) = grant_tokens(s, &client, &mut b).await;
    let (st, done) = a
        .call(
            &t,
            Method::POST,
            "/admin/tokens/revoke",
            Some(json!({"token": rt})),
        )
        .await;
    assert_eq!(
        (st, &done["revoked"]),
        (StatusCode::OK, &json!(true)),
        "{done}"
    );
    wait_until(
        FEED_DEADLINE,
        "the grant's access token inactive",
        || async { !s.is_active(&client, &at).await },
    )
    .await;
    assert_refresh_refused(s, &client, &rt).await;
}

// ---------------------------------------------------------------------------------------------
// Identity providers

#[tokio::test]
async fn identity_providers_are_added_listed_and_removed_without_their_secret() {
    let a = Admin::start().await;
    let t = a.token(&["idps:write"]).await;
    let secret = "upstream-client-secret-do-not-leak-42";
    let (st, added) = a
        .call(
            &t,
            Method::POST,
            "/admin/idps",
            Some(json!({
                "name": "corp",
                "display_name": "Corp SSO",
                "issuer": "https://login.corp.example",
                "client_id": "tessera",
                "client_secret": secret,
                "email_domains": ["Corp.Example"],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{added}");
    assert_eq!(added["email_domains"], json!(["corp.example"]));
    assert!(!added.to_string().contains(secret), "{added}");
    assert!(added.get("client_secret").is_none());
    let (_, listed) = a.call(&t, Method::GET, "/admin/idps", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(secret));
    let cli = a.server.cli_json(&["idp", "list", "--json"]).await;
    assert!(cli.to_string().contains("corp"), "{cli}");

    // Refused: the name or a domain again, no secret, a bad issuer, a bad name.
    let base = json!({"name": "corp", "issuer": "https://login.corp.example", "client_id": "c", "client_secret": "s"});
    assert_error(
        &a.call(&t, Method::POST, "/admin/idps", Some(base.clone()))
            .await,
        StatusCode::CONFLICT,
    );
    let mut other_domain = base.clone();
    other_domain["name"] = json!("corp2");
    other_domain["email_domains"] = json!(["corp.example"]);
    assert_error(
        &a.call(&t, Method::POST, "/admin/idps", Some(other_domain))
            .await,
        StatusCode::CONFLICT,
    );
    for (key, value) in [
        ("client_secret", Value::Null),
        ("issuer", json!("http://login.corp.example")),
        ("issuer", json!("not a url")),
        ("name", json!("Corp Name")),
        ("name", json!("../x")),
        ("email_domains", json!(["not a domain!"])),
        ("unknown_field", json!(true)),
    ] {
        let mut body = base.clone();
        body["name"] = json!("fresh");
        if value.is_null() {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value;
        }
        assert_error(
            &a.call(&t, Method::POST, "/admin/idps", Some(body.clone()))
                .await,
            StatusCode::BAD_REQUEST,
        );
    }
    let (st, _) = a.call(&t, Method::DELETE, "/admin/idps/corp", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &a.call(&t, Method::DELETE, "/admin/idps/corp", None).await,
        StatusCode::NOT_FOUND,
    );
    assert!(!a.server.logs().contains(secret), "the secret in the logs");
}

// ---------------------------------------------------------------------------------------------
// Two nodes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_through_one_nodes_admin_api_ends_its_tokens_on_another() {
    use crate::browser_support::REDIRECT;
    use tessera_store_postgres::testing::TestDatabase;
    let Some(db) = TestDatabase::create("admin_grant_two_nodes").await else {
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let mut env = admin_env(&addr);
    env.extend_from_slice(&[
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
    ]);
    let a = Admin::over(Server::start_with(&env).await, &addr).await;
    let issuer = a.server.issuer().to_owned();
    let b = Server::start_with(&[
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
        ("TESSERA_ISSUER", issuer.as_str()),
    ])
    .await;
    a.server.create_user("alice", PASSWORD).await;
    let client = a
        .server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid offline_access",
            "--refresh-tokens",
            "always",
        ])
        .await;
    b.wait_known(&client).await;
    let mut browser = Browser::new(&a.server);
    let (at, rt) = grant_tokens(&a.server, &client, &mut browser).await;
    let first = grant_ids(&a.server).await.pop().unwrap();
    let (at2, rt2) = grant_tokens(&a.server, &client, &mut browser).await;
    // Node B honours both, and has them cached.
    assert!(b.is_active(&client, &at).await);
    assert!(b.is_active(&client, &at2).await);

    let t = a.token(&["grants:write"]).await;
    let (_, grants) = a
        .call(&t, Method::GET, "/admin/users/alice/grants", None)
        .await;
    assert_eq!(grants["grants"].as_array().unwrap().len(), 2, "{grants}");
    let (st, done) = a
        .call(
            &t,
            Method::DELETE,
            &format!("/admin/users/alice/grants/{first}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    // Node B learns it from the change feed.
    wait_until(
        FEED_DEADLINE,
        "node B: the grant's access token inactive",
        || async { !b.is_active(&client, &at).await },
    )
    .await;
    assert_refresh_refused(&b, &client, &rt).await;
    assert_refresh_refused(&a.server, &client, &rt).await;
    // The other grant stands on both.
    assert!(b.is_active(&client, &at2).await);
    assert_eq!(refresh(&b, &client, &rt2).await.status(), StatusCode::OK);

    // Every token of the user, through node A; node B again.
    let (at3, rt3) = grant_tokens(&a.server, &client, &mut browser).await;
    assert!(b.is_active(&client, &at3).await);
    let (st, done) = a
        .call(&t, Method::POST, "/admin/users/alice/revoke-tokens", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    wait_until(
        FEED_DEADLINE,
        "node B: the user's access token inactive",
        || async { !b.is_active(&client, &at3).await },
    )
    .await;
    assert_refresh_refused(&b, &client, &rt3).await;
}
