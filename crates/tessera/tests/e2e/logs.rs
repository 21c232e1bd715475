//! What the server logs for its operator. No token or secret in the logs, even at debug
//! level. At the default level (`info`), one line per event an operator must see, with its
//! fields: a failed client authentication (client id, address, reason), a lock-out (of a
//! client at an address, of a sign-in), a reused refresh token that revoked its grant, a
//! replayed code, a revocation, and every management change, made at the command line or
//! through the admin API (the audit trail's lines, `tessera_core::audit`). The access log,
//! off by default: one line per request, with the route's template and never the path or
//! query as sent. And `docs/metrics.md` against what `/metrics` serves.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{basic, wait_until, Creds, Server, FEED_DEADLINE};

/// Gets a token in each of the four request styles; returns them.
async fn tokens_in_every_style(s: &Server, c: &Creds) -> Vec<String> {
    let url = s.url("/oauth2/token");
    let reqs = [
        s.http
            .post(&url)
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")]),
        s.http.post(&url).json(&json!({
            "grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret,
        })),
        s.http.post(&url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.id.as_str()),
            ("client_secret", c.secret.as_str()),
        ]),
        s.http.post(&url).multipart(
            reqwest::multipart::Form::new()
                .text("grant_type", "client_credentials")
                .text("client_id", c.id.clone())
                .text("client_secret", c.secret.clone()),
        ),
    ];
    let mut out = Vec::new();
    for req in reqs {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        out.push(body["access_token"].as_str().unwrap().to_owned());
    }
    out
}

