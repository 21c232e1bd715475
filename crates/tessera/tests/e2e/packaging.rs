//! Packaging (`packaging/`): the container image is built from the binary under test with
//! podman and serves tokens as a non-root user from its volume. The compose example and the
//! systemd unit are checked in `packaging_files.rs`.
//!
//! Each packaging test needs a tool from the system (podman, python3 with PyYAML,
//! systemd-analyze, a shell). Where one is missing the test is skipped with a note on stderr,
//! which the test harness does not capture, as the PostgreSQL tests do; with `CI` set it
//! fails instead, because `.ci/run` installs every one of them ([`tool_runs`]).

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
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a command, failing the test with its output when it does not succeed.
pub fn run_ok(cmd: &mut Command) -> String {
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
