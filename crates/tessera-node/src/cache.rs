//! Caches in front of the database, kept true across nodes by the change feed.
//!
//! Owns [`CachedStore`]: a [`Store`] that answers the hot reads of the token path (clients,
//! opaque tokens, revoked JWT ids, user grants) from memory and passes everything else to the database.
//! Writes made through this node invalidate its own entries at once; writes made elsewhere (the
//! CLI, another node) reach it through [`CachedStore::apply`], which the server calls for every
//! change-feed entry it polls (every 250 ms), so a cached entry is never older than the poll
//! bound. Negative client lookups are cached too (client creation is in the feed); token
//! lookups that miss are not (token inserts are not in the feed, to keep issuance cheap).
//! Environments and trusted issuers (both in the feed) are cached the same way, hits and
//! misses. Nothing single-use is ever answered from here ([`ReplayStore`] passes through).
//!
//! Revoked JWT ids are kept in a [`RevokedFilter`] of fixed size (4 MiB), not a list: its
//! memory does not grow with the revocation rate or the tokens' lifetime. A miss means "not
//! revoked"; a hit is confirmed in the database, and the answer kept in a bounded cache. The
//! filter is filled from the database at start and from the feed after, and rebuilt from the
//! database (a page at a time) when it has filled up enough to send more than 1 % of lookups
//! there and a rebuild may leave much out (at most once every five minutes), or after the node
//! lost track of the feed ([`CachedStore::resync`]; lookups go to the database until then).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use quick_cache::sync::Cache;
use tessera_core::model::{
    AdminTokenRecord, ExternalIdentityRecord, IdpRecord, LogoutDeliveryRecord,
};
use tessera_core::model::{AuditFilter, AuditRecord};
use tessera_core::model::{
    Change, ChangeKind, ClientRecord, CodeRecord, CodeUse, ConsentRecord, EnvDeletion, EnvRecord,
    GrantRecord, KeyRecord, PurgeReport, RefreshRecord, SessionRecord, TokenRecord, TrustRecord,
    UserRecord,
};
use tessera_core::model::{DeviceApproval, DeviceCodeRecord, DevicePoll};
use tessera_core::secret::SecretHash;
use tessera_core::store::DeviceStore;
use tessera_core::store::{AdminTokenStore, Attempt, AuditStore, IdpStore, ThrottleStore};
use tessera_core::store::{
    ChangeFeed, ClientStore, GrantStore, KeyStore, Maintenance, ReplayStore, Store, StoreError,
    TokenStore, TrustStore, UserStore,
};

use crate::revoked::{self, RevokedFilter};

/// Above this estimated share of lookups that the filter sends to the database for nothing,
/// the purge rebuilds it from the database.
const REBUILD_ABOVE_FALSE_POSITIVES: f64 = 0.01;
/// Fewest seconds between two such rebuilds (each reads every unexpired revocation).
const REBUILD_AT_MOST_EVERY: i64 = 300;
/// Revoked ids read from the database at a time when the filter is built (a few in unit
/// tests, so that they cross pages).
const REBUILD_PAGE: i64 = if cfg!(test) { 3 } else { 10_000 };

/// The filter of revoked JWT ids, and the one being built while the database is read.
struct Filters {
    current: Arc<RevokedFilter>,
    /// While a rebuild reads the database, revocations learnt meanwhile go here too.
    next: Option<Arc<RevokedFilter>>,
}

