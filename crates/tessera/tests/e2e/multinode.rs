//! Several `tessera serve` nodes over one PostgreSQL database, as behind a load balancer:
//! what one node issues or records, every node honours; what one node (or the CLI) changes,
//! every node honours within a second; single-use things are used once across all nodes; a
//! node killed under load loses nothing it acknowledged; and the server's purge keeps the
//! database bounded.
//!
//! Each test gets a database of its own on the server named by `TESSERA_TEST_POSTGRES_URL`;
//! without it the tests are skipped (with a note), or fail when `CI` is set.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures_util::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_store_postgres::testing::TestDatabase;

use crate::support::{unix_now, wait_until, Creds, Server, FEED_DEADLINE};

/// Nodes over one fresh database, sharing the sealing secret (the harness gives every server
/// the same `TESSERA_SECRET`) and one issuer, as behind a load balancer.
struct Cluster {
    nodes: Vec<Server>,
    /// The issuer every node is configured with (the first node's address).
    issuer: String,
    db: TestDatabase,
}

impl Cluster {
    /// `n` nodes, or `None` when PostgreSQL tests are skipped.
    async fn start(test: &str, n: usize, extra: &[(&str, &str)]) -> Option<Cluster> {
        let db = TestDatabase::create(test).await?;
        // Small pools: tests run in parallel on one server with the default connection limit.
        let mut env: Vec<(&str, &str)> = vec![
            ("TESSERA_DATABASE_URL", &db.url),
            ("TESSERA_DATABASE_POOL_SIZE", "6"),
        ];
        env.extend_from_slice(extra);
        let first = Server::start_with(&env).await;
        let issuer = first.issuer().to_owned();
        env.push(("TESSERA_ISSUER", &issuer));
        let mut nodes = vec![first];
        let others = futures_util::future::join_all((1..n).map(|_| Server::start_with(&env))).await;
        nodes.extend(others);
        Some(Cluster { nodes, issuer, db })
    }

    /// Registers a client through the CLI and waits until every node knows it.
    async fn create_client(&self, args: &[&str]) -> Creds {
        let c = self.nodes[0].create_client(args).await;
        for n in &self.nodes[1..] {
            n.wait_known(&c).await;
        }
        c
    }

    /// Runs SQL on the cluster's database and returns one number.
    async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
        conn.close().await.ok();
        n
    }
}

