//! An in-memory store, for tests of the protocol handlers.
//!
//! Owns [`MemoryStore`], an implementation of every storage trait of [`crate::store`] over
//! plain maps behind one mutex, with the semantics of the SQLite store (the reference: its
//! constraints, cascades, change-feed entries and error kinds), checked by the same
//! conformance suite (`store::testsuite`). Nothing is durable and nothing is shared
//! between processes, so it is no backend for a server; it lets a handler test run without a
//! database file, a background writer or any particular async runtime.
//!
//! The store never reads a clock: every time it compares or records is an argument of the
//! call (`now`, `expires_at`, a record's `created_at`), as with every store. A test that pins
//! time with [`crate::clock::FixedClock`] therefore sees fully determined purges, windows and
//! expiries. The one setting is how long change-feed entries are kept
//! ([`MemoryStore::with_change_retention`]).
//!
//! ```
//! use tessera_core::clock::{Clock, FixedClock};
//! use tessera_core::store::memory::MemoryStore;
//! use tessera_core::store::{Maintenance, ReplayStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let clock = FixedClock::new(1_000);
//! let store = MemoryStore::new();
//! assert!(store.use_once("client:jti", clock.now() + 60).await?);
//! assert!(!store.use_once("client:jti", clock.now() + 60).await?);
//! clock.advance(60);
//! assert_eq!(store.purge_expired(clock.now()).await?.used_jtis, 1);
//! # Ok::<(), tessera_core::store::StoreError>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! Each call takes the mutex once, does all its work, and releases it before returning; no
//! call waits on anything, so each is atomic with respect to every other, as the contracts'
//! "atomic across every node" require.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::environment::{sdk_client_id, DEFAULT_ENV};
use crate::model::{
    AdminTokenRecord, AuditFilter, AuditRecord, Change, ChangeKind, ClientRecord, CodeRecord,
    CodeUse, ConsentRecord, DeviceApproval, DeviceCodeRecord, DevicePoll, DeviceStatus,
    EnvDeletion, EnvRecord, ExternalIdentityRecord, GrantRecord, IdpRecord, KeyRecord,
    LogoutDeliveryRecord, PurgeReport, RefreshRecord, SessionRecord, TokenRecord, TrustRecord,
    UserRecord,
};
use crate::secret::SecretHash;
use crate::store::{
    check_keys, AdminTokenStore, Attempt, AuditStore, ChangeFeed, ClientStore, DeviceStore,
    GrantStore, IdpStore, KeyStore, Maintenance, ReplayStore, StoreError, ThrottleStore,
    TokenStore, TrustStore, UserStore,
};

/// How long change-feed entries are kept unless configured otherwise
/// ([`MemoryStore::with_change_retention`]); the same default as the database stores.
pub const CHANGE_RETENTION_SECS: i64 = 3600;

/// Every storage trait over maps in memory. See the [module docs](self).
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Seconds a change-feed entry is kept before the purge may delete it.
    change_retention: i64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store: no clients, users, keys or tokens; only the environment
    /// [`DEFAULT_ENV`], which every store has from the start; an empty change feed at
    /// position 0.
    pub fn new() -> Self {
        let mut envs = BTreeMap::new();
        envs.insert(
            DEFAULT_ENV.to_owned(),
            EnvRecord {
                name: DEFAULT_ENV.to_owned(),
                single_use_tokens: false,
                created_at: 0,
            },
        );
        Self {
            state: Mutex::new(State {
                envs,
                ..State::default()
            }),
            change_retention: CHANGE_RETENTION_SECS,
        }
    }

    /// Sets how long change-feed entries are kept (at least one second), as the database
    /// stores' settings of the same name do.
    pub fn with_change_retention(mut self, secs: i64) -> Self {
        self.change_retention = secs.max(1);
        self
    }

    /// The state, for one call, after a turn of the executor ([`YieldOnce`]). A panic while it
    /// was held (none is expected: nothing in here panics) leaves the maps as they were
    /// written, so the lock is taken back, not refused.
    async fn state(&self) -> MutexGuard<'_, State> {
        YieldOnce(false).await;
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A future that is pending once (waking its task at once), then ready: every call gives
/// the executor a turn before it takes the lock, as a call to a database does while the
/// query is away. Concurrent callers then interleave between calls (one command's
/// `ensure_env` and `insert_client` with another's `delete_env`) as they do on a database,
/// rather than each running to its end on its first poll, and the conformance suite's races
/// are run for real. Needs no particular runtime.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A change-feed entry with the time it was logged (what the purge compares).
#[derive(Debug)]
struct Logged {
    change: Change,
    created_at: i64,
}

/// A revoked JWT: what `revoked_jtis` holds.
#[derive(Debug)]
struct RevokedJti {
    expires_at: i64,
}

/// An attempt budget: attempts taken in the window ending at `expires_at`.
#[derive(Debug)]
struct Budget {
    count: u32,
    expires_at: i64,
}

