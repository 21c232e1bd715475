//! Throttling and lock-out: failed client authentication counted per client at an address
//! (valid credentials never refused), `/sdk/token` only for JSON, sign-in budgets per address,
//! per device cookie and per username for unknown browsers, taken before the password check
//! (parallel attempts cannot slip past a limit) and shared by every node, and the budget of
//! password checks (a burst is answered at once rather than queued without bound).

use futures_util::future::join_all;
use reqwest::header::{COOKIE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::{authorize_path, setup_with, Browser, Page, PASSWORD, REDIRECT};
use crate::support::{Creds, Server};

/// An HTTP client whose requests come from `ip` (a loopback address).
fn from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn client_credentials(
    s: &Server,
    http: &reqwest::Client,
    c: &Creds,
    secret: &str,
) -> (StatusCode, Value, Option<String>) {
    let res = http
        .post(s.url("/oauth2/token"))
        .basic_auth(&c.id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get(RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap_or(Value::Null), retry)
}

/// One client retrying with a stale secret behind an address shared with other clients (a
/// NAT, one Kubernetes node) is told to slow down; the others, and its own valid credentials,
/// are served as ever.
#[tokio::test]
async fn a_failing_client_never_locks_out_valid_credentials_behind_its_address() {
    let s = Server::start_with(&[("TESSERA_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let stale = s.create_client(&[]).await;
    let other = s.create_client(&[]).await;
    let nat = from([127, 0, 0, 21]);
    for _ in 0..3 {
        let (status, body, _) = client_credentials(&s, &nat, &stale, "tcs_stale").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, body, retry) = client_credentials(&s, &nat, &stale, "tcs_stale").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "slow_down");
    let retry: i64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another client behind the same address: its credentials work, its own failure is a 401.
    let (status, body, _) = client_credentials(&s, &nat, &other, &other.secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = client_credentials(&s, &nat, &other, "tcs_typo").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The failing client's valid credentials are never refused either, at any endpoint.
    let (status, body, _) = client_credentials(&s, &nat, &stale, &stale.secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let res = nat
        .post(s.url("/oauth2/introspect"))
        .basic_auth(&other.id, Some(&other.secret))
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Junk at /sdk/token from the same address touches no client's budget.
    for _ in 0..5 {
        nat.post(s.url("/sdk/token"))
            .json(&serde_json::json!({"jwt": "e30.e30.e30"}))
            .send()
            .await
            .unwrap();
    }
    let (status, _, _) = client_credentials(&s, &nat, &other, "tcs_typo").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `/sdk/token` takes only `Content-Type: application/json`: a page of another origin can
/// post a body without a CORS preflight only as text, a form or multipart, so it cannot make
/// its visitors' browsers post here.
#[tokio::test]
async fn sdk_token_refuses_a_body_that_is_not_declared_json() {
    let s = Server::start().await;
    let body = r#"{"jwt": "e30.e30.e30"}"#;
    for content_type in [None, Some("text/plain"), Some("text/plain;charset=UTF-8")] {
        let mut req = s.http.post(s.url("/sdk/token")).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{content_type:?}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_request", "{content_type:?}");
        assert!(answer["error_description"].is_string());
    }
    let res = s
        .http
        .post(s.url("/sdk/token"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_grant", "a JSON body is read");
}

/// OWASP's device cookies: someone guessing at alice's password from anywhere locks out
/// unknown browsers for her username, not the browser she signed in with before.
#[tokio::test]
async fn guessing_at_a_password_does_not_lock_out_a_browser_that_signed_in_before() {
    let (server, client) = setup_with(&[("TESSERA_LOGIN_FAILURES_PER_USER", "3")], &[]).await;
    let path = authorize_path(&client, "openid", "");
    let mut alice = Browser::new(&server);
    alice.code(&path, "alice").await;
    assert!(
        alice.cookies.contains_key("tessera_device"),
        "{:?}",
        alice.cookies.keys()
    );
    let mut mallory = Browser::new(&server);
    let login = mallory.get(&path).await;
    for guess in ["123456", "password", "alice2026"] {
        let page = mallory.sign_in(&login, "alice", guess).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let locked = mallory.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!(locked.headers.get(RETRY_AFTER).is_some());
    assert!(locked.is_login());
    assert!(!mallory.cookies.keys().any(|k| k.contains("session")));
    // A new browser is an unknown browser too.
    let mut fresh = Browser::new(&server);
    let login = fresh.get(&path).await;
    let page = fresh.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    // Alice's browser signs in again with its own budget.
    let login = alice
        .get(&authorize_path(&client, "openid", "prompt=login"))
        .await;
    assert!(login.is_login(), "{}", login.body);
    let page = alice.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.location().unwrap().starts_with(REDIRECT));
    // A device cookie counts only for the user it was given for, and only as it was signed.
    let mut copied = Browser::new(&server);
    let device = alice.cookies["tessera_device"].clone();
    copied
        .cookies
        .insert("tessera_device".into(), format!("x{device}"));
    let login = copied.get(&path).await;
    let page = copied.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged device cookie"
    );
}

/// The form of `page` with credentials, as the browser submits it: every field in document
/// order, then the CSRF cookie.
fn signin_request(
    server: &Server,
    http: &reqwest::Client,
    browser: &Browser,
    page: &Page,
    username: &str,
    password: &str,
) -> reqwest::RequestBuilder {
    let mut fields = page.hidden();
    fields.push(("username".into(), username.into()));
    fields.push(("password".into(), password.into()));
    let cookies: Vec<String> = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    http.post(server.url("/oauth2/authorize"))
        .header(COOKIE, cookies.join("; "))
        .form(&fields)
}

/// Counts the answers: (checked and wrong, refused unchecked, signed in).
fn tally(statuses: &[StatusCode]) -> (usize, usize, usize) {
    let n = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    (
        n(StatusCode::UNAUTHORIZED),
        n(StatusCode::TOO_MANY_REQUESTS),
        n(StatusCode::SEE_OTHER) + n(StatusCode::OK),
    )
}

/// An attempt is taken from the budgets before the password is checked, in one atomic step:
/// of many parallel sign-ins no more are checked than the limit allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sign_ins_are_checked_no_more_often_than_the_limits_allow() {
    let (server, client) = setup_with(
        &[
            ("TESSERA_LOGIN_FAILURES_PER_USER", "5"),
            ("TESSERA_LOGIN_FAILURES_PER_ADDRESS", "20"),
            ("TESSERA_PASSWORD_CHECKS_QUEUED", "1000"),
        ],
        &[],
    )
    .await;
    let path = authorize_path(&client, "openid", "");
    // 40 sign-ins for alice at once, 39 wrong and the right one last.
    let mut b = Browser::new(&server);
    let login = b.get(&path).await;
    let http = from([127, 0, 0, 31]);
    let attempts = (0..40).map(|i| {
        let pw = if i == 39 {
            PASSWORD.to_owned()
        } else {
            format!("guess {i}")
        };
        signin_request(&server, &http, &b, &login, "alice", &pw).send()
    });
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let (wrong, refused, signed_in) = tally(&statuses);
    assert_eq!(wrong + refused + signed_in, 40, "{statuses:?}");
    // At most 5 failures were checked; the right password, if its attempt was among those
    // taken, signed in and gave its attempt back.
    assert!(
        wrong <= 5,
        "{wrong} wrong passwords were checked: {statuses:?}"
    );
    assert!(signed_in <= 1);
    assert!(wrong + signed_in >= 5, "the budget was used: {statuses:?}");
    // 200 sign-ins at once from one address, each for another username.
    let mut b = Browser::new(&server);
    let login = b.get(&path).await;
    let http = from([127, 0, 0, 32]);
    let attempts = (0..200)
        .map(|i| signin_request(&server, &http, &b, &login, &format!("user{i}"), "guess").send());
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let (wrong, refused, signed_in) = tally(&statuses);
    assert_eq!((wrong, refused, signed_in), (20, 180, 0), "{statuses:?}");
}

/// The per-user budget is keyed by the whole username, however long.
#[tokio::test]
async fn a_long_username_is_locked_out_like_any_other() {
    let (server, client) = setup_with(&[("TESSERA_LOGIN_FAILURES_PER_USER", "3")], &[]).await;
    let name = "n".repeat(200);
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    for _ in 0..3 {
        let page = b.sign_in(&login, &name, "guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = b.sign_in(&login, &name, "guess").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    // A name sharing its first 128 characters is another user.
    let page = b.sign_in(&login, &"n".repeat(129), "guess").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

/// Past the running and queued password checks, a sign-in is answered at once with 503 and
/// `Retry-After` on the sign-in page; the queued checks still complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_past_the_password_check_budget_are_answered_at_once() {
    let (server, client) = setup_with(
        &[
            ("TESSERA_PASSWORD_CHECKS_CONCURRENT", "1"),
            ("TESSERA_PASSWORD_CHECKS_QUEUED", "1"),
            ("TESSERA_LOGIN_FAILURES_PER_USER", "0"),
            ("TESSERA_LOGIN_FAILURES_PER_ADDRESS", "0"),
        ],
        &[],
    )
    .await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let http = from([127, 0, 0, 41]);
    let attempts = (0..24)
        .map(|i| signin_request(&server, &http, &b, &login, "alice", &format!("g{i}")).send());
    let mut busy = 0;
    let mut checked = 0;
    for res in join_all(attempts).await {
        let res = res.unwrap();
        match res.status() {
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(res.headers().get(RETRY_AFTER).unwrap(), "1");
                let body = res.text().await.unwrap();
                assert!(
                    body.contains("name=\"password\""),
                    "the sign-in page: {body}"
                );
                assert!(body.contains("Too many sign-ins"), "{body}");
            }
            StatusCode::UNAUTHORIZED => checked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy >= 1, "no sign-in was turned away");
    assert!(
        checked >= 2,
        "the running and the queued check both complete: {checked}"
    );
    // The burst is over: a sign-in is checked again.
    let page = b.sign_in(&login, "alice", PASSWORD).await;
    assert!(
        page.status == StatusCode::SEE_OTHER || page.is_consent(),
        "{}",
        page.status
    );
}

/// Budgets are kept in the database, so the nodes behind a load balancer count together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_budgets_are_shared_by_every_node() {
    let Some(db) = tessera_store_postgres::testing::TestDatabase::create("throttle_nodes").await
    else {
        return;
    };
    let mut env: Vec<(&str, &str)> = vec![
        ("TESSERA_DATABASE_URL", &db.url),
        ("TESSERA_DATABASE_POOL_SIZE", "4"),
        ("TESSERA_LOGIN_FAILURES_PER_USER", "3"),
    ];
    let a = Server::start_with(&env).await;
    let issuer = a.issuer().to_owned();
    env.push(("TESSERA_ISSUER", &issuer));
    let b = Server::start_with(&env).await;
    a.create_user("alice", PASSWORD).await;
    let client = a
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
        ])
        .await;
    b.wait_known(&client).await;
    let path = authorize_path(&client, "openid", "");
    let mut on_a = Browser::new(&a);
    let login_a = on_a.get(&path).await;
    let mut on_b = Browser::new(&b);
    let login_b = on_b.get(&path).await;
    let page = on_a.sign_in(&login_a, "alice", "guess").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let page = on_b.sign_in(&login_b, "alice", "guess").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let page = on_a.sign_in(&login_a, "alice", "guess").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    // Three failures in all, one of them on node B: both nodes refuse now.
    let page = on_b.sign_in(&login_b, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let page = on_a.sign_in(&login_a, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}
