//! Packaging (`packaging/`): the container image is built from the binary under test with
//! podman and serves tokens as a non-root user from its volume; the compose example runs two
//! nodes on one PostgreSQL with one issuer and one secret, and sets only variables the binary
//! knows; the systemd unit passes `systemd-analyze verify` and its sandboxing rates "OK" in
//! `systemd-analyze security`.
//!
//! Each test needs a tool from the system (podman, python3 with PyYAML, systemd-analyze).
//! Where one is missing the test is skipped with a note on stderr, which the test harness
//! does not capture, as the PostgreSQL tests do; with `CI` set it fails instead, because
//! `.ci/run` installs every one of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{free_port, BIN};

/// How long the container may take to answer `/health/ready`.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// The largest the image may be beyond the binary: the libraries it links, the loader, CA
/// certificates and a few small files.
const IMAGE_OVERHEAD: u64 = 8 * 1024 * 1024;

/// Whether `program ARGS` runs here. When it does not, notes the skip on stderr (straight to
/// the stream: the harness shows `eprintln!` only for failing tests), or fails with `CI` set.
pub fn tool_runs(test: &str, program: &str, args: &[&str]) -> bool {
    let ran = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match ran {
        Ok(status) if status.success() => true,
        other => {
            let why = match other {
                Ok(status) => format!("`{program} {}` exited with {status}", args.join(" ")),
                Err(e) => format!("{program} cannot be run ({e})"),
            };
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {why}, and CI is set: .ci/run installs {program}");
            }
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (packaging): {test} passes without running: {why}. Install it to run \
                 the test (.ci/run shows how)."
            );
            false
        }
    }
}

/// The repository's root directory.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a command, failing the test with its output when it does not succeed.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

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