/// A stored authorization code and when it was spent.
#[derive(Debug)]
struct StoredCode {
    code: CodeRecord,
    used_at: Option<i64>,
}

/// Every table, as a map keyed as its primary key.
#[derive(Debug, Default)]
struct State {
    clients: BTreeMap<String, ClientRecord>,
    /// Registration access token hashes (RFC 7592), by client id.
    registration_tokens: HashMap<String, SecretHash>,
    /// Keyed by token id, which starts with the expiry second: the expired ones are a range.
    tokens: BTreeMap<String, TokenRecord>,
    revoked_jtis: BTreeMap<String, RevokedJti>,
    used_jtis: HashMap<String, i64>,
    /// In insertion order (listed sorted by activation, then creation).
    keys: Vec<KeyRecord>,
    changes: VecDeque<Logged>,
    /// The last position given to an entry (positions are never reused).
    last_seq: i64,
    horizon: i64,
    users: BTreeMap<String, UserRecord>,
    /// Keyed by the session cookie's hash.
    sessions: HashMap<String, SessionRecord>,
    /// Keyed by (user id, client id): the scope consented to, and when.
    consents: BTreeMap<(String, String), (String, i64)>,
    /// Keyed by the code's hash.
    codes: HashMap<String, StoredCode>,
    grants: BTreeMap<String, GrantRecord>,
    logouts: BTreeMap<String, LogoutDeliveryRecord>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    envs: BTreeMap<String, EnvRecord>,
    /// Keyed by registration id.
    trust: BTreeMap<String, TrustRecord>,
    throttle: HashMap<String, Budget>,
    issuer: Option<String>,
    /// Upstream providers, by name.
    idps: BTreeMap<String, IdpRecord>,
    /// Keyed by (issuer, subject).
    external_identities: BTreeMap<(String, String), ExternalIdentityRecord>,
    /// The audit trail, by id.
    audit: BTreeMap<i64, AuditRecord>,
    /// The last id given to an audit entry.
    last_audit_id: i64,
    /// Admin API credentials, by id.
    admin_tokens: BTreeMap<String, AdminTokenRecord>,
    /// Device authorizations, by the device code's hash.
    device_codes: HashMap<String, DeviceCodeRecord>,
}

impl State {
    /// Appends an entry to the change feed.
    fn log(&mut self, kind: ChangeKind, key: &str, now: i64) {
        self.last_seq += 1;
        self.changes.push_back(Logged {
            change: Change {
                seq: self.last_seq,
                kind,
                key: key.to_owned(),
            },
            created_at: now,
        });
    }

    /// Applies `f` to the client `client_id`, if there is one; logs a `Client` change
    /// either way (as the database stores do: the entry only makes caches reload).
    fn update_client(
        &mut self,
        client_id: &str,
        now: i64,
        f: impl FnOnce(&mut ClientRecord),
    ) -> bool {
        let found = match self.clients.get_mut(client_id) {
            Some(c) => {
                f(c);
                true
            }
            None => false,
        };
        self.log(ChangeKind::Client, client_id, now);
        found
    }

    /// Revokes the live grants of `user_id` (to `client_id` only, if given), logging a
    /// `Grant` change for each; returns how many.
    fn revoke_user_grants(&mut self, user_id: &str, client_id: Option<&str>, now: i64) -> u64 {
        let mut revoked = Vec::new();
        for g in self.grants.values_mut() {
            if g.user_id == user_id
                && g.revoked_at.is_none()
                && (client_id.is_none() || client_id == Some(g.client_id.as_str()))
            {
                g.revoked_at = Some(now);
                revoked.push(g.grant_id.clone());
            }
        }
        for grant_id in &revoked {
            self.log(ChangeKind::Grant, grant_id, now);
        }
        u64::try_from(revoked.len()).unwrap_or(u64::MAX)
    }

    fn insert_refresh(&mut self, r: &RefreshRecord) {
        self.refresh_tokens.insert(r.token_id.clone(), r.clone());
    }
}

/// The error of a foreign key naming a record that is not there.
fn missing(what: &str) -> StoreError {
    StoreError::Invalid(format!("FOREIGN KEY constraint failed: {what}"))
}

/// How many rows a removal took, as a purge reports it.
fn count(before: usize, after: usize) -> u64 {
    u64::try_from(before.saturating_sub(after)).unwrap_or(u64::MAX)
}