/// A caching layer over a store.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    clients: Cache<String, Option<Arc<ClientRecord>>>,
    tokens: Cache<String, Arc<TokenRecord>>,
    /// Every revoked JWT id this node knows of (the database is the truth).
    revoked: RwLock<Filters>,
    /// The database's answers for ids the filter may contain, so that an id looked up often
    /// costs one read.
    confirmed: Cache<String, bool>,
    /// Bits of the revoked-id filter.
    filter_bits: usize,
    /// Serialises rebuilds of the filter.
    rebuilding: tokio::sync::Mutex<()>,
    /// When the filter was last built from the database (Unix seconds).
    built_at: AtomicI64,
    /// Ids read from the database when the filter was last built.
    loaded: AtomicU64,
    /// Ids learnt from the feed (or this node's revocations) since.
    learnt: AtomicU64,
    /// Set while the filter may lack revocations (the node lost track of the feed and is
    /// reloading): every lookup goes to the database meanwhile.
    filter_incomplete: AtomicBool,
    grants: Cache<String, Arc<GrantRecord>>,
    envs: Cache<String, Option<Arc<EnvRecord>>>,
    /// Trusted issuers by (environment, issuer).
    trust: Cache<(String, String), Option<Arc<TrustRecord>>>,
    /// Every client id that exists, or existed: a superset kept by [`CachedStore::forget`].
    client_ids: RwLock<HashSet<String>>,
    /// Whether `client_ids` is complete (false until loaded, and after the node lost track
    /// of the feed until reloaded).
    client_ids_complete: AtomicBool,
    /// Bumped on every invalidation. A read from the database is cached only if no
    /// invalidation happened while it ran, so a change applied between the read and the
    /// insert cannot leave the stale row cached.
    generation: AtomicU64,
}