/// The strings that must not appear: the value, and its random part without the prefix; for
/// a JWT also its payload and signature parts.
fn needles(value: &str) -> Vec<String> {
    let mut n = vec![value.to_owned()];
    if let Some(rest) = value
        .strip_prefix("tcs_")
        .or_else(|| value.strip_prefix("tat_"))
    {
        n.push(rest.to_owned());
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() == 3 {
        n.push(parts[1].to_owned());
        n.push(parts[2].to_owned());
    }
    n
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_server_logs() {
    let mut s = Server::start().await;
    let jwt = s.create_client(&["--scope", "read"]).await;
    let opaque = s
        .create_client(&["--scope", "read", "--access-token-format", "opaque"])
        .await;
    let mut secrets = vec![jwt.secret.clone(), opaque.secret.clone()];
    let mut tokens = Vec::new();
    tokens.extend(tokens_in_every_style(&s, &jwt).await);
    tokens.extend(tokens_in_every_style(&s, &opaque).await);

    // Failures that carry secrets: a wrong secret, credentials in the query string, Basic
    // together with a body secret, a malformed body holding the secret.
    let wrong = jwt.with_secret("tcs_wrongwrongwrongwrongwrongwrongwrongwrong1");
    secrets.push(wrong.secret.clone());
    assert_eq!(s.token_status(&wrong).await, StatusCode::UNAUTHORIZED);
    let url = s.url("/oauth2/token");
    let res = s
        .http
        .post(format!(
            "{url}?client_id={}&client_secret={}",
            jwt.id, jwt.secret
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .http
        .post(&url)
        .header("authorization", basic(&jwt.id, &jwt.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &jwt.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"client_id":"{}","client_secret":"{}""#,
            jwt.id, jwt.secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Introspect everything, revoke some.
    for t in &tokens {
        assert!(s.is_active(&jwt, t).await);
    }
    assert_eq!(s.revoke(&jwt, &tokens[0]).await, StatusCode::OK);
    assert_eq!(s.revoke(&opaque, &tokens[4]).await, StatusCode::OK);

    // Vendor assertions (kept like tokens: they are bearer credentials until they expire),
    // at /sdk/token and at the token endpoint, accepted then replayed.
    let key = crate::jwt_bearer::vendor_key();
    crate::jwt_bearer::trust(&s, &key, "default", &[]).await;
    let vendor = crate::jwt_bearer::grant_client(&s, "default", &[]).await;
    secrets.push(vendor.secret.clone());
    for _ in 0..2 {
        let assertion = crate::jwt_bearer::sign(&key, &crate::jwt_bearer::claims(&s));
        tokens.push(assertion.clone());
        let (status, body) = crate::jwt_bearer::exchange(&s, &vendor, &assertion).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        let (status, _) = crate::jwt_bearer::exchange(&s, &vendor, &assertion).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "replayed");
        let mut seed = crate::jwt_bearer::claims(&s);
        seed.as_object_mut().unwrap().remove("aud");
        let sdk_jwt = crate::jwt_bearer::sign(&key, &seed);
        tokens.push(sdk_jwt.clone());
        let res = s
            .http
            .post(s.url("/sdk/token"))
            .json(&json!({ "jwt": sdk_jwt }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        let res = s
            .http
            .post(s.url("/sdk/token"))
            .json(&json!({ "jwt": sdk_jwt }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "replayed");
    }

    // Rotate both secrets and use the new ones.
    let rotated = s
        .cli_json(&["client", "rotate-secret", &jwt.id, "--json"])
        .await;
    let jwt2 = jwt.with_secret(rotated["client_secret"].as_str().unwrap());
    let rotated = s
        .cli_json(&[
            "client",
            "rotate-secret",
            &opaque.id,
            "--keep-old-secret-for",
            "60",
            "--json",
        ])
        .await;
    let opaque2 = opaque.with_secret(rotated["client_secret"].as_str().unwrap());
    secrets.push(jwt2.secret.clone());
    secrets.push(opaque2.secret.clone());
    let (sr, a, b) = (&s, &jwt2, &opaque2);
    wait_until(FEED_DEADLINE, "the new secrets work", move || async move {
        sr.token_status(a).await == StatusCode::OK && sr.token_status(b).await == StatusCode::OK
    })
    .await;
    let more = [s.access_token(&jwt2).await, s.access_token(&opaque2).await];
    for t in &more {
        assert!(s.is_active(&jwt2, t).await);
    }
    assert!(
        !s.is_active(&jwt2, &tokens[1]).await,
        "revoked by the rotation"
    );
    tokens.extend(more);

    let (status, _) = s.stop().await;
    assert!(status.success(), "server exit status {status}");
    let logs = s.logs();
    // The check means something only if the server really logged at debug level.
    assert!(logs.contains("tessera is serving"), "{logs:.2000}");
    assert!(
        logs.contains(r#""level":"DEBUG""#),
        "no debug lines in the logs"
    );
    let mut leaks = Vec::new();
    for (kind, values) in [("secret", &secrets), ("token", &tokens)] {
        for v in values {
            for needle in needles(v) {
                if logs.contains(&needle) {
                    leaks.push(format!("{kind} {needle:.20}…"));
                }
            }
        }
    }
    for c in [&jwt, &jwt2, &opaque, &opaque2] {
        // The HTTP Basic header value carries the secret too.
        let header = basic(&c.id, &c.secret);
        if logs.contains(header.trim_start_matches("Basic ")) {
            leaks.push(format!("Basic credentials of {}", c.id));
        }
    }
    assert!(leaks.is_empty(), "found in the logs: {leaks:?}");
}

#[tokio::test]
async fn no_password_code_session_or_refresh_token_reaches_the_server_logs() {
    use crate::browser_support::{authorize_path, exchange, refresh, setup, Browser, VERIFIER};
    let (mut s, client) = setup(&["--refresh-tokens", "always"]).await;
    let mut b = Browser::new(&s);
    let login = b
        .get(&authorize_path(&client, "openid offline_access", ""))
        .await;
    let wrong_password = "wrong-password-never-logged";
    b.sign_in(&login, "alice", wrong_password).await;
    let code = b
        .code(
            &authorize_path(&client, "openid offline_access", ""),
            "alice",
        )
        .await;
    let session = b
        .cookies
        .iter()
        .find(|(k, _)| k.contains("session"))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    let t: Value = exchange(&s, &client, &code, Some(VERIFIER))
        .await
        .json()
        .await
        .unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let t2: Value = refresh(&s, &client, &rt).await.json().await.unwrap();
    // A replayed code and a reused refresh token: both refused, both logged as refusals only.
    exchange(&s, &client, &code, Some(VERIFIER)).await;
    refresh(&s, &client, &rt).await;
    let mut values = vec![
        crate::browser_support::PASSWORD.to_owned(),
        wrong_password.to_owned(),
        code.clone(),
        session,
        rt.clone(),
        client.secret.clone(),
    ];
    for key in ["access_token", "refresh_token", "id_token"] {
        for body in [&t, &t2] {
            if let Some(v) = body[key].as_str() {
                values.push(v.to_owned());
            }
        }
    }
    let (status, _) = s.stop().await;
    assert!(status.success());
    let logs = s.logs();
    assert!(logs.contains("user signed in"), "{logs:.2000}");
    for v in &values {
        for n in needles(v) {
            assert!(
                !logs.contains(&n),
                "a secret value reached the logs: {n:.12}…"
            );
        }
        if let Some(rest) = v.strip_prefix("trt_") {
            assert!(!logs.contains(rest));
        }
    }
}

/// How long the server may take to log a change made at the command line (it reads the audit
/// trail every second).
const CLI_LOGGED: Duration = Duration::from_secs(5);

/// A server at the default log level (`RUST_LOG` unset), with `extra` settings.
async fn at_default_level(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("RUST_LOG", "")];
    env.extend_from_slice(extra);
    Server::start_with(&env).await
}

/// The JSON lines of a log.
fn lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The audit lines of `kind`, each with its `detail` parsed.
fn events(logs: &str, kind: &str) -> Vec<Value> {
    lines(logs)
        .into_iter()
        .filter(|l| l["target"] == "audit" && l["fields"]["kind"] == kind)
        .map(|mut l| {
            let detail = l["fields"]["detail"].as_str().unwrap_or("{}").to_owned();
            l["fields"]["detail"] = serde_json::from_str(&detail).expect("detail is JSON");
            l["fields"].clone()
        })
        .collect()
}

/// Checks the log was written at the default level (no debug line, the start line there)
/// and holds none of `secrets`.
fn check_level_and_secrets(logs: &str, secrets: &[String]) {
    assert!(logs.contains("tessera is serving"), "{logs:.2000}");
    assert!(
        !logs.contains(r#""level":"DEBUG""#),
        "the server logged below info"
    );
    for v in secrets {
        for n in needles(v) {
            assert!(
                !logs.contains(&n),
                "a secret value reached the log: {n:.12}…"
            );
        }
    }
}

/// The audit line of `kind` (for `target` when given), waiting for it: a change made at the
/// command line reaches the server's log through the trail.
async fn logged(s: &Server, kind: &str, target: Option<&str>) -> Value {
    let mut found = None;
    wait_until(CLI_LOGGED, &format!("a {kind} line for {target:?}"), || {
        let hit = events(&s.logs(), kind)
            .into_iter()
            .find(|e| target.is_none_or(|t| e["target"] == t));
        let done = hit.is_some();
        found = hit;
        async move { done }
    })
    .await;
    found.expect("found")
}

#[tokio::test]
async fn a_failed_client_authentication_is_logged_with_client_address_and_reason() {
    let mut s = at_default_level(&[]).await;
    let c = s.create_client(&["--scope", "read"]).await;
    let wrong = c.with_secret("tcs_wrongwrongwrongwrongwrongwrongwrongwrong2");
    assert_eq!(s.token_status(&wrong).await, StatusCode::UNAUTHORIZED);
    let unknown = Creds {
        id: "no-such-client".into(),
        secret: "tcs_unknownunknownunknownunknownunknown3".into(),
    };
    assert_eq!(s.token_status(&unknown).await, StatusCode::UNAUTHORIZED);
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &c.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
    let logs = s.logs();
    let failed = events(&logs, "client_auth_failed");
    let by = |id: &str, reason: &str| {
        failed
            .iter()
            .find(|e| e["target"] == id && e["detail"]["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} line for {id}: {failed:?}"))
            .clone()
    };
    let e = by(&c.id, "wrong secret");
    assert_eq!(e["source"], "127.0.0.1");
    assert_eq!(e["outcome"], "failure");
    assert_eq!(e["detail"]["path"], "/oauth2/token");
    assert_eq!(e["detail"]["method"], "client_secret_basic");
    assert!(e["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    let e = by("no-such-client", "unknown client");
    assert_eq!(e["source"], "127.0.0.1");
    let e = by(&c.id, "no secret given for a confidential client");
    assert_eq!(e["detail"]["method"], "none");
    let line = lines(&logs)
        .into_iter()
        .find(|l| l["fields"]["kind"] == "client_auth_failed")
        .unwrap();
    assert_eq!(line["level"], "INFO");
    check_level_and_secrets(&logs, &[c.secret.clone(), wrong.secret, unknown.secret]);
}

#[tokio::test]
async fn a_client_lock_out_is_logged_once_when_the_budget_is_spent() {
    let mut s = at_default_level(&[("TESSERA_AUTH_FAILURES_PER_MINUTE", "2")]).await;
    let guesser = Creds {
        id: "guessed-client".into(),
        secret: "tcs_guessguessguessguessguessguessguess4".into(),
    };
    assert_eq!(s.token_status(&guesser).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.token_status(&guesser).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.token_status(&guesser).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        s.token_status(&guesser).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Failed `/sdk/token` exchanges spend the environment's budget at the address.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = s
            .http
            .post(s.url("/sdk/token"))
            .json(&json!({"jwt": "e30.e30.e30"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    s.stop().await;
    let logs = s.logs();
    let locked = events(&logs, "client_locked_out");
    assert_eq!(locked.len(), 2, "{locked:?}");
    assert_eq!(locked[0]["target"], "guessed-client");
    assert_eq!(locked[0]["source"], "127.0.0.1");
    assert_eq!(locked[0]["detail"]["path"], "/oauth2/token");
    assert_eq!(locked[0]["detail"]["failures"], 2);
    assert_eq!(locked[0]["detail"]["window_seconds"], 60);
    assert_eq!(locked[1]["target"], "sdk:default");
    assert_eq!(locked[1]["detail"]["path"], "/sdk/token");
    assert_eq!(locked[1]["source"], "127.0.0.1");
    assert!(locked[1]["request_id"].as_str().is_some());
    // The failures refused by the spent budget are not logged one by one.
    assert_eq!(events(&logs, "client_auth_failed").len(), 2);
    check_level_and_secrets(&logs, &[guesser.secret]);
}

#[tokio::test]
async fn a_sign_in_lock_out_is_logged() {
    use crate::browser_support::{authorize_path, setup_with, Browser, PASSWORD};
    let (mut s, client) = setup_with(
        &[("RUST_LOG", ""), ("TESSERA_LOGIN_FAILURES_PER_USER", "2")],
        &[],
    )
    .await;
    // The user made at the command line is in the server's log, by id.
    let user_id = logged(&s, "user_created", None).await["target"].clone();
    assert_eq!(logged(&s, "user_created", None).await["actor"], "cli");
    let mut b = Browser::new(&s);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let guesses = ["first-wrong-guess", "second-wrong-guess"];
    for g in guesses {
        assert_eq!(
            b.sign_in(&login, "alice", g).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = b.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
    let logs = s.logs();
    let e = events(&logs, "sign_in_locked_out");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["target"], user_id);
    assert_eq!(e[0]["source"], "127.0.0.1");
    assert_eq!(e[0]["detail"]["known_user"], true);
    let mut secrets = vec![PASSWORD.to_owned(), client.secret.clone()];
    secrets.extend(guesses.map(str::to_owned));
    check_level_and_secrets(&logs, &secrets);
}

#[tokio::test]
async fn a_replayed_code_and_a_reused_refresh_token_are_logged_with_the_grant_revoked() {
    use crate::browser_support::{
        authorize_path, exchange, refresh, setup_with, Browser, PASSWORD, VERIFIER,
    };
    let (mut s, client) = setup_with(&[("RUST_LOG", "")], &[]).await;
    let mut b = Browser::new(&s);
    let scope = "openid offline_access";
    let code = b.code(&authorize_path(&client, scope, ""), "alice").await;
    let res = exchange(&s, &client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first: Value = res.json().await.unwrap();
    let replay = exchange(&s, &client, &code, Some(VERIFIER)).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let replay_id = replay.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let code2 = b.code(&authorize_path(&client, scope, ""), "alice").await;
    let t0: Value = exchange(&s, &client, &code2, Some(VERIFIER))
        .await
        .json()
        .await
        .unwrap();
    let rt0 = t0["refresh_token"].as_str().unwrap().to_owned();
    let res = refresh(&s, &client, &rt0).await;
    assert_eq!(res.status(), StatusCode::OK);
    let t1: Value = res.json().await.unwrap();
    let reuse = refresh(&s, &client, &rt0).await;
    assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);
    let reuse_id = reuse.headers()["x-request-id"].to_str().unwrap().to_owned();
    // The family is revoked: the rotated refresh token no longer works.
    let rt1 = t1["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        refresh(&s, &client, &rt1).await.status(),
        StatusCode::BAD_REQUEST
    );
    s.stop().await;
    let logs = s.logs();

    let replayed = events(&logs, "code_replayed");
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    let e = &replayed[0];
    assert_eq!(e["actor"], format!("client:{}", client.id));
    assert_eq!(e["target"], client.id.as_str());
    assert_eq!(e["request_id"], replay_id.as_str());
    assert_eq!(e["source"], "127.0.0.1");
    assert_eq!(e["detail"]["grant_revoked"], true);
    assert!(e["detail"]["grant_id"].as_str().is_some());

    let reused = events(&logs, "refresh_token_replayed");
    assert_eq!(reused.len(), 1, "{reused:?}");
    let e = &reused[0];
    assert_eq!(e["actor"], format!("client:{}", client.id));
    assert_eq!(e["request_id"], reuse_id.as_str());
    assert_eq!(e["source"], "127.0.0.1");
    assert_eq!(e["detail"]["grant_revoked"], true);
    assert!(e["detail"]["grant_id"].as_str().is_some());

    let mut secrets = vec![
        PASSWORD.to_owned(),
        client.secret.clone(),
        code,
        code2,
        rt0,
        rt1,
    ];
    for body in [&first, &t0, &t1] {
        for k in ["access_token", "refresh_token", "id_token"] {
            if let Some(v) = body[k].as_str() {
                secrets.push(v.to_owned());
            }
        }
    }
    check_level_and_secrets(&logs, &secrets);
}

#[tokio::test]
async fn revocations_by_a_client_and_at_the_command_line_are_logged() {
    let mut s = at_default_level(&[]).await;
    let c = s
        .create_client(&["--scope", "read", "--access-token-format", "opaque"])
        .await;
    let by_client = s.access_token(&c).await;
    let by_cli = s.access_token(&c).await;
    assert_eq!(s.revoke(&c, &by_client).await, StatusCode::OK);
    s.cli(&["token", "revoke", &by_cli]).await;
    s.cli(&["client", "revoke-tokens", &c.id]).await;

    let e = logged(&s, "token_revoked", Some(&c.id)).await;
    assert_eq!(e["actor"], format!("client:{}", c.id));
    assert_eq!(e["detail"]["endpoint"], "revoke");
    assert_eq!(e["source"], "127.0.0.1");
    wait_until(
        CLI_LOGGED,
        "the command line's revocation is logged",
        || {
            let n = events(&s.logs(), "token_revoked")
                .into_iter()
                .filter(|e| e["actor"] == "cli")
                .count();
            async move { n == 1 }
        },
    )
    .await;
    let all = logged(&s, "client_tokens_revoked", Some(&c.id)).await;
    assert_eq!(all["actor"], "cli");
    s.stop().await;
    let logs = s.logs();
    check_level_and_secrets(&logs, &[c.secret.clone(), by_client, by_cli]);
}

/// The bootstrap credential of the admin API in these tests.
const ADMIN_BOOTSTRAP: &str = "logs-e2e-bootstrap-token-0123456789abcdef";

#[tokio::test]
async fn management_changes_at_the_command_line_and_through_the_admin_api_are_logged() {
    let admin = format!("127.0.0.1:{}", crate::support::free_port());
    let mut s = at_default_level(&[
        ("TESSERA_ADMIN_LISTEN", admin.as_str()),
        ("TESSERA_ADMIN_TOKEN", ADMIN_BOOTSTRAP),
    ])
    .await;
    let mut secrets = vec![ADMIN_BOOTSTRAP.to_owned()];

    // At the command line: a client made, its secret rotated, deleted; an admin token made.
    let c = s.create_client(&["--scope", "read"]).await;
    secrets.push(c.secret.clone());
    let rotated = s
        .cli_json(&["client", "rotate-secret", &c.id, "--json"])
        .await;
    secrets.push(rotated["client_secret"].as_str().unwrap().to_owned());
    s.cli(&["client", "delete", &c.id]).await;
    let made = s
        .cli_json(&[
            "admin-token",
            "create",
            "--name",
            "ops",
            "--scope",
            "clients:read",
            "--json",
        ])
        .await;
    secrets.push(made["token"].as_str().unwrap().to_owned());
    let token_id = made["id"].as_str().unwrap().to_owned();
    for (kind, target) in [
        ("client_created", c.id.as_str()),
        ("client_secret_rotated", c.id.as_str()),
        ("client_deleted", c.id.as_str()),
        ("admin_token_created", token_id.as_str()),
    ] {
        let e = logged(&s, kind, Some(target)).await;
        assert_eq!(e["actor"], "cli", "{kind}");
        assert_eq!(e["outcome"], "success", "{kind}");
    }
    // Logged once, not again on each later read of the trail: a change made after those
    // lines were seen is logged by a later read, which must not repeat them.
    let bob_password = "a password for bob only";
    secrets.push(bob_password.to_owned());
    let bob = s.create_user("bob", bob_password).await;
    logged(&s, "user_created", Some(&bob)).await;
    assert_eq!(events(&s.logs(), "client_deleted").len(), 1);
    assert_eq!(events(&s.logs(), "admin_token_created").len(), 1);

    // Through the admin API: a client made and deleted.
    let res = s
        .http
        .post(format!("http://{admin}/admin/clients"))
        .bearer_auth(ADMIN_BOOTSTRAP)
        .json(&json!({"name": "over the api", "scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let api_client = body["client_id"].as_str().unwrap().to_owned();
    secrets.push(body["client_secret"].as_str().unwrap().to_owned());
    let res = s
        .http
        .delete(format!("http://{admin}/admin/clients/{api_client}"))
        .bearer_auth(ADMIN_BOOTSTRAP)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let created = logged(&s, "client_created", Some(&api_client)).await;
    assert_eq!(created["actor"], "admin_token:bootstrap");
    assert_eq!(created["request_id"], request_id.as_str());
    assert_eq!(created["source"], "127.0.0.1");
    let deleted = logged(&s, "client_deleted", Some(&api_client)).await;
    assert_eq!(deleted["actor"], "admin_token:bootstrap");

    s.stop().await;
    let logs = s.logs();
    // Each change is one line: the audit event's, not a second line of the route's own.
    let about_it: Vec<Value> = lines(&logs)
        .into_iter()
        .filter(|l| l.to_string().contains(&api_client))
        .collect();
    assert!(
        about_it.iter().all(|l| l["target"] == "audit"),
        "{about_it:?}"
    );
    let kinds: Vec<&Value> = about_it
        .iter()
        .filter(|l| l["fields"]["target"] == api_client.as_str())
        .map(|l| &l["fields"]["kind"])
        .collect();
    assert_eq!(kinds, ["client_created", "client_deleted"]);
    check_level_and_secrets(&logs, &secrets);
}

/// The access log's lines.
fn access_lines(logs: &str) -> Vec<Value> {
    lines(logs)
        .into_iter()
        .filter(|l| l["target"] == "access")
        .map(|l| l["fields"].clone())
        .collect()
}

/// Requests of every kind the access log must handle: a token (authenticated), an
/// introspection with the token in the body, a page with values in its query string, a path
/// no route takes, with a token in its query. Returns the values that must not be logged
/// and the request id of the token request.
async fn traffic(s: &Server, c: &Creds) -> (Vec<String>, String) {
    let res = s.token(c, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let token_request = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(s.is_active(c, &token).await);
    let state = "state-value-never-logged-0123456789";
    let res = s
        .http
        .get(s.url(&format!(
            "/oauth2/authorize?response_type=code&client_id={}&state={state}",
            c.id
        )))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error() || res.status().is_success());
    let res = s
        .http
        .get(s.url(&format!("/no/such/path?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    (
        vec![token, c.secret.clone(), state.to_owned()],
        token_request,
    )
}

#[tokio::test]
async fn the_access_log_is_off_by_default() {
    let mut s = at_default_level(&[]).await;
    let c = s.create_client(&["--scope", "read"]).await;
    let (secrets, _) = traffic(&s, &c).await;
    s.stop().await;
    let logs = s.logs();
    assert!(access_lines(&logs).is_empty(), "{logs:.3000}");
    check_level_and_secrets(&logs, &secrets);
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_with_its_route_and_no_query_or_token() {
    let admin = format!("127.0.0.1:{}", crate::support::free_port());
    let mut s = at_default_level(&[
        ("TESSERA_ACCESS_LOG", "true"),
        ("TESSERA_ADMIN_LISTEN", admin.as_str()),
        ("TESSERA_ADMIN_TOKEN", ADMIN_BOOTSTRAP),
    ])
    .await;
    let c = s.create_client(&["--scope", "read"]).await;
    let (mut secrets, token_request) = traffic(&s, &c).await;
    secrets.push(ADMIN_BOOTSTRAP.to_owned());
    let res = s
        .http
        .get(format!("http://{admin}/admin/clients/{}", c.id))
        .bearer_auth(ADMIN_BOOTSTRAP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let admin_request = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    s.stop().await;
    let logs = s.logs();
    let access = access_lines(&logs);

    // The token request: its id as the response named it, its route, status, latency and
    // the client it authenticated.
    let line = access
        .iter()
        .find(|l| l["request_id"] == token_request.as_str())
        .unwrap_or_else(|| panic!("no line for the token request: {access:?}"));
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/oauth2/token");
    assert_eq!(line["status"], 200);
    assert!(line["latency_us"].as_u64().is_some());
    assert_eq!(line["client_id"], c.id.as_str());
    assert_eq!(line["message"], "request");
    let introspection = access
        .iter()
        .find(|l| l["route"] == "/oauth2/introspect")
        .expect("the introspection's line");
    assert_eq!(introspection["client_id"], c.id.as_str());
    // A page and an unknown path: the route template, or `unmatched`; no client.
    let page = access
        .iter()
        .find(|l| l["route"] == "/oauth2/authorize")
        .expect("the page's line");
    assert_eq!(page["method"], "GET");
    assert!(page.get("client_id").is_none(), "{page}");
    let unknown = access
        .iter()
        .find(|l| l["route"] == "unmatched")
        .expect("the unknown path's line");
    assert_eq!(unknown["status"], 404);
    // The readiness probe the test harness waited on, on the same listener.
    let probe = access
        .iter()
        .find(|l| l["route"] == "/health/ready")
        .expect("the readiness probe's line");
    assert_eq!(probe["status"], 200);
    // The admin API has its lines too.
    let admin_line = access
        .iter()
        .find(|l| l["request_id"] == admin_request.as_str())
        .expect("the admin request's line");
    assert_eq!(admin_line["route"], "/admin/clients/{client_id}");
    assert_eq!(admin_line["status"], 200);
    // One line per request: every request id once.
    let mut ids: Vec<&str> = access
        .iter()
        .map(|l| {
            l["request_id"]
                .as_str()
                .expect("every line has a request id")
        })
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a request logged twice");
    // Never a path or query as sent.
    assert!(!logs.contains("/no/such/path"));
    assert!(!logs.contains("access_token="));
    assert!(!logs.contains("response_type=code"));
    check_level_and_secrets(&logs, &secrets);
}

#[tokio::test]
async fn every_metric_served_is_in_the_metrics_reference() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read"]).await;
    let token = s.access_token(&c).await;
    assert!(s.is_active(&c, &token).await);
    let wrong = c.with_secret("tcs_wrongwrongwrongwrongwrongwrongwrongwrong5");
    assert_eq!(s.token_status(&wrong).await, StatusCode::UNAUTHORIZED);
    let text = s.metrics().await;
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .expect("docs/metrics.md");
    let served: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert!(served.len() >= 5, "{text:.2000}");
    for (name, kind) in served {
        let row = format!("| `{name}` | {kind} |");
        assert!(
            reference.contains(&row),
            "/metrics serves {name} ({kind}), which docs/metrics.md does not list"
        );
    }
}
