//! `tessera serve`.
//!
//! Serving is thread-per-core: each of `workers` threads runs a single-threaded Tokio runtime
//! accepting on the one listening socket, and a connection stays on the thread that accepted
//! it. The socket is bound once, without `SO_REUSEPORT`, so that a port another process
//! already listens on is an error at start rather than a port the kernel quietly splits
//! between two servers. The work of a token request is short and CPU-bound (one signature), and
//! measured on two cores this serves about half again as many requests as one work-stealing
//! runtime, which spent the difference moving tasks and waking threads. Background work (the
//! change feed, purges, the SQLite writer) runs on the main runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tessera_core::clock::SystemClock;
use tracing_subscriber::EnvFilter;

use crate::cli::connections::{self, Connections};
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
    /// Serve the admin API (/admin) on this address; it is served nowhere else. Needs an
    /// admin credential: TESSERA_ADMIN_TOKEN or an admin token (`tessera admin-token create`).
    #[arg(long, env = "TESSERA_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
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

/// Sets up logging to stderr and, when `tracer` is given, the OpenTelemetry layer beside it:
/// `RUST_LOG` filters the log only, and the layer receives Tessera's request and storage spans
/// (and its warnings and errors, as span events) whatever the log level.
fn init_logging(json: bool, tracer: Option<&SdkTracerProvider>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let Some(provider) = tracer else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        let _ = if json {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
        return;
    };
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let log = if json {
        log.json().boxed()
    } else {
        log.boxed()
    };
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tessera"))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_target(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target().starts_with("tessera")
                && (meta.is_span() || *meta.level() <= tracing::Level::WARN)
        }));
    // The log stays as it is without tracing: the request and storage spans are not shown
    // as the context of its lines.
    let traced = |meta: &tracing::Metadata<'_>| {
        meta.is_span()
            && (meta.target() == tessera_http::otel::TARGET
                || meta.target() == tessera_node::traced::TARGET)
    };
    let log_filter = filter.and(tracing_subscriber::filter::filter_fn(move |meta| {
        !traced(meta)
    }));
    let _ = tracing_subscriber::registry()
        .with(log.with_filter(log_filter))
        .with(spans)
        .try_init();
}

/// How often `mtls_crl_file` is looked at for a new version.
const CRL_CHECK: Duration = Duration::from_secs(5);