impl CachedStore {
    /// Wraps a store; call [`CachedStore::warm`] before serving.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self::with_revocation_filter(inner, revoked::DEFAULT_BITS)
    }

    /// Wraps a store, with a revoked-id filter of `bits` bits (see [`RevokedFilter::new`]).
    pub fn with_revocation_filter(inner: Arc<dyn Store>, bits: usize) -> Self {
        Self {
            inner,
            clients: Cache::new(10_000),
            tokens: Cache::new(20_000),
            revoked: RwLock::new(Filters {
                current: Arc::new(RevokedFilter::new(bits)),
                next: None,
            }),
            confirmed: Cache::new(10_000),
            filter_bits: bits,
            rebuilding: tokio::sync::Mutex::new(()),
            built_at: AtomicI64::new(0),
            loaded: AtomicU64::new(0),
            learnt: AtomicU64::new(0),
            filter_incomplete: AtomicBool::new(false),
            grants: Cache::new(20_000),
            envs: Cache::new(1_000),
            trust: Cache::new(10_000),
            client_ids: RwLock::new(HashSet::new()),
            client_ids_complete: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }

    /// The store under the cache.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Loads the revoked JWT ids that are still unexpired, and every client id.
    pub async fn warm(&self, now: i64) -> Result<(), StoreError> {
        self.rebuild_revoked(now).await?;
        self.load_client_ids().await
    }

    /// Loads every client id, unless the set is complete already. Ids added meanwhile (by
    /// [`CachedStore::forget`]) are kept: the set only grows.
    async fn load_client_ids(&self) -> Result<(), StoreError> {
        if self.client_ids_complete.load(Ordering::SeqCst) {
            return Ok(());
        }
        let clients = self.inner.list_clients().await?;
        if let Ok(mut ids) = self.client_ids.write() {
            ids.extend(clients.into_iter().map(|c| c.client_id));
            self.client_ids_complete.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Whether `client_id` is certainly not registered, known without the database.
    fn surely_unknown_client(&self, client_id: &str) -> bool {
        !client_id.starts_with("sdk:")
            && self.client_ids_complete.load(Ordering::SeqCst)
            && self
                .client_ids
                .read()
                .is_ok_and(|ids| !ids.contains(client_id))
    }

    /// Drops every cache and reloads the revoked JWT ids from the database: for a node that
    /// lost track of the change feed (its position fell behind the feed's retention), so
    /// that nothing it missed is answered from memory.
    pub async fn resync(&self, now: i64) -> Result<(), StoreError> {
        self.filter_incomplete.store(true, Ordering::SeqCst);
        self.clear();
        self.rebuild_revoked(now).await
    }

    /// The bytes the revoked-id filter holds (fixed when the cache is made).
    pub fn revocation_filter_memory(&self) -> usize {
        self.filters().current.memory()
    }

    /// The estimated share of lookups of unrevoked ids that the filter cannot rule out (and
    /// so sends to the database), at its current fill.
    pub fn revocation_filter_false_positive_rate(&self) -> f64 {
        self.filters().current.false_positive_rate()
    }

    fn filters(&self) -> RwLockReadGuard<'_, Filters> {
        // Nothing panics while holding the lock; a poisoned one still holds a whole filter.
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn filters_mut(&self) -> RwLockWriteGuard<'_, Filters> {
        self.revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds a new filter from the unexpired revocations in the database and puts it in
    /// place. Revocations learnt while the database is read go into both filters, so none
    /// is lost: one committed before the read is in it, one after is inserted meanwhile or
    /// comes with a later feed poll.
    async fn rebuild_revoked(&self, now: i64) -> Result<(), StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let next = Arc::new(RevokedFilter::new(self.filter_bits));
        self.filters_mut().next = Some(next.clone());
        let loaded = match self.fill_from_database(&next, now).await {
            Ok(n) => n,
            Err(e) => {
                self.filters_mut().next = None;
                return Err(e);
            }
        };
        let mut filters = self.filters_mut();
        filters.current = next;
        filters.next = None;
        drop(filters);
        self.built_at.store(now, Ordering::SeqCst);
        self.loaded.store(loaded, Ordering::SeqCst);
        self.learnt.store(0, Ordering::SeqCst);
        self.filter_incomplete.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Inserts every unexpired revoked id in the database into `filter`, a page at a time;
    /// returns how many.
    async fn fill_from_database(
        &self,
        filter: &RevokedFilter,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut after = String::new();
        let mut count = 0;
        loop {
            let page = self
                .inner
                .revoked_jtis_after(now, &after, REBUILD_PAGE)
                .await?;
            for jti in &page {
                filter.insert(jti);
            }
            count += page.len() as u64;
            match page.last() {
                Some(last) if page.len() as i64 == REBUILD_PAGE => after.clone_from(last),
                _ => return Ok(count),
            }
        }
    }

    /// Whether the filter has filled up enough to be worth rebuilding (its revocations
    /// that expired since it was built are then left out): it sends too many lookups to the
    /// database, and it learnt at least half as many ids since it was built as it was built
    /// with, so a rebuild may leave much out. When the database itself holds more unexpired
    /// revocations than the filter is made for, rebuilding would not help, and this keeps a
    /// flood of revocations from making every node read them all every few minutes.
    fn revoked_filter_is_stale(&self, now: i64) -> bool {
        now - self.built_at.load(Ordering::SeqCst) >= REBUILD_AT_MOST_EVERY
            && self.learnt.load(Ordering::SeqCst) >= self.loaded.load(Ordering::SeqCst) / 2
            && self.filters().current.false_positive_rate() > REBUILD_ABOVE_FALSE_POSITIVES
    }

    /// Applies one change-feed entry; returns whether the signing keys changed.
    pub fn apply(&self, change: &Change) -> bool {
        self.forget(change.kind, &change.key);
        change.kind == ChangeKind::Keys
    }

    /// Invalidates what a change to `key` makes stale: for a write made here, at once; for
    /// one made elsewhere, when the feed brings it.
    fn forget(&self, kind: ChangeKind, key: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match kind {
            ChangeKind::Client => {
                // Created, changed or deleted: either way an id that may exist.
                if let Ok(mut ids) = self.client_ids.write() {
                    ids.insert(key.to_owned());
                }
                self.clients.remove(key);
            }
            ChangeKind::Token => {
                self.tokens.remove(key);
            }
            ChangeKind::Jti => {
                self.learnt.fetch_add(1, Ordering::SeqCst);
                let filters = self.filters();
                filters.current.insert(key);
                if let Some(next) = &filters.next {
                    next.insert(key);
                }
                drop(filters);
                self.confirmed.remove(key);
            }
            ChangeKind::Grant => {
                self.grants.remove(key);
            }
            ChangeKind::Keys => {}
            ChangeKind::Env => {
                self.envs.remove(key);
            }
            // Keyed by environment; registrations change rarely, so all are dropped.
            ChangeKind::Trust => self.trust.clear(),
        }
    }

    /// Drops every cached grant, after a write here revoked grants of a user: cheaper than
    /// looking up which ones (the feed names each, for the other nodes).
    fn forget_grants(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.grants.clear();
    }

    /// Forgets every cached entry (after the node lost track of the feed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Creations may have been missed: ask the database until the ids are reloaded (at
        // the next feed read).
        self.client_ids_complete.store(false, Ordering::SeqCst);
        self.clients.clear();
        self.tokens.clear();
        self.grants.clear();
        self.envs.clear();
        self.trust.clear();
        self.confirmed.clear();
    }
}

#[async_trait]
impl ClientStore for CachedStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let r = self.inner.insert_client(client).await;
        // A conflict too: the id exists.
        self.forget(ChangeKind::Client, &client.client_id);
        r
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        if let Some(hit) = self.clients.get(client_id) {
            return Ok(hit.as_deref().cloned());
        }
        if self.surely_unknown_client(client_id) {
            return Ok(None);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = self.inner.get_client(client_id).await?;
        // Bound what unknown ids can make us hold: only ids of a sane length are cached.
        if (found.is_some() || client_id.len() <= 64)
            && generation == self.generation.load(Ordering::SeqCst)
        {
            self.clients
                .insert(client_id.to_owned(), found.clone().map(Arc::new));
        }
        Ok(found)
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.inner.list_clients().await
    }

    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.delete_client(client_id, now).await;
        self.forget(ChangeKind::Client, client_id);
        r
    }

    async fn update_client(&self, client: &ClientRecord, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.update_client(client, now).await;
        self.forget(ChangeKind::Client, &client.client_id);
        r
    }

    async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.revoke_client_tokens(client_id, now).await;
        self.forget(ChangeKind::Client, client_id);
        r
    }

    async fn set_client_keys(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self.inner.set_client_keys(client_id, jwks, now).await;
        self.forget(ChangeKind::Client, client_id);
        r
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &SecretHash,
        keep_old_until: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .inner
            .rotate_client_secret(client_id, new_hash, keep_old_until, now)
            .await;
        self.forget(ChangeKind::Client, client_id);
        r
    }

    async fn set_registration_token(
        &self,
        client_id: &str,
        hash: Option<&SecretHash>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .inner
            .set_registration_token(client_id, hash, now)
            .await;
        self.forget(ChangeKind::Client, client_id);
        r
    }

    async fn registration_token(&self, client_id: &str) -> Result<Option<SecretHash>, StoreError> {
        // Not cached: read only by the registration management endpoint (RFC 7592).
        self.inner.registration_token(client_id).await
    }
}

