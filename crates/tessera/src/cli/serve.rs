//! `tessera serve`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_core::clock::SystemClock;
use tracing_subscriber::EnvFilter;

use crate::cli::{as_dyn, open_store, redact};
use crate::settings::Settings;

/// Flags of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<String>,
    /// Issuer identifier [default: http://<listen>].
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "TESSERA_LOG_FORMAT")]
    pub log_format: Option<String>,
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the server until SIGTERM or SIGINT; in-flight requests finish first.
pub async fn run(settings: Settings) -> Result<()> {
    init_logging(settings.json_logs);
    let store = open_store(&settings).await?;
    let sealer = settings.sealer()?;
    let state = tessera_http::AppState::start(
        settings.core.clone(),
        settings.http.clone(),
        as_dyn(&store),
        sealer,
        Arc::new(SystemClock),
    )
    .await
    .context("starting the server state")?;
    let background = state.spawn_background();
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(
        listen = %local,
        issuer = %settings.core.issuer,
        database = %redact(&settings.database_url),
        "tessera is serving"
    );
    axum::serve(
        listener,
        tessera_http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving")?;
    background.abort();
    store.close().await;
    tracing::info!("tessera stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
