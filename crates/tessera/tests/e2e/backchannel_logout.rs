//! OpenID Connect Back-Channel Logout 1.0: the session id (`sid`, §2.1) that ID tokens carry,
//! client registration of `backchannel_logout_uri`, and the logout tokens (§2.4) a receiver
//! inside the test gets when a session ends (§2.5): their claims checked against `/jwks` and
//! the ID tokens, retries after a failure, delivery after a restart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::*;
use crate::support::{decode_jwt, verify_es256, wait_until, Creds, Server};

/// One POST received: its `Content-Type`, its form body, and the status it was answered.
type Received = Arc<Mutex<Vec<(String, String, u16)>>>;

/// A client's back-channel logout endpoint on a loopback port: keeps every POST, answers
/// each with the next scripted status (200 once the script is empty).
struct Receiver {
    uri: String,
    received: Received,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        Self::start_slow(script, Duration::ZERO).await
    }

    /// A receiver that takes `delay` before each answer.
    async fn start_slow(script: &[u16], delay: Duration) -> Receiver {
        let received: Received = Arc::default();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (kept, answers) = (Arc::clone(&received), Arc::clone(&script));
        let app = axum::Router::new().route(
            "/bc",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (kept, answers) = (Arc::clone(&kept), Arc::clone(&answers));
                async move {
                    tokio::time::sleep(delay).await;
                    let kind = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                    let body = String::from_utf8_lossy(&body).into_owned();
                    kept.lock().unwrap().push((kind, body, status));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/bc", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            uri,
            received,
            script,
        }
    }

    fn posts(&self) -> Vec<(String, String, u16)> {
        self.received.lock().unwrap().clone()
    }

    /// The logout tokens of the POSTs answered 200 or 204.
    fn taken(&self) -> Vec<String> {
        self.posts()
            .into_iter()
            .filter(|(_, _, status)| matches!(status, 200 | 204))
            .map(|(_, body, _)| token_of(&body))
            .collect()
    }

    async fn wait_for(&self, what: &str, n: usize) {
        wait_until(Duration::from_secs(30), what, || async {
            self.posts().len() >= n
        })
        .await;
    }
}

/// The `logout_token` of a form body, the only parameter.
fn token_of(body: &str) -> String {
    let pairs: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(pairs.len(), 1, "{body}");
    assert_eq!(pairs[0].0, "logout_token", "{body}");
    pairs[0].1.clone()
}

async fn tokens(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON body")
}

fn sid_of(tokens: &Value) -> String {
    let id = decode_jwt(tokens["id_token"].as_str().expect("an ID token"));
    id.claims["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid in {}", id.claims))
        .to_owned()
}

#[tokio::test]
async fn id_tokens_carry_the_sign_in_sessions_sid_across_clients_and_refreshes() {
    let (server, first) = setup(&[]).await;
    let second = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid offline_access",
        ])
        .await;
    let mut b = Browser::new(&server);
    let scope = "openid offline_access";
    let code = b.code(&authorize_path(&first, scope, ""), "alice").await;
    let one = tokens(exchange(&server, &first, &code, Some(VERIFIER)).await).await;
    let sid = sid_of(&one);
    // At least 128 bits, base64url, and not the session cookie's value.
    assert!(sid.len() >= 22, "{sid}");
    assert!(b.cookies.values().all(|v| !v.contains(&sid)));
    // The same browser session signing into another client: the same sid.
    let code = b.code(&authorize_path(&second, scope, ""), "alice").await;
    let two = tokens(exchange(&server, &second, &code, Some(VERIFIER)).await).await;
    assert_eq!(sid_of(&two), sid);
    // A refreshed ID token keeps the sid of the sign-in its grant came from.
    let rt = one["refresh_token"].as_str().expect("a refresh token");
    let refreshed = tokens(refresh(&server, &first, rt).await).await;
    assert_eq!(sid_of(&refreshed), sid);
    // Another browser is another session; signing in again starts another session.
    let mut other = Browser::new(&server);
    let code = other
        .code(&authorize_path(&first, scope, ""), "alice")
        .await;
    let three = tokens(exchange(&server, &first, &code, Some(VERIFIER)).await).await;
    assert_ne!(sid_of(&three), sid);
    let code = b
        .code(&authorize_path(&first, scope, "prompt=login"), "alice")
        .await;
    let four = tokens(exchange(&server, &first, &code, Some(VERIFIER)).await).await;
    assert_ne!(sid_of(&four), sid);
    assert_ne!(sid_of(&four), sid_of(&three));
}