#[async_trait]
impl TokenStore for CachedStore {
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        // Not cached here: issuance stays cheap, and a token is cached on its first lookup.
        self.inner.insert_token(token).await
    }

    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        if let Some(hit) = self.tokens.get(token_id) {
            return Ok(Some((*hit).clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = self.inner.get_token(token_id).await?;
        if let Some(t) = found
            .as_ref()
            .filter(|_| generation == self.generation.load(Ordering::SeqCst))
        {
            self.tokens.insert(token_id.to_owned(), Arc::new(t.clone()));
        }
        Ok(found)
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self.inner.revoke_token(token_id, client_id, now).await;
        self.forget(ChangeKind::Token, token_id);
        r
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.inner
            .revoke_jti(jti, client_id, expires_at, now)
            .await?;
        self.forget(ChangeKind::Jti, jti);
        Ok(())
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        if !self.filter_incomplete.load(Ordering::SeqCst)
            && !self.filters().current.may_contain(jti)
        {
            return Ok(false);
        }
        if let Some(answer) = self.confirmed.get(jti) {
            return Ok(answer);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let revoked = self.inner.is_jti_revoked(jti).await?;
        // Our ids are short; a revocation applied meanwhile bumped the generation.
        if jti.len() <= 128 && generation == self.generation.load(Ordering::SeqCst) {
            self.confirmed.insert(jti.to_owned(), revoked);
        }
        Ok(revoked)
    }

    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.inner.revoked_jtis(now).await
    }

    async fn revoked_jtis_after(
        &self,
        now: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.revoked_jtis_after(now, after, limit).await
    }
}

#[async_trait]
impl TrustStore for CachedStore {
    async fn ensure_env(&self, name: &str, now: i64) -> Result<EnvRecord, StoreError> {
        let r = self.inner.ensure_env(name, now).await;
        self.forget(ChangeKind::Env, name);
        r
    }

    async fn get_env(&self, name: &str) -> Result<Option<EnvRecord>, StoreError> {
        if let Some(hit) = self.envs.get(name) {
            return Ok(hit.as_deref().cloned());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = self.inner.get_env(name).await?;
        if (found.is_some() || name.len() <= 64)
            && generation == self.generation.load(Ordering::SeqCst)
        {
            self.envs
                .insert(name.to_owned(), found.clone().map(Arc::new));
        }
        Ok(found)
    }

    async fn list_envs(&self) -> Result<Vec<EnvRecord>, StoreError> {
        self.inner.list_envs().await
    }

    async fn set_env_single_use(
        &self,
        name: &str,
        single_use: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self.inner.set_env_single_use(name, single_use, now).await;
        self.forget(ChangeKind::Env, name);
        r
    }

    async fn delete_env(&self, name: &str, now: i64) -> Result<EnvDeletion, StoreError> {
        let r = self.inner.delete_env(name, now).await;
        self.forget(ChangeKind::Env, name);
        self.forget(ChangeKind::Trust, name);
        self.forget(
            ChangeKind::Client,
            &tessera_core::endpoint::sdk_token::sdk_client_id(name),
        );
        r
    }

    async fn insert_trust(&self, trust: &TrustRecord) -> Result<(), StoreError> {
        let r = self.inner.insert_trust(trust).await;
        self.forget(ChangeKind::Trust, &trust.env);
        r
    }

    async fn find_trust(&self, env: &str, issuer: &str) -> Result<Option<TrustRecord>, StoreError> {
        let key = (env.to_owned(), issuer.to_owned());
        if let Some(hit) = self.trust.get(&key) {
            return Ok(hit.as_deref().cloned());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = self.inner.find_trust(env, issuer).await?;
        // Bound what unknown issuers can make us hold.
        if (found.is_some() || issuer.len() <= 256)
            && generation == self.generation.load(Ordering::SeqCst)
        {
            self.trust.insert(key, found.clone().map(Arc::new));
        }
        Ok(found)
    }

    async fn list_trust(&self, env: Option<&str>) -> Result<Vec<TrustRecord>, StoreError> {
        self.inner.list_trust(env).await
    }

    async fn set_trust_keys(&self, id: &str, keys: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.set_trust_keys(id, keys, now).await;
        self.forget(ChangeKind::Trust, "");
        r
    }

    async fn delete_trust(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.delete_trust(id, now).await;
        self.forget(ChangeKind::Trust, "");
        r
    }
}

#[async_trait]
impl ReplayStore for CachedStore {
    async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        // Never cached: the answer must come from the one place every node shares.
        self.inner.use_once(key, expires_at).await
    }

    async fn was_used(&self, key: &str) -> Result<bool, StoreError> {
        // Never cached either: another node may have used it a moment ago.
        self.inner.was_used(key).await
    }
}

#[async_trait]
impl ThrottleStore for CachedStore {
    // Never cached: a budget is shared by every node, so only the database can count it.
    async fn take_attempt(
        &self,
        key: &str,
        limit: u32,
        window: i64,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        self.inner.take_attempt(key, limit, window, now).await
    }
    async fn return_attempt(&self, key: &str, now: i64) -> Result<(), StoreError> {
        self.inner.return_attempt(key, now).await
    }
}

#[async_trait]
impl KeyStore for CachedStore {
    async fn insert_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        self.inner.insert_key(key).await
    }
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_keys().await
    }
    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError> {
        self.inner.retire_key(kid, retires_at).await
    }
    async fn reseal_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        sealed_by: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.reseal_keys(sealed, sealed_by, now).await
    }
}