/// The first `limit` items; all of them for a negative limit (as SQL's `LIMIT -1`).
fn limited<T>(items: impl Iterator<Item = T>, limit: i64) -> Vec<T> {
    match usize::try_from(limit) {
        Ok(n) => items.take(n).collect(),
        Err(_) => items.collect(),
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        if let Some(jwks) = &c.jwks {
            check_keys(jwks)?;
        }
        let mut s = self.state().await;
        if !s.envs.contains_key(&c.env) {
            return Err(missing("the client's environment does not exist"));
        }
        if s.clients.contains_key(&c.client_id) {
            return Err(StoreError::Conflict);
        }
        s.clients.insert(c.client_id.clone(), c.clone());
        s.log(ChangeKind::Client, &c.client_id, c.created_at);
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.state().await.clients.get(client_id).cloned())
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut all: Vec<ClientRecord> = self.state().await.clients.values().cloned().collect();
        // Already by id: a stable sort by creation gives (created_at, client_id).
        all.sort_by_key(|c| c.created_at);
        Ok(all)
    }

    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let found = s.clients.remove(client_id).is_some();
        s.registration_tokens.remove(client_id);
        s.log(ChangeKind::Client, client_id, now);
        Ok(found)
    }

    async fn update_client(&self, c: &ClientRecord, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .await
            .update_client(&c.client_id, now, |stored| {
                stored.name.clone_from(&c.name);
                stored.grant_types.clone_from(&c.grant_types);
                stored.redirect_uris.clone_from(&c.redirect_uris);
                stored.scopes = c.scopes.clone();
                stored.audiences.clone_from(&c.audiences);
                stored.access_token_format = c.access_token_format;
                stored.access_token_ttl = c.access_token_ttl;
                stored.user_flow = c.user_flow.clone();
                stored.single_use_tokens = c.single_use_tokens;
            }))
    }

    async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .await
            .update_client(client_id, now, |c| c.token_epoch += 1))
    }

    async fn set_client_keys(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        check_keys(jwks)?;
        Ok(self
            .state()
            .await
            .update_client(client_id, now, |c| c.jwks = Some(jwks.to_owned())))
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &SecretHash,
        keep_old_until: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .await
            .update_client(client_id, now, |c| match keep_old_until {
                Some(until) => {
                    c.old_secret_hash = c.secret_hash.replace(new_hash.clone());
                    c.old_secret_expires_at = Some(until);
                }
                None => {
                    c.old_secret_hash = None;
                    c.old_secret_expires_at = None;
                    c.secret_hash = Some(new_hash.clone());
                    c.token_epoch += 1;
                }
            }))
    }

    async fn set_registration_token(
        &self,
        client_id: &str,
        hash: Option<&SecretHash>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let found = s.update_client(client_id, now, |_| ());
        if found {
            match hash {
                Some(h) => {
                    s.registration_tokens
                        .insert(client_id.to_owned(), h.clone());
                }
                None => {
                    s.registration_tokens.remove(client_id);
                }
            }
        }
        Ok(found)
    }

    async fn registration_token(&self, client_id: &str) -> Result<Option<SecretHash>, StoreError> {
        Ok(self
            .state()
            .await
            .registration_tokens
            .get(client_id)
            .cloned())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        if s.tokens.contains_key(&token.token_id) {
            // The database stores answer a failed token write as a database error (their
            // group-commit writer reports it as text), not as a conflict.
            return Err(StoreError::Backend(
                "UNIQUE constraint failed: access_tokens.token_id".into(),
            ));
        }
        s.tokens.insert(token.token_id.clone(), token.clone());
        Ok(())
    }

    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.state().await.tokens.get(token_id).cloned())
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let revoked = match s.tokens.get_mut(token_id) {
            Some(t) if t.client_id == client_id && t.revoked_at.is_none() => {
                t.revoked_at = Some(now);
                true
            }
            _ => false,
        };
        if revoked {
            s.log(ChangeKind::Token, token_id, now);
        }
        Ok(revoked)
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        _client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.state().await;
        s.revoked_jtis
            .entry(jti.to_owned())
            .or_insert(RevokedJti { expires_at });
        s.log(ChangeKind::Jti, jti, now);
        Ok(())
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.state().await.revoked_jtis.contains_key(jti))
    }

    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state()
            .await
            .revoked_jtis
            .iter()
            .filter(|(_, r)| r.expires_at > now)
            .map(|(jti, _)| jti.clone())
            .collect())
    }

    async fn revoked_jtis_after(
        &self,
        now: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        use std::ops::Bound;
        let s = self.state().await;
        let page = s
            .revoked_jtis
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
            .filter(|(_, r)| r.expires_at > now)
            .map(|(jti, _)| jti.clone());
        Ok(limited(page, limit))
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        if s.used_jtis.contains_key(key) {
            return Ok(false);
        }
        s.used_jtis.insert(key.to_owned(), expires_at);
        Ok(true)
    }

    async fn was_used(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.state().await.used_jtis.contains_key(key))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, k: &KeyRecord) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let other_secret = s
            .keys
            .iter()
            .any(|stored| stored.sealed_by.is_some() && stored.sealed_by != k.sealed_by);
        if other_secret {
            return Ok(false);
        }
        if s.keys.iter().any(|stored| stored.kid == k.kid) {
            return Err(StoreError::Conflict);
        }
        s.keys.push(k.clone());
        s.log(ChangeKind::Keys, "", k.created_at);
        Ok(true)
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = self.state().await.keys.clone();
        keys.sort_by_key(|k| (k.activates_at, k.created_at));
        Ok(keys)
    }

    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError> {
        let mut s = self.state().await;
        for k in s.keys.iter_mut().filter(|k| k.kid == kid) {
            k.retires_at = Some(retires_at);
        }
        s.log(ChangeKind::Keys, "", retires_at);
        Ok(())
    }

    async fn reseal_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        sealed_by: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        // As the databases count updated rows: one per entry naming a stored key.
        let updated = sealed
            .iter()
            .filter(|(kid, _)| s.keys.iter().any(|k| &k.kid == kid))
            .count();
        if updated != s.keys.len() {
            // A key was added since the caller read them: it would stay under the old secret.
            return Ok(false);
        }
        for (kid, private_sealed) in sealed {
            for k in s.keys.iter_mut().filter(|k| &k.kid == kid) {
                k.private_sealed.clone_from(private_sealed);
                k.sealed_by = Some(sealed_by.to_owned());
            }
        }
        s.log(ChangeKind::Keys, "", now);
        Ok(true)
    }
}

