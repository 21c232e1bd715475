//! The harness: a real `tessera serve` process per test, its CLI, and small HTTP helpers.
//!
//! Every [`Server`] gets its own temporary directory (database, captured stdout/stderr), a
//! free loopback port, JSON logs at debug level, and is stopped with SIGTERM when dropped.
//! The CLI runs with the same environment, so it opens the same database, and the running
//! server learns of its changes through the change feed (polled every 250 ms).
//!
//! Tests wait on events, not on the clock: [`wait_until`] polls a condition with a deadline,
//! and [`unread_by_server`] and [`accept_queue`] read the kernel's view of a connection
//! (Linux's `/proc/net/tcp`) where nothing else shows that the server has read a request or
//! accepted its connections.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// The sealing secret of every test server (only has to be at least 16 bytes).
pub const SEALING_SECRET: &str = "e2e-test-sealing-secret-not-for-production";

/// The bearer token that reads `/metrics` on a test server's public listener.
pub const METRICS_TOKEN: &str = "e2e-metrics-token";

/// How soon a change made by the CLI must be honoured by a running server.
pub const FEED_DEADLINE: Duration = Duration::from_secs(1);

/// How long a server may take to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// How long a server may take to exit after SIGTERM.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// A client's credentials as printed once by `client create` / `client rotate-secret`.
#[derive(Debug, Clone)]
pub struct Creds {
    /// The client id.
    pub id: String,
    /// The secret (empty for a public client).
    pub secret: String,
}

impl Creds {
    /// The same client with another secret.
    pub fn with_secret(&self, secret: &str) -> Creds {
        Creds {
            id: self.id.clone(),
            secret: secret.to_owned(),
        }
    }
}

/// A running `tessera serve`.
pub struct Server {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub base: String,
    /// An HTTP client without proxies or redirects.
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A plain HTTP client for tests: no proxy from the environment, no redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build reqwest client")
}

/// Polls `check` every 25 ms until it is true; panics after `deadline`. Returns how long it
/// took.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        if start.elapsed() > deadline {
            panic!("{what}: still not true after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One IPv4 TCP socket as Linux lists it in `/proc/net/tcp`.
struct TcpSocket {
    local_port: u16,
    remote_port: u16,
    listening: bool,
    /// For a listening socket, the connections waiting to be accepted; otherwise the bytes
    /// received and not yet read by the socket's owner.
    rx_queue: usize,
}

/// Every IPv4 TCP socket of this network namespace (`/proc/net/tcp`, see proc(5)).
fn tcp_sockets() -> Vec<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp")
        .expect("/proc/net/tcp (Linux) shows the kernel's view of a connection");
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (_, rx) = f.get(4)?.split_once(':')?;
            Some(TcpSocket {
                local_port: port(f.get(1)?)?,
                remote_port: port(f.get(2)?)?,
                // State 0A is TCP_LISTEN.
                listening: *f.get(3)? == "0A",
                rx_queue: usize::from_str_radix(rx, 16).ok()?,
            })
        })
        .collect()
}

/// The bytes a client on local port `client_port` sent to a server on `server_port` that the
/// server has not read yet; `None` while the server's end of that connection does not exist.
pub fn unread_by_server(server_port: u16, client_port: u16) -> Option<usize> {
    tcp_sockets()
        .into_iter()
        .find(|s| !s.listening && s.local_port == server_port && s.remote_port == client_port)
        .map(|s| s.rx_queue)
}

/// How many connections to `port` wait for the server to accept them.
pub fn accept_queue(port: u16) -> usize {
    tcp_sockets()
        .into_iter()
        .filter(|s| s.listening && s.local_port == port)
        .map(|s| s.rx_queue)
        .sum()
}

impl Server {
    /// Starts a server with the default test environment.
    pub async fn start() -> Server {
        Self::start_with(&[]).await
    }

    /// Starts a server; `extra` environment variables override the defaults (an empty value
    /// makes the server use its built-in default for that setting).
    pub async fn start_with(extra: &[(&str, &str)]) -> Server {
        Self::start_inner(extra, false, None).await
    }

    /// Starts a server with a config file made by `config` from the port it will listen on
    /// (for settings that name the server's own address).
    pub async fn start_with_config(
        extra: &[(&str, &str)],
        config: &dyn Fn(u16) -> String,
    ) -> Server {
        Self::start_inner(extra, false, Some(config)).await
    }

    /// Starts a server serving HTTPS with a fresh self-signed certificate for 127.0.0.1; the
    /// server's HTTP client trusts exactly that certificate.
    pub async fn start_tls() -> Server {
        Self::start_inner(&[], true, None).await
    }

