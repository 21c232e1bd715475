//! `tessera config check`: every setting's effective value and its source (default, file, env,
//! flag), secrets never shown, and an invalid configuration refused naming the key and where
//! it was set. Also: the example config at the repository's root loads.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::BIN;

/// Runs `tessera ARGS` with exactly `env` among the `TESSERA_*` variables, in `dir`.
fn tessera(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run tessera")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SECRET: &str = "sealing-secret-value-1234567";
const ADMIN_TOKEN: &str = "admin-bootstrap-value-1234567";
const METRICS: &str = "metrics-token-value-1234567";
const DB_PASSWORD: &str = "db-password-value-1234567";

#[test]
fn config_check_names_each_source_and_never_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        format!(
            "request_timeout = 5\nlisten = \"127.0.0.1:7000\"\nmetrics_token = \"{METRICS}\"\n\
             database_url = \"postgres://tessera:{DB_PASSWORD}@db.example.com/tessera\"\n"
        ),
    )
    .unwrap();
    let env = [
        ("TESSERA_BODY_LIMIT", "1000"),
        ("TESSERA_ISSUER", "http://127.0.0.1:7100"),
        ("TESSERA_SECRET", SECRET),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let args = [
        "--config",
        "t.toml",
        "config",
        "check",
        "--listen",
        "127.0.0.1:7100",
    ];
    let out = tessera(dir.path(), &[&args[..], &["--json"]].concat(), &env);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["settings"];
    let source = |key: &str| (s[key]["source"].clone(), s[key]["from"].clone());
    assert_eq!(v["config_file"], "t.toml");
    assert_eq!(
        s["listen"]["value"], "127.0.0.1:7100",
        "the flag beats the file"
    );
    assert_eq!(source("listen"), ("flag".into(), "--listen".into()));
    assert_eq!(s["issuer"]["value"], "http://127.0.0.1:7100");
    assert_eq!(source("issuer"), ("env".into(), "TESSERA_ISSUER".into()));
    assert_eq!(s["body_limit"]["value"], 1000);
    assert_eq!(
        source("body_limit"),
        ("env".into(), "TESSERA_BODY_LIMIT".into())
    );
    assert_eq!(s["request_timeout"]["value"], 5);
    assert_eq!(source("request_timeout"), ("file".into(), "t.toml".into()));
    assert_eq!(s["session_ttl"]["value"], 43200);
    assert_eq!(source("session_ttl"), ("default".into(), Value::Null));
    assert_eq!(source("secret"), ("env".into(), "TESSERA_SECRET".into()));
    assert_eq!(
        source("admin_token"),
        ("env".into(), "TESSERA_ADMIN_TOKEN".into())
    );
    assert_eq!(s["metrics_token"]["value"], "<redacted>");
    assert_eq!(
        s["database_url"]["value"],
        "postgres://tessera:***@db.example.com/tessera"
    );
    // A flag clap reads from the environment when absent is reported as that variable.
    let out = tessera(
        dir.path(),
        &["config", "check", "--json"],
        &[("TESSERA_LOG_FORMAT", "json")],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["settings"]["log_format"]["value"], "json");
    assert_eq!(v["settings"]["log_format"]["from"], "TESSERA_LOG_FORMAT");
    // The sealing secret read from a file: the file is named, never its content.
    std::fs::write(dir.path().join("sealing.key"), SECRET).unwrap();
    let out = tessera(
        dir.path(),
        &["--secret-file", "sealing.key", "config", "check", "--json"],
        &[],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["settings"]["secret"]["from"], "--secret-file");
    assert_eq!(
        v["settings"]["secret"]["value"],
        "<redacted> (from sealing.key)"
    );
    assert!(!text(&out).contains(SECRET));

    // The same in text, one line a setting with its source; no secret in either.
    let out = tessera(dir.path(), &args, &env);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("listen = \"127.0.0.1:7100\"") && shown.contains("# flag --listen"),
        "{shown}"
    );
    assert!(shown.contains("# env TESSERA_BODY_LIMIT"), "{shown}");
    assert!(shown.contains("# file t.toml"), "{shown}");
    let json = tessera(dir.path(), &[&args[..], &["--json"]].concat(), &env);
    for output in [shown, text(&json)] {
        for secret in [SECRET, ADMIN_TOKEN, METRICS, DB_PASSWORD] {
            assert!(!output.contains(secret), "{secret} shown:\n{output}");
        }
    }
}

#[test]
fn an_invalid_config_fails_naming_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let check = |file: &str, env: &[(&str, &str)]| {
        std::fs::write(dir.path().join("t.toml"), file).unwrap();
        let out = tessera(dir.path(), &["--config", "t.toml", "config", "check"], env);
        assert!(!out.status.success(), "{file}: {}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check("listen = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n", &[]);
    assert!(
        err.contains("t.toml") && err.contains("unknown field `listen_adress`"),
        "{err}"
    );
    let err = check("purge_interval = 0\n", &[]);
    assert!(
        err.contains("purge_interval must be at least 1 second (set by file t.toml)"),
        "{err}"
    );
    let err = check("body_limit = \"big\"\n", &[]);
    assert!(
        err.contains("t.toml") && err.contains("body_limit"),
        "{err}"
    );
    let err = check("", &[("TESSERA_PURGE_INTERVAL", "0")]);
    assert!(
        err.contains(
            "purge_interval must be at least 1 second (set by env TESSERA_PURGE_INTERVAL)"
        ),
        "{err}"
    );
    let err = check("", &[("TESSERA_WORKERS", "many")]);
    assert!(err.contains("TESSERA_WORKERS: 'many'"), "{err}");
    let err = check("", &[("TESSERA_ADMIN_TOKEN", "short-admin")]);
    assert!(
        err.contains("TESSERA_ADMIN_TOKEN must be at least"),
        "{err}"
    );
    assert!(!err.contains("short-admin"), "{err}");
}

#[test]
fn the_example_config_loads_and_sets_what_it_shows() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tessera.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(
        dir.path(),
        &["--config", example, "config", "check", "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v["settings"].as_object().unwrap();
    for key in [
        "listen",
        "database_url",
        "audit_retention",
        "login_lockout_window",
    ] {
        assert_eq!(s[key]["source"], "file", "{key}");
    }
    // Commented-out settings are left to their defaults.
    for key in ["issuer", "ops_listen", "hosts", "dialects"] {
        assert_eq!(s[key]["source"], "default", "{key}");
    }
}
