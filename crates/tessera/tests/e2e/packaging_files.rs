//! The compose example (`packaging/compose.yaml`) runs two nodes on one PostgreSQL with one
//! issuer and one secret, and sets only variables the binary knows; two servers started with
//! a node's settings (on the test's PostgreSQL database) share tokens; the systemd unit
//! (`packaging/tessera.service`) passes `systemd-analyze verify` and its sandboxing rates 2.0
//! or less in `systemd-analyze security`, and its environment alone starts the server.
//! Skipped with a note where PyYAML or systemd-analyze is missing (see `packaging.rs`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::packaging::{repo, run_ok, tool_runs};
use crate::support::{free_port, BIN};

/// Every `TESSERA_*` variable the binary reads: the string literals of that form in its
/// sources (clap's `env = "..."` attributes and the settings' own look-ups).
fn known_variables() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"TESSERA_").skip(1) {
                    let name: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if piece[name.len()..].starts_with('"') && !name.is_empty() {
                        found.insert(format!("TESSERA_{name}"));
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(
        found.contains("TESSERA_ISSUER") && found.contains("TESSERA_DATABASE_URL"),
        "the scan of the sources found {found:?}"
    );
    found
}

/// The compose file as JSON (PyYAML reads it, merge keys resolved).
fn compose() -> Value {
    let out = run_ok(
        Command::new("python3")
            .arg("-c")
            .arg("import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)")
            .arg(repo().join("packaging/compose.yaml")),
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_compose_example_runs_two_nodes_on_one_database_with_known_settings() {
    let test = "the_compose_example_runs_two_nodes_on_one_database_with_known_settings";
    if !tool_runs(test, "python3", &["-c", "import yaml"]) {
        return;
    }
    let file = compose();
    let services = file["services"].as_object().unwrap();
    let known = known_variables();
    for (name, service) in services {
        for key in service["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if key.starts_with("TESSERA_") {
                assert!(
                    known.contains(key),
                    "service {name} sets {key}, which the binary does not read"
                );
            }
        }
    }

    let nodes: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s["command"] == serde_json::json!(["serve"]))
        .collect();
    assert!(
        nodes.len() >= 2,
        "fewer than two serving nodes: {services:?}"
    );
    let env = |s: &Value, key: &str| s["environment"][key].as_str().map(str::to_owned);
    let (_, first) = nodes[0];
    for key in ["TESSERA_ISSUER", "TESSERA_SECRET", "TESSERA_DATABASE_URL"] {
        let value = env(first, key).unwrap_or_else(|| panic!("the nodes do not set {key}"));
        for (name, node) in &nodes {
            assert_eq!(
                env(node, key).as_deref(),
                Some(value.as_str()),
                "{name}: {key}"
            );
        }
    }
    let url = env(first, "TESSERA_DATABASE_URL").unwrap();
    let host = url
        .strip_prefix("postgres://")
        .and_then(|rest| rest.rsplit_once('@'))
        .and_then(|(_, at)| at.split([':', '/']).next())
        .unwrap_or_else(|| panic!("not a PostgreSQL URL: {url}"));
    assert!(
        services.contains_key(host),
        "the database host {host} is no service"
    );
    assert!(
        services[host]["image"]
            .as_str()
            .unwrap()
            .contains("postgres"),
        "{host} does not run PostgreSQL"
    );

    // The schema is made once, before the nodes start.
    let migrate = services
        .iter()
        .find(|(_, s)| s["command"] == serde_json::json!(["migrate"]))
        .map(|(name, _)| name)
        .expect("a service running `tessera migrate`");
    for (name, node) in &nodes {
        assert_eq!(
            node["depends_on"][migrate]["condition"], "service_completed_successfully",
            "{name} does not wait for {migrate}"
        );
    }

    // The load balancer sends to every node, and the nodes trust its address only.
    let lb = services.get("lb").expect("the load balancer");
    let command: Vec<&str> = lb["command"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (name, _) in &nodes {
        assert!(
            command.contains(&format!("{name}:8080").as_str()),
            "lb does not send to {name}"
        );
    }
    let lb_address = lb["networks"]["tessera"]["ipv4_address"].as_str().unwrap();
    assert_eq!(
        env(first, "TESSERA_TRUSTED_PROXIES").as_deref(),
        Some(lb_address)
    );
}

#[test]
fn the_systemd_unit_verifies_and_rates_ok_for_exposure() {
    let test = "the_systemd_unit_verifies_and_rates_ok_for_exposure";
    if !tool_runs(test, "systemd-analyze", &["--version"]) {
        return;
    }
    let unit = std::fs::read_to_string(repo().join("packaging/tessera.service")).unwrap();
    let known = known_variables();
    for line in unit.lines() {
        if let Some(assignment) = line.strip_prefix("Environment=") {
            let (key, _) = assignment.split_once('=').unwrap();
            assert!(
                known.contains(key),
                "the unit sets {key}, which the binary does not read"
            );
        }
    }
    for setting in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=tessera",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.contains(setting), "the unit lacks {setting:?}");
    }

    // `verify` checks that ExecStart's binary exists: point it at the binary under test.
    let exec = "ExecStart=/usr/local/bin/tessera serve\n";
    assert!(
        unit.contains(exec),
        "the unit's ExecStart changed: update this test"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tessera.service");
    std::fs::write(
        &copy,
        unit.replace(exec, &format!("ExecStart={BIN} serve\n")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );

    // Exposure 2.0 or less ("OK" is below 4.0); the threshold is given in tenths.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&copy)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the unit's exposure is above 2.0:\n{report}"
    );
    assert!(
        report.contains("Overall exposure level for tessera.service"),
        "{report}"
    );
}

/// The `Environment=` settings of the unit, in order.
fn unit_environment(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn the_server_starts_with_the_units_environment_alone() {
    let unit = std::fs::read_to_string(repo().join("packaging/tessera.service")).unwrap();
    let env = unit_environment(&unit);
    assert!(
        env.iter().any(|(k, _)| k == "TESSERA_DATABASE_URL"),
        "{env:?}"
    );
    // The unit's own settings, nothing from this process, and no environment file: only the
    // database (into a temporary directory) and the port (a free one) are changed.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for (key, value) in &env {
        let value = match key.as_str() {
            "TESSERA_DATABASE_URL" => format!("sqlite://{}/tessera.db", dir.path().display()),
            "TESSERA_LISTEN" => {
                assert_eq!(value, "127.0.0.1:8080", "the unit listens elsewhere now");
                format!("127.0.0.1:{port}")
            }
            _ => value.clone(),
        };
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().unwrap();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    let ready = loop {
        let ok = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
        if ok || start.elapsed() > Duration::from_secs(20) {
            break ok;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
            panic!("the server exited ({status}) with the unit's environment:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(ready, "the server never became ready:\n{log}");
}

/// `value` with compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}` replaced from
/// `vars` (a missing required one fails the test with its message).
fn interpolate(value: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let inner = &rest[start + 2..end];
        let (name, fallback) = match inner.split_once(":-").or(inner.split_once(":?")) {
            Some((name, other)) if inner.contains(":-") => (name, Some(other)),
            Some((name, message)) => {
                assert!(vars.iter().any(|(k, _)| *k == name), "{message}");
                (name, None)
            }
            None => (inner, None),
        };
        let found = vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        out.push_str(found.or(fallback).unwrap_or_default());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_compose_nodes_settings_serve_two_nodes_on_one_postgres_database() {
    let test = "the_compose_nodes_settings_serve_two_nodes_on_one_postgres_database";
    if !tool_runs(test, "python3", &["-c", "import yaml"]) {
        return;
    }
    let Some(db) = tessera_store_postgres::testing::TestDatabase::create(test).await else {
        return;
    };
    let file = compose();
    let vars = [
        ("TESSERA_SECRET", "compose-e2e-sealing-secret-0123456789"),
        ("POSTGRES_PASSWORD", "unused"),
    ];
    // A node's settings as compose gives them, but for the database (the test's own, not
    // the `postgres` service) and the port (the harness picks a free one for each node).
    let mut env: Vec<(String, String)> = Vec::new();
    for (key, value) in file["services"]["tessera-1"]["environment"]
        .as_object()
        .unwrap()
    {
        let value = match key.as_str() {
            "TESSERA_LISTEN" => continue,
            "TESSERA_DATABASE_URL" => db.url.clone(),
            _ => interpolate(value.as_str().unwrap(), &vars),
        };
        env.push((key.clone(), value));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a = crate::support::Server::start_with(&env).await;
    let b = crate::support::Server::start_with(&env).await;
    let discovery = b.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], "http://localhost:8080");

    // A token one node issues is active on the other.
    let client = a.create_client(&[]).await;
    b.wait_known(&client).await;
    let token = a.access_token(&client).await;
    assert!(b.is_active(&client, &token).await);
}
