//! The audit trail end to end: security events and admin changes made against a running
//! server are recorded with their actor, target, outcome, request id and source address, as
//! rows `tessera audit` lists and as JSON log lines; the listing's filters and paging; the
//! retention purge; and no secret in a row or in the log.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::*;
use crate::support::{wait_until, Server};

/// `tessera audit --json ARGS`: the page.
async fn page(s: &Server, args: &[&str]) -> Value {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    s.cli_json(&all).await
}

/// Every entry `tessera audit ARGS` lists (at most 1000), newest first.
async fn events(s: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--limit", "1000"];
    all.extend_from_slice(args);
    page(s, &all).await["events"]
        .as_array()
        .expect("events")
        .clone()
}

/// The newest entry of `kind`.
async fn newest(s: &Server, kind: &str) -> Value {
    events(s, &["--kind", kind])
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {kind} entry"))
}

fn is_request_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn security_events_and_admin_changes_are_recorded_with_their_fields_and_no_secret() {
    let (server, client) = setup_with(&[("TESSERA_LOGIN_FAILURES_PER_USER", "2")], &[]).await;
    let mut secrets = vec![client.secret.clone(), PASSWORD.to_owned()];

    // An admin change at the command line.
    let created = newest(&server, "client_created").await;
    assert_eq!(created["actor"], "cli");
    assert_eq!(created["target"], client.id.as_str());
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["detail"]["name"], "t");
    assert!(created["request_id"].is_null() && created["source"].is_null());
    let alice = newest(&server, "user_created").await["target"]
        .as_str()
        .expect("the user's id")
        .to_owned();

    // A failed client authentication, with the request id the client chose.
    let wrong = "wrong-secret-0123456789abcdef";
    secrets.push(wrong.to_owned());
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .header("X-Request-Id", "audit-e2e-1")
        .basic_auth(&client.id, Some(wrong))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-request-id"], "audit-e2e-1");
    let failed = events(&server, &["--kind", "client_auth_failed"])
        .await
        .into_iter()
        .find(|e| e["request_id"] == "audit-e2e-1")
        .expect("the failed authentication is recorded");
    assert_eq!(failed["actor"], "anonymous");
    assert_eq!(failed["target"], client.id.as_str());
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["source"], "127.0.0.1");
    assert_eq!(failed["detail"]["path"], "/oauth2/token");

    // A replayed authorization code.
    let mut b = Browser::new(&server);
    let code = b
        .code(
            &authorize_path(&client, "openid offline_access", ""),
            "alice",
        )
        .await;
    secrets.push(code.clone());
    let res = exchange(&server, &client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first: Value = res.json().await.unwrap();
    for k in ["access_token", "refresh_token", "id_token"] {
        secrets.push(first[k].as_str().unwrap().to_owned());
    }
    let res = exchange(&server, &client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let replay_request = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let replayed = newest(&server, "code_replayed").await;
    assert_eq!(replayed["actor"], format!("client:{}", client.id));
    assert_eq!(replayed["target"], client.id.as_str());
    assert_eq!(replayed["outcome"], "failure");
    assert_eq!(replayed["request_id"], replay_request.as_str());
    assert!(is_request_id(&replayed["request_id"]));
    assert_eq!(replayed["source"], "127.0.0.1");
    assert_eq!(replayed["detail"]["grant_revoked"], true);

    // A replayed refresh token.
    let code = b
        .code(
            &authorize_path(&client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let t0: Value = exchange(&server, &client, &code, Some(VERIFIER))
        .await
        .json()
        .await
        .unwrap();
    let rt0 = t0["refresh_token"].as_str().unwrap().to_owned();
    let res = refresh(&server, &client, &rt0).await;
    assert_eq!(res.status(), StatusCode::OK);
    let t1: Value = res.json().await.unwrap();
    secrets.extend([
        code,
        rt0.clone(),
        t1["refresh_token"].as_str().unwrap().to_owned(),
        t1["access_token"].as_str().unwrap().to_owned(),
    ]);
    let res = refresh(&server, &client, &rt0).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let reused = newest(&server, "refresh_token_replayed").await;
    assert_eq!(reused["actor"], format!("client:{}", client.id));
    assert_eq!(reused["target"], client.id.as_str());
    assert_eq!(reused["outcome"], "failure");
    assert_eq!(reused["detail"]["user_id"], alice.as_str());
    assert!(is_request_id(&reused["request_id"]));

    // A sign-in lock-out, from a browser alice never signed in with.
    let mut mallory = Browser::new(&server);
    let login = mallory.get(&authorize_path(&client, "openid", "")).await;
    for guess in ["guess-number-one", "guess-number-two"] {
        secrets.push(guess.to_owned());
        let p = mallory.sign_in(&login, "alice", guess).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    let locked = mallory.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let lockout = newest(&server, "sign_in_locked_out").await;
    assert_eq!(lockout["target"], alice.as_str());
    assert_eq!(lockout["actor"], "anonymous");
    assert_eq!(lockout["outcome"], "failure");
    assert_eq!(lockout["source"], "127.0.0.1");
    assert!(is_request_id(&lockout["request_id"]));

    // The same events reached the log as one JSON object each, target `audit`, info level.
    let logs = server.logs();
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["target"] == "audit" && l["fields"]["kind"] == "code_replayed")
        .expect("the replay's log line");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["request_id"], replay_request.as_str());
    assert_eq!(line["fields"]["actor"], format!("client:{}", client.id));
    assert_eq!(line["fields"]["outcome"], "failure");

    // No secret in any row, nor anywhere in the log.
    let rows = serde_json::to_string(&events(&server, &[]).await).unwrap();
    for s in &secrets {
        assert!(!rows.contains(s.as_str()), "a row holds {s}");
        assert!(!logs.contains(s.as_str()), "the log holds {s}");
    }
}

#[tokio::test]
async fn the_listing_filters_and_pages_and_refuses_bad_filters() {
    let server = Server::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let v = server
            .cli_json(&["client", "create", "--name", &format!("c{i}"), "--json"])
            .await;
        ids.push(v["client_id"].as_str().unwrap().to_owned());
    }
    server.cli(&["client", "delete", &ids[0]]).await;
    // Pages of two, newest first, nothing missed or repeated.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["--kind", "client_created", "--limit", "2"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let p = page(&server, &args).await;
        let events = p["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(
            events
                .iter()
                .map(|e| e["target"].as_str().unwrap().to_owned()),
        );
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    // Filters.
    let deleted = events(&server, &["--kind", "client_deleted"]).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["target"], ids[0].as_str());
    let about = events(&server, &["--target", &ids[0], "--actor", "cli"]).await;
    let kinds: Vec<&str> = about.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["client_deleted", "client_created"]);
    assert!(events(&server, &["--actor", "admin_token:x"])
        .await
        .is_empty());
    assert!(events(&server, &["--outcome", "failure", "--actor", "cli"])
        .await
        .is_empty());
    assert!(events(&server, &["--since", "4102444800"]).await.is_empty());
    assert!(events(&server, &["--until", "1970-01-02T00:00:00Z"])
        .await
        .is_empty());
    assert_eq!(
        events(&server, &["--since", "1h", "--kind", "client_created"])
            .await
            .len(),
        5
    );
    // Text output names the next page.
    let text = server
        .cli(&["audit", "--kind", "client_created", "--limit", "1"])
        .await;
    assert!(text.contains("client_created"), "{text}");
    assert!(text.contains("(more: --cursor "), "{text}");
    // Bad filters are refused, naming the flag.
    for (args, word) in [
        (&["--kind", "client_created%"][..], "kind"),
        (&["--cursor", "../../etc/passwd"][..], "cursor"),
        (&["--limit", "0"][..], "limit"),
        (&["--limit", "1001"][..], "limit"),
        (&["--since", "yesterday"][..], "since"),
        (&["--outcome", "maybe"][..], "outcome"),
    ] {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        let out = server.cli_output(&all).await;
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(word), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn the_purge_removes_entries_past_the_retention_only() {
    let server = Server::start().await;
    server.cli(&["client", "create", "--name", "kept"]).await;
    let purged = server.cli_json(&["purge", "--json"]).await;
    assert_eq!(purged["audit_events"], 0, "90 days by default: {purged}");
    assert_eq!(
        events(&server, &["--kind", "client_created"]).await.len(),
        1
    );
    // With a retention of one second, the entry goes once it is older than that.
    wait_until(
        Duration::from_secs(10),
        "the purge removes the entry past a retention of 1 s",
        || async {
            let out = server
                .cli_output_with(&["purge", "--json"], &[("TESSERA_AUDIT_RETENTION", "1s")])
                .await;
            assert!(out.status.success());
            events(&server, &["--kind", "client_created"])
                .await
                .is_empty()
        },
    )
    .await;
    // A bad retention is refused with its name.
    let out = server
        .cli_output_with(&["purge"], &[("TESSERA_AUDIT_RETENTION", "soon")])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_AUDIT_RETENTION"));
}

/// The bootstrap admin token of the admin API test.
const BOOTSTRAP: &str = "audit-e2e-bootstrap-token-0123456789abcdef";

/// A request to the admin API at `base`: status and JSON body.
async fn admin(
    s: &Server,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .request(method, url)
        .header("X-Request-Id", "admin-e2e");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_admin_api_records_its_changes_and_credentials_and_lists_the_trail() {
    let addr = format!("127.0.0.1:{}", crate::support::free_port());
    let server = Server::start_with(&[
        ("TESSERA_ADMIN_LISTEN", addr.as_str()),
        ("TESSERA_ADMIN_TOKEN", BOOTSTRAP),
    ])
    .await;
    let url = |p: &str| format!("http://{addr}{p}");
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    // A client made over the API.
    let (s, made) = admin(
        &server,
        post.clone(),
        &url("/admin/clients"),
        Some(BOOTSTRAP),
        Some(serde_json::json!({
            "name": "over the api", "grant_types": ["client_credentials"], "scope": "read",
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let client_id = made["client_id"].as_str().unwrap().to_owned();
    let client_secret = made["client_secret"].as_str().unwrap().to_owned();
    let (s, page) = admin(
        &server,
        get.clone(),
        &url("/admin/audit?kind=client_created"),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let created = &page["events"][0];
    assert_eq!(created["actor"], "admin_token:bootstrap");
    assert_eq!(created["target"], client_id.as_str());
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["request_id"], "admin-e2e");
    assert_eq!(created["source"], "127.0.0.1");
    assert_eq!(created["detail"]["status"], 201);
    // A refused change is recorded as a failure.
    let (s, _) = admin(
        &server,
        reqwest::Method::DELETE,
        &url("/admin/clients/no-such-client"),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, page) = admin(
        &server,
        get.clone(),
        &url("/admin/audit?kind=client_deleted&outcome=failure"),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(page["events"][0]["target"], "no-such-client");
    assert_eq!(page["events"][0]["detail"]["status"], 404);

    // Credentials used and refused.
    let reader = server
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
    let (reader_id, reader_value) = (
        reader["id"].as_str().unwrap().to_owned(),
        reader["token"].as_str().unwrap().to_owned(),
    );
    let (s, body) = admin(
        &server,
        get.clone(),
        &url("/admin/audit"),
        Some(&reader_value),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "audit:read is needed: {body}");
    let (s, _) = admin(
        &server,
        get.clone(),
        &url("/admin/clients"),
        Some(&reader_value),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = admin(&server, get.clone(), &url("/admin/audit"), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let forged = "tsa_00000000000000000000000000000000_forged-value-0123456789";
    let (s, _) = admin(
        &server,
        get.clone(),
        &url("/admin/audit"),
        Some(forged),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, page) = admin(
        &server,
        get.clone(),
        &url("/admin/audit?kind=admin_token_refused&limit=1000"),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    let refused = page["events"].as_array().unwrap();
    assert_eq!(refused.len(), 3, "{page}");
    assert_eq!(refused[2]["actor"], format!("admin_token:{reader_id}"));
    assert_eq!(refused[2]["detail"]["reason"], "insufficient_scope");
    assert_eq!(refused[1]["actor"], "anonymous");
    assert_eq!(refused[0]["actor"], "anonymous");
    assert!(refused.iter().all(|e| e["outcome"] == "failure"
        && e["request_id"] == "admin-e2e"
        && e["source"] == "127.0.0.1"));
    let (_, page) = admin(
        &server,
        get.clone(),
        &url(&format!(
            "/admin/audit?kind=admin_token_used&actor=admin_token:{reader_id}"
        )),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["events"][0]["detail"]["path"], "/admin/clients");

    // The same listing through `tessera audit --server`.
    let base = format!("http://{addr}");
    let remote = server
        .cli_json(&[
            "--server",
            &base,
            "audit",
            "--kind",
            "client_created",
            "--json",
        ])
        .await;
    assert_eq!(
        remote["events"][0]["target"],
        client_id.as_str(),
        "{remote}"
    );
    assert_eq!(remote["events"][0]["actor"], "admin_token:bootstrap");

    // Paging and bad filters.
    let (_, first) = admin(
        &server,
        get.clone(),
        &url("/admin/audit?kind=admin_token_refused&limit=2"),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = admin(
        &server,
        get.clone(),
        &url(&format!(
            "/admin/audit?kind=admin_token_refused&limit=2&cursor={cursor}"
        )),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    assert_eq!(second["events"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        second["events"][0]["actor"],
        format!("admin_token:{reader_id}")
    );
    for bad in [
        "kind=nonsense",
        "limit=0",
        "limit=5000",
        "limit=abc",
        "cursor=..%2F..%2Fetc%2Fpasswd",
        "since=tomorrow",
        "outcome=maybe",
        "unknown=1",
    ] {
        let (s, body) = admin(
            &server,
            get.clone(),
            &url(&format!("/admin/audit?{bad}")),
            Some(BOOTSTRAP),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{bad}");
    }

    // No secret in the trail or the log.
    let (_, all) = admin(
        &server,
        get,
        &url("/admin/audit?limit=1000"),
        Some(BOOTSTRAP),
        None,
    )
    .await;
    let rows = all.to_string();
    let logs = server.logs();
    for secret in [BOOTSTRAP, &client_secret, &reader_value, forged] {
        assert!(!rows.contains(secret), "a row holds {secret}");
        assert!(!logs.contains(secret), "the log holds {secret}");
    }
}
