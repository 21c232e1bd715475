//! `tessera serve`.
//!
//! Serving is thread-per-core: each of `workers` threads runs a single-threaded Tokio runtime
//! with a listening socket of its own (`SO_REUSEPORT`), and a connection stays on the thread
//! that accepted it. The work of a token request is short and CPU-bound (one signature), and
//! measured on two cores this serves about half again as many requests as one work-stealing
//! runtime, which spent the difference moving tasks and waking threads. Background work (the
//! change feed, purges, the SQLite writer) runs on the main runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tessera_core::clock::SystemClock;
use tracing_subscriber::EnvFilter;

use crate::cli::{open_or_create_store, redact};
use crate::settings::Settings;

/// Flags of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<String>,
    /// Issuer identifier [default: http://LISTEN].
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "TESSERA_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Serve /health/* and /metrics on this address (plain HTTP) instead of on --listen.
    #[arg(long, env = "TESSERA_OPS_LISTEN")]
    pub ops_listen: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "TESSERA_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TESSERA_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Longest a JWT assertion may be valid for, seconds [default: 3600].
    #[arg(long, env = "TESSERA_ASSERTION_MAX_LIFETIME")]
    pub assertion_max_lifetime: Option<i64>,
    /// Clock leeway for an assertion's exp, nbf and iat, seconds [default: 60].
    #[arg(long, env = "TESSERA_ASSERTION_LEEWAY")]
    pub assertion_leeway: Option<i64>,
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
    let store = open_or_create_store(&settings).await?;
    let sealer = settings.sealer()?;
    let state = tessera_http::AppState::start(
        settings.core.clone(),
        settings.http.clone(),
        store.as_dyn(),
        sealer,
        Arc::new(SystemClock),
    )
    .await
    .context("starting the server state")?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::cli::tls::acceptor(cert, key)?),
        None => None,
    };
    let background = state.spawn_background();
    let addr: SocketAddr = tokio::net::lookup_host(&settings.listen)
        .await
        .with_context(|| format!("resolving {}", settings.listen))?
        .next()
        .with_context(|| format!("{} names no address", settings.listen))?;
    let workers = settings.workers.max(1);
    let first = bind(addr).with_context(|| format!("binding {addr}"))?;
    let local = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners.push(bind(local).with_context(|| format!("binding {local}"))?);
    }
    crate::cli::check_issuer(&store, &settings.core.issuer).await?;
    tracing::info!(
        listen = %local,
        issuer = %settings.core.issuer,
        database = %redact(&settings.database_url),
        workers,
        tls = tls.is_some(),
        "tessera is serving"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ops = match &settings.ops_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the operational listener {addr}"))?;
            tracing::info!(listen = %listener.local_addr()?, "operational endpoints (/health, /metrics) listen here");
            let mut stopped = stopped.clone();
            let app = tessera_http::ops_app(state.clone());
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            }))
        }
        None => None,
    };
    let app = if ops.is_some() {
        tessera_http::oauth_app(state)
    } else {
        tessera_http::app(state)
    };
    let mut threads = Vec::with_capacity(workers);
    for (i, listener) in listeners.into_iter().enumerate() {
        let app = app.clone();
        let stopped = stopped.clone();
        let tls = tls.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tessera-http-{i}"))
            .spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    serve_listener(listener, app, stopped, tls).await
                })
            })?;
        threads.push(thread);
    }
    shutdown_signal().await;
    let _ = stop.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| anyhow::anyhow!("a serving thread panicked"))?
            })
            .collect::<Result<Vec<()>>>()
    })
    .await?;
    joined.context("serving")?;
    if let Some(ops) = ops {
        ops.await?.context("serving the operational endpoints")?;
    }
    background.abort();
    store.close().await;
    tracing::info!("tessera stopped");
    Ok(())
}

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take to send a request's headers (slow-loris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest in-flight connections are waited for at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one listener, over TLS when an acceptor is given, until `stopped` turns true; then
/// stops accepting and lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]).
async fn serve_listener(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.wait_for(|s| *s) => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(tcp, peer, app, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, app, watcher).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}

/// Serves HTTP/1.1 on one connection, telling the router the client's address.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: axum::Router,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt as _;
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(req)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// A listening socket with `SO_REUSEPORT`, so that each serving thread accepts on a socket of
/// its own and the kernel spreads connections across them.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
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