/// Podman working in a storage of its own under a temporary directory, so the test touches
/// no image, container or volume of the machine's. The flags are those that also work as
/// root inside a VM or container: vfs storage, cgroupfs, no event journal; runc where it is
/// installed (crun refuses hybrid cgroup set-ups).
struct Podman {
    flags: Vec<String>,
    dir: tempfile::TempDir,
    containers: Vec<String>,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let mut flags: Vec<String> = vec![
            "--root".into(),
            path("storage"),
            "--runroot".into(),
            path("run"),
            "--tmpdir".into(),
            path("libpod"),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "none".into(),
        ];
        if Command::new("runc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            flags.extend(["--runtime".into(), "runc".into()]);
        }
        Podman {
            flags,
            dir,
            containers: Vec::new(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(&self.flags).args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.cmd(args))
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Starts the image as container `name` on the host's network, serving at `port` with
    /// the issuer `http://127.0.0.1:PORT`, its data in volume `volume`.
    fn start(&mut self, name: &str, image: &str, port: u16, volume: &str) {
        // Limits no higher than this process's own: raising one needs a capability a
        // container running the test may lack.
        let (files_soft, files_hard) = limit("Max open files");
        let (procs_soft, procs_hard) = limit("Max processes");
        let files = format!("nofile={files_soft}:{files_hard}");
        let procs = format!("nproc={}:{}", procs_soft.min(4096), procs_hard.min(4096));
        let issuer = format!("TESSERA_ISSUER=http://127.0.0.1:{port}");
        let listen = format!("TESSERA_LISTEN=0.0.0.0:{port}");
        let mount = format!("{volume}:/var/lib/tessera");
        self.containers.push(name.to_owned());
        self.ok(&[
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "--ulimit",
            &files,
            "--ulimit",
            &procs,
            "--env",
            &issuer,
            "--env",
            &listen,
            "--volume",
            &mount,
            image,
        ]);
    }

    /// Stops and removes container `name`.
    fn remove(&mut self, name: &str) {
        self.ok(&["rm", "--force", "--time", "10", name]);
        self.containers.retain(|c| c != name);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in self.containers.clone() {
            let _ = self.output(&["rm", "--force", "--time", "0", &name]);
        }
        // A rootless podman stores files under user ids this process cannot delete.
        if !is_root() {
            let storage = self.dir.path().to_string_lossy().into_owned();
            let _ = self.output(&["unshare", "rm", "-rf", &storage]);
        }
    }
}

/// A resource limit of this process (soft, hard) from `/proc/self/limits`.
fn limit(name: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
    let values: Vec<u64> = line[name.len()..]
        .split_whitespace()
        .take(2)
        .map(|v| v.parse().unwrap_or(u64::from(u32::MAX)))
        .collect();
    (values[0], values[1])
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Polls `/health/ready` until it answers 200; fails with the container's log if it never
/// does.
fn wait_ready(podman: &Podman, name: &str, base: &str) {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    loop {
        let ready = http
            .get(format!("{base}/health/ready"))
            .send()
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
        if ready {
            return;
        }
        if start.elapsed() > READY_DEADLINE {
            let logs = podman.output(&["logs", name]);
            panic!(
                "the container never became ready at {base}:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A client-credentials token from the server at `base`, retried while the client is not
/// known yet (a client created by the CLI reaches the server through the change feed).
fn token(base: &str, id: &str, secret: &str) -> Value {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = Instant::now();
    loop {
        let res = http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap();
        let status = res.status();
        let body: Value = res.json().unwrap();
        if status == reqwest::StatusCode::OK {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no token from {base}: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_container_image_serves_tokens_as_a_non_root_user_from_its_volume() {
    let test = "the_container_image_serves_tokens_as_a_non_root_user_from_its_volume";
    let mut podman = Podman::new();
    let mut info: Vec<&str> = podman.flags.iter().map(String::as_str).collect();
    info.push("info");
    if !tool_runs(test, "podman", &["--version"]) || !tool_runs(test, "podman", &info) {
        return;
    }
    let context = podman.dir.path().join("context");
    run_ok(
        Command::new(repo().join("packaging/container/stage.sh"))
            .arg(BIN)
            .arg(&context),
    );
    let image = "localhost/tessera-e2e:test";
    podman.ok(&[
        "build",
        "--layers=false",
        "--network",
        "host",
        "--isolation",
        "chroot",
        "--tag",
        image,
        &context.to_string_lossy(),
    ]);

    // Small: the binary and what it links, nothing else.
    let binary_size = std::fs::metadata(BIN).unwrap().len();
    let image_size: u64 = podman
        .ok(&["image", "inspect", "--format", "{{.Size}}", image])
        .trim()
        .parse()
        .unwrap();
    assert!(
        (binary_size..=binary_size + IMAGE_OVERHEAD).contains(&image_size),
        "the image has {image_size} bytes for a binary of {binary_size}"
    );
    let user = podman.ok(&["image", "inspect", "--format", "{{.Config.User}}", image]);
    assert_eq!(user.trim(), "10001:10001");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    podman.start("tessera-e2e-1", image, port, "tessera-e2e-data");
    wait_ready(&podman, "tessera-e2e-1", &base);

    // The server runs as the image's user, not as root.
    let top = podman.ok(&["top", "tessera-e2e-1", "user", "huser", "args"]);
    let process = top
        .lines()
        .find(|l| l.contains("serve"))
        .unwrap_or_else(|| panic!("no `tessera serve` in podman top:\n{top}"));
    let mut columns = process.split_whitespace();
    assert_eq!(columns.next(), Some("tessera"), "{top}");
    assert_ne!(columns.next(), Some("root"), "{top}");

    // The issuer comes from the environment.
    let discovery: Value = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(discovery["issuer"], base.as_str());

    // A client made with the CLI inside the container gets a token.
    let created: Value = serde_json::from_str(&podman.ok(&[
        "exec",
        "tessera-e2e-1",
        "/usr/local/bin/tessera",
        "client",
        "create",
        "--name",
        "svc",
        "--json",
    ]))
    .unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let body = token(&base, &id, &secret);
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{body}"
    );
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() > 20));

    // The database lives in the volume: a new container on it (same issuer, same port, now
    // free again) knows the client.
    podman.remove("tessera-e2e-1");
    podman.start("tessera-e2e-2", image, port, "tessera-e2e-data");
    wait_ready(&podman, "tessera-e2e-2", &base);
    let body = token(&base, &id, &secret);
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{body}"
    );
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