#[async_trait]
impl ChangeFeed for MemoryStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        let s = self.state().await;
        // The feed may have been purged whole: the horizon keeps the last position given.
        let newest = s.changes.back().map_or(0, |l| l.change.seq);
        Ok(newest.max(s.horizon))
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let s = self.state().await;
        let after = s
            .changes
            .iter()
            .filter(|l| l.change.seq > seq)
            .map(|l| l.change.clone());
        Ok(limited(after, limit))
    }

    async fn feed_horizon(&self) -> Result<i64, StoreError> {
        Ok(self.state().await.horizon)
    }
}

#[async_trait]
impl Maintenance for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<PurgeReport, StoreError> {
        let mut guard = self.state().await;
        let s = &mut *guard;
        let mut report = PurgeReport::default();

        // Token ids start with their expiry second: the expired ones are the ids before this.
        let live = s.tokens.split_off(&crate::opaque::expiry_cutoff(now));
        report.tokens = count(s.tokens.len(), 0);
        s.tokens = live;

        let before = s.revoked_jtis.len();
        s.revoked_jtis.retain(|_, r| r.expires_at > now);
        report.revoked_jtis = count(before, s.revoked_jtis.len());

        let before = s.used_jtis.len();
        s.used_jtis.retain(|_, expires_at| *expires_at > now);
        report.used_jtis = count(before, s.used_jtis.len());

        // The feed goes as a prefix, behind a horizon raised first (ChangeFeed::feed_horizon).
        let cutoff = now.saturating_sub(self.change_retention);
        let newest = s
            .changes
            .iter()
            .filter(|l| l.created_at <= cutoff)
            .map(|l| l.change.seq)
            .max();
        if let Some(newest) = newest {
            s.horizon = s.horizon.max(newest);
            let before = s.changes.len();
            s.changes.retain(|l| l.change.seq > newest);
            report.changes = count(before, s.changes.len());
        }

        let before = s.keys.len();
        s.keys.retain(|k| k.retires_at.is_none_or(|t| t > now));
        report.keys = count(before, s.keys.len());

        let before = s.codes.len();
        s.codes.retain(|_, c| c.code.expires_at > now);
        report.codes = count(before, s.codes.len());

        let before = s.sessions.len();
        s.sessions.retain(|_, x| x.expires_at > now);
        report.sessions = count(before, s.sessions.len());

        let before = s.refresh_tokens.len();
        s.refresh_tokens.retain(|_, r| r.expires_at > now);
        report.refresh_tokens = count(before, s.refresh_tokens.len());

        let before = s.grants.len();
        s.grants.retain(|_, g| g.expires_at > now);
        report.grants = count(before, s.grants.len());

        let before = s.throttle.len();
        s.throttle.retain(|_, b| b.expires_at > now);
        report.throttle = count(before, s.throttle.len());

        let before = s.device_codes.len();
        s.device_codes.retain(|_, d| d.expires_at > now);
        report.device_codes = count(before, s.device_codes.len());

        Ok(report)
    }

    async fn recorded_issuer(&self) -> Result<Option<String>, StoreError> {
        Ok(self.state().await.issuer.clone())
    }

    async fn record_issuer(
        &self,
        issuer: &str,
        replace: bool,
        _now: i64,
    ) -> Result<String, StoreError> {
        let mut s = self.state().await;
        if replace || s.issuer.is_none() {
            s.issuer = Some(issuer.to_owned());
        }
        Ok(s.issuer.clone().unwrap_or_else(|| issuer.to_owned()))
    }
}

#[async_trait]
impl ThrottleStore for MemoryStore {
    async fn take_attempt(
        &self,
        key: &str,
        limit: u32,
        window: i64,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        let mut s = self.state().await;
        let budget = s.throttle.entry(key.to_owned()).or_insert(Budget {
            count: 0,
            expires_at: now.saturating_add(window),
        });
        if budget.expires_at <= now {
            // The window ended: the budget is full again, with a new window.
            budget.count = 0;
            budget.expires_at = now.saturating_add(window);
        }
        if budget.count >= limit {
            return Ok(Attempt::Refused {
                until: budget.expires_at,
            });
        }
        budget.count += 1;
        Ok(Attempt::Taken(budget.count))
    }