#[async_trait]
impl ChangeFeed for CachedStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        self.inner.latest_change().await
    }
    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        // After a lost feed, the ids are reloaded before the feed is read again.
        self.load_client_ids().await?;
        self.inner.changes_since(seq, limit).await
    }
    async fn feed_horizon(&self) -> Result<i64, StoreError> {
        self.inner.feed_horizon().await
    }
}

#[async_trait]
impl Maintenance for CachedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn purge_expired(&self, now: i64) -> Result<PurgeReport, StoreError> {
        let report = self.inner.purge_expired(now).await?;
        if self.revoked_filter_is_stale(now) {
            self.rebuild_revoked(now).await?;
        }
        Ok(report)
    }
    async fn recorded_issuer(&self) -> Result<Option<String>, StoreError> {
        self.inner.recorded_issuer().await
    }
    async fn record_issuer(
        &self,
        issuer: &str,
        replace: bool,
        now: i64,
    ) -> Result<String, StoreError> {
        self.inner.record_issuer(issuer, replace, now).await
    }
}

/// The audit trail is not cached: it is written and listed in the database.
#[async_trait]
impl AuditStore for CachedStore {
    async fn insert_audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        self.inner.insert_audit(record).await
    }
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.list_audit(filter).await
    }
    async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        self.inner.purge_audit(before).await
    }
}