/// Waits (at most [`FEED_DEADLINE`]) until `node` no longer finds `token` active.
async fn wait_inactive(node: &Server, caller: &Creds, token: &str, what: &str) -> Duration {
    wait_until(FEED_DEADLINE, what, || async {
        !node.is_active(caller, token).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_by_one_node_is_active_on_every_other() {
    let Some(cl) = Cluster::start("multinode_issue", 3, &[]).await else {
        return;
    };
    let observer = cl.create_client(&[]).await;
    for format in ["jwt", "opaque"] {
        let c = cl.create_client(&["--access-token-format", format]).await;
        for (i, issuer) in cl.nodes.iter().enumerate() {
            let token = issuer.access_token(&c).await;
            for (j, node) in cl.nodes.iter().enumerate() {
                let v = node.introspect(&observer, &token).await;
                assert_eq!(
                    v["active"], true,
                    "{format} token of node {i} on node {j}: {v}"
                );
                assert_eq!(v["client_id"], c.id.as_str());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_or_the_cli_reach_every_node_within_a_second() {
    let Some(cl) = Cluster::start("multinode_changes", 3, &[]).await else {
        return;
    };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let observer = cl.create_client(&[]).await;
    let opaque = cl.create_client(&["--access-token-format", "opaque"]).await;
    let jwt = cl.create_client(&["--access-token-format", "jwt"]).await;

    // Revocation through node A's endpoint, of tokens that B and C have cached as active.
    for client in [&opaque, &jwt] {
        let t = a.access_token(client).await;
        assert!(b.is_active(&observer, &t).await && c.is_active(&observer, &t).await);
        assert_eq!(a.revoke(client, &t).await, StatusCode::OK);
        for node in [b, c] {
            let took = wait_inactive(node, &observer, &t, "a revocation through node A").await;
            eprintln!("revocation through A seen by {} in {took:?}", node.base);
        }
    }

    // Secret rotation through the CLI: the old secret and every earlier token are refused.
    let t = b.access_token(&opaque).await;
    assert!(c.is_active(&observer, &t).await);
    let v = a
        .cli_json(&["client", "rotate-secret", &opaque.id, "--json"])
        .await;
    let rotated = opaque.with_secret(v["client_secret"].as_str().unwrap());
    for node in &cl.nodes {
        wait_until(
            FEED_DEADLINE,
            "old secret refused after rotation",
            || async { node.token_status(&opaque).await == StatusCode::UNAUTHORIZED },
        )
        .await;
        wait_inactive(node, &observer, &t, "a token issued before the rotation").await;
        assert_eq!(node.token_status(&rotated).await, StatusCode::OK);
    }

    // Client deletion through the CLI: its tokens and its credentials stop working.
    let t = c.access_token(&jwt).await;
    assert!(a.is_active(&observer, &t).await && b.is_active(&observer, &t).await);
    a.cli(&["client", "delete", &jwt.id]).await;
    for node in &cl.nodes {
        wait_inactive(node, &observer, &t, "a token of a deleted client").await;
        wait_until(FEED_DEADLINE, "a deleted client is refused", || async {
            node.token_status(&jwt).await == StatusCode::UNAUTHORIZED
        })
        .await;
    }

    // Signing-key rotation through the CLI: every node publishes the new key.
    let before = a.get_json("/.well-known/jwks.json").await["keys"]
        .as_array()
        .unwrap()
        .len();
    a.cli(&["keys", "rotate", "--lead-time", "300"]).await;
    for node in &cl.nodes {
        wait_until(FEED_DEADLINE, "the new key is published", || async {
            node.get_json("/.well-known/jwks.json").await["keys"]
                .as_array()
                .unwrap()
                .len()
                > before
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_on_an_empty_database_make_one_signing_key() {
    let Some(db) = TestDatabase::create("multinode_first_key").await else {
        return;
    };
    // One issuer, as behind a load balancer (a database is served under one issuer).
    let env = [
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "4"),
        ("TESSERA_ISSUER", "http://127.0.0.1:9"),
    ];
    let nodes = futures_util::future::join_all((0..3).map(|_| Server::start_with(&env))).await;
    let keys = nodes[0].cli_json(&["keys", "list", "--json"]).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    for n in &nodes {
        let jwks = n.get_json("/.well-known/jwks.json").await;
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_commands_work_on_postgres() {
    let Some(cl) = Cluster::start("multinode_cli", 1, &[]).await else {
        return;
    };
    let a = &cl.nodes[0];
    assert!(a.cli(&["migrate"]).await.contains("up to date"));
    let c = cl
        .create_client(&["--access-token-format", "opaque", "--scope", "read"])
        .await;
    let list = a.cli_json(&["client", "list", "--json"]).await;
    assert!(list.to_string().contains(&c.id), "{list}");
    let shown = a.cli_json(&["client", "show", &c.id, "--json"]).await;
    assert_eq!(shown["access_token_format"], "opaque");
    let t = a.access_token(&c).await;
    let v = a.cli_json(&["token", "introspect", &t, "--json"]).await;
    assert_eq!(v["active"], true, "{v}");
    a.cli(&["token", "revoke", &t]).await;
    let v = a.cli_json(&["token", "introspect", &t, "--json"]).await;
    assert_eq!(v["active"], false, "{v}");
    a.cli(&["client", "revoke-tokens", &c.id]).await;
    a.cli(&["client", "update", &c.id, "--name", "renamed"])
        .await;
    let keys = a.cli_json(&["keys", "list", "--json"]).await;
    assert!(!keys.as_array().unwrap().is_empty(), "{keys}");
    let purged = a.cli_json(&["purge", "--json"]).await;
    assert!(purged["tokens"].is_u64(), "{purged}");
}

// ---------------------------------------------------------------------------------------------
// Single use across nodes

/// An ES256 key pair of a `private_key_jwt` client.
struct ClientKey {
    signing: jsonwebtoken::EncodingKey,
    pem: String,
}

fn client_key() -> ClientKey {
    use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo of a P-256 key: a fixed prefix, then the point.
    let prefix = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    let mut der: Vec<u8> = (0..prefix.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&prefix[i..i + 2], 16).unwrap())
        .collect();
    der.extend_from_slice(pair.public_key().as_ref());
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    ClientKey {
        signing: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        pem: format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        ),
    }
}

/// A fresh client assertion (RFC 7523 §2.2) of `id` for `aud`.
fn assertion(key: &ClientKey, id: &str, aud: &str) -> String {
    let mut jti = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti).unwrap();
    let now = unix_now() as i64;
    let claims = json!({
        "iss": id, "sub": id, "aud": aud, "iat": now, "exp": now + 120,
        "jti": URL_SAFE_NO_PAD.encode(jti),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &key.signing,
    )
    .unwrap()
}

async fn token_with_assertion(node: &Server, assertion: &str) -> StatusCode {
    node.http
        .post(node.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_assertion_used_on_one_node_is_refused_on_every_other() {
    let Some(cl) = Cluster::start("multinode_assertion", 3, &[]).await else {
        return;
    };
    let key = client_key();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("client.pem");
    std::fs::write(&pem, &key.pem).unwrap();
    let v = cl.nodes[0]
        .cli_json(&[
            "client",
            "create",
            "--name",
            "pk",
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--public-key",
            pem.to_str().unwrap(),
            "--json",
        ])
        .await;
    let id = v["client_id"].as_str().unwrap().to_owned();
    let aud = cl.nodes[0].url("/oauth2/token");
    for node in &cl.nodes {
        wait_until(
            Duration::from_secs(2),
            "every node knows the client",
            || {
                let a = assertion(&key, &id, &aud);
                async move { token_with_assertion(node, &a).await == StatusCode::OK }
            },
        )
        .await;
    }

    // Used on one node, refused on every other.
    for (i, first) in cl.nodes.iter().enumerate() {
        let a = assertion(&key, &id, &aud);
        assert_eq!(token_with_assertion(first, &a).await, StatusCode::OK);
        for (j, node) in cl.nodes.iter().enumerate() {
            assert_eq!(
                token_with_assertion(node, &a).await,
                StatusCode::UNAUTHORIZED,
                "an assertion used on node {i} was accepted again on node {j}"
            );
        }
    }

    // Sent to every node at once, one assertion gets exactly one token.
    for round in 0..5 {
        let a = assertion(&key, &id, &aud);
        let statuses = futures_util::future::join_all(
            cl.nodes
                .iter()
                .cycle()
                .take(9)
                .map(|n| token_with_assertion(n, &a)),
        )
        .await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {statuses:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A node killed under load

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_acknowledged_token() {
    let Some(mut cl) = Cluster::start("multinode_sigkill", 2, &[]).await else {
        return;
    };
    let observer = cl.create_client(&[]).await;
    let opaque = cl.create_client(&["--access-token-format", "opaque"]).await;
    let jwt = cl.create_client(&["--access-token-format", "jwt"]).await;

    // 16 clients issue tokens from node A as fast as it answers; every token it answered
    // with is kept. Node A is killed with SIGKILL in the middle.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let url = cl.nodes[0].url("/oauth2/token");
    let mut workers = Vec::new();
    for w in 0..16 {
        let (acked, stop, failures) = (acked.clone(), stop.clone(), failures.clone());
        let creds = if w % 4 == 0 {
            jwt.clone()
        } else {
            opaque.clone()
        };
        let http = crate::support::http_client();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let res = http
                    .post(&url)
                    .basic_auth(&creds.id, Some(&creds.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(res) = res else {
                    failures.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if res.status() != StatusCode::OK {
                    failures.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                // Acknowledged only once the whole answer arrived.
                if let Ok(body) = res.json::<Value>().await {
                    if let Some(t) = body["access_token"].as_str() {
                        acked.lock().unwrap().push(t.to_owned());
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    wait_until(Duration::from_secs(20), "load is running", || async {
        acked.lock().unwrap().len() >= 300
    })
    .await;
    let failed_before = failures.load(Ordering::SeqCst);
    cl.nodes[0].kill9();
    let killed_after = started.elapsed();
    // The load goes on until the workers have found node A gone (at least one failed request
    // each, on average).
    wait_until(
        Duration::from_secs(20),
        "the workers see node A gone",
        || async { failures.load(Ordering::SeqCst) >= failed_before + 16 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let tokens = acked.lock().unwrap().clone();
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len());
    eprintln!(
        "node A killed after {killed_after:?} and {} acknowledged tokens ({} requests failed \
         after the kill)",
        tokens.len(),
        failures.load(Ordering::SeqCst)
    );

    // Every acknowledged token is active on the surviving node.
    let survivor = &cl.nodes[1];
    let obs = &observer;
    let inactive: Vec<String> = stream::iter(&tokens)
        .map(|t| async move { (t, survivor.is_active(obs, t).await) })
        .buffer_unordered(16)
        .filter_map(|(t, active)| async move { (!active).then(|| t.chars().take(40).collect()) })
        .collect()
        .await;
    assert!(
        inactive.is_empty(),
        "{} acknowledged tokens are not active on the survivor, e.g. {:?}",
        inactive.len(),
        &inactive[..inactive.len().min(3)]
    );

    // The database needs no repair: a new node starts on it, and work goes on.
    let url = cl.db.url.clone();
    let issuer = cl.issuer.clone();
    let replacement =
        Server::start_with(&[("TESSERA_DATABASE_URL", &url), ("TESSERA_ISSUER", &issuer)]).await;
    let t = replacement.access_token(&opaque).await;
    assert!(survivor.is_active(&observer, &t).await);
    for t in tokens.iter().take(20) {
        assert!(replacement.is_active(&observer, t).await);
    }
    replacement.cli(&["purge"]).await;
}

// ---------------------------------------------------------------------------------------------
// Bounded storage

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_stays_bounded_while_short_lived_tokens_come_and_go() {
    // Purge every second, so that a short test sees many purges.
    let Some(cl) = Cluster::start("multinode_soak", 2, &[("TESSERA_PURGE_INTERVAL", "1")]).await
    else {
        return;
    };
    let c = cl
        .create_client(&["--access-token-format", "opaque", "--access-token-ttl", "1"])
        .await;
    let j = cl
        .create_client(&["--access-token-format", "jwt", "--access-token-ttl", "1"])
        .await;

    let issued = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let node_url = cl.nodes[w % 2].url("");
        let (issued, stop, c, j) = (issued.clone(), stop.clone(), c.clone(), j.clone());
        workers.push(tokio::spawn(async move {
            let http = crate::support::http_client();
            while !stop.load(Ordering::SeqCst) {
                let res = http
                    .post(format!("{node_url}/oauth2/token"))
                    .basic_auth(&c.id, Some(&c.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                issued.fetch_add(1, Ordering::SeqCst);
                // Now and then a JWT revoked (a revocation record, purged when it expires).
                if w == 0 {
                    let body: Value = http
                        .post(format!("{node_url}/oauth2/token"))
                        .basic_auth(&j.id, Some(&j.secret))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let t = body["access_token"].as_str().unwrap();
                    let res = http
                        .post(format!("{node_url}/oauth2/revoke"))
                        .basic_auth(&j.id, Some(&j.secret))
                        .form(&[("token", t)])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), StatusCode::OK);
                }
            }
        }));
    }

    // Every half second: how many were issued so far, and how many rows the tables hold.
    let start = Instant::now();
    let mut samples: Vec<(Duration, usize, i64, i64, i64)> = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        // A wall-clock wait on purpose: what is measured is how the tables behave over time,
        // with tokens that expire after a second and a purge the server runs every second,
        // both on the server's clock; no event marks a sample's time.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tokens = cl.count("SELECT count(*) FROM access_tokens").await;
        let revoked = cl.count("SELECT count(*) FROM revoked_jtis").await;
        let size = cl
            .count("SELECT pg_total_relation_size('access_tokens')")
            .await;
        samples.push((
            start.elapsed(),
            issued.load(Ordering::SeqCst),
            tokens,
            revoked,
            size,
        ));
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    for s in &samples {
        eprintln!(
            "t={:>5.1}s issued={:>6} token rows={:>5} revocation rows={:>4} access_tokens {} kB",
            s.0.as_secs_f64(),
            s.1,
            s.2,
            s.3,
            s.4 / 1024
        );
    }
    let total = samples.last().unwrap().1;
    assert!(
        total > 500,
        "too few tokens issued to show anything: {total}"
    );
    // A token lives 1 s and the purge runs every second: no row should outlive its expiry by
    // more than a few seconds. Every sample holds at most what was issued in the 4 s before.
    for (i, s) in samples.iter().enumerate() {
        let window_start = samples[..i]
            .iter()
            .rev()
            .find(|e| s.0 - e.0 >= Duration::from_secs(4))
            .map_or(0, |e| e.1);
        let recent = (s.1 - window_start) as i64;
        assert!(
            s.2 <= recent + 50,
            "at {:?}: {} token rows, but only {recent} tokens issued in the 4 s before",
            s.0,
            s.2
        );
        assert!(s.3 <= 200, "revocation records are not purged: {}", s.3);
    }
    // And the table's size on disk levels off: the second half of the run ends no larger
    // than the first half's largest size plus a half.
    let half = samples.len() / 2;
    let first_half = samples[..half].iter().map(|s| s.4).max().unwrap();
    let end = samples.last().unwrap().4;
    assert!(
        end <= first_half + first_half / 2,
        "access_tokens grew from {first_half} to {end} bytes while its rows stayed bounded"
    );
}

// ---------------------------------------------------------------------------------------------
// The authorization code flow across nodes

/// A cluster with user `alice` and a confidential code-flow client.
async fn code_flow_cluster(test: &str, nodes: usize) -> Option<(Cluster, Creds)> {
    use crate::browser_support::{PASSWORD, REDIRECT};
    let cl = Cluster::start(test, nodes, &[]).await?;
    cl.nodes[0].create_user("alice", PASSWORD).await;
    let client = cl
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid profile email offline_access read",
        ])
        .await;
    Some((cl, client))
}

/// A fresh code for `client`, through `browser` (signing in on its first use).
async fn fresh_code(browser: &mut crate::browser_support::Browser, client: &Creds) -> String {
    use crate::browser_support::authorize_path;
    browser
        .code(
            &authorize_path(client, "openid offline_access read", ""),
            "alice",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_code_used_on_one_node_is_refused_on_another() {
    use crate::browser_support::{exchange, Browser, VERIFIER};
    let Some((cl, client)) = code_flow_cluster("multinode_code", 2).await else {
        return;
    };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    let mut browser = Browser::new(a);

    // Used on A, then presented to B.
    let code = fresh_code(&mut browser, &client).await;
    let first = exchange(a, &client, &code, Some(VERIFIER)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let replay = exchange(b, &client, &code, Some(VERIFIER)).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // Presented to both at once: one exchange succeeds.
    for round in 0..3 {
        let code = fresh_code(&mut browser, &client).await;
        let attempts = (0..6).map(|i| {
            let node = &cl.nodes[i % 2];
            let (client, code) = (&client, &code);
            async move { exchange(node, client, code, Some(VERIFIER)).await.status() }
        });
        let statuses = futures_util::future::join_all(attempts).await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {statuses:?}");
    }

    // The sign-in session is in the database too: the same browser is signed in on node B.
    let mut on_b = Browser::new(b);
    on_b.cookies = browser.cookies.clone();
    let code = fresh_code(&mut on_b, &client).await;
    assert_eq!(
        exchange(a, &client, &code, Some(VERIFIER)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_on_one_refresh_token_have_exactly_one_winner() {
    use crate::browser_support::{exchange, refresh, Browser, VERIFIER};
    let Some((cl, client)) = code_flow_cluster("multinode_refresh", 2).await else {
        return;
    };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    let mut browser = Browser::new(a);
    for round in 0..3 {
        let code = fresh_code(&mut browser, &client).await;
        let tokens: Value = exchange(a, &client, &code, Some(VERIFIER))
            .await
            .json()
            .await
            .unwrap();
        let rt = tokens["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh token: {tokens}"))
            .to_owned();
        let attempts = (0..8).map(|i| {
            let node = if i % 2 == 0 { a } else { b };
            let (client, rt) = (&client, &rt);
            async move { refresh(node, client, rt).await.status() }
        });
        let statuses = futures_util::future::join_all(attempts).await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
            "{statuses:?}"
        );
    }

    // Rotation carries on across nodes: a refresh token rotated on A is refreshed on B.
    let code = fresh_code(&mut browser, &client).await;
    let tokens: Value = exchange(b, &client, &code, Some(VERIFIER))
        .await
        .json()
        .await
        .unwrap();
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for i in 0..4 {
        let node = if i % 2 == 0 { a } else { b };
        let res = refresh(node, &client, &rt).await;
        assert_eq!(res.status(), StatusCode::OK, "rotation {i}");
        let body: Value = res.json().await.unwrap();
        rt = body["refresh_token"].as_str().unwrap().to_owned();
    }
}

// ---------------------------------------------------------------------------------------------
// JWT-bearer assertions and single-use tokens across nodes

/// Posts `{"jwt": ..}` (and `env`) to `/sdk/token`; returns the status and the answer.
async fn sdk_token(node: &Server, body: &Value) -> (StatusCode, Value) {
    let res = node
        .http
        .post(node.url("/sdk/token"))
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_bearer_assertion_used_on_one_node_is_refused_on_another() {
    let Some(cl) = Cluster::start("multinode_jwt_bearer", 2, &[]).await else {
        return;
    };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    // The vendor's key pair and trust registration, through the CLI; a single-use environment.
    let dir = a.dir_path().join("vendor");
    let dir_s = dir.to_str().unwrap();
    a.cli(&["jwt", "keygen", "--out", dir_s, "--alg", "ES256"])
        .await;
    a.cli(&["env", "create", "hosted"]).await;
    a.cli(&["env", "set", "hosted", "--single-use-tokens"])
        .await;
    let public = dir.join("public.pem");
    a.cli(&[
        "trust",
        "add",
        "--env",
        "hosted",
        "--issuer",
        "vendor",
        "--public-key",
        public.to_str().unwrap(),
        "--scope",
        "sdk",
    ])
    .await;
    let private = dir.join("private.pem");
    let private = private.to_str().unwrap();
    let sign = || async move {
        a.cli(&[
            "jwt", "sign", "--key", private, "--iss", "vendor", "--sub", "user-1",
        ])
        .await
        .trim()
        .to_owned()
    };
    for node in &cl.nodes {
        wait_until(
            Duration::from_secs(2),
            "every node trusts the vendor",
            || async {
                let jwt = sign().await;
                sdk_token(node, &json!({"jwt": jwt, "env": "hosted"}))
                    .await
                    .0
                    == StatusCode::OK
            },
        )
        .await;
    }

    // Used on A, refused on B (and the other way round).
    for (first, second) in [(a, b), (b, a)] {
        let jwt = sign().await;
        let (status, body) = sdk_token(first, &json!({"jwt": jwt, "env": "hosted"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = sdk_token(second, &json!({"jwt": jwt, "env": "hosted"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }

    // Sent to both at once: exactly one token.
    let jwt = sign().await;
    let body = json!({"jwt": jwt, "env": "hosted"});
    let answers =
        futures_util::future::join_all((0..8).map(|i| sdk_token(&cl.nodes[i % 2], &body))).await;
    let ok: Vec<&(StatusCode, Value)> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "{answers:?}");

    // The token is single-use: of checks on both nodes at once, exactly one sees it active.
    let token = ok[0].1["access_token"].as_str().unwrap().to_owned();
    let api = cl.create_client(&["--env", "hosted"]).await;
    let checks = (0..20).map(|i| cl.nodes[i % 2].introspect(&api, &token));
    let active = futures_util::future::join_all(checks)
        .await
        .iter()
        .filter(|v| v["active"] == true)
        .count();
    assert_eq!(
        active, 1,
        "a single-use token was seen active {active} times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_served_by_one_node_is_answered_on_another() {
    use crate::browser_support::{Browser, PASSWORD};
    let Some((cl, client)) = code_flow_cluster("multinode_form", 2).await else {
        return;
    };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    // One browser behind a load balancer: its pages come from A, its posts go to B. The
    // request in progress is sealed with the secret every node shares.
    let mut on_a = Browser::new(a);
    let login = on_a
        .get(&crate::browser_support::authorize_path(
            &client, "openid", "",
        ))
        .await;
    let mut on_b = Browser::new(b);
    on_b.cookies = on_a.cookies.clone();
    let consent = on_b.sign_in(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent(), "{} {}", consent.status, consent.body);
    on_a.cookies = on_b.cookies.clone();
    let done = on_a.consent(&consent, true).await;
    assert!(
        done.redirect_params().contains_key("code"),
        "{:?}",
        done.location()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_uri_pushed_to_one_node_serves_on_another_once() {
    use crate::browser_support::{url_encode, Browser, CHALLENGE, REDIRECT};
    let Some((cl, client)) = code_flow_cluster("multinode_par", 2).await else {
        return;
    };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    let res = a
        .http
        .post(a.url("/oauth2/par"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let uri = body["request_uri"].as_str().unwrap();
    let path = format!(
        "/oauth2/authorize?{}",
        url_encode(&[("client_id", client.id.as_str()), ("request_uri", uri)])
    );
    let on_b = Browser::new(b).get(&path).await;
    assert!(on_b.is_login(), "{}", on_b.body);
    // Used on B: refused on A.
    let on_a = Browser::new(a).get(&path).await;
    assert_eq!(on_a.status, StatusCode::BAD_REQUEST, "{}", on_a.body);
    assert!(on_a.body.contains("invalid_request_uri"), "{}", on_a.body);
}

/// The user-code budget of an address (RFC 8628 §5.1) is one across the nodes: wrong codes
/// typed on either node count together, another address is untouched, and the page's forms
/// and the decision work whichever node serves each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_user_codes_count_across_nodes_and_the_device_page_works_on_any_node() {
    use crate::browser_support::{Browser, PASSWORD};
    use crate::device_page::{decide, enter, poll, sign_in};
    let Some(cl) = Cluster::start(
        "multinode_device",
        2,
        &[("TESSERA_USER_CODE_FAILURES_PER_ADDRESS", "3")],
    )
    .await
    else {
        return;
    };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    a.create_user("alice", PASSWORD).await;
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let c = cl
        .create_client(&["--public", "--grant-type", grant, "--scope", "read"])
        .await;
    let res = a
        .http
        .post(a.url("/oauth2/device_authorization"))
        .form(&[("client_id", c.id.as_str())])
        .send()
        .await
        .unwrap();
    let d: Value = res.json().await.unwrap();
    let code = d["user_code"].as_str().unwrap();
    let mut on_a = Browser::from_address(a, [127, 0, 0, 41]);
    let mut on_b = Browser::from_address(b, [127, 0, 0, 41]);
    let entry_a = on_a.get("/device").await;
    on_b.cookies = on_a.cookies.clone();
    for (i, guess) in ["BCDF-GHJK", "LMNP-QRST", "VWXZ-BCDF"].iter().enumerate() {
        let browser = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        assert_eq!(
            enter(browser, &entry_a, guess).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let locked = enter(&mut on_b, &entry_a, code).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "spent on A and B"
    );
    let locked = enter(&mut on_a, &entry_a, code).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    // The user, elsewhere: code on B, sign-in on A, consent on B.
    let mut user_a = Browser::from_address(a, [127, 0, 0, 42]);
    let mut user_b = Browser::from_address(b, [127, 0, 0, 42]);
    let entry = user_b.get("/device").await;
    let login = enter(&mut user_b, &entry, code).await;
    user_a.cookies = user_b.cookies.clone();
    let consent = sign_in(&mut user_a, &login).await;
    user_b.cookies = user_a.cookies.clone();
    let done = decide(&mut user_b, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let (status, body) = poll(a, &c.id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn a_dpop_proof_used_on_one_node_is_refused_on_another_and_nonces_serve_on_every_node() {
    use crate::dpop::DpopKey;
    let Some(cl) = Cluster::start("multinode_dpop", 2, &[("TESSERA_DPOP_NONCE", "true")]).await
    else {
        return;
    };
    let c = cl
        .create_client(&["--grant-type", "client_credentials"])
        .await;
    let key = DpopKey::new();
    // Every node shares the issuer: the proof names the issuer's token endpoint.
    let url = format!("{}/oauth2/token", cl.issuer);
    let ask = |node: &Server, proof: String| {
        node.http
            .post(node.url("/oauth2/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .header("DPoP", proof)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    // A nonce handed out by the first node is good on the second.
    let first = ask(&cl.nodes[0], key.proof("POST", &url)).await.unwrap();
    assert_eq!(first.status(), StatusCode::BAD_REQUEST);
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let mut claims = key.claims("POST", &url);
    claims["nonce"] = json!(nonce);
    let proof = key.sign(&key.header(), &claims);
    let res = ask(&cl.nodes[1], proof.clone()).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    // The same proof on the other node: used.
    let again = ask(&cl.nodes[0], proof).await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
}