    /// [`Server::start_tls`] with `extra` environment variables, as [`Server::start_with`].
    pub async fn start_tls_with(extra: &[(&str, &str)]) -> Server {
        Self::start_inner(extra, true, None).await
    }

    async fn start_inner(
        extra: &[(&str, &str)],
        tls: bool,
        config: Option<&dyn Fn(u16) -> String>,
    ) -> Server {
        let mut dir = tempfile::tempdir().expect("tempdir");
        let mut http = http_client();
        let mut tls_env: Vec<(String, String)> = Vec::new();
        if tls {
            let certified =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
            let cert_pem = certified.cert.pem();
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, &cert_pem).expect("write cert");
            std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
            tls_env.push(("TESSERA_TLS_CERT".into(), cert_path.display().to_string()));
            tls_env.push(("TESSERA_TLS_KEY".into(), key_path.display().to_string()));
            http = reqwest::Client::builder()
                .no_proxy()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("root cert"),
                )
                .build()
                .expect("https client");
        }
        let scheme = if tls { "https" } else { "http" };
        // A port picked this way can, rarely, be taken by someone else before the server binds
        // it: then try another.
        // A database the test made beforehand is kept across attempts; one a failed attempt
        // made is not: it holds that attempt's issuer (its port), which the next one would
        // not match.
        let made_before = dir.path().join("tessera.db").exists();
        for attempt in 0..3 {
            if attempt > 0 && !made_before {
                for file in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
                    let _ = std::fs::remove_file(dir.path().join(file));
                }
            }
            let port = free_port();
            let base = format!("{scheme}://127.0.0.1:{port}");
            let db = dir.path().join("tessera.db");
            let mut env: Vec<(String, String)> = vec![
                ("TESSERA_LISTEN".into(), format!("127.0.0.1:{port}")),
                ("TESSERA_ISSUER".into(), base.clone()),
                (
                    "TESSERA_DATABASE_URL".into(),
                    format!("sqlite://{}", db.display()),
                ),
                ("TESSERA_SECRET".into(), SEALING_SECRET.into()),
                ("RUST_LOG".into(), "debug".into()),
                ("TESSERA_LOG_FORMAT".into(), "json".into()),
                // Test helpers poll the token endpoint while a new client reaches the server,
                // and several tests fail authentication on purpose: neither should trip the
                // per-address throttle, which has its own test (with the default limit).
                ("TESSERA_AUTH_FAILURES_PER_MINUTE".into(), "0".into()),
                ("TESSERA_METRICS_TOKEN".into(), METRICS_TOKEN.into()),
            ];
            env.extend(tls_env.iter().cloned());
            if let Some(make) = config {
                let path = dir.path().join("tessera.toml");
                std::fs::write(&path, make(port)).expect("write the config file");
                env.push(("TESSERA_CONFIG".into(), path.display().to_string()));
            }
            for (k, v) in extra {
                env.retain(|(key, _)| key != k);
                env.push(((*k).to_owned(), (*v).to_owned()));
            }
            // Empty: not set at all (`RUST_LOG` empty is the server's default level).
            env.retain(|(_, v)| !v.is_empty());
            let mut server = Server {
                base,
                http: http.clone(),
                env,
                child: None,
                dir,
            };
            let stdout = std::fs::File::create(server.stdout_path()).expect("stdout file");
            let stderr = std::fs::File::create(server.stderr_path()).expect("stderr file");
            let child = server
                .command()
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .expect("spawn tessera serve");
            server.child = Some(child);
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(logs) if attempt < 2 && logs.contains("binding") => {
                    // Port taken: retry with the same directory.
                    dir = server.into_dir();
                }
                Err(logs) => panic!("tessera serve did not become ready:\n{logs}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Waits for `/health/ready`; on failure returns the server's logs.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        // With the operational endpoints apart, readiness is asked there.
        let url = match self.env.iter().find(|(k, _)| k == "TESSERA_OPS_LISTEN") {
            Some((_, ops)) => format!("http://{ops}/health/ready"),
            None => self.url("/health/ready"),
        };
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("exited with {status}\n{}", self.logs()));
                }
            }
            if let Ok(res) = self.http.get(&url).send().await {
                if res.status() == StatusCode::OK {
                    return Ok(());
                }
            }
            if start.elapsed() > READY_DEADLINE {
                return Err(format!(
                    "not ready after {READY_DEADLINE:?}\n{}",
                    self.logs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill_now();
        let placeholder = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("stdout.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    /// The binary with this server's environment (and nothing inherited that could change it).
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The issuer (the base URL).
    pub fn issuer(&self) -> &str {
        &self.base
    }

    /// The server's temporary directory (database, logs, TLS files).
    pub fn dir_path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        let addr = self.addr();
        let (_, port) = addr.rsplit_once(':').expect("host:port");
        port.parse().expect("a port number")
    }

    /// The URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let out = std::fs::read_to_string(self.stdout_path()).unwrap_or_default();
        let err = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        format!("{out}{err}")
    }

    /// Runs `tessera ARGS` against this server's database; returns the whole output.
    pub async fn cli_output(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::from(self.command())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run the tessera CLI")
    }

    /// Runs `tessera ARGS` with some environment variables overridden.
    pub async fn cli_output_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::process::Output {
        let mut cmd = self.command();
        cmd.envs(env.iter().copied());
        tokio::process::Command::from(cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run the tessera CLI")
    }

    /// Runs `tessera ARGS` with `input` on standard input; returns the whole output.
    pub async fn cli_with_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        self.cli_with_stdin_env(args, input, &[]).await
    }

    /// Runs `tessera ARGS` with `input` on standard input and some environment variables
    /// overridden; returns the whole output.
    pub async fn cli_with_stdin_env(
        &self,
        args: &[&str],
        input: &str,
        env: &[(&str, &str)],
    ) -> std::process::Output {
        use tokio::io::AsyncWriteExt as _;
        let mut cmd = self.command();
        cmd.envs(env.iter().copied());
        let mut child = tokio::process::Command::from(cmd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the tessera CLI");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write stdin");
        drop(stdin);
        child.wait_with_output().await.expect("CLI output")
    }

    /// Creates a user with a password; returns their `sub`.
    pub async fn create_user(&self, username: &str, password: &str) -> String {
        let out = self
            .cli_with_stdin(
                &[
                    "user",
                    "create",
                    "--username",
                    username,
                    "--password-stdin",
                    "--email",
                    &format!("{username}@example.com"),
                    "--name",
                    &format!("User {username}"),
                    "--json",
                ],
                &format!("{password}\n"),
            )
            .await;
        assert!(
            out.status.success(),
            "user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("user JSON");
        v["user_id"].as_str().expect("user_id").to_owned()
    }

    /// Runs `tessera ARGS`, asserts it succeeded, returns stdout.
    pub async fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args).await;
        assert!(
            out.status.success(),
            "tessera {args:?} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("CLI output is UTF-8")
    }

    /// Runs `tessera ARGS` and parses its stdout as JSON.
    pub async fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("tessera {args:?}: {e}: {out}"))
    }

    /// Registers a client (`client create --name t ARGS --json`) and waits until the server
    /// knows it.
    pub async fn create_client(&self, args: &[&str]) -> Creds {
        let mut all = vec!["client", "create"];
        if !args.contains(&"--name") {
            all.extend(["--name", "t"]);
        }
        all.extend_from_slice(args);
        all.push("--json");
        let v = self.cli_json(&all).await;
        let creds = Creds {
            id: v["client_id"].as_str().expect("client_id").to_owned(),
            secret: v["client_secret"].as_str().unwrap_or_default().to_owned(),
        };
        self.wait_known(&creds).await;
        creds
    }

    /// Waits (at most 2 s) until the server stops answering `invalid_client` for these
    /// credentials at the token endpoint.
    pub async fn wait_known(&self, c: &Creds) {
        wait_until(
            Duration::from_secs(2),
            "the server knows the new client",
            move || async move {
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", c.id.as_str()),
                ];
                if !c.secret.is_empty() {
                    form.push(("client_secret", c.secret.as_str()));
                }
                let res = self
                    .http
                    .post(self.url("/oauth2/token"))
                    .form(&form)
                    .send()
                    .await;
                res.is_ok_and(|r| r.status() != StatusCode::UNAUTHORIZED)
            },
        )
        .await;
    }

    /// A token request with HTTP Basic and a form body (`scope` if given).
    pub async fn token(&self, c: &Creds, scope: Option<&str>) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.http
            .post(self.url("/oauth2/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&form)
            .send()
            .await
            .expect("token request")
    }

    /// A token request that must succeed; returns the response body.
    pub async fn token_ok(&self, c: &Creds) -> Value {
        let res = self.token(c, None).await;
        let status = res.status();
        let body = res.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "token request failed: {body}");
        serde_json::from_str(&body).expect("token response is JSON")
    }

    /// A fresh access token for `c`.
    pub async fn access_token(&self, c: &Creds) -> String {
        self.token_ok(c).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The status of a token request with these credentials (Basic).
    pub async fn token_status(&self, c: &Creds) -> StatusCode {
        self.token(c, None).await.status()
    }

    /// Introspects `token` as `caller`; asserts 200 and returns the body.
    pub async fn introspect(&self, caller: &Creds, token: &str) -> Value {
        let res = self
            .http
            .post(self.url("/oauth2/introspect"))
            .basic_auth(&caller.id, Some(&caller.secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection request");
        let status = res.status();
        let body = res.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "introspection failed: {body}");
        serde_json::from_str(&body).expect("introspection response is JSON")
    }

    /// Whether `token` introspects active.
    pub async fn is_active(&self, caller: &Creds, token: &str) -> bool {
        self.introspect(caller, token).await["active"] == Value::Bool(true)
    }

    /// Revokes `token` as `caller`; returns the status.
    pub async fn revoke(&self, caller: &Creds, token: &str) -> StatusCode {
        self.http
            .post(self.url("/oauth2/revoke"))
            .basic_auth(&caller.id, Some(&caller.secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("revocation request")
            .status()
    }

    /// GETs a path that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.http.get(self.url(path)).send().await.expect("GET");
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("JSON body")
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let res = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.expect("metrics text")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Sends SIGTERM (again, if already sent) and waits for the process to exit; returns its status and how long it
    /// took.
    pub async fn stop(&mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("the server is running");
        sigterm(&child);
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return (status, start.elapsed());
            }
            if start.elapsed() > SHUTDOWN_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not exit within {SHUTDOWN_DEADLINE:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server if it runs (SIGTERM) and starts `tessera serve` again on the same port
    /// and database, with `env` overriding its environment from now on (for the CLI too).
    /// Returns the logs if it does not become ready.
    pub async fn restart_with(&mut self, env: &[(&str, &str)]) -> Result<(), String> {
        if self.child.is_some() {
            self.stop().await;
        }
        for (k, v) in env {
            self.env.retain(|(key, _)| key != k);
            self.env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let append = |path: PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file")
        };
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(append(self.stdout_path()))
            .stderr(append(self.stderr_path()))
            .spawn()
            .expect("spawn tessera serve");
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Kills the server with SIGKILL (no chance to finish anything) and waits for it to die.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigterm(&child);
            let start = Instant::now();
            while start.elapsed() < SHUTDOWN_DEADLINE {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_now();
    }
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `Authorization: Basic` value for an id and secret (RFC 6749 §2.3.1 form-encoding is a
/// no-op for the characters Tessera generates).
pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The current Unix time, seconds (fractional).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// A decoded (not verified) compact JWS.
#[derive(Debug)]
pub struct Jwt {
    /// The protected header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
    /// `header.payload`, the signed bytes.
    pub signing_input: String,
    /// The raw signature.
    pub signature: Vec<u8>,
}

/// Decodes a compact JWS without verifying it.
pub fn decode_jwt(token: &str) -> Jwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let part = |i: usize| URL_SAFE_NO_PAD.decode(parts[i]).expect("base64url part");
    Jwt {
        header: serde_json::from_slice(&part(0)).expect("header JSON"),
        claims: serde_json::from_slice(&part(1)).expect("claims JSON"),
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: part(2),
    }
}

/// Verifies an ES256 JWS against a JWKS document; returns the `kid` that verified it.
pub fn verify_es256(jwks: &Value, token: &str) -> Result<String, String> {
    let jwt = decode_jwt(token);
    if jwt.header["alg"] != "ES256" {
        return Err(format!("alg is {}", jwt.header["alg"]));
    }
    let kid = jwt.header["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("JWKS has no keys array")?
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
        return Err(format!("not a P-256 key: {jwk}"));
    }
    let coord = |name: &str| -> Result<Vec<u8>, String> {
        let b = URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().ok_or("missing coordinate")?)
            .map_err(|e| e.to_string())?;
        if b.len() == 32 {
            Ok(b)
        } else {
            Err(format!("{name} has {} bytes", b.len()))
        }
    };
    let mut point = vec![0x04];
    point.extend(coord("x")?);
    point.extend(coord("y")?);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(jwt.signing_input.as_bytes(), &jwt.signature)
        .map_err(|_| "bad signature".to_owned())?;
    Ok(kid.to_owned())
}

/// The value of a Prometheus sample with exactly these labels (0 when absent).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: HashMap<&str, &str> = labels.iter().copied().collect();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let got: HashMap<&str, &str> = label_text
            .split(',')
            .filter(|s| !s.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if got == want {
            return value.parse().expect("metric value");
        }
    }
    0.0
}

/// A small deterministic PRNG (xorshift64*), so a failing fuzz case can be replayed.
pub struct Rng(u64);

impl Rng {
    /// Seeds it (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Sends raw bytes on a new connection and reads until the server closes it; for requests
/// reqwest cannot make (chunked bodies, a request held half-sent).
pub async fn raw_exchange(addr: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the server answers within 10 s")
        .expect("read response");
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1.1 response.
pub fn raw_status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:.200}"))
}
