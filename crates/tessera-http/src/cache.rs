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

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use quick_cache::sync::Cache;
use tessera_core::model::{
    Change, ChangeKind, ClientRecord, CodeRecord, CodeUse, EnvDeletion, EnvRecord, GrantRecord,
    KeyRecord, PurgeReport, RefreshRecord, SessionRecord, TokenRecord, TrustRecord, UserRecord,
};
use tessera_core::secret::SecretHash;
use tessera_core::store::{Attempt, ThrottleStore};
use tessera_core::store::{
    ChangeFeed, ClientStore, GrantStore, KeyStore, Maintenance, ReplayStore, Store, StoreError,
    TokenStore, TrustStore, UserStore,
};

/// A caching layer over a store.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    clients: Cache<String, Option<Arc<ClientRecord>>>,
    tokens: Cache<String, Arc<TokenRecord>>,
    revoked_jtis: RwLock<HashSet<String>>,
    grants: Cache<String, Arc<GrantRecord>>,
    envs: Cache<String, Option<Arc<EnvRecord>>>,
    /// Trusted issuers by (environment, issuer).
    trust: Cache<(String, String), Option<Arc<TrustRecord>>>,
    /// Bumped on every invalidation. A read from the database is cached only if no
    /// invalidation happened while it ran, so a change applied between the read and the
    /// insert cannot leave the stale row cached.
    generation: AtomicU64,
}

impl CachedStore {
    /// Wraps a store; call [`CachedStore::warm`] before serving.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            clients: Cache::new(10_000),
            tokens: Cache::new(20_000),
            revoked_jtis: RwLock::new(HashSet::new()),
            grants: Cache::new(20_000),
            envs: Cache::new(1_000),
            trust: Cache::new(10_000),
            generation: AtomicU64::new(0),
        }
    }

    /// The store under the cache.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Loads the revoked JWT ids that are still unexpired.
    pub async fn warm(&self, now: i64) -> Result<(), StoreError> {
        let jtis = self.inner.revoked_jtis(now).await?;
        if let Ok(mut set) = self.revoked_jtis.write() {
            *set = jtis.into_iter().collect();
        }
        Ok(())
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
                self.clients.remove(key);
            }
            ChangeKind::Token => {
                self.tokens.remove(key);
            }
            ChangeKind::Jti => {
                if let Ok(mut set) = self.revoked_jtis.write() {
                    set.insert(key.to_owned());
                }
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

    /// Forgets every cached entry (after the node lost track of the feed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.clients.clear();
        self.tokens.clear();
        self.grants.clear();
        self.envs.clear();
        self.trust.clear();
    }
}

#[async_trait]
impl ClientStore for CachedStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.inner.insert_client(client).await?;
        self.forget(ChangeKind::Client, &client.client_id);
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        if let Some(hit) = self.clients.get(client_id) {
            return Ok(hit.as_deref().cloned());
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
        let cached = self.revoked_jtis.read().map(|set| set.contains(jti)).ok();
        match cached {
            Some(revoked) => Ok(revoked),
            None => self.inner.is_jti_revoked(jti).await,
        }
    }

    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.inner.revoked_jtis(now).await
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
            &tessera_core::model::sdk_client_id(name),
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
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.inner.insert_key(key).await
    }
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_keys().await
    }
    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError> {
        self.inner.retire_key(kid, retires_at).await
    }
    async fn reseal_keys(&self, sealed: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.inner.reseal_keys(sealed).await
    }
}

#[async_trait]
impl ChangeFeed for CachedStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        self.inner.latest_change().await
    }
    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        self.inner.changes_since(seq, limit).await
    }
}

#[async_trait]
impl Maintenance for CachedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn purge_expired(&self, now: i64) -> Result<PurgeReport, StoreError> {
        let report = self.inner.purge_expired(now).await?;
        if report.revoked_jtis > 0 {
            self.warm(now).await?;
        }
        Ok(report)
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
    async fn delete_user(&self, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = self.inner.delete_user(user_id, now).await;
        // The user's grants were revoked: drop every cached grant rather than look them up.
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.grants.clear();
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
}
