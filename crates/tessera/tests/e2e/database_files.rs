//! Operator safety around the database: a management command run where there is no database
//! refuses instead of answering from a new empty one, and the SQLite files that hold password
//! hashes and e-mail addresses are readable by their owner only, whatever the umask.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tessera_store_postgres::testing::TestDatabase;

use crate::support::{free_port, http_client, BIN};

/// The binary run in `dir` with only the given settings (nothing inherited that could change
/// which database it opens).
fn tessera(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir).envs(env.iter().copied());
    cmd
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    tessera(dir, env)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tessera")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_management_command_refuses_a_missing_database_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("tessera.db");
    let commands: &[&[&str]] = &[
        &["client", "list"],
        &["client", "create", "--name", "billing", "--json"],
        &["user", "list"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["token", "introspect", "abc"],
        &["trust", "list"],
        &["env", "list"],
        &["purge"],
    ];
    for args in commands {
        let out = run(dir.path(), &[], args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "tessera {args:?} succeeded: {stderr}"
        );
        assert!(
            stderr.contains(&format!("no database at {}", db.display())),
            "tessera {args:?} does not say where it looked: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "tessera {args:?} left {left:?} behind");
    }
    // `migrate` creates it; then the same commands work.
    let out = run(dir.path(), &[], &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    let out = run(dir.path(), &[], &["client", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_management_command_refuses_a_postgres_database_never_migrated() {
    let Some(db) = TestDatabase::create("refuses_a_postgres_database_never_migrated").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_SECRET", "a-sealing-secret-for-this-test-only"),
    ];
    let out = run(
        dir.path(),
        &env,
        &["client", "create", "--name", "x", "--json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no Tessera schema"), "{stderr}");
    assert!(
        !stderr.contains("tessera:tessera@"),
        "the password is shown: {stderr}"
    );
    let out = run(dir.path(), &env, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(dir.path(), &env, &["client", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_database_wal_shm_and_key_files_are_0600_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // No TESSERA_SECRET: the server makes `tessera.key` beside the database.
    let env = [("TESSERA_LISTEN", listen.as_str())];
    // Through the shell, so that the umask of this test process, which other tests share, is
    // left alone.
    let mut sh = Command::new("sh");
    sh.args(["-c", "umask 022 && exec \"$0\" serve", BIN]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
            sh.env_remove(k);
        }
    }
    let mut child = sh
        .current_dir(dir.path())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tessera serve");
    let http = http_client();
    let started = Instant::now();
    let ready = loop {
        if let Ok(res) = http
            .get(format!("http://{listen}/health/ready"))
            .send()
            .await
        {
            if res.status().is_success() {
                break true;
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The WAL and shared-memory files exist while the server runs.
    let files = [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "tessera.key",
    ];
    let modes: Vec<(String, u32)> = files
        .iter()
        .map(|f| ((*f).to_owned(), mode(&dir.path().join(f))))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the server did not start");
    for (file, m) in &modes {
        assert_eq!(*m, 0o600, "{file} has mode {m:o}");
    }

    // A database made by an earlier version, readable by everyone, is tightened when opened.
    for f in ["tessera.db", "tessera.key"] {
        std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    let out = run(dir.path(), &[], &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dir.path().join("tessera.db")), 0o600);
}

/// `tessera serve` in `dir` on `port`, with the issuer `http://127.0.0.1:PORT` (the database
/// and the key file are the defaults, `./tessera.db` and `./tessera.key`).
fn spawn_serve(dir: &Path, port: u16) -> std::process::Child {
    let listen = format!("127.0.0.1:{port}");
    let issuer = format!("http://{listen}");
    tessera(
        dir,
        &[
            ("TESSERA_LISTEN", listen.as_str()),
            ("TESSERA_ISSUER", issuer.as_str()),
        ],
    )
    .arg("serve")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn tessera serve")
}

async fn ready(port: u16) -> bool {
    let http = http_client();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(res) = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
        {
            if res.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits (at most 20 s) for a process to exit; kills it if it does not.
fn exited(mut child: std::process::Child) -> Option<Output> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test]
async fn a_database_served_under_one_issuer_refuses_another_until_told() {
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = spawn_serve(dir.path(), port_a);
    assert!(ready(port_a).await, "the first server did not start");

    // A second server on the same file with another issuer is refused, with both issuers in
    // the message, while the first goes on.
    let b = spawn_serve(dir.path(), port_b);
    let out = exited(b).expect("a server with another issuer kept running");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "served under the issuer http://127.0.0.1:{port_a}"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{port_b}")),
        "{stderr}"
    );
    assert!(stderr.contains("--set-issuer"), "{stderr}");
    assert!(ready(port_a).await);
    let _ = a.kill();
    let _ = a.wait();

    // Restarted with its own issuer, the first server is accepted.
    let mut again = spawn_serve(dir.path(), port_a);
    assert!(
        ready(port_a).await,
        "the first server could not start again"
    );
    let _ = again.kill();
    let _ = again.wait();

    // A deliberate change: then the new issuer is served, and the old one refused.
    let new_issuer = format!("http://127.0.0.1:{port_b}");
    let out = run(
        dir.path(),
        &[],
        &["migrate", "--set-issuer", &new_issuer, "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["issuer"], new_issuer.as_str());
    let mut b = spawn_serve(dir.path(), port_b);
    assert!(
        ready(port_b).await,
        "the server with the new issuer did not start"
    );
    let _ = b.kill();
    let _ = b.wait();
    let old = exited(spawn_serve(dir.path(), port_a)).expect("the old issuer was served");
    assert!(!old.status.success());
}
