//! The server's shared state.
//!
//! Owns [`AppState`]: a [`Node`] (settings, the cached store, the signing keys, the sealer,
//! the background loop; see `tessera-node`) and what only HTTP needs beside it: the
//! configured hosts ([`crate::host`]), HTTP settings, metrics, the fetcher of trusted
//! issuers' key sets, the password-check budget, the page templates and cookie names.
//! Handed to every route.

use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;

use tessera_core::clock::Clock;
use tessera_core::config::Config;
use tessera_core::cx::Cx;
use tessera_core::keys::{KeyRotationError, KeySet, Sealer};
use tessera_core::store::{Store, StoreError};
use tessera_node::cache::CachedStore;
use tessera_node::{Node, NodeError, PURGE_INTERVAL};

use crate::host::{Host, Hosts};
use crate::metrics::Metrics;
use crate::pages::{Cookies, Pages};
use crate::password_checks::PasswordChecks;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Origins allowed to call the token, introspection, revocation, JWKS and discovery
    /// endpoints from a browser. Empty: no CORS.
    pub cors_allowed_origins: Vec<String>,
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Failed client authentications allowed per client id per address per minute before
    /// further failures are answered `429` (0: no limit). Valid credentials are never refused.
    pub auth_failures_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed: for a request from one of these,
    /// the client's address is the last one the header names.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How often the server purges expired rows (and checks whether a key rotation is due).
    pub purge_interval: Duration,
    /// A directory whose files replace the built-in page templates and stylesheet.
    pub templates_dir: Option<std::path::PathBuf>,
    /// Failed sign-ins allowed per username per lockout window from browsers without a
    /// device cookie for that user (0: no limit).
    pub login_failures_per_user: u32,
    /// Failed sign-ins allowed per client address per lockout window (0: no limit).
    pub login_failures_per_address: u32,
    /// The sign-in lockout window, seconds.
    pub login_lockout_window: i64,
    /// The hash of the bearer token that reads `/metrics` on the public listener (none: not
    /// served there).
    pub metrics_token: Option<tessera_core::secret::SecretHash>,
    /// Failed sign-ins allowed per lockout window from one browser holding a device cookie
    /// for the user (0: no limit).
    pub login_failures_per_device: u32,
    /// How long a device cookie lasts, seconds.
    pub device_cookie_ttl: i64,
    /// Password checks (Argon2, 19 MiB each) that run at once.
    pub password_checks_concurrent: usize,
    /// Password checks that may wait for one of those; past them, sign-ins are answered
    /// `503` with `Retry-After` at once.
    pub password_checks_queued: usize,
    /// The hash of the bootstrap credential of the admin API (`TESSERA_ADMIN_TOKEN`), which
    /// has every admin scope; none: only admin tokens are accepted.
    pub admin_token: Option<tessera_core::secret::SecretHash>,
    /// One line per request at info level, target `access` ([`crate::access_log`]); off:
    /// the layer is not installed at all.
    pub access_log: bool,
    /// Wrong user codes allowed per client address per lockout window on the device
    /// verification page (RFC 8628 §5.1) before that address is refused (0: no limit).
    pub user_code_failures_per_address: u32,
    /// Device authorizations one client may be given from one client address per device
    /// code lifetime (RFC 8628 §3.1; 0: no limit).
    pub device_codes_per_client_address: u32,
    /// How long a back-channel logout delivery is retried, seconds from when it was queued
    /// (the outbox worker, `backchannel.rs`).
    pub backchannel_logout_retry_window: i64,
    /// Longest one logout token POST may take.
    pub backchannel_logout_timeout: Duration,
    /// Whether logout tokens may be sent to loopback and private addresses
    /// (`backchannel_target.rs` has the rules).
    pub backchannel_logout_private_addresses: bool,
    /// How many logout deliveries may wait; past it the oldest are dropped.
    pub backchannel_logout_max_queued: u64,
    /// The header a trusted TLS-terminating proxy passes the client certificate in (RFC 8705
    /// §2), believed only from `trusted_proxies` ([`crate::extract::client_certificate`]).
    pub mtls_client_cert_header: Option<axum::http::HeaderName>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_allowed_origins: Vec::new(),
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            auth_failures_per_minute: 30,
            trusted_proxies: Vec::new(),
            purge_interval: PURGE_INTERVAL,
            templates_dir: None,
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            login_lockout_window: 300,
            metrics_token: None,
            login_failures_per_device: 10,
            device_cookie_ttl: 365 * 86_400,
            password_checks_concurrent: std::thread::available_parallelism()
                .map(std::num::NonZeroUsize::get)
                .unwrap_or(2),
            password_checks_queued: 32,
            admin_token: None,
            access_log: false,
            user_code_failures_per_address: 10,
            device_codes_per_client_address: 20,
            backchannel_logout_retry_window: 600,
            backchannel_logout_timeout: Duration::from_secs(5),
            backchannel_logout_private_addresses: false,
            backchannel_logout_max_queued: 10_000,
            mtls_client_cert_header: None,
        }
    }
}

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys.
    #[error(transparent)]
    Keys(#[from] KeyRotationError),
    /// Metrics registry.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl From<NodeError> for StartError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Store(e) => StartError::Store(e),
            NodeError::Keys(e) => StartError::Keys(e),
        }
    }
}