    async fn return_attempt(&self, key: &str, now: i64) -> Result<(), StoreError> {
        if let Some(b) = self.state().await.throttle.get_mut(key) {
            if b.count > 0 && b.expires_at > now {
                b.count -= 1;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        let taken = s.users.contains_key(&u.user_id)
            || s.users.values().any(|other| other.username == u.username);
        if taken {
            return Err(StoreError::Conflict);
        }
        s.users.insert(u.user_id.clone(), u.clone());
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().await.users.get(user_id).cloned())
    }

    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .state()
            .await
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut all: Vec<UserRecord> = self.state().await.users.values().cloned().collect();
        // Already by id: a stable sort by creation gives (created_at, user_id).
        all.sort_by_key(|u| u.created_at);
        Ok(all)
    }

    async fn rename_user(&self, user_id: &str, username: &str) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        if !s.users.contains_key(user_id) {
            return Ok(false);
        }
        if s.users
            .values()
            .any(|u| u.username == username && u.user_id != user_id)
        {
            return Err(StoreError::Conflict);
        }
        if let Some(u) = s.users.get_mut(user_id) {
            u.username = username.to_owned();
        }
        Ok(true)
    }

    async fn delete_user(&self, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut guard = self.state().await;
        let s = &mut *guard;
        let mut revoked = Vec::new();
        for g in s.grants.values_mut() {
            if g.user_id == user_id && g.revoked_at.is_none() {
                g.revoked_at = Some(now);
                revoked.push(g.grant_id.clone());
            }
        }
        for grant_id in &revoked {
            s.log(ChangeKind::Grant, grant_id, now);
        }
        // Sessions, consents and external identities go with the user (the databases'
        // ON DELETE CASCADE).
        let found = s.users.remove(user_id).is_some();
        s.sessions.retain(|_, x| x.user_id != user_id);
        s.consents.retain(|(u, _), _| u != user_id);
        s.external_identities.retain(|_, x| x.user_id != user_id);
        Ok(found)
    }

    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let found = match s.users.get_mut(user_id) {
            Some(u) => {
                u.password_hash = password_hash.to_owned();
                u.updated_at = now;
                true
            }
            None => false,
        };
        s.sessions.retain(|_, x| x.user_id != user_id);
        Ok(found)
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        let key = session.session_hash.as_str();
        if s.sessions.contains_key(key) {
            return Err(StoreError::Conflict);
        }
        if !s.users.contains_key(&session.user_id) {
            return Err(missing("the session's user does not exist"));
        }
        s.sessions.insert(key.to_owned(), session.clone());
        Ok(())
    }

    async fn get_session(&self, hash: &SecretHash) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.state().await.sessions.get(hash.as_str()).cloned())
    }

    async fn delete_session(&self, hash: &SecretHash) -> Result<bool, StoreError> {
        Ok(self.state().await.sessions.remove(hash.as_str()).is_some())
    }

    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .state()
            .await
            .consents
            .get(&(user_id.to_owned(), client_id.to_owned()))
            .map(|(scope, _)| scope.clone()))
    }

    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.state().await;
        if !s.users.contains_key(user_id) {
            return Err(missing("the consent's user does not exist"));
        }
        s.consents.insert(
            (user_id.to_owned(), client_id.to_owned()),
            (scope.to_owned(), now),
        );
        Ok(())
    }

    async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
        // Keyed by (user, client): one user's consents are a range, by client id.
        Ok(self
            .state()
            .await
            .consents
            .iter()
            .filter(|((u, _), _)| u == user_id)
            .map(|((u, c), (scope, at))| ConsentRecord {
                user_id: u.clone(),
                client_id: c.clone(),
                scope: scope.clone(),
                granted_at: *at,
            })
            .collect())
    }

    async fn delete_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let found = s
            .consents
            .remove(&(user_id.to_owned(), client_id.to_owned()))
            .is_some();
        s.revoke_user_grants(user_id, Some(client_id), now);
        Ok(found)
    }
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        let key = code.code_hash.as_str();
        if s.codes.contains_key(key) {
            return Err(StoreError::Conflict);
        }
        s.codes.insert(
            key.to_owned(),
            StoredCode {
                code: code.clone(),
                used_at: None,
            },
        );
        Ok(())
    }

    async fn use_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeUse, StoreError> {
        Ok(match self.state().await.codes.get_mut(code_hash.as_str()) {
            Some(stored) if stored.used_at.is_none() => {
                stored.used_at = Some(now);
                CodeUse::Fresh(stored.code.clone())
            }
            Some(stored) => CodeUse::Replayed(stored.code.clone()),
            None => CodeUse::Unknown,
        })
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&RefreshRecord>,
    ) -> Result<(), StoreError> {
        let mut s = self.state().await;
        // All or nothing: every key is checked before anything is written.
        let refresh_taken = refresh.is_some_and(|r| s.refresh_tokens.contains_key(&r.token_id));
        if s.grants.contains_key(&grant.grant_id) || refresh_taken {
            return Err(StoreError::Conflict);
        }
        s.grants.insert(grant.grant_id.clone(), grant.clone());
        if let Some(r) = refresh {
            s.insert_refresh(r);
        }
        Ok(())
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        Ok(self.state().await.grants.get(grant_id).cloned())
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let revoked = match s.grants.get_mut(grant_id) {
            Some(g) if g.revoked_at.is_none() => {
                g.revoked_at = Some(now);
                true
            }
            _ => false,
        };
        if revoked {
            s.log(ChangeKind::Grant, grant_id, now);
        }
        Ok(revoked)
    }

    async fn queue_logouts(
        &self,
        rows: &[LogoutDeliveryRecord],
        max_queued: u64,
    ) -> Result<u64, StoreError> {
        let mut st = self.state().await;
        for r in rows {
            if st.logouts.contains_key(&r.id) {
                return Err(StoreError::Conflict);
            }
        }
        for r in rows {
            st.logouts.insert(r.id.clone(), r.clone());
        }
        let mut order: Vec<(i64, String)> = st
            .logouts
            .values()
            .map(|r| (r.created_at, r.id.clone()))
            .collect();
        order.sort();
        let keep = usize::try_from(max_queued).unwrap_or(usize::MAX);
        let excess = order.len().saturating_sub(keep);
        for (_, id) in order.iter().take(excess) {
            st.logouts.remove(id);
        }
        Ok(u64::try_from(excess).unwrap_or(u64::MAX))
    }

    async fn claim_logouts(
        &self,
        now: i64,
        lease_until: i64,
        limit: u64,
    ) -> Result<Vec<LogoutDeliveryRecord>, StoreError> {
        // Under the one state lock: select and lease in one step.
        let mut st = self.state().await;
        let mut due: Vec<LogoutDeliveryRecord> = st
            .logouts
            .values()
            .filter(|r| r.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at, &a.id).cmp(&(b.next_attempt_at, b.created_at, &b.id))
        });
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        due.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for r in &mut due {
            r.next_attempt_at = lease_until;
            if let Some(stored) = st.logouts.get_mut(&r.id) {
                stored.next_attempt_at = lease_until;
            }
        }
        Ok(due)
    }

    async fn end_logout(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.state().await.logouts.remove(id).is_some())
    }

    async fn retry_logout(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError> {
        let mut st = self.state().await;
        let Some(r) = st.logouts.get_mut(id) else {
            return Ok(false);
        };
        r.attempts = attempts;
        r.next_attempt_at = next_attempt_at;
        Ok(true)
    }

    async fn session_grants(&self, sid: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let mut grants: Vec<GrantRecord> = self
            .state()
            .await
            .grants
            .values()
            .filter(|g| g.sid.as_deref() == Some(sid))
            .cloned()
            .collect();
        grants.sort_by(|a, b| (a.created_at, &a.grant_id).cmp(&(b.created_at, &b.grant_id)));
        Ok(grants)
    }

    async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let mut grants: Vec<GrantRecord> = self
            .state()
            .await
            .grants
            .values()
            .filter(|g| g.user_id == user_id)
            .cloned()
            .collect();
        grants.sort_by(|a, b| (a.created_at, &a.grant_id).cmp(&(b.created_at, &b.grant_id)));
        Ok(grants)
    }

    async fn revoke_user_grants(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .await
            .revoke_user_grants(user_id, client_id, now))
    }

    async fn get_refresh_token(&self, token_id: &str) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(self.state().await.refresh_tokens.get(token_id).cloned())
    }

    async fn rotate_refresh_token(
        &self,
        token_id: &str,
        successor: &RefreshRecord,
        successor_sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let unused = s
            .refresh_tokens
            .get(token_id)
            .is_some_and(|r| r.used_at.is_none());
        if !unused {
            return Ok(false);
        }
        if s.refresh_tokens.contains_key(&successor.token_id) {
            return Err(StoreError::Conflict);
        }
        if let Some(r) = s.refresh_tokens.get_mut(token_id) {
            r.used_at = Some(now);
            r.successor_sealed = successor_sealed.map(<[u8]>::to_vec);
        }
        s.insert_refresh(successor);
        Ok(true)
    }

    async fn extend_refresh_token(
        &self,
        token_id: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        match s.refresh_tokens.get_mut(token_id) {
            Some(r) if r.used_at.is_none() => {
                r.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn insert_device_code(&self, record: &DeviceCodeRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        let key = record.device_code_hash.as_str();
        if s.device_codes.contains_key(key)
            || s.device_codes
                .values()
                .any(|d| d.user_code == record.user_code)
        {
            return Err(StoreError::Conflict);
        }
        s.device_codes.insert(key.to_owned(), record.clone());
        Ok(())
    }

    async fn find_device_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        let s = self.state().await;
        Ok(s.device_codes
            .values()
            .find(|d| d.user_code == user_code)
            .cloned())
    }

    async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let Some(d) = s.device_codes.values_mut().find(|d| {
            d.user_code == user_code && d.status == DeviceStatus::Pending && d.expires_at > now
        }) else {
            return Ok(false);
        };
        match approval {
            Some(a) => {
                d.status = DeviceStatus::Approved;
                d.user_id = Some(a.user_id.clone());
                d.scope = a.scope.clone();
                d.auth_time = Some(a.auth_time);
            }
            None => d.status = DeviceStatus::Denied,
        }
        Ok(true)
    }

    async fn poll_device_code(
        &self,
        device_code_hash: &SecretHash,
        client_id: &str,
        now: i64,
        slow_down_step: i64,
    ) -> Result<DevicePoll, StoreError> {
        let mut s = self.state().await;
        let Some(d) = s
            .device_codes
            .get_mut(device_code_hash.as_str())
            .filter(|d| d.client_id == client_id)
        else {
            return Ok(DevicePoll::Unknown);
        };
        if d.expires_at <= now {
            return Ok(DevicePoll::Expired);
        }
        let too_fast = d.last_poll_at.is_some_and(|t| now < t + d.interval);
        d.last_poll_at = Some(now);
        if too_fast {
            d.interval += slow_down_step;
            return Ok(DevicePoll::SlowDown {
                interval: d.interval,
            });
        }
        Ok(match d.status {
            DeviceStatus::Pending => DevicePoll::Pending,
            DeviceStatus::Denied => DevicePoll::Denied,
            DeviceStatus::Used => DevicePoll::Used,
            DeviceStatus::Approved => {
                d.status = DeviceStatus::Used;
                DevicePoll::Issued(d.clone())
            }
        })
    }
}