/// Device authorizations pass through: every decision and every poll is made by the
/// database, where every node meets (RFC 8628 tokens are issued once).
#[async_trait]
impl DeviceStore for CachedStore {
    async fn insert_device_code(&self, record: &DeviceCodeRecord) -> Result<(), StoreError> {
        self.inner.insert_device_code(record).await
    }
    async fn find_device_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        self.inner.find_device_user_code(user_code).await
    }
    async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .decide_device_code(user_code, approval, now)
            .await
    }
    async fn poll_device_code(
        &self,
        device_code_hash: &SecretHash,
        client_id: &str,
        now: i64,
        slow_down_step: i64,
    ) -> Result<DevicePoll, StoreError> {
        self.inner
            .poll_device_code(device_code_hash, client_id, now, slow_down_step)
            .await
    }
}

/// Admin tokens are not cached: every admin request reads its token from the database (a
/// revoked token stops working at once on every node).
#[async_trait]
impl AdminTokenStore for CachedStore {
    async fn insert_admin_token(&self, token: &AdminTokenRecord) -> Result<(), StoreError> {
        self.inner.insert_admin_token(token).await
    }
    async fn get_admin_token(&self, id: &str) -> Result<Option<AdminTokenRecord>, StoreError> {
        self.inner.get_admin_token(id).await
    }
    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>, StoreError> {
        self.inner.list_admin_tokens().await
    }
    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.inner.revoke_admin_token(id, now).await
    }
    async fn touch_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.inner.touch_admin_token(id, now).await
    }
}

/// Providers and external identities are not cached: a sign-in through an upstream reads
/// them from the database (a removed provider stops working at once on every node).
#[async_trait]
impl IdpStore for CachedStore {
    async fn insert_idp(&self, idp: &IdpRecord) -> Result<(), StoreError> {
        self.inner.insert_idp(idp).await
    }
    async fn get_idp(&self, name: &str) -> Result<Option<IdpRecord>, StoreError> {
        self.inner.get_idp(name).await
    }
    async fn list_idps(&self) -> Result<Vec<IdpRecord>, StoreError> {
        self.inner.list_idps().await
    }
    async fn delete_idp(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_idp(name).await
    }
    async fn set_idp_secret(&self, name: &str, sealed: &[u8]) -> Result<bool, StoreError> {
        self.inner.set_idp_secret(name, sealed).await
    }
    async fn find_external_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<ExternalIdentityRecord>, StoreError> {
        self.inner.find_external_identity(issuer, subject).await
    }
    async fn insert_external_identity(
        &self,
        link: &ExternalIdentityRecord,
    ) -> Result<(), StoreError> {
        self.inner.insert_external_identity(link).await
    }
}

