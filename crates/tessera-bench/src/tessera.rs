//! Owns driving the real Tessera server through its CLI contract: starting
//! `tessera serve` on a temp database, waiting for readiness, creating
//! clients with `tessera client create --json`, fetching tokens, and
//! stopping it with SIGTERM.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use tempfile::TempDir;

use crate::conn::{one_shot, Conn, RequestTemplate};
use crate::process::{free_local_addr, ChildGuard};

/// Fixed secret for the bench's throw-away server instance.
const BENCH_SECRET: &str = "bench-secret-0123456789abcdef";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_VISIBLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which access-token format a bench client is configured for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

/// Credentials printed by `tessera client create --json`.
#[derive(Clone, Debug, Deserialize)]
pub struct ClientCredentials {
    pub client_id: String,
    /// Empty for a public client (printed as `null`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub client_secret: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// A running `tessera serve`: on a temporary SQLite database, or on a given PostgreSQL one.
pub struct TesseraServer {
    bin: PathBuf,
    pub addr: SocketAddr,
    env: Vec<(&'static str, String)>,
    log_path: PathBuf,
    pub guard: ChildGuard,
    // Declared last so the directory outlives the process using it.
    tmp: TempDir,
}

impl TesseraServer {
    /// Starts `tessera serve` on a temporary SQLite database and waits until
    /// `GET /health/ready` is 200.
    pub async fn start(bin: &Path) -> Result<Self> {
        Self::start_on(bin, None, None, None).await
    }

