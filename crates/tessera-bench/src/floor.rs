//! Owns the "floor" server: a minimal axum handler for `POST /oauth2/token`
//! that parses the urlencoded form and returns a constant token response. It
//! runs in a child process (this binary re-executed with `floor --listen`)
//! and measures what plain HTTP costs on this machine.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;

use crate::conn::{one_shot, RequestTemplate};
use crate::process::{free_local_addr, ChildGuard};

/// The constant body the floor answers with.
const FLOOR_RESPONSE: &str = r#"{"access_token":"x","token_type":"bearer","expires_in":3600}"#;

/// Serves the floor on `listen` until the process is terminated. Uses a
/// default multi-thread tokio runtime.
pub fn serve(listen: SocketAddr) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?
            .tap_io(|tcp| {
                // Best effort: a socket that refuses NODELAY still works.
                let _ = tcp.set_nodelay(true);
            });
        let app = Router::new().route("/oauth2/token", post(token));
        axum::serve(listener, app).await.context("floor server")
    })
}

async fn token(body: Bytes) -> impl IntoResponse {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    std::hint::black_box(form);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        FLOOR_RESPONSE,
    )
}

/// A floor server running in a child process.
pub struct FloorProcess {
    pub addr: SocketAddr,
    pub guard: ChildGuard,
}

impl FloorProcess {
    /// Re-executes this binary as `floor --listen 127.0.0.1:PORT` and waits
    /// until it answers the token endpoint.
    pub async fn start() -> Result<Self> {
        let exe = std::env::current_exe().context("locating current executable")?;
        let addr = free_local_addr()?;
        let child = Command::new(&exe)
            .arg("floor")
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", exe.display()))?;
        let mut floor = Self {
            addr,
            guard: ChildGuard::new("floor server", child),
        };
        floor.wait_ready(Duration::from_secs(10)).await?;
        Ok(floor)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let template = RequestTemplate::form_post(
            self.addr,
            "/oauth2/token",
            vec![Bytes::from_static(b"grant_type=client_credentials")],
        )?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.guard.exited() {
                bail!("floor server exited during start-up: {status}");
            }
            if let Ok((status, _)) = one_shot(self.addr, template.build(0)).await {
                if status.is_success() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!("floor server not ready on {} after {timeout:?}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
