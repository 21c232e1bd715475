//! A node: the state every request of one server process shares, and its background work.
//!
//! Owns [`Node`]: the protocol settings, the [`CachedStore`], the loaded signing keys, the
//! sealer, the verified-token cache and the clock; the start-up sequence (the first signing
//! key, made once between nodes starting together; warming the caches); and the background
//! loop that polls the change feed (every [`SYNC_INTERVAL`], so that a change made by the CLI
//! or another node is honoured within a second), purges expired rows, rotates the signing
//! key when due, and logs the changes made at the command line ([`Node::log_cli_changes`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_core::clock::Clock;
use tessera_core::config::Config;
use tessera_core::cx::{verified_tokens, Cx, RemoteKeys, VerifiedTokens};
use tessera_core::keys::{self, KeyError, KeyRotationError, KeySet, Sealer};
use tessera_core::model::AuditFilter;
use tessera_core::store::{AuditStore, ChangeFeed, KeyStore, Maintenance, Store, StoreError};

use crate::cache::CachedStore;

/// How often the change feed is polled.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// How long caches are kept while the database cannot be reached. While it is down nobody can
/// change it, so they stay true and let JWT issuance and introspection go on; but a node cut
/// off from a database that other nodes still reach would miss their revocations, so past
/// this the caches are dropped (the change feed, kept an hour, catches up on return).
pub const STALE_CACHE_LIMIT: Duration = Duration::from_secs(30);
/// How often expired rows are purged, unless configured otherwise.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// How often, in polls of the feed, the audit trail is read for the command line's changes
/// (every second).
const CLI_CHANGES_EVERY: u64 = 4;
/// Entries read from the audit trail at once for [`Node::log_cli_changes`].
const CLI_CHANGES_PAGE: i64 = 100;

/// Entries of the verified-token cache.
const VERIFIED_TOKENS: usize = 20_000;

/// A failure of the node's own work: storage, or the signing keys.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys.
    #[error(transparent)]
    Keys(#[from] KeyRotationError),
}

struct Inner {
    config: Config,
    store: CachedStore,
    keys: RwLock<Arc<KeySet>>,
    sealer: Sealer,
    verified: VerifiedTokens,
    clock: Arc<dyn Clock>,
    feed_seq: AtomicI64,
    purge_interval: Duration,
    /// The newest command-line entry of the audit trail already logged (or there at start).
    cli_seen: AtomicI64,
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

/// What one server process shares between its requests; cheap to clone.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

impl Node {
    /// Starts a node over `store`: makes a first signing key if there is none, loads the
    /// keys and warms the caches. `purge_interval` is how often the background loop purges
    /// expired rows and checks whether a key rotation is due.
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        purge_interval: Duration,
    ) -> Result<Self, NodeError> {
        let now = clock.now();
        // Read the feed position first, so no change between here and serving is missed.
        let seq = store.latest_change().await?;
        // Command-line changes made before the start are not logged again.
        let cli_seen = newest_cli_entries(store.as_ref(), None, 1)
            .await?
            .first()
            .map_or(0, |r| r.id);
        first_key_claimed_elsewhere(store.as_ref(), now).await?;
        keys::ensure_key(store.as_ref(), &sealer, config.signing_alg, now).await?;
        let keyset =
            KeySet::load(&store.list_keys().await?, &sealer).map_err(KeyRotationError::from)?;
        let cached = CachedStore::new(store);
        cached.warm(now).await?;
        Ok(Self(Arc::new(Inner {
            config,
            store: cached,
            keys: RwLock::new(Arc::new(keyset)),
            sealer,
            verified: verified_tokens(VERIFIED_TOKENS),
            clock,
            feed_seq: AtomicI64::new(seq),
            purge_interval,
            cli_seen: AtomicI64::new(cli_seen),
        })))
    }

    /// Protocol settings.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The cached store.
    pub fn store(&self) -> &CachedStore {
        &self.0.store
    }

    /// The current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }

    /// The sealer.
    pub fn sealer(&self) -> &Sealer {
        &self.0.sealer
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.0.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The handler context, borrowing `keys` (from [`Node::keys`]), with `remote_keys` as
    /// the fetcher of trusted issuers' key sets.
    pub fn cx<'a>(&'a self, keys: &'a KeySet, remote_keys: Option<&'a dyn RemoteKeys>) -> Cx<'a> {
        self.cx_with(&self.0.config, keys, remote_keys)
    }

    /// [`Node::cx`] answering with `config` instead of the node's own: a host's configuration
    /// (its `issuer` that host's URL), prepared once at start.
    pub fn cx_with<'a>(
        &'a self,
        config: &'a Config,
        keys: &'a KeySet,
        remote_keys: Option<&'a dyn RemoteKeys>,
    ) -> Cx<'a> {
        Cx {
            config,
            store: &self.0.store,
            keys,
            verified: &self.0.verified,
            sealer: &self.0.sealer,
            remote_keys,
            now: self.now(),
            dialect: None,
            request: Default::default(),
            confirmation: None,
        }
    }

    /// Reloads the signing keys from storage.
    pub async fn reload_keys(&self) -> Result<(), NodeError> {
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
    pub async fn rotate_keys_if_due(&self) -> Result<bool, NodeError> {
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
    pub async fn sync_once(&self) -> Result<(), NodeError> {
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
    async fn resync(&self, from: i64, horizon: i64) -> Result<(), NodeError> {
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

    /// Logs the changes made at the command line since the last call, oldest first, as
    /// [`tessera_core::audit::log`] logs what this server records itself: a command runs in
    /// a process of its own and writes to the database (see the `tessera` crate's `cli`), so
    /// the server's log learns of it from the audit trail, where the command recorded it.
    /// Each node logs them (each has its own log). Returns how many it logged.
    pub async fn log_cli_changes(&self) -> Result<usize, StoreError> {
        let seen = self.0.cli_seen.load(Ordering::SeqCst);
        let mut fresh = Vec::new();
        let mut before = None;
        loop {
            let page = newest_cli_entries(&self.0.store, before, CLI_CHANGES_PAGE).await?;
            let full = page.len() as i64 >= CLI_CHANGES_PAGE;
            let mut reached = false;
            for rec in page {
                if rec.id <= seen {
                    reached = true;
                    break;
                }
                before = Some(rec.id);
                fresh.push(rec);
            }
            if reached || !full {
                break;
            }
        }
        for rec in fresh.iter().rev() {
            tessera_core::audit::log(rec);
            self.0.cli_seen.fetch_max(rec.id, Ordering::SeqCst);
        }
        Ok(fresh.len())
    }

    /// Runs the background loop until the returned handle is aborted.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SYNC_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let purge_every =
                ((node.0.purge_interval.as_millis() / SYNC_INTERVAL.as_millis()) as u64).max(1);
            let mut n: u64 = 0;
            let mut outage_since: Option<std::time::Instant> = None;
            let mut cleared = false;
            loop {
                tick.tick().await;
                n = n.wrapping_add(1);
                match node.sync_once().await {
                    Ok(()) => outage_since = None,
                    // The database is down: nobody can change it, so the caches stay true and
                    // keep serving what needs no database (see STALE_CACHE_LIMIT); the store
                    // logs the outage once.
                    Err(NodeError::Store(StoreError::Unavailable(_))) => {
                        let since = *outage_since.get_or_insert_with(std::time::Instant::now);
                        if !cleared && since.elapsed() > STALE_CACHE_LIMIT {
                            tracing::warn!("no database for too long; caches cleared");
                            node.0.store.clear();
                            cleared = true;
                        }
                        continue;
                    }
                    Err(e) => {
                        // A node that cannot read the feed cannot trust its caches either.
                        tracing::warn!(error = %e, "change feed poll failed; caches cleared");
                        node.0.store.clear();
                    }
                }
                if outage_since.is_none() {
                    cleared = false;
                }
                if n.is_multiple_of(CLI_CHANGES_EVERY) {
                    if let Err(e) = node.log_cli_changes().await {
                        tracing::warn!(error = %e, "reading the command line's changes failed");
                    }
                }
                if n.is_multiple_of(purge_every) {
                    if let Err(e) = node.rotate_keys_if_due().await {
                        tracing::warn!(error = %e, "automatic key rotation refused or failed");
                    }
                    match node.0.store.purge_expired(node.now()).await {
                        Ok(r) => tracing::debug!(?r, "purged expired rows"),
                        Err(e) => tracing::warn!(error = %e, "purge failed"),
                    }
                    let cutoff = node.now().saturating_sub(node.0.config.audit_retention);
                    match node.0.store.purge_audit(cutoff).await {
                        Ok(n) => tracing::debug!(n, "purged audit entries past their retention"),
                        Err(e) => tracing::warn!(error = %e, "audit purge failed"),
                    }
                }
            }
        })
    }
}

/// The newest entries of the audit trail made at the command line (actor `cli`), newest
/// first, older than `before` when given.
async fn newest_cli_entries(
    store: &dyn AuditStore,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<tessera_core::model::AuditRecord>, StoreError> {
    store
        .list_audit(&AuditFilter {
            actor: Some("cli".into()),
            before_id: before,
            limit,
            ..AuditFilter::default()
        })
        .await
}