/// Re-reads `mtls_crl_file` when it changes (its modification time or size, looked at every
/// [`CRL_CHECK`]), so that a certificate authority's new revocation list takes effect
/// without a restart: a file that parses replaces the lists in use; one that does not (a
/// half-written file, a wrong one) is logged and the lists in use stay.
async fn watch_crls(path: std::path::PathBuf, set: tessera_core::config::CrlSet) {
    let version = |path: &std::path::Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = version(&path);
    let mut tick = tokio::time::interval(CRL_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = version(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match crate::settings::read_crls(&path) {
            Ok(lists) => {
                let count = lists.len();
                set.replace(lists);
                tracing::info!(
                    file = %path.display(),
                    lists = count,
                    "read the certificate revocation lists again"
                );
            }
            Err(e) => {
                // Read again when it changes again (a file still being written is, once done).
                tracing::warn!(
                    error = %format!("{e:#}"),
                    "the certificate revocation lists in use stay"
                );
            }
        }
    }
}

/// Runs the server until SIGTERM or SIGINT; in-flight requests finish first.
pub async fn run(settings: Settings) -> Result<()> {
    let tracer = match crate::telemetry::config(|name| std::env::var(name).ok())? {
        Some(config) => Some(crate::telemetry::provider(&config)?),
        None => None,
    };
    init_logging(settings.json_logs, tracer.as_ref());
    let result = serve(settings, tracer.is_some()).await;
    if let Some(tracer) = tracer {
        // Exports the spans still batched, the last requests' among them.
        let flushed = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
    }
    result
}

/// Serves; `traced` adds a span to every request and storage call.
async fn serve(settings: Settings, traced: bool) -> Result<()> {
    let store = open_or_create_store(&settings).await?;
    for user_id in tessera_core::username::prepare_stored(store.as_dyn().as_ref()).await? {
        tracing::warn!(
            %user_id,
            "username left as stored: not valid under RFC 8265 (signs in only typed exactly), \
             or another user has its prepared form (cannot sign in; delete and create again)"
        );
    }
    let sealer = settings.sealer_for(store.as_ref()).await?;
    let db = if traced {
        let system = match &store {
            crate::cli::Database::Sqlite(_) => "sqlite",
            crate::cli::Database::Postgres(_) => "postgresql",
        };
        Arc::new(tessera_node::traced::Traced::new(store.as_dyn(), system))
    } else {
        store.as_dyn()
    };
    let state = tessera_http::AppState::start(
        settings.core.clone(),
        settings.http.clone(),
        db,
        sealer,
        Arc::new(SystemClock),
    )
    .await
    .context("starting the server state")?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::cli::tls::acceptor(
            cert,
            key,
            settings.core.mtls.enabled,
        )?),
        None => None,
    };
    let background = state.spawn_background();
    let logouts = tessera_http::backchannel::spawn(state.clone());
    if let Some(path) = &settings.mtls_crl_file {
        tokio::spawn(watch_crls(path.clone(), settings.core.mtls.crls.clone()));
    }
    let addr: SocketAddr = tokio::net::lookup_host(&settings.listen)
        .await
        .with_context(|| format!("resolving {}", settings.listen))?
        .next()
        .with_context(|| format!("{} names no address", settings.listen))?;
    let workers = settings.workers.max(1);
    let first = bind(addr)?;
    let local = first.local_addr()?;
    let mut listeners = Vec::with_capacity(workers);
    for _ in 1..workers {
        listeners.push(first.try_clone().context("sharing the listening socket")?);
    }
    listeners.push(first);
    let conns = Connections::new(connections::cap(
        settings.max_connections,
        connections::raise_descriptor_limit(),
        settings.database_pool_size,
    ));
    let limits = Limits {
        header_read_timeout: settings.header_read_timeout,
        max_header_size: settings.max_header_size,
    };
    crate::cli::check_issuer(&store, &settings.core.issuer).await?;
    let admin_listener = match &settings.admin_listen {
        Some(addr) => Some(admin_listener(&settings, store.as_dyn().as_ref(), addr).await?),
        None => None,
    };
    tracing::info!(
        listen = %local,
        issuer = %settings.core.issuer,
        database = %redact(&settings.database_url),
        workers,
        tls = tls.is_some(),
        max_connections = conns.cap(),
        "tessera is serving"
    );
    for host in &settings.core.hosts {
        tracing::info!(url = %host.url, env = ?host.env, "also serving as host");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ops = match &settings.ops_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the operational listener {addr}"))?;
            tracing::info!(listen = %listener.local_addr()?, "operational endpoints (/health, /metrics) listen here");
            let stopped = stopped.clone();
            let app = tessera_http::ops_app(state.clone());
            // The same limits as the public listener, with a cap of its own.
            let ops_conns = Connections::new(connections::OPS_CONNECTIONS);
            Some(tokio::spawn(serve_listener(
                listener, app, stopped, None, ops_conns, limits,
            )))
        }
        None => None,
    };
    let with_spans = |app: axum::Router| {
        if traced {
            tessera_http::otel::traced(app)
        } else {
            app
        }
    };
    let admin = admin_listener.map(|listener| {
        tokio::spawn(serve_listener(
            listener,
            with_spans(tessera_http::admin_app(state.clone())),
            stopped.clone(),
            tls.clone(),
            Connections::new(connections::OPS_CONNECTIONS),
            limits,
        ))
    });
    let app = with_spans(if ops.is_some() {
        tessera_http::oauth_app(state)
    } else {
        tessera_http::app(state)
    });
    let mut threads = Vec::with_capacity(workers);
    for (i, listener) in listeners.into_iter().enumerate() {
        let app = app.clone();
        let stopped = stopped.clone();
        let tls = tls.clone();
        let conns = Arc::clone(&conns);
        let thread = std::thread::Builder::new()
            .name(format!("tessera-http-{i}"))
            .spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    serve_listener(listener, app, stopped, tls, conns, limits).await
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
    if let Some(admin) = admin {
        admin.await?.context("serving the admin API")?;
    }
    background.abort();
    logouts.abort();
    store.close().await;
    tracing::info!("tessera stopped");
    Ok(())
}

/// Binds the admin API's listener, after checking that some credential could use it: the
/// bootstrap token (`TESSERA_ADMIN_TOKEN`) or an admin token neither revoked nor expired.
async fn admin_listener(
    settings: &Settings,
    store: &dyn tessera_core::store::Store,
    addr: &str,
) -> Result<tokio::net::TcpListener> {
    let now = tessera_core::clock::Clock::now(&SystemClock);
    if settings.http.admin_token.is_none()
        && !tessera_core::admin::admin_tokens::any_usable(store, now).await?
    {
        anyhow::bail!(
            "the admin API (--admin-listen {addr}) needs a credential, and none is configured: \
             set TESSERA_ADMIN_TOKEN (at least {} characters), or make an admin token with \
             `tessera admin-token create --name NAME --scope admin`",
            crate::settings::MIN_ADMIN_TOKEN
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin listener {addr}"))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        bootstrap_token = settings.http.admin_token.is_some(),
        "the admin API (/admin) listens here"
    );
    Ok(listener)
}

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest in-flight connections are waited for at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Least time between two log lines about refused connections.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// First and longest pause after `accept` failed (as when out of file descriptors).
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// What one connection may cost.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Longest a client may take to send a request's headers, counted from the connection's
    /// start or the end of the previous response: an idle connection is closed after it.
    header_read_timeout: Duration,
    /// Largest request head (request line and headers), bytes: also the connection's read
    /// buffer, so the memory a connection can hold before it has sent a request.
    max_header_size: usize,
}

