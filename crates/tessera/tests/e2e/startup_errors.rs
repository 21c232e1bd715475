//! The binary says what is wrong: a database that cannot be opened is refused with its cause
//! named once (not found, not a directory, permission denied, connection refused,
//! authentication failed), a bare port given as the listen address is named as such,
//! `tessera migrate` says what it did, PostgreSQL's notices stay out of the log,
//! `tessera secret generate` makes a secret the keys are sealed under, and text output names key
//! states as a reader would and shows times as RFC 3339 (`--json` keeps the API's names and
//! Unix seconds).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tessera_store_postgres::testing::{self, TestDatabase};

use crate::support::{free_port, Server, BIN, SEALING_SECRET};

/// The binary run in `dir` with only the given settings.
fn tessera(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("TESSERA_SECRET", SEALING_SECRET)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    tessera(dir, env).args(args).output().expect("run tessera")
}

/// Standard error of a command that must fail.
fn failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "it succeeded: {stderr}");
    stderr
}

/// Asserts `text` says `cause` exactly once and nothing about a pool timing out.
fn says_once(text: &str, cause: &str) {
    assert_eq!(text.matches(cause).count(), 1, "{cause:?} once in: {text}");
    assert!(!text.contains("timed out"), "{text}");
    assert!(!text.contains("os error"), "{text}");
}

#[test]
fn sqlite_in_a_missing_directory_is_not_found_once() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["migrate"][..], &["serve"]] {
        let out = run(
            dir.path(),
            &[("TESSERA_DATABASE_URL", "sqlite://./nodir/t.db")],
            args,
        );
        let err = failure(&out);
        says_once(&err, "the directory ./nodir does not exist");
    }
}

#[test]
fn sqlite_under_a_regular_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plain"), "x").unwrap();
    let out = run(
        dir.path(),
        &[("TESSERA_DATABASE_URL", "sqlite://./plain/t.db")],
        &["migrate"],
    );
    says_once(&failure(&out), "./plain is a file, not a directory");
}

#[test]
fn sqlite_a_user_may_not_open_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let url = "sqlite://./locked/t.db";
    assert!(
        run(dir.path(), &[("TESSERA_DATABASE_URL", url)], &["migrate"])
            .status
            .success()
    );
    // Root passes any permission check: then the command runs as nobody, and the directory
    // stays root's (0700); otherwise the directory is closed to its owner.
    let as_root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    if as_root {
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
    } else {
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
    }
    for args in [&["keys", "list"][..], &["migrate"]] {
        let mut cmd = tessera(dir.path(), &[("TESSERA_DATABASE_URL", url)]);
        if as_root {
            cmd.uid(65534).gid(65534);
        }
        let out = match cmd.args(args).output() {
            Ok(out) => out,
            // The binary sits where the other user may not go (a checkout under /root).
            Err(e) if as_root && e.kind() == std::io::ErrorKind::PermissionDenied => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (permissions): sqlite_a_user_may_not_open_is_permission_denied \
                     runs the binary as nobody, who may not execute {BIN}"
                );
                return;
            }
            Err(e) => panic!("run tessera: {e}"),
        };
        let err = failure(&out);
        says_once(&err, "permission denied");
        assert!(err.contains("./locked/t.db"), "{err}");
        assert!(!err.contains("no database at"), "{err}");
    }
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
}

#[test]
fn postgres_on_a_closed_port_is_connection_refused_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://tessera:tessera@127.0.0.1:{}/tessera",
        free_port()
    );
    let out = run(dir.path(), &[("TESSERA_DATABASE_URL", &url)], &["migrate"]);
    let err = failure(&out);
    says_once(&err, "connection refused");
    assert!(
        !err.contains("tessera:tessera@"),
        "the password is shown: {err}"
    );
}

#[tokio::test]
async fn postgres_with_a_wrong_password_is_authentication_failed_once() {
    let Some(server) = testing::server_url("postgres_wrong_password") else {
        return;
    };
    let (head, tail) = server.split_once('@').unwrap();
    let (user, _) = head.rsplit_once(':').unwrap();
    let url = format!("{user}:not-the-password@{tail}");
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[("TESSERA_DATABASE_URL", &url)], &["migrate"]);
    let err = failure(&out);
    says_once(&err, "password authentication failed");
    assert!(!err.contains("not-the-password"), "{err}");
}

#[test]
fn a_bare_port_is_an_invalid_listen_address_not_an_issuer_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &["serve", "--listen", "8082"]);
    let err = failure(&out);
    says_once(&err, "invalid listen address '8082'");
    assert!(err.contains("127.0.0.1:8082"), "{err}");
    assert!(!err.contains("issuer"), "{err}");
}

