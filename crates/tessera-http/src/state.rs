//! The server's shared state and its background work.
//!
//! Owns [`AppState`]: configuration, the cached store, the loaded signing keys, metrics and
//! the password-check budget, handed to every route; and the background loop that polls the change feed
//! (every 250 ms, so a change made by the CLI or another node is honoured within a second) and
//! purges expired rows.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_core::clock::Clock;
use tessera_core::config::Config;
use tessera_core::cx::{verified_tokens, Cx, VerifiedTokens};
use tessera_core::keys::{self, KeyError, KeyRotationError, KeySet, Sealer};
use tessera_core::store::{ChangeFeed, KeyStore, Maintenance, Store, StoreError};

use crate::cache::CachedStore;
use crate::metrics::Metrics;
use crate::pages::{Cookies, Pages};
use crate::throttle::PasswordChecks;

/// How often the change feed is polled.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// How long caches are kept while the database cannot be reached. While it is down nobody can
/// change it, so they stay true and let JWT issuance and introspection go on; but a node cut
/// off from a database that other nodes still reach would miss their revocations, so past
/// this the caches are dropped (the change feed, kept an hour, catches up on return).
pub const STALE_CACHE_LIMIT: Duration = Duration::from_secs(30);
/// How often expired rows are purged, unless configured otherwise.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

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

struct Inner {
    config: Config,
    http: HttpConfig,
    store: CachedStore,
    keys: RwLock<Arc<KeySet>>,
    sealer: Sealer,
    verified: VerifiedTokens,
    remote_keys: crate::remote_keys::JwksFetcher,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    feed_seq: AtomicI64,
    password_checks: PasswordChecks,
    pages: Pages,
    cookies: Cookies,
}

/// The replay-store key with which one of several nodes starting at once on an empty database
/// claims the making of the first signing key.
const FIRST_KEY_CLAIM: &str = "signing_key:first";