/// Serves one listener, over TLS when an acceptor is given, until `stopped` turns true; then
/// stops accepting and lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]).
async fn serve_listener(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    conns: Arc<Connections>,
    limits: Limits,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    // Refusals are logged at most once per REFUSAL_LOG_INTERVAL, with how many there were.
    let mut refused: (u64, Option<tokio::time::Instant>) = (0, None);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = ACCEPT_BACKOFF.0;
                    conn
                }
                Err(e) => {
                    // Out of descriptors or memory: the error repeats until connections close,
                    // so wait (longer each time) rather than spin on it.
                    if backoff == ACCEPT_BACKOFF.0 {
                        tracing::warn!(error = %e, "accept failed");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    continue;
                }
            },
            Some(_) = tasks.join_next() => continue,
            () = async { let _ = stopped.wait_for(|s| *s).await; } => break,
        };
        let Some(held) = conns.admit() else {
            refused.0 += 1;
            if refused
                .1
                .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL)
            {
                tracing::warn!(
                    refused = refused.0,
                    cap = conns.cap(),
                    "connections refused: every connection, the health probes' reserve included, is answering a request"
                );
                refused = (0, Some(tokio::time::Instant::now()));
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stopped = stopped.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            match tls {
                None => serve_connection(tcp, peer, None, app, stopped, held, limits).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let done = tokio::select! {
                        done = handshake => done,
                        () = held.slot.asked_to_close() => return,
                    };
                    match done {
                        Ok(Ok(stream)) => {
                            // The leaf the client presented, if any (mutual TLS, RFC 8705).
                            let cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(<[_]>::first)
                                .map(|c| {
                                    tessera_http::extract::TlsClientCertificate(Arc::from(
                                        c.as_ref(),
                                    ))
                                });
                            serve_connection(stream, peer, cert, app, stopped, held, limits).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
        tasks.shutdown().await;
    }
    Ok(())
}

/// Serves HTTP/1.1 on one connection, telling the router the client's address (and the
/// certificate it presented in the TLS handshake, if any), until the
/// client closes it, the server stops, or the connection is asked to make room: then a
/// connection answering a request finishes it first, and an idle one closes at once.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    client_cert: Option<tessera_http::extract::TlsClientCertificate>,
    app: axum::Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    held: connections::Held,
    limits: Limits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let slot = Arc::clone(&held.slot);
    let reserve = held.reserve;
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            if let Some(cert) = &client_cert {
                req.extensions_mut().insert(cert.clone());
            }
            // In flight until the response body has been written and dropped.
            let in_flight = slot.request();
            let refused = reserve && !is_health_probe(&req);
            let response = app.clone().oneshot(req);
            async move {
                let response = if refused {
                    reserve_refusal()
                } else {
                    response.await?
                };
                Ok::<_, std::convert::Infallible>(response.map(move |body| {
                    body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    })
                }))
            }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // A connection of the health probes' reserve answers one request.
        .keep_alive(!reserve)
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_size)
        .max_header_size(limits.max_header_size)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = held.slot.asked_to_close(), if !closing => {}
            _ = stopped.wait_for(|s| *s), if !closing => {}
        }
        if held.slot.idle() {
            // No request received and unanswered: nothing is lost by closing now.
            return;
        }
        conn.as_mut().graceful_shutdown();
        closing = true;
    }
}

/// Whether a request is a health probe, which a connection of the reserve
/// ([`connections::HEALTH_RESERVE`]) answers.
fn is_health_probe<B>(req: &hyper::Request<B>) -> bool {
    matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD)
        && req.uri().path().starts_with("/health/")
}

/// The answer to anything but a health probe on a connection of the reserve: every
/// connection under the cap is answering a request.
fn reserve_refusal() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": "the server is at its connection limit; try again shortly",
    });
    (
        hyper::StatusCode::SERVICE_UNAVAILABLE,
        [
            (hyper::header::RETRY_AFTER, "1"),
            (hyper::header::CONNECTION, "close"),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// The listening socket, bound once and shared by the serving threads. Without
/// `SO_REUSEPORT`: binding fails if anything (another Tessera included) listens there.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .with_context(|| format!("binding {addr}"))?;
    // Lets a restarted server bind while connections of the previous one are in TIME_WAIT;
    // never lets two listen on one port.
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    match socket.bind(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
            "binding {addr}: the address is already in use (is another server listening on it?)"
        ),
        Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
    }
    socket
        .listen(1024)
        .with_context(|| format!("listening on {addr}"))?;
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