#[test]
fn migrate_says_whether_it_created_the_schema_or_found_it_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_DATABASE_URL", "sqlite://./t.db")];
    let first = run(dir.path(), &env, &["migrate"]);
    assert!(first.status.success());
    let first = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.starts_with("created the database schema ("),
        "{first}"
    );
    let again = run(dir.path(), &env, &["migrate", "--json"]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["applied"], 0);
    assert_eq!(again["created"], false);
    let third = run(dir.path(), &env, &["migrate"]);
    let third = String::from_utf8_lossy(&third.stdout);
    assert!(
        third.starts_with("the database schema is already up to date"),
        "{third}"
    );
}

#[tokio::test]
async fn postgres_migrate_reports_and_a_second_start_logs_no_notice() {
    let Some(db) = TestDatabase::create("postgres_migrate_notice").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_DATABASE_URL", db.url.as_str())];
    let first = run(dir.path(), &env, &["migrate"]);
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("created the database schema"));
    let again = run(dir.path(), &env, &["migrate"]);
    assert!(String::from_utf8_lossy(&again.stdout)
        .starts_with("the database schema is already up to date"));
    // A server started on the migrated database, at the debug level: sqlx would log the
    // migrator's "relation ... already exists, skipping" notice at info.
    let mut server = Server::start_with(&env).await;
    server.stop().await;
    let logs = server.logs();
    assert!(logs.contains("sqlx"), "sqlx logs nothing here: {logs}");
    assert!(!logs.contains("already exists"), "{logs}");
    assert!(!logs.contains("sqlx::postgres::notice"), "{logs}");
}

#[test]
fn secret_generate_makes_a_secret_a_short_one_names_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &["secret", "generate"]);
    assert!(out.status.success());
    let secret = String::from_utf8(out.stdout).unwrap();
    let secret = secret.trim_end();
    assert_eq!(secret.len(), 43, "{secret}");
    let env = [
        ("TESSERA_DATABASE_URL", "sqlite://./t.db"),
        ("TESSERA_SECRET", secret),
    ];
    assert!(run(dir.path(), &env, &["migrate"]).status.success());
    let rotated = run(dir.path(), &env, &["keys", "rotate"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let short = [
        ("TESSERA_DATABASE_URL", "sqlite://./t.db"),
        ("TESSERA_SECRET", "short"),
    ];
    let err = failure(&run(dir.path(), &short, &["keys", "rotate"]));
    says_once(&err, "at least 16 bytes");
    assert!(err.contains("tessera secret generate"), "{err}");
    assert!(!err.contains("short"), "the secret is shown: {err}");
}

/// Whether `text` holds an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SSZ`).
fn has_rfc3339(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == '"')
        .any(|w| {
            let b = w.as_bytes();
            b.len() == 20
                && b.iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    10 => *c == b'T',
                    13 | 16 => *c == b':',
                    19 => *c == b'Z',
                    _ => c.is_ascii_digit(),
                })
        })
}

#[test]
fn text_output_names_key_states_and_shows_times_as_rfc3339() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_DATABASE_URL", "sqlite://./t.db")];
    assert!(run(dir.path(), &env, &["migrate"]).status.success());
    let rotated = run(dir.path(), &env, &["keys", "rotate"]);
    let rotated = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(has_rfc3339(&rotated), "{rotated}");
    let list = run(dir.path(), &env, &["keys", "list"]);
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let line = list.lines().next().unwrap_or_default();
    assert!(line.contains("  next  "), "{list}");
    assert!(line.contains("signs from "), "{list}");
    assert!(has_rfc3339(line), "{list}");
    // `--json` keeps the state's API name and Unix seconds.
    let json = run(dir.path(), &env, &["keys", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json[0]["state"], "pending");
    assert!(json[0]["activates_at"].is_i64());
    // `client show` prints its times readable; `--json` keeps the numbers.
    let made = run(
        dir.path(),
        &env,
        &["client", "create", "--name", "r", "--json"],
    );
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let id = made["client_id"].as_str().unwrap();
    let shown = run(dir.path(), &env, &["client", "show", id]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert!(
        has_rfc3339(shown["created_at"].as_str().unwrap()),
        "{shown}"
    );
    let raw = run(dir.path(), &env, &["client", "show", id, "--json"]);
    let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert!(raw["created_at"].is_i64(), "{raw}");
}
