//! `tessera backup --to FILE` and `tessera restore --from FILE`: an online, consistent copy of
//! the SQLite database. A backup taken while a server issues tokens from several tasks,
//! restored into a fresh directory and served with the same sealing secret, knows every token
//! acknowledged before it started, and passes SQLite's `PRAGMA integrity_check`. Restoring
//! never replaces a database a server has open. PostgreSQL: the README's `pg_dump` procedure.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

use crate::support::{wait_until, Creds, Server};

/// Tasks issuing tokens at once.
const LOAD_TASKS: usize = 4;
/// Tokens acknowledged before the backup starts (at least).
const BEFORE_BACKUP: usize = 200;

/// Issues opaque tokens until `stop`, recording each one the server acknowledged (200).
async fn issue_until(
    http: reqwest::Client,
    url: String,
    client: Creds,
    issued: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let res = http
            .post(&url)
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(res.status(), StatusCode::OK, "the load's token request");
        let body: Value = res.json().await.expect("token JSON");
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        issued.lock().unwrap().push(token);
    }
}

async fn integrity_check(path: &std::path::Path) -> String {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .read_only(true)
        .connect()
        .await
        .expect("open the backup");
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_every_token_acknowledged_before_it() {
    let mut server = Server::start().await;
    let client = server
        .create_client(&["--access-token-format", "opaque"])
        .await;
    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..LOAD_TASKS)
        .map(|_| {
            tokio::spawn(issue_until(
                server.http.clone(),
                server.url("/oauth2/token"),
                client.clone(),
                issued.clone(),
                stop.clone(),
            ))
        })
        .collect();
    wait_until(
        Duration::from_secs(60),
        "tokens issued before the backup",
        || {
            let n = issued.lock().unwrap().len();
            async move { n >= BEFORE_BACKUP }
        },
    )
    .await;
    // Every token acknowledged before the backup starts.
    let before: Vec<String> = issued.lock().unwrap().clone();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("tessera-backup.db");
    let out = server
        .cli(&["backup", "--to", file.to_str().unwrap()])
        .await;
    assert!(
        out.contains("wrote a consistent copy") && out.contains("tessera-backup.db"),
        "{out}"
    );
    assert!(out.contains("sealing secret"), "{out}");
    // The load went on around the backup.
    let after_backup = issued.lock().unwrap().len();
    wait_until(
        Duration::from_secs(60),
        "tokens issued after the backup",
        || {
            let n = issued.lock().unwrap().len();
            async move { n > after_backup + LOAD_TASKS }
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.expect("a load task");
    }
    let old_issuer = server.issuer().to_owned();
    server.stop().await;

    assert_eq!(integrity_check(&file).await, "ok");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the backup holds password hashes: {mode:o}"
        );
    }

    // Restore into a fresh directory and serve it with the same secret.
    let fresh = tempfile::tempdir().unwrap();
    let restored = fresh.path().join("tessera.db");
    let url = format!("sqlite://{}", restored.display());
    let restore = ["restore", "--from", file.to_str().unwrap()];
    let with_url = [("TESSERA_DATABASE_URL", url.as_str())];
    let out = server.cli_output_with(&restore, &with_url).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("restored") && said.contains("sealing secret"),
        "{said}"
    );
    // Once there, a database is replaced only with --force.
    let out = server.cli_output_with(&restore, &with_url).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a database exists") && err.contains("--force"),
        "{err}"
    );
    let server = Server::start_with(&[
        ("TESSERA_DATABASE_URL", url.as_str()),
        ("TESSERA_ISSUER", old_issuer.as_str()),
    ])
    .await;
    let inactive: Vec<&String> = {
        let mut inactive = Vec::new();
        for token in &before {
            if !server.is_active(&client, token).await {
                inactive.push(token);
            }
        }
        inactive
    };
    assert!(
        inactive.is_empty(),
        "{} of {} tokens acknowledged before the backup are not in it",
        inactive.len(),
        before.len()
    );
    // A token the restored server never saw is inactive there (the check can fail).
    assert!(!server.is_active(&client, "tat_not-a-token-it-issued").await);
}