#[async_trait]
impl UserStore for CachedStore {
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.inner.insert_user(user).await
    }
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.get_user(user_id).await
    }
    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.find_user(username).await
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.list_users().await
    }
    async fn rename_user(&self, user_id: &str, username: &str) -> Result<bool, StoreError> {
        self.inner.rename_user(user_id, username).await
    }
    async fn delete_user(&self, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.delete_user(user_id, now).await;
        self.forget_grants();
        r
    }
    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.set_password(user_id, password_hash, now).await
    }
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.inner.insert_session(session).await
    }
    async fn get_session(&self, hash: &SecretHash) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.get_session(hash).await
    }
    async fn delete_session(&self, hash: &SecretHash) -> Result<bool, StoreError> {
        self.inner.delete_session(hash).await
    }
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.get_consent(user_id, client_id).await
    }
    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.inner.put_consent(user_id, client_id, scope, now).await
    }
    async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
        self.inner.list_consents(user_id).await
    }
    async fn delete_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = self.inner.delete_consent(user_id, client_id, now).await;
        self.forget_grants();
        r
    }
}

#[async_trait]
impl GrantStore for CachedStore {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        self.inner.insert_code(code).await
    }
    async fn use_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeUse, StoreError> {
        // Never cached: single use is decided where every node meets.
        self.inner.use_code(code_hash, now).await
    }
    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&RefreshRecord>,
    ) -> Result<(), StoreError> {
        self.inner.insert_grant(grant, refresh).await
    }
    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        if let Some(hit) = self.grants.get(grant_id) {
            return Ok(Some((*hit).clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = self.inner.get_grant(grant_id).await?;
        if let Some(g) = found
            .as_ref()
            .filter(|_| generation == self.generation.load(Ordering::SeqCst))
        {
            self.grants.insert(grant_id.to_owned(), Arc::new(g.clone()));
        }
        Ok(found)
    }
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.revoke_grant(grant_id, now).await;
        self.forget(ChangeKind::Grant, grant_id);
        r
    }
    async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantRecord>, StoreError> {
        self.inner.list_user_grants(user_id).await
    }
    async fn session_grants(&self, sid: &str) -> Result<Vec<GrantRecord>, StoreError> {
        self.inner.session_grants(sid).await
    }
    async fn queue_logouts(
        &self,
        rows: &[LogoutDeliveryRecord],
        max_queued: u64,
    ) -> Result<u64, StoreError> {
        self.inner.queue_logouts(rows, max_queued).await
    }
    async fn claim_logouts(
        &self,
        now: i64,
        lease_until: i64,
        limit: u64,
    ) -> Result<Vec<LogoutDeliveryRecord>, StoreError> {
        self.inner.claim_logouts(now, lease_until, limit).await
    }
    async fn end_logout(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.end_logout(id).await
    }
    async fn retry_logout(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner.retry_logout(id, attempts, next_attempt_at).await
    }
    async fn revoke_user_grants(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let r = self.inner.revoke_user_grants(user_id, client_id, now).await;
        self.forget_grants();
        r
    }
    async fn get_refresh_token(&self, token_id: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.inner.get_refresh_token(token_id).await
    }
    async fn rotate_refresh_token(
        &self,
        token_id: &str,
        successor: &RefreshRecord,
        successor_sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .rotate_refresh_token(token_id, successor, successor_sealed, now)
            .await
    }
    async fn extend_refresh_token(
        &self,
        token_id: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner.extend_refresh_token(token_id, expires_at).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tessera_core::store::testsuite::client;
    use tessera_store_sqlite::SqliteStore;

    async fn database() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (Arc::new(SqliteStore::connect(&url).await.unwrap()), dir)
    }

    fn id_of(c: Option<ClientRecord>) -> Option<String> {
        c.map(|c| c.client_id)
    }

    #[tokio::test]
    async fn an_unregistered_client_id_is_answered_without_the_database() {
        let (db, _dir) = database().await;
        let before = client(&SecretHash::of("s"));
        db.insert_client(&before).await.unwrap();
        let seq = db.latest_change().await.unwrap();
        let cached = CachedStore::new(db.clone());
        cached.warm(1_000).await.unwrap();
        // Registered before the node started: known.
        assert_eq!(
            id_of(cached.get_client(&before.client_id).await.unwrap()),
            Some(before.client_id.clone())
        );
        // Registered elsewhere since (the CLI, another node): the database is not asked, so
        // the id is unknown here until the feed brings it, as a never-registered one is.
        let later = client(&SecretHash::of("s"));
        db.insert_client(&later).await.unwrap();
        assert_eq!(cached.get_client(&later.client_id).await.unwrap(), None);
        assert_eq!(cached.get_client("never-registered").await.unwrap(), None);
        for change in cached.changes_since(seq, 100).await.unwrap() {
            cached.apply(&change);
        }
        assert_eq!(
            id_of(cached.get_client(&later.client_id).await.unwrap()),
            Some(later.client_id.clone())
        );
        // Registered through this node: known at once.
        let here = client(&SecretHash::of("s"));
        cached.insert_client(&here).await.unwrap();
        assert_eq!(
            id_of(cached.get_client(&here.client_id).await.unwrap()),
            Some(here.client_id.clone())
        );
    }

    #[tokio::test]
    async fn after_a_lost_feed_client_ids_are_asked_for_until_reloaded() {
        let (db, _dir) = database().await;
        let cached = CachedStore::new(db.clone());
        cached.warm(1_000).await.unwrap();
        let missed = client(&SecretHash::of("s"));
        db.insert_client(&missed).await.unwrap();
        cached.clear();
        assert_eq!(
            id_of(cached.get_client(&missed.client_id).await.unwrap()),
            Some(missed.client_id.clone())
        );
        // The next feed read reloads the ids, the missed one with them.
        cached.changes_since(i64::MAX, 1).await.unwrap();
        assert_eq!(
            id_of(cached.get_client(&missed.client_id).await.unwrap()),
            Some(missed.client_id.clone())
        );
        assert_eq!(cached.get_client("never-registered").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sdk_clients_made_on_another_node_are_always_looked_up() {
        let (db, _dir) = database().await;
        let cached = CachedStore::new(db.clone());
        cached.warm(1_000).await.unwrap();
        let sdk = ClientRecord {
            client_id: tessera_core::endpoint::sdk_token::sdk_client_id("default"),
            ..client(&SecretHash::of("s"))
        };
        db.insert_client(&sdk).await.unwrap();
        assert_eq!(
            id_of(cached.get_client(&sdk.client_id).await.unwrap()),
            Some(sdk.client_id.clone())
        );
    }

    #[tokio::test]
    async fn the_filter_is_filled_from_every_page_of_revocations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Arc::new(SqliteStore::connect(&url).await.unwrap());
        for i in 0..10 {
            db.revoke_jti(&format!("j{i}"), "c1", 5_000, 1_000)
                .await
                .unwrap();
        }
        let cache = CachedStore::new(db);
        cache.warm(2_000).await.unwrap();
        for i in 0..10 {
            assert!(
                cache.is_jti_revoked(&format!("j{i}")).await.unwrap(),
                "j{i}"
            );
        }
        assert!(!cache.is_jti_revoked("j10").await.unwrap());
    }

    #[tokio::test]
    async fn a_filled_filter_is_rebuilt_by_the_purge_at_most_every_five_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Arc::new(SqliteStore::connect(&url).await.unwrap());
        db.revoke_jti("live", "c1", 9_000, 1_000).await.unwrap();
        let cache = CachedStore::with_revocation_filter(db, 1 << 12);
        cache.warm(1_000).await.unwrap();
        // Revocations of tokens that have expired since (their rows are purged).
        for i in 0..2_000 {
            cache.apply(&Change {
                seq: i + 1,
                kind: ChangeKind::Jti,
                key: format!("gone-{i}"),
            });
        }
        assert!(cache.revocation_filter_false_positive_rate() > 0.5);
        cache.purge_expired(1_200).await.unwrap();
        assert!(
            cache.revocation_filter_false_positive_rate() > 0.5,
            "not again within five minutes of the last build"
        );
        cache.purge_expired(1_300).await.unwrap();
        assert!(cache.revocation_filter_false_positive_rate() < 0.001);
        assert!(cache.is_jti_revoked("live").await.unwrap());
        assert!(!cache.is_jti_revoked("gone-7").await.unwrap());
    }
}