struct Inner {
    node: Node,
    hosts: Hosts,
    http: HttpConfig,
    remote_keys: crate::remote_keys::JwksFetcher,
    metrics: Arc<Metrics>,
    password_checks: PasswordChecks,
    pages: Pages,
    cookies: Cookies,
}

/// The host a request was sent to, as a handler's argument ([`AppState::host`]).
impl axum::extract::FromRequestParts<AppState> for Host {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(state.host(parts))
    }
}

/// Everything a route needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Builds the state: starts the [`Node`] (a first signing key if there is none, the keys
    /// loaded, the caches warm) and what HTTP needs beside it.
    pub async fn start(
        config: Config,
        http: HttpConfig,
        store: Arc<dyn Store>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let node = Node::start(config, store, sealer, clock, http.purge_interval).await?;
        let password_checks =
            PasswordChecks::new(http.password_checks_concurrent, http.password_checks_queued);
        let pages = Pages::new(http.templates_dir.clone());
        let cookies = Cookies::new(&node.config().issuer);
        let hosts = Hosts::new(node.config());
        Ok(Self(Arc::new(Inner {
            node,
            hosts,
            http,
            remote_keys: crate::remote_keys::JwksFetcher::new(),
            metrics: Arc::new(Metrics::new()?),
            password_checks,
            pages,
            cookies,
        })))
    }

    /// The node: settings, storage, keys and background work below HTTP.
    pub fn node(&self) -> &Node {
        &self.0.node
    }

    /// Protocol settings.
    pub fn config(&self) -> &Config {
        self.0.node.config()
    }

    /// HTTP settings.
    pub fn http(&self) -> &HttpConfig {
        &self.0.http
    }

    /// The cached store.
    pub fn store(&self) -> &CachedStore {
        self.0.node.store()
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Metrics, shared with the middleware that counts every request.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    /// The current time.
    pub fn now(&self) -> i64 {
        self.0.node.now()
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.0.node.keys()
    }

    /// The handler context, borrowing `keys` (from [`AppState::keys`]).
    pub fn cx<'a>(&'a self, keys: &'a KeySet) -> Cx<'a> {
        self.0.node.cx(keys, Some(&self.0.remote_keys))
    }

    /// The host a request was sent to ([`crate::host`]): one of the configured hosts, else
    /// the main issuer.
    pub fn host(&self, parts: &Parts) -> Host {
        self.0.hosts.of_request(parts, &self.0.http.trusted_proxies)
    }

    /// The protocol settings `host` answers with (its `issuer` that host's URL).
    pub fn config_for(&self, host: Host) -> &Config {
        self.0.hosts.config(host, self.0.node.config())
    }

    /// [`AppState::cx`] answering as `host`: what a request sent to that host is handled with.
    pub fn cx_for<'a>(&'a self, host: &Host, keys: &'a KeySet) -> Cx<'a> {
        self.0
            .node
            .cx_with(self.config_for(*host), keys, Some(&self.0.remote_keys))
    }

    /// The fetcher of remote documents (trusted issuers' and upstream providers' key sets,
    /// upstream providers' metadata), with its cache.
    pub fn remote_keys(&self) -> &crate::remote_keys::JwksFetcher {
        &self.0.remote_keys
    }

    /// The page templates.
    pub fn pages(&self) -> &Pages {
        &self.0.pages
    }

    /// Cookie names and attributes.
    pub fn cookies(&self) -> &Cookies {
        &self.0.cookies
    }

    /// The sealer (also the key of CSRF tokens).
    pub fn sealer(&self) -> &Sealer {
        self.0.node.sealer()
    }

    /// The budget of password checks.
    pub fn password_checks(&self) -> &PasswordChecks {
        &self.0.password_checks
    }

    /// Reloads the signing keys from storage.
    pub async fn reload_keys(&self) -> Result<(), StartError> {
        Ok(self.0.node.reload_keys().await?)
    }

    /// Rotates the signing key if automatic rotation is on and the newest key is old enough;
    /// returns whether this call rotated.
    pub async fn rotate_keys_if_due(&self) -> Result<bool, StartError> {
        Ok(self.0.node.rotate_keys_if_due().await?)
    }

    /// Applies every change-feed entry since the last poll.
    pub async fn sync_once(&self) -> Result<(), StartError> {
        Ok(self.0.node.sync_once().await?)
    }

    /// Runs the node's background loop until the returned handle is aborted (the logout
    /// token worker is started beside it, by `backchannel::spawn`).
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        self.0.node.spawn_background()
    }
}