#[tokio::test]
async fn backup_refuses_an_existing_file_unless_forced_and_points_postgres_to_pg_dump() {
    let mut server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.db");
    let path = file.to_str().unwrap();
    std::fs::write(&file, "keep me").unwrap();
    let out = server.cli_output(&["backup", "--to", path]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let json: Value = server
        .cli_json(&["backup", "--to", path, "--force", "--json"])
        .await;
    assert_eq!(json["backup"], path);
    assert!(json["bytes"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(integrity_check(&file).await, "ok");
    // Only the backup is left in the directory: no partial file.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["b.db"]);

    // A database a server has open is never replaced.
    let out = server
        .cli_output(&["restore", "--from", path, "--force"])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is open in a server") && err.contains("stop every server"),
        "{err}"
    );
    // Once the server has stopped, it is.
    server.stop().await;
    let out = server
        .cli_output(&["restore", "--from", path, "--force"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nor is a file that is not a backup put in place.
    let out = server
        .cli_output_with(
            &["restore", "--from", path, "--force"],
            &[(
                "TESSERA_DATABASE_URL",
                &format!("sqlite://{}/r.db", dir.path().display()),
            )],
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let not_a_backup = dir.path().join("notes.txt");
    std::fs::write(&not_a_backup, "not a database").unwrap();
    let out = server
        .cli_output_with(
            &[
                "restore",
                "--from",
                not_a_backup.to_str().unwrap(),
                "--force",
            ],
            &[(
                "TESSERA_DATABASE_URL",
                &format!("sqlite://{}/r.db", dir.path().display()),
            )],
        )
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a Tessera database backup"), "{err}");

    let out = server
        .cli_output_with(
            &["backup", "--to", dir.path().join("pg.db").to_str().unwrap()],
            &[(
                "TESSERA_DATABASE_URL",
                "postgres://tessera:pg-password-1@127.0.0.1:1/none",
            )],
        )
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pg_dump") && err.contains("Backup and restore"),
        "{err}"
    );
    assert!(!err.contains("pg-password-1"), "{err}");
    assert!(!dir.path().join("pg.db").exists());
}

/// Runs a PostgreSQL client program; `None` (with a note on stderr, or a failure in CI) when it
/// is not installed.
fn pg_tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{program} is not installed, and CI is: the PostgreSQL backup test must run"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (PostgreSQL backup): {program} is not installed (install \
                 postgresql-client)"
            );
            None
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

/// The README's PostgreSQL procedure: `pg_dump -Fc`, `pg_restore` into an empty database, the
/// same sealing secret and issuer; every token issued before the dump is active after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_restored_from_pg_dump_serves_its_tokens() {
    use tessera_store_postgres::testing::TestDatabase;
    let Some(db) = TestDatabase::create("pg_dump_restore").await else {
        return;
    };
    let mut server = Server::start_with(&[
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "4"),
    ])
    .await;
    // The CLI says to use pg_dump rather than copy a PostgreSQL database itself.
    let out = server.cli_output(&["backup", "--to", "x.db"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump -Fc"));
    let client = server
        .create_client(&["--access-token-format", "opaque"])
        .await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(server.access_token(&client).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("tessera.dump");
    let dump = dump.to_str().unwrap();
    let Some(out) = pg_tool("pg_dump", &["-Fc", "--no-owner", "-d", &db.url, "-f", dump]) else {
        return;
    };
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issuer = server.issuer().to_owned();
    server.stop().await;

    let restored = TestDatabase::create("pg_dump_restore_into").await.unwrap();
    let out = pg_tool("pg_restore", &["--no-owner", "-d", &restored.url, dump]).unwrap();
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start_with(&[
        ("TESSERA_DATABASE_URL", restored.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "4"),
        ("TESSERA_ISSUER", issuer.as_str()),
    ])
    .await;
    for token in &tokens {
        assert!(server.is_active(&client, token).await, "{token} lost");
    }
    assert!(!server.is_active(&client, "not-a-token-it-issued").await);
    // New tokens are issued on the restored database too.
    let fresh = server.access_token(&client).await;
    assert!(server.is_active(&client, &fresh).await);
}