    /// Starts `tessera serve` on `database_url` (a temporary SQLite database
    /// when `None`), with `issuer` (its own address when `None`: nodes of one
    /// deployment share one), with `workers` serving threads (one per CPU when
    /// `None`).
    pub async fn start_on(
        bin: &Path,
        database_url: Option<&str>,
        issuer: Option<&str>,
        workers: Option<usize>,
    ) -> Result<Self> {
        if !bin.is_file() {
            bail!(
                "tessera binary not found at {} (build it with `cargo build --release -p tessera` \
                 or pass --tessera PATH; use --only floor to skip the server)",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("tessera-bench-")
            .tempdir()
            .context("creating temp dir")?;
        let addr = free_local_addr()?;
        let db = dir.path().join("tessera.db");
        let mut env = vec![
            ("TESSERA_LISTEN", addr.to_string()),
            (
                "TESSERA_ISSUER",
                issuer.map_or_else(|| format!("http://{addr}"), str::to_owned),
            ),
            (
                "TESSERA_DATABASE_URL",
                database_url.map_or_else(|| format!("sqlite://{}", db.display()), str::to_owned),
            ),
            ("TESSERA_SECRET", BENCH_SECRET.to_owned()),
            ("RUST_LOG", "warn".to_owned()),
            // The device scenarios ask for thousands of device codes from one loopback
            // address, standing for as many devices at as many addresses: the per-address cap
            // is off.
            ("TESSERA_DEVICE_CODES_PER_CLIENT_ADDRESS", "0".to_owned()),
        ];
        if let Some(n) = workers {
            env.push(("TESSERA_WORKERS", n.to_string()));
        }
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).context("creating server log")?;
        let log_err = log.try_clone().context("cloning log handle")?;
        let child = Command::new(bin)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {} serve", bin.display()))?;
        let mut server = Self {
            bin: bin.to_owned(),
            addr,
            env,
            log_path,
            guard: ChildGuard::new("tessera server", child),
            tmp: dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// The issuer this server was started with.
    pub fn issuer(&self) -> &str {
        self.env
            .iter()
            .find(|(k, _)| *k == "TESSERA_ISSUER")
            .map_or("", |(_, v)| v.as_str())
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(20);
        lines[start..].join("\n")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let template = RequestTemplate::new(Method::GET, self.addr, "/health/ready", Vec::new())?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.guard.exited() {
                bail!(
                    "tessera serve exited during start-up ({status}); log:\n{}",
                    self.log_tail()
                );
            }
            let last = match one_shot(self.addr, template.build(0)).await {
                Ok((StatusCode::OK, _)) => return Ok(()),
                Ok((status, _)) => format!("HTTP {status}"),
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "tessera not ready on {} after {READY_TIMEOUT:?} (last: {last}); log:\n{}",
                    self.addr,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `tessera client create ... --json` against the same database and
    /// returns the printed credentials.
    pub async fn create_client(
        &self,
        name: &str,
        format: TokenFormat,
    ) -> Result<ClientCredentials> {
        let mut args = vec![
            "--grant-type",
            "client_credentials",
            "--scope",
            "read write",
        ];
        if format == TokenFormat::Opaque {
            args.extend(["--access-token-format", "opaque"]);
        }
        self.create_client_with(name, &args).await
    }

    /// Runs `tessera client create --name NAME ARGS... --json` and returns the printed
    /// credentials.
    pub async fn create_client_with(&self, name: &str, args: &[&str]) -> Result<ClientCredentials> {
        let mut all = vec!["client", "create", "--name", name];
        all.extend_from_slice(args);
        all.push("--json");
        let stdout = self.cli(&all).await?;
        parse_credentials(&stdout)
            .with_context(|| format!("parsing `client create` output: {stdout:?}"))
    }

    /// Runs the tessera CLI with `args` against the same database; its stdout.
    pub async fn cli(&self, args: &[&str]) -> Result<String> {
        let output = tokio::process::Command::new(&self.bin)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {} {}", self.bin.display(), args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "`tessera {}` failed ({}):\nstdout: {stdout}\nstderr: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    /// A directory private to this server's run (removed with it).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The token-endpoint request for `client` (client_credentials grant).
    pub fn token_template(&self, client: &ClientCredentials) -> Result<RequestTemplate> {
        RequestTemplate::form_post(
            self.addr,
            "/oauth2/token",
            vec![Bytes::from_static(b"grant_type=client_credentials")],
        )?
        .with_basic_auth(&client.client_id, &client.client_secret)
    }

    /// Polls the token endpoint until it answers 200 for `client`.
    pub async fn wait_client_visible(&self, client: &ClientCredentials) -> Result<()> {
        let template = self.token_template(client)?;
        let deadline = Instant::now() + CLIENT_VISIBLE_TIMEOUT;
        loop {
            let last = match one_shot(self.addr, template.build(0)).await {
                Ok((StatusCode::OK, _)) => return Ok(()),
                Ok((status, body)) => {
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                }
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "client {} not accepted by the token endpoint after {CLIENT_VISIBLE_TIMEOUT:?} \
                     (last: {last})",
                    client.client_id
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Obtains `count` access tokens for `client` over one connection.
    pub async fn fetch_tokens(
        &self,
        client: &ClientCredentials,
        count: usize,
    ) -> Result<Vec<String>> {
        let template = self.token_template(client)?;
        let mut conn = Conn::connect(self.addr).await?;
        let mut tokens = Vec::with_capacity(count);
        for i in 0..count {
            if conn.is_closed() {
                conn = Conn::connect(self.addr).await?;
            }
            let (status, body) = conn.send(template.build(i)).await?;
            if !status.is_success() {
                bail!(
                    "token request failed: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let token: TokenResponse =
                serde_json::from_slice(&body).context("parsing token response")?;
            tokens.push(token.access_token);
        }
        Ok(tokens)
    }

    /// The introspection request for `tokens`, authenticated as `client`;
    /// cycles through the tokens.
    pub fn introspect_template(
        &self,
        client: &ClientCredentials,
        tokens: &[String],
    ) -> Result<RequestTemplate> {
        let bodies = tokens
            .iter()
            .map(|t| {
                let body: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", t)
                    .finish();
                Bytes::from(body)
            })
            .collect();
        RequestTemplate::form_post(self.addr, "/oauth2/introspect", bodies)?
            .with_basic_auth(&client.client_id, &client.client_secret)
    }
}

/// A JSON string, or `null` read as the empty string.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Accepts either the whole stdout as JSON or the first `{...}` span in it
/// (in case the CLI prints anything around it).
fn parse_credentials(stdout: &str) -> Result<ClientCredentials> {
    if let Ok(creds) = serde_json::from_str(stdout.trim()) {
        return Ok(creds);
    }
    let start = stdout.find('{').context("no JSON object in output")?;
    let end = stdout.rfind('}').context("no JSON object in output")?;
    if end < start {
        bail!("no JSON object in output");
    }
    serde_json::from_str(&stdout[start..=end]).context("invalid credentials JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_wrapped_credentials() {
        let plain = parse_credentials(r#"{"client_id": "a", "client_secret": "b"}"#).unwrap();
        assert_eq!(plain.client_id, "a");
        let wrapped =
            parse_credentials("created\n{\"client_id\":\"c\",\"client_secret\":\"d\"}\n").unwrap();
        assert_eq!(wrapped.client_secret, "d");
        let public = parse_credentials(r#"{"client_id": "e", "client_secret": null}"#).unwrap();
        assert_eq!(public.client_secret, "");
    }
}