#[async_trait]
impl AdminTokenStore for MemoryStore {
    async fn insert_admin_token(&self, token: &AdminTokenRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        if s.admin_tokens.contains_key(&token.id) {
            return Err(StoreError::Conflict);
        }
        s.admin_tokens.insert(token.id.clone(), token.clone());
        Ok(())
    }

    async fn get_admin_token(&self, id: &str) -> Result<Option<AdminTokenRecord>, StoreError> {
        Ok(self.state().await.admin_tokens.get(id).cloned())
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>, StoreError> {
        let mut all: Vec<AdminTokenRecord> =
            self.state().await.admin_tokens.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        Ok(match s.admin_tokens.get_mut(id) {
            Some(t) if t.revoked_at.is_none() => {
                t.revoked_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn touch_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        Ok(match s.admin_tokens.get_mut(id) {
            Some(t) => {
                t.last_used_at = Some(now);
                true
            }
            None => false,
        })
    }
}

#[async_trait]
impl IdpStore for MemoryStore {
    async fn insert_idp(&self, idp: &IdpRecord) -> Result<(), StoreError> {
        let mut s = self.state().await;
        let mut seen = std::collections::BTreeSet::new();
        let domain_taken = idp.email_domains.iter().any(|d| {
            !seen.insert(d.as_str())
                || s.idps
                    .values()
                    .any(|other| other.email_domains.iter().any(|o| o == d))
        });
        if s.idps.contains_key(&idp.name) || domain_taken {
            return Err(StoreError::Conflict);
        }
        s.idps.insert(idp.name.clone(), idp.clone());
        Ok(())
    }

    async fn get_idp(&self, name: &str) -> Result<Option<IdpRecord>, StoreError> {
        Ok(self.state().await.idps.get(name).cloned())
    }

    async fn list_idps(&self) -> Result<Vec<IdpRecord>, StoreError> {
        Ok(self.state().await.idps.values().cloned().collect())
    }

    async fn delete_idp(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.state().await.idps.remove(name).is_some())
    }

    async fn set_idp_secret(&self, name: &str, sealed: &[u8]) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        Ok(match s.idps.get_mut(name) {
            Some(p) => {
                p.client_secret_sealed = sealed.to_vec();
                true
            }
            None => false,
        })
    }

    async fn find_external_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<ExternalIdentityRecord>, StoreError> {
        let s = self.state().await;
        Ok(s.external_identities
            .get(&(issuer.to_owned(), subject.to_owned()))
            .cloned())
    }

    async fn insert_external_identity(
        &self,
        link: &ExternalIdentityRecord,
    ) -> Result<(), StoreError> {
        let mut s = self.state().await;
        let key = (link.issuer.clone(), link.subject.clone());
        if s.external_identities.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        if !s.users.contains_key(&link.user_id) {
            return Err(missing("external_identities.user_id"));
        }
        s.external_identities.insert(key, link.clone());
        Ok(())
    }
}

#[async_trait]
impl TrustStore for MemoryStore {
    async fn ensure_env(&self, name: &str, now: i64) -> Result<EnvRecord, StoreError> {
        let mut s = self.state().await;
        if let Some(env) = s.envs.get(name) {
            return Ok(env.clone());
        }
        let env = EnvRecord {
            name: name.to_owned(),
            single_use_tokens: false,
            created_at: now,
        };
        s.envs.insert(name.to_owned(), env.clone());
        s.log(ChangeKind::Env, name, now);
        Ok(env)
    }

    async fn get_env(&self, name: &str) -> Result<Option<EnvRecord>, StoreError> {
        Ok(self.state().await.envs.get(name).cloned())
    }

    async fn list_envs(&self) -> Result<Vec<EnvRecord>, StoreError> {
        Ok(self.state().await.envs.values().cloned().collect())
    }

    async fn set_env_single_use(
        &self,
        name: &str,
        single_use: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let found = match s.envs.get_mut(name) {
            Some(env) => {
                env.single_use_tokens = single_use;
                true
            }
            None => false,
        };
        s.log(ChangeKind::Env, name, now);
        Ok(found)
    }

    async fn delete_env(&self, name: &str, now: i64) -> Result<EnvDeletion, StoreError> {
        if name == DEFAULT_ENV {
            return Err(StoreError::Conflict);
        }
        let sdk_client = sdk_client_id(name);
        let mut s = self.state().await;
        if !s.envs.contains_key(name) {
            return Ok(EnvDeletion::NotFound);
        }
        let in_use = s
            .clients
            .values()
            .filter(|c| c.env == name && c.client_id != sdk_client)
            .count();
        if in_use > 0 {
            return Ok(EnvDeletion::InUse(u64::try_from(in_use).unwrap_or(0)));
        }
        s.trust.retain(|_, t| t.env != name);
        s.clients.remove(&sdk_client);
        s.envs.remove(name);
        s.log(ChangeKind::Env, name, now);
        s.log(ChangeKind::Trust, name, now);
        s.log(ChangeKind::Client, &sdk_client, now);
        Ok(EnvDeletion::Deleted)
    }

    async fn insert_trust(&self, trust: &TrustRecord) -> Result<(), StoreError> {
        check_keys(&trust.keys)?;
        let mut s = self.state().await;
        let taken = s.trust.contains_key(&trust.id)
            || s.trust
                .values()
                .any(|t| t.env == trust.env && t.issuer == trust.issuer);
        if taken {
            return Err(StoreError::Conflict);
        }
        if !s.envs.contains_key(&trust.env) {
            return Err(missing("the registration's environment does not exist"));
        }
        s.trust.insert(trust.id.clone(), trust.clone());
        s.log(ChangeKind::Trust, &trust.env, trust.created_at);
        Ok(())
    }

    async fn find_trust(&self, env: &str, issuer: &str) -> Result<Option<TrustRecord>, StoreError> {
        Ok(self
            .state()
            .await
            .trust
            .values()
            .find(|t| t.env == env && t.issuer == issuer)
            .cloned())
    }

    async fn list_trust(&self, env: Option<&str>) -> Result<Vec<TrustRecord>, StoreError> {
        let mut all: Vec<TrustRecord> = self
            .state()
            .await
            .trust
            .values()
            .filter(|t| env.is_none_or(|e| t.env == e))
            .cloned()
            .collect();
        // Already by id: a stable sort by creation gives (created_at, id).
        all.sort_by_key(|t| t.created_at);
        Ok(all)
    }

    async fn set_trust_keys(&self, id: &str, keys: &str, now: i64) -> Result<bool, StoreError> {
        check_keys(keys)?;
        let mut s = self.state().await;
        let env = s.trust.get_mut(id).map(|t| {
            t.keys = keys.to_owned();
            t.env.clone()
        });
        if let Some(env) = &env {
            s.log(ChangeKind::Trust, env, now);
        }
        Ok(env.is_some())
    }

    async fn delete_trust(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut s = self.state().await;
        let env = s.trust.remove(id).map(|t| t.env);
        if let Some(env) = &env {
            s.log(ChangeKind::Trust, env, now);
        }
        Ok(env.is_some())
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn insert_audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        let mut st = self.state().await;
        st.last_audit_id += 1;
        let id = st.last_audit_id;
        st.audit.insert(
            id,
            AuditRecord {
                id,
                ..record.clone()
            },
        );
        Ok(id)
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let st = self.state().await;
        let limit = filter.limit.clamp(1, crate::model::AUDIT_PAGE_MAX) as usize;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        Ok(st
            .audit
            .range(..filter.before_id.unwrap_or(i64::MAX))
            .rev()
            .map(|(_, r)| r)
            .filter(|r| {
                filter.from.is_none_or(|f| r.at >= f)
                    && filter.to.is_none_or(|t| r.at <= t)
                    && eq(&filter.actor, Some(&r.actor))
                    && eq(&filter.target, r.target.as_deref())
                    && eq(&filter.kind, Some(&r.kind))
                    && eq(&filter.outcome, Some(&r.outcome))
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        let mut st = self.state().await;
        let n = st.audit.len();
        st.audit.retain(|_, r| r.at >= before);
        Ok((n - st.audit.len()) as u64)
    }
}