/// On a database without keys, claims the making of the first one, so that nodes starting at
/// once make one key between them rather than one each. When another node holds the claim,
/// waits (up to 5 s) for its key to appear; [`keys::ensure_key`] then makes one only if none
/// came (the claiming node died in between).
async fn first_key_claimed_elsewhere(store: &dyn Store, now: i64) -> Result<(), StoreError> {
    if !store.list_keys().await?.is_empty() || store.use_once(FIRST_KEY_CLAIM, now + 600).await? {
        return Ok(());
    }
    for _ in 0..50 {
        if !store.list_keys().await?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Everything a route needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Builds the state: makes a first signing key if there is none, loads the keys and warms
    /// the caches.
    pub async fn start(
        config: Config,
        http: HttpConfig,
        store: Arc<dyn Store>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let now = clock.now();
        // Read the feed position first, so no change between here and serving is missed.
        let seq = store.latest_change().await?;
        first_key_claimed_elsewhere(store.as_ref(), now).await?;
        keys::ensure_key(store.as_ref(), &sealer, config.signing_alg, now).await?;
        let keyset =
            KeySet::load(&store.list_keys().await?, &sealer).map_err(KeyRotationError::from)?;
        let cached = CachedStore::new(store);
        cached.warm(now).await?;
        let password_checks =
            PasswordChecks::new(http.password_checks_concurrent, http.password_checks_queued);
        let pages = Pages::new(http.templates_dir.clone());
        let cookies = Cookies::new(&config.issuer);
        Ok(Self(Arc::new(Inner {
            config,
            http,
            store: cached,
            keys: RwLock::new(Arc::new(keyset)),
            sealer,
            verified: verified_tokens(20_000),
            remote_keys: crate::remote_keys::JwksFetcher::new(),
            metrics: Metrics::new()?,
            clock,
            feed_seq: AtomicI64::new(seq),
            password_checks,
            pages,
            cookies,
        })))
    }

    /// Protocol settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// HTTP settings.
    pub fn http(&self) -> &HttpConfig {
        &self.0.http
    }

    /// The cached store.
    pub fn store(&self) -> &CachedStore {
        &self.0.store
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The current time.
    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.0.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The handler context, borrowing `keys` (from [`AppState::keys`]).
    pub fn cx<'a>(&'a self, keys: &'a KeySet) -> Cx<'a> {
        Cx {
            config: &self.0.config,
            store: &self.0.store,
            keys,
            verified: &self.0.verified,
            sealer: &self.0.sealer,
            remote_keys: Some(&self.0.remote_keys),
            now: self.now(),
        }
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
        &self.0.sealer
    }

    /// The budget of password checks.
    pub fn password_checks(&self) -> &PasswordChecks {
        &self.0.password_checks
    }

    /// Reloads the signing keys from storage.
    pub async fn reload_keys(&self) -> Result<(), StartError> {
        let records = self.0.store.list_keys().await?;
        let set = match KeySet::load(&records, &self.0.sealer) {
            Ok(set) => set,
            Err(e @ KeyError::Unseal(_)) => {
                // Re-sealed under a new secret (`tessera keys reseal`), or a key sealed under
                // one: this server keeps the keys it holds and, as its secret no longer
                // matches theirs, makes none (`keys::rotate_if_due` refuses).
                tracing::error!(
                    error = %e,
                    "the stored signing keys no longer open with this server's sealing \
                     secret (re-sealed by `tessera keys reseal`?): keeping the keys already \
                     loaded and rotating none; restart this server with the current secret"
                );
                return Ok(());
            }
            Err(e) => return Err(KeyRotationError::from(e).into()),
        };
        if let Ok(mut k) = self.0.keys.write() {
            *k = Arc::new(set);
        }
        self.0.verified.clear();
        Ok(())
    }

    /// Rotates the signing key if automatic rotation is on and the newest key is old enough;
    /// returns whether this call rotated.
    pub async fn rotate_keys_if_due(&self) -> Result<bool, StartError> {
        let rotated = keys::rotate_if_due(
            self.0.store.inner().as_ref(),
            &self.0.sealer,
            &self.0.config,
            self.now(),
        )
        .await?;
        if let Some(k) = &rotated {
            tracing::info!(kid = %k.kid, activates_at = k.activates_at, "rotated the signing key");
            self.reload_keys().await?;
        }
        Ok(rotated.is_some())
    }

    /// Applies every change-feed entry since the last poll.
    pub async fn sync_once(&self) -> Result<(), StartError> {
        loop {
            let from = self.0.feed_seq.load(Ordering::SeqCst);
            let changes = self.0.store.changes_since(from, 1000).await?;
            // Read after the poll: a horizon past `from` means entries after `from` may have
            // been purged before the poll read them (`ChangeFeed::feed_horizon`).
            let horizon = self.0.store.feed_horizon().await?;
            if horizon > from {
                return self.resync(from, horizon).await;
            }
            let mut keys_changed = false;
            for c in &changes {
                keys_changed |= self.0.store.apply(c);
                self.0.feed_seq.fetch_max(c.seq, Ordering::SeqCst);
            }
            if keys_changed {
                self.reload_keys().await?;
            }
            if changes.len() < 1000 {
                return Ok(());
            }
        }
    }

    /// For a node whose feed position fell behind the feed's retention (it stopped polling for
    /// longer than entries are kept): drops every cache, reloads the revoked JWT ids and the
    /// signing keys, and carries on from the feed's newest position.
    async fn resync(&self, from: i64, horizon: i64) -> Result<(), StartError> {
        // The position first: whatever changes from here on is polled again.
        let latest = self.0.store.latest_change().await?;
        self.0.store.resync(self.now()).await?;
        self.reload_keys().await?;
        self.0.feed_seq.fetch_max(latest, Ordering::SeqCst);
        tracing::warn!(
            position = from,
            horizon,
            latest,
            "this node fell behind the change feed's retention; caches dropped and reloaded"
        );
        Ok(())
    }

    /// Runs the background loop until the returned handle is aborted.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SYNC_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let purge_every =
                ((state.0.http.purge_interval.as_millis() / SYNC_INTERVAL.as_millis()) as u64)
                    .max(1);
            let mut n: u64 = 0;
            let mut outage_since: Option<std::time::Instant> = None;
            let mut cleared = false;
            loop {
                tick.tick().await;
                n = n.wrapping_add(1);
                match state.sync_once().await {
                    Ok(()) => outage_since = None,
                    // The database is down: nobody can change it, so the caches stay true and
                    // keep serving what needs no database (see STALE_CACHE_LIMIT); the store
                    // logs the outage once.
                    Err(StartError::Store(StoreError::Unavailable(_))) => {
                        let since = *outage_since.get_or_insert_with(std::time::Instant::now);
                        if !cleared && since.elapsed() > STALE_CACHE_LIMIT {
                            tracing::warn!("no database for too long; caches cleared");
                            state.0.store.clear();
                            cleared = true;
                        }
                        continue;
                    }
                    Err(e) => {
                        // A node that cannot read the feed cannot trust its caches either.
                        tracing::warn!(error = %e, "change feed poll failed; caches cleared");
                        state.0.store.clear();
                    }
                }
                if outage_since.is_none() {
                    cleared = false;
                }
                if n.is_multiple_of(purge_every) {
                    if let Err(e) = state.rotate_keys_if_due().await {
                        tracing::warn!(error = %e, "automatic key rotation refused or failed");
                    }
                    match state.0.store.purge_expired(state.now()).await {
                        Ok(r) => tracing::debug!(?r, "purged expired rows"),
                        Err(e) => tracing::warn!(error = %e, "purge failed"),
                    }
                }
            }
        })
    }
}