#[tokio::test]
async fn the_logout_uri_and_session_requirement_are_registered_by_cli_and_dcr_and_checked() {
    let server =
        crate::support::Server::start_with(&[("TESSERA_DYNAMIC_REGISTRATION", "open")]).await;
    let c = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--backchannel-logout-uri",
            "https://rp.example.com/bc",
            "--backchannel-logout-session-required",
        ])
        .await;
    let show = server.cli_json(&["client", "show", &c.id, "--json"]).await;
    assert_eq!(show["backchannel_logout_uri"], "https://rp.example.com/bc");
    assert_eq!(show["backchannel_logout_session_required"], true);
    // An empty value removes it.
    server
        .cli(&["client", "update", &c.id, "--backchannel-logout-uri", ""])
        .await;
    let show = server.cli_json(&["client", "show", &c.id, "--json"]).await;
    assert!(show["backchannel_logout_uri"].is_null(), "{show}");
    // Plain http off loopback, credentials in the URI, a fragment: refused, naming the flag.
    for bad in [
        "http://rp.example.com/bc",
        "https://u:p@rp.example.com/bc",
        "https://rp.example.com/bc#x",
    ] {
        let out = server
            .cli_output(&["client", "update", &c.id, "--backchannel-logout-uri", bad])
            .await;
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--backchannel-logout-uri"), "{err}");
    }
    // Dynamic registration: kept and returned; a bad one is invalid_client_metadata.
    let register = |body: Value| {
        let s = &server;
        async move {
            let res = s
                .http
                .post(s.url("/oauth2/register"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, doc) = register(serde_json::json!({
        "redirect_uris": [REDIRECT],
        "backchannel_logout_uri": "http://127.0.0.1:9/bc",
        "backchannel_logout_session_required": true,
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    assert_eq!(doc["backchannel_logout_uri"], "http://127.0.0.1:9/bc");
    assert_eq!(doc["backchannel_logout_session_required"], true);
    for bad in [
        serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "http://rp.example.com/bc"}),
        serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": 7}),
        serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "https://rp.example.com/bc", "backchannel_logout_session_required": "yes"}),
    ] {
        let (status, doc) = register(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {doc}");
        assert_eq!(doc["error"], "invalid_client_metadata", "{bad}: {doc}");
        assert!(doc["error_description"].is_string());
    }
}

/// A code-flow client of `server` with a back-channel logout URI.
async fn client_with(server: &Server, uri: &str, extra: &[&str]) -> Creds {
    let mut args = vec![
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "openid offline_access",
        "--backchannel-logout-uri",
        uri,
    ];
    args.extend_from_slice(extra);
    server.create_client(&args).await
}

/// Signs `b` in to `c` and returns the ID token's claims.
async fn sign_in(server: &Server, b: &mut Browser, c: &Creds) -> Value {
    let code = b.code(&authorize_path(c, "openid", ""), "alice").await;
    let t = tokens(exchange(server, c, &code, Some(VERIFIER)).await).await;
    decode_jwt(t["id_token"].as_str().unwrap()).claims
}

/// RP-initiated logout of `b`'s session, confirmed.
async fn log_out(b: &mut Browser) {
    let confirm = b.get("/oauth2/logout").await;
    assert_eq!(confirm.status, StatusCode::OK);
    let done = b.post("/oauth2/logout", &confirm.hidden()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
}

#[tokio::test]
async fn logout_sends_each_client_a_signed_logout_token_with_the_sessions_sid() {
    let (server, _) = setup(&[]).await;
    let plain = Receiver::start(&[]).await;
    let strict = Receiver::start(&[]).await;
    let a = client_with(&server, &plain.uri, &[]).await;
    let b_client = client_with(
        &server,
        &strict.uri,
        &["--backchannel-logout-session-required"],
    )
    .await;
    let mut browser = Browser::new(&server);
    let id_a = sign_in(&server, &mut browser, &a).await;
    let id_b = sign_in(&server, &mut browser, &b_client).await;
    log_out(&mut browser).await;
    plain.wait_for("the first client is told", 1).await;
    strict.wait_for("the second client is told", 1).await;
    let meta = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["backchannel_logout_supported"], true);
    assert_eq!(meta["backchannel_logout_session_supported"], true);
    assert!(meta["claims_supported"]
        .as_array()
        .unwrap()
        .contains(&Value::from("sid")));
    let jwks_uri = meta["jwks_uri"].as_str().unwrap();
    let jwks: Value = server
        .http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (receiver, client, id) in [(&plain, &a, &id_a), (&strict, &b_client, &id_b)] {
        let posts = receiver.posts();
        assert_eq!(posts[0].0, "application/x-www-form-urlencoded");
        let token = token_of(&posts[0].1);
        verify_es256(&jwks, &token).expect("signed by a key of /jwks");
        let jwt = decode_jwt(&token);
        assert_eq!(jwt.header["typ"], "logout+jwt");
        let c = &jwt.claims;
        assert_eq!(c["iss"], server.issuer());
        assert_eq!(c["aud"], client.id.as_str());
        assert_eq!(c["sub"], id["sub"]);
        assert_eq!(c["sid"], id["sid"], "the ID token's sid");
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!(exp > iat && exp - iat <= 300, "short-lived: {c}");
        assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "{c}");
        assert_eq!(
            c["events"],
            serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert!(c.get("nonce").is_none(), "never a nonce: {c}");
        // The token is never logged.
        assert!(!server.logs().contains(&token));
    }
    // The session is over: signing in again is asked.
    let again = browser.get(&authorize_path(&a, "openid", "")).await;
    assert!(again.is_login());
}

#[tokio::test]
async fn a_refused_delivery_is_retried_until_the_client_takes_it() {
    let (server, _) = setup(&[]).await;
    let rp = Receiver::start(&[500, 503]).await;
    let c = client_with(&server, &rp.uri, &[]).await;
    let mut browser = Browser::new(&server);
    let id = sign_in(&server, &mut browser, &c).await;
    log_out(&mut browser).await;
    rp.wait_for("two refusals and a success", 3).await;
    let statuses: Vec<u16> = rp.posts().iter().map(|p| p.2).collect();
    assert_eq!(statuses[..3], [500, 503, 200]);
    let taken = rp.taken();
    let claims = decode_jwt(&taken[0]).claims;
    assert_eq!(claims["sid"], id["sid"]);
    assert_eq!(claims["aud"], c.id.as_str());
    wait_until(Duration::from_secs(10), "the attempts counted", || async {
        let m = server.metrics().await;
        m.contains("tessera_logout_deliveries_total{outcome=\"failed\"} 2")
            && m.contains("tessera_logout_deliveries_total{outcome=\"sent\"} 1")
    })
    .await;
}

#[tokio::test]
async fn a_delivery_refused_past_the_retry_window_is_given_up_and_counted() {
    let (server, _) = setup_with(&[("TESSERA_BACKCHANNEL_LOGOUT_RETRY_WINDOW", "10")], &[]).await;
    let rp = Receiver::start(&[500; 1000]).await;
    let c = client_with(&server, &rp.uri, &[]).await;
    let mut browser = Browser::new(&server);
    sign_in(&server, &mut browser, &c).await;
    log_out(&mut browser).await;
    wait_until(Duration::from_secs(60), "the delivery given up", || async {
        server
            .logs()
            .contains("logout token not delivered in time; given up")
    })
    .await;
    // Retried (1 s, 2 s, 4 s apart) while the window lasted, then dropped.
    let tried = rp.posts().len();
    assert!(tried >= 2, "{tried} attempts");
    wait_until(Duration::from_secs(10), "the drop counted", || async {
        server
            .metrics()
            .await
            .contains("tessera_logout_deliveries_total{outcome=\"dropped\"} 1")
    })
    .await;
    let m = server.metrics().await;
    assert!(
        m.contains(&format!(
            "tessera_logout_deliveries_total{{outcome=\"failed\"}} {tried}"
        )),
        "{m}"
    );
}

#[tokio::test]
async fn a_delivery_waiting_in_the_outbox_survives_a_restart() {
    let (mut server, _) = setup(&[]).await;
    // Refuses until the script runs out: long enough to restart in between.
    let rp = Receiver::start(&[500; 1000]).await;
    let c = client_with(&server, &rp.uri, &[]).await;
    let mut browser = Browser::new(&server);
    let id = sign_in(&server, &mut browser, &c).await;
    log_out(&mut browser).await;
    rp.wait_for("a first, refused attempt", 1).await;
    server.stop().await;
    rp.script.lock().unwrap().clear();
    server.restart_with(&[]).await.expect("restarts");
    wait_until(
        Duration::from_secs(60),
        "delivered after the restart",
        || async { !rp.taken().is_empty() },
    )
    .await;
    let claims = decode_jwt(&rp.taken()[0]).claims;
    assert_eq!(claims["sid"], id["sid"]);
}

#[tokio::test]
async fn revoking_a_users_tokens_changing_their_password_or_deleting_them_tells_their_clients() {
    let (server, _) = setup(&[]).await;
    let rp = Receiver::start(&[]).await;
    let c = client_with(&server, &rp.uri, &[]).await;
    let mut first = Browser::new(&server);
    let id = sign_in(&server, &mut first, &c).await;
    server.cli(&["user", "revoke-tokens", "alice"]).await;
    rp.wait_for("told of the revocation", 1).await;
    let claims = decode_jwt(&rp.taken()[0]).claims;
    assert_eq!((&claims["sub"], &claims["sid"]), (&id["sub"], &id["sid"]));
    // A new sign-in, then a password change: its session is told.
    let mut second = Browser::new(&server);
    let id = sign_in(&server, &mut second, &c).await;
    let out = server
        .cli_with_stdin(
            &["user", "set-password", "alice", "--password-stdin"],
            "another horse battery staple\n",
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rp.wait_for("told of the password change", 2).await;
    let claims = decode_jwt(&rp.taken()[1]).claims;
    assert_eq!((&claims["sub"], &claims["sid"]), (&id["sub"], &id["sid"]));
    // Deleting the user tells the clients of their live grants too: the one a password
    // change left (it ends sessions, not grants) and a new one.
    let mut third = Browser::new(&server);
    let login = third.get(&authorize_path(&c, "openid", "")).await;
    let mut page = third
        .sign_in(&login, "alice", "another horse battery staple")
        .await;
    if page.is_consent() {
        page = third.consent(&page, true).await;
    }
    let code = page.redirect_params()["code"].clone();
    let t = tokens(exchange(&server, &c, &code, Some(VERIFIER)).await).await;
    let newest = decode_jwt(t["id_token"].as_str().unwrap()).claims;
    server.cli(&["user", "delete", "alice"]).await;
    rp.wait_for("told of the deletion", 4).await;
    let mut sids: Vec<Value> = rp.taken()[2..4]
        .iter()
        .map(|t| decode_jwt(t).claims["sid"].clone())
        .collect();
    sids.sort_by_key(|v| v.to_string());
    let mut want = vec![id["sid"].clone(), newest["sid"].clone()];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(sids, want);
}

#[tokio::test]
async fn a_target_resolving_to_a_refused_address_is_never_posted_to_and_is_audited() {
    // Private targets refused, as in a deployment: loopback counts as private.
    let (server, _) = setup_with(
        &[("TESSERA_BACKCHANNEL_LOGOUT_PRIVATE_ADDRESSES", "false")],
        &[],
    )
    .await;
    let rp = Receiver::start(&[]).await;
    let port = rp.uri.rsplit(':').next().unwrap().trim_end_matches("/bc");
    let by_name = format!("http://localhost:{port}/bc");
    // A loopback literal, a name resolving to loopback (judged at send time, by the resolver),
    // and the link-local metadata address (refused whatever the setting).
    let targets = [
        rp.uri.as_str(),
        by_name.as_str(),
        "https://169.254.169.254/bc",
    ];
    let mut b = Browser::new(&server);
    let mut clients = Vec::new();
    for t in targets {
        let c = client_with(&server, t, &[]).await;
        sign_in(&server, &mut b, &c).await;
        clients.push(c);
    }
    log_out(&mut b).await;
    wait_until(
        Duration::from_secs(30),
        "three refusals in the audit trail",
        || async { server.logs().matches("logout_delivery_refused").count() >= 3 },
    )
    .await;
    let logs = server.logs();
    for c in &clients {
        assert!(
            logs.lines()
                .any(|l| l.contains("logout_delivery_refused") && l.contains(&c.id)),
            "no refusal audited for {}",
            c.id
        );
    }
    assert!(logs.contains("private_address") && logs.contains("forbidden_address"));
    // Ended, not retried: the outbox is empty and nothing reached the receiver.
    let out = server
        .cli(&["audit", "--kind", "logout_delivery_refused", "--json"])
        .await;
    assert_eq!(out.matches("logout_delivery_refused").count(), 3, "{out}");
    assert!(rp.posts().is_empty(), "{:?}", rp.posts());
    assert!(!logs.contains("logout token delivered"));
    let m = server.metrics().await;
    assert!(
        m.contains("tessera_logout_deliveries_total{outcome=\"dropped\"} 3"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_one_postgres_send_each_logout_token_once() {
    let Some(db) =
        tessera_store_postgres::testing::TestDatabase::create("bc_logout_two_nodes").await
    else {
        return;
    };
    let mut env: Vec<(&str, &str)> = vec![
        ("TESSERA_DATABASE_URL", &db.url),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
    ];
    let first = Server::start_with(&env).await;
    let issuer = first.issuer().to_owned();
    env.push(("TESSERA_ISSUER", &issuer));
    let second = Server::start_with(&env).await;
    first.create_user("alice", PASSWORD).await;
    // Slow to answer (longer than the workers' poll interval): without a lease, the other
    // node would take the rows still being sent.
    let rp = Receiver::start_slow(&[], Duration::from_millis(1500)).await;
    // One session signed into many clients: its logout queues one delivery per client, and
    // both nodes' workers race for them.
    let mut b = Browser::new(&first);
    let mut ids = Vec::new();
    for _ in 0..12 {
        let c = client_with(&first, &rp.uri, &[]).await;
        second.wait_known(&c).await;
        sign_in(&first, &mut b, &c).await;
        ids.push(c.id);
    }
    log_out(&mut b).await;
    rp.wait_for("a POST for every client", ids.len()).await;
    // Every row ended (so nothing more will be sent), then count what each client got.
    wait_until(Duration::from_secs(30), "the outbox empty", || async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM logout_deliveries")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        n == 0
    })
    .await;
    let mut per_client: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for t in rp.taken() {
        let claims = decode_jwt(&t).claims;
        per_client
            .entry(claims["aud"].as_str().unwrap().to_owned())
            .or_default()
            .push(claims["jti"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(per_client.keys().cloned().collect::<Vec<_>>(), ids);
    for (aud, jtis) in &per_client {
        assert_eq!(jtis.len(), 1, "{aud} was sent {jtis:?}");
    }
    assert_eq!(rp.posts().len(), ids.len());
    // Both nodes ran a worker; which one sent what is up to the race.
    drop((first, second));
}

/// The `aud` of each logout token `rp` took, in order.
fn audiences(rp: &Receiver) -> Vec<String> {
    rp.taken()
        .iter()
        .map(|t| decode_jwt(t).claims["aud"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_operator_revoking_a_consent_a_grant_or_a_users_tokens_tells_the_clients_concerned() {
    const ADMIN: &str = "e2e-backchannel-admin-token-0123456789abcdef";
    let addr = format!("127.0.0.1:{}", crate::support::free_port());
    let (server, _) = setup_with(
        &[
            ("TESSERA_ADMIN_LISTEN", &addr),
            ("TESSERA_ADMIN_TOKEN", ADMIN),
        ],
        &[],
    )
    .await;
    let admin = |method: reqwest::Method, path: &str| {
        server
            .http
            .request(method, format!("http://{addr}{path}"))
            .bearer_auth(ADMIN)
    };
    wait_until(Duration::from_secs(10), "the admin listener", || async {
        admin(reqwest::Method::GET, "/admin/openapi.json")
            .send()
            .await
            .is_ok()
    })
    .await;
    let rp = Receiver::start(&[]).await;
    let (a, b, c, d) = (
        client_with(&server, &rp.uri, &[]).await,
        client_with(&server, &rp.uri, &[]).await,
        client_with(&server, &rp.uri, &[]).await,
        client_with(&server, &rp.uri, &[]).await,
    );
    let mut browser = Browser::new(&server);
    for client in [&a, &b, &c] {
        sign_in(&server, &mut browser, client).await;
    }
    // The consent to a, withdrawn at the command line: a is told, nobody else.
    server
        .cli(&["user", "revoke-consent", "alice", &a.id])
        .await;
    rp.wait_for("told of the consent's end", 1).await;
    assert_eq!(audiences(&rp), [a.id.as_str()]);
    // b's grant, revoked through the admin API: b is told.
    let listed: Value = admin(reqwest::Method::GET, "/admin/users/alice/grants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant_of_b = listed["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["client_id"] == b.id.as_str() && g["revoked_at"].is_null())
        .expect("b's live grant")["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/users/alice/grants/{grant_of_b}");
    let res = admin(reqwest::Method::DELETE, &path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    rp.wait_for("told of the grant's end", 2).await;
    assert_eq!(audiences(&rp)[1], b.id);
    // Revoking it again ends nothing, so tells nobody: the next token is the next change's.
    let res = admin(reqwest::Method::DELETE, &path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // d signs in too; the admin API revokes all of alice's tokens: c and d (live) are told.
    sign_in(&server, &mut browser, &d).await;
    let res = admin(reqwest::Method::POST, "/admin/users/alice/revoke-tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    rp.wait_for("told of the revocation", 4).await;
    let mut last = audiences(&rp)[2..].to_vec();
    last.sort();
    let mut want = vec![c.id.clone(), d.id.clone()];
    want.sort();
    assert_eq!(last, want);
}
