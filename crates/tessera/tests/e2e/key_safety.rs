//! Operator commands on signing keys that must not leave a database no server can start from:
//! `keys rotate` with a wrong or missing sealing secret, `keys reseal` while a server rotates
//! keys automatically, and a rotation lead time shorter than the JWKS may be cached. Every
//! path ends with the server restarted.

use std::time::Duration;

use crate::support::{wait_until, Server, FEED_DEADLINE};

const WRONG_SECRET: &str = "not-the-secret-the-server-was-given";

async fn kids(s: &Server) -> Vec<String> {
    let keys = s.cli_json(&["keys", "list", "--json"]).await;
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn jwks_len(s: &Server) -> usize {
    s.get_json("/.well-known/jwks.json").await["keys"]
        .as_array()
        .unwrap()
        .len()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `tessera serve` on this server's database (on another port), expecting it to give up.
async fn serve_elsewhere(s: &Server, env: &[(&str, &str)]) -> std::process::Output {
    let mut env = env.to_vec();
    env.push(("TESSERA_LISTEN", "127.0.0.1:0"));
    tokio::time::timeout(Duration::from_secs(20), s.cli_output_with(&["serve"], &env))
        .await
        .expect("the server was expected to refuse to start")
}

/// Runs `tessera ARGS` on this server's database given no sealing secret at all (no
/// `TESSERA_SECRET`, no `--secret-file`), as an operator who forgot it would.
async fn without_secret(s: &Server, args: &[&str]) -> std::process::Output {
    let db = s.dir_path().join("tessera.db");
    let mut cmd = tokio::process::Command::new(crate::support::BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TESSERA_DATABASE_URL", format!("sqlite://{}", db.display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

/// Restarts the server and checks it signs tokens that verify with its JWKS.
async fn restart_and_check(s: &mut Server, env: &[(&str, &str)]) {
    if let Err(logs) = s.restart_with(env).await {
        panic!("the server does not start again:\n{logs}");
    }
    let c = s.create_client(&[]).await;
    let token = s.access_token(&c).await;
    assert!(s.is_active(&c, &token).await);
}

#[tokio::test]
async fn keys_rotate_with_a_wrong_secret_writes_nothing_and_the_server_restarts() {
    let mut s = Server::start().await;
    let before = kids(&s).await;
    assert_eq!(before.len(), 1);

    let out = s
        .cli_output_with(
            &["keys", "rotate", "--lead-time", "300"],
            &[("TESSERA_SECRET", WRONG_SECRET)],
        )
        .await;
    assert!(
        !out.status.success(),
        "a rotation with a wrong secret is refused"
    );
    assert!(stderr(&out).contains("no key was made"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sealed under another sealing secret"),
        "{}",
        stderr(&out)
    );
    assert_eq!(kids(&s).await, before, "nothing was written");

    // Nor may a wrong secret re-seal the keys.
    let file = s.dir_path().join("new-secret");
    std::fs::write(&file, "a-brand-new-sealing-secret-for-the-keys").unwrap();
    let out = s
        .cli_output_with(
            &[
                "keys",
                "reseal",
                "--new-secret-file",
                file.to_str().unwrap(),
            ],
            &[("TESSERA_SECRET", WRONG_SECRET)],
        )
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no key was re-sealed"),
        "{}",
        stderr(&out)
    );

    // The running server still loads key changes: a rotation with the right secret reaches it.
    s.cli(&["keys", "rotate", "--lead-time", "300"]).await;
    let sr = &s;
    wait_until(
        FEED_DEADLINE * 2,
        "the new key is published",
        || async move { jwks_len(sr).await == 2 },
    )
    .await;
    restart_and_check(&mut s, &[]).await;
    assert_eq!(jwks_len(&s).await, 2);
}

#[tokio::test]
async fn keys_rotate_without_the_servers_secret_file_makes_no_key_file_and_writes_nothing() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("sealing.key");
    std::fs::write(&secret_file, "the-servers-own-sealing-secret-file\n").unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let mut s =
        Server::start_with(&[("TESSERA_SECRET", ""), ("TESSERA_SECRET_FILE", secret_path)]).await;
    let before = kids(&s).await;
    let default_key_file = s.dir_path().join("tessera.key");
    assert!(!default_key_file.exists());

    // The operator forgets --secret-file: the CLI would look for tessera.key beside the
    // database. It must neither make one nor seal a key under it.
    for args in [
        &["keys", "rotate", "--lead-time", "300"][..],
        &["keys", "reseal", "--new-secret-file", secret_path][..],
    ] {
        let out = without_secret(&s, args).await;
        assert!(
            !out.status.success(),
            "{args:?} without the secret is refused"
        );
        assert!(
            stderr(&out).contains("already has signing keys"),
            "{}",
            stderr(&out)
        );
        assert!(!default_key_file.exists(), "no key file was created");
    }
    assert_eq!(kids(&s).await, before, "nothing was written");

    // A server started without the file is refused the same way, and makes no file either.
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let out = tokio::time::timeout(Duration::from_secs(20), without_secret(&s, &serve))
        .await
        .expect("the server was expected to refuse to start");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already has signing keys"),
        "{}",
        stderr(&out)
    );
    assert!(!default_key_file.exists());

    s.cli(&["keys", "rotate", "--lead-time", "300"]).await;
    restart_and_check(&mut s, &[]).await;
    assert_eq!(jwks_len(&s).await, 2);
}

/// `keys reseal` while a server rotates keys automatically: that server learns of it through
/// the change feed, refuses to seal a key under its outdated secret, and the new secret starts
/// a server that then rotates on schedule.
#[tokio::test]
async fn keys_reseal_while_a_server_rotates_automatically_leaves_keys_the_new_secret_opens() {
    let rotating = [
        ("TESSERA_KEY_ROTATION_INTERVAL", "3"),
        ("TESSERA_KEY_ROTATION_LEAD_TIME", "2"),
        ("TESSERA_PURGE_INTERVAL", "1"),
    ];
    let mut s = Server::start_with(&rotating).await;
    let new_secret = "the-sealing-secret-after-the-reseal";
    let file = s.dir_path().join("new-secret");
    std::fs::write(&file, format!("{new_secret}\n")).unwrap();
    let out = s
        .cli_json(&[
            "keys",
            "reseal",
            "--new-secret-file",
            file.to_str().unwrap(),
            "--json",
        ])
        .await;
    let resealed = out["resealed"].as_u64().unwrap();
    let listed = s
        .cli_output_with(
            &["keys", "list", "--json"],
            &[("TESSERA_SECRET", new_secret)],
        )
        .await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let fingerprints: std::collections::BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["sealed_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        fingerprints.len(),
        1,
        "every key names the new secret: {listed}"
    );
    assert!(!listed.to_string().contains(new_secret));
    let sr = &s;
    wait_until(
        Duration::from_secs(10),
        "the server refuses to rotate under its old secret",
        || async move { sr.logs().contains("automatic key rotation refused") },
    )
    .await;
    assert!(
        s.logs()
            .contains("no longer open with this server's sealing secret"),
        "the change feed told the server of the reseal"
    );
    let after = s
        .cli_output_with(
            &["keys", "list", "--json"],
            &[("TESSERA_SECRET", new_secret)],
        )
        .await;
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(
        after.as_array().unwrap().len() as u64,
        resealed,
        "no key was made under the old secret: {after}"
    );
    // The old secret no longer starts a server (the keys were re-sealed) ...
    let old = serve_elsewhere(&s, &[]).await;
    assert!(!old.status.success());
    assert!(stderr(&old).contains("cannot unseal"), "{}", stderr(&old));
    // ... the new one does, and that server rotates on schedule.
    restart_and_check(&mut s, &[("TESSERA_SECRET", new_secret)]).await;
    let sr = &s;
    let want = resealed + 1;
    wait_until(
        Duration::from_secs(10),
        "the restarted server rotates",
        || async move { kids(sr).await.len() as u64 >= want },
    )
    .await;
    restart_and_check(&mut s, &[]).await;
}

/// A lead time shorter than the JWKS's `Cache-Control: max-age` would let a verifier meet a
/// token signed by a key missing from the JWKS it cached.
#[tokio::test]
async fn a_rotation_lead_time_shorter_than_the_jwks_cache_lifetime_is_refused() {
    let mut s = Server::start().await;
    let res = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let cache_control = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert_eq!(cache_control, "public, max-age=300");
    let before = kids(&s).await;
    for lead in ["--lead-time=2", "--lead-time=299", "--lead-time=-1"] {
        let out = s.cli_output(&["keys", "rotate", lead]).await;
        assert!(!out.status.success(), "--lead-time {lead} is refused");
        assert!(stderr(&out).contains("max-age=300"), "{}", stderr(&out));
        assert_eq!(kids(&s).await, before, "nothing was written");
    }
    // Settings that would do the same are refused too.
    let out = s
        .cli_output_with(
            &["keys", "list"],
            &[("TESSERA_KEY_ROTATION_LEAD_TIME", "-10")],
        )
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("key_rotation_lead_time"),
        "{}",
        stderr(&out)
    );
    // With a shorter configured lead time, the JWKS is cached for less, and a lead time of
    // that long is accepted.
    let out = s.cli(&["keys", "rotate", "--lead-time", "300"]).await;
    assert!(out.contains("signs from"), "{out}");
    restart_and_check(&mut s, &[("TESSERA_KEY_ROTATION_LEAD_TIME", "20")]).await;
    let res = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=10");
    let out = s.cli_output(&["keys", "rotate", "--lead-time", "9"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max-age=10"), "{}", stderr(&out));
    s.cli(&["keys", "rotate", "--lead-time", "10"]).await;
    restart_and_check(&mut s, &[]).await;
}

/// The same over PostgreSQL with two nodes rotating automatically: `keys reseal` reaches both
/// through the change feed, neither seals a key under the old secret, and both start again
/// with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reseal_under_two_rotating_nodes_on_postgres_leaves_keys_the_new_secret_opens() {
    let Some(db) = tessera_store_postgres::testing::TestDatabase::create("key_safety_reseal").await
    else {
        return;
    };
    let env = [
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "4"),
        ("TESSERA_KEY_ROTATION_INTERVAL", "3"),
        ("TESSERA_KEY_ROTATION_LEAD_TIME", "2"),
        ("TESSERA_PURGE_INTERVAL", "1"),
        // Two nodes of one deployment: one issuer.
        ("TESSERA_ISSUER", "http://127.0.0.1:9"),
    ];
    let mut a = Server::start_with(&env).await;
    let mut b = Server::start_with(&env).await;
    let new_secret = "the-sealing-secret-after-the-reseal-on-postgres";
    let file = a.dir_path().join("new-secret");
    std::fs::write(&file, format!("{new_secret}\n")).unwrap();
    let out = a
        .cli_json(&[
            "keys",
            "reseal",
            "--new-secret-file",
            file.to_str().unwrap(),
            "--json",
        ])
        .await;
    let resealed = out["resealed"].as_u64().unwrap();
    for node in [&a, &b] {
        wait_until(
            Duration::from_secs(10),
            "each node refuses to rotate under its old secret",
            || async move { node.logs().contains("automatic key rotation refused") },
        )
        .await;
        assert!(node
            .logs()
            .contains("no longer open with this server's sealing secret"));
    }
    let listed = a
        .cli_output_with(
            &["keys", "list", "--json"],
            &[("TESSERA_SECRET", new_secret)],
        )
        .await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len() as u64,
        resealed,
        "no key was made under the old secret: {listed}"
    );
    restart_and_check(&mut a, &[("TESSERA_SECRET", new_secret)]).await;
    restart_and_check(&mut b, &[("TESSERA_SECRET", new_secret)]).await;
    let ar = &a;
    let want = resealed + 1;
    wait_until(
        Duration::from_secs(10),
        "the restarted nodes rotate",
        || async move { kids(ar).await.len() as u64 >= want },
    )
    .await;
    restart_and_check(&mut b, &[]).await;
}
