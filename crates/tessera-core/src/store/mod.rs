//! Storage traits.
//!
//! Owns the contract between the protocol core and a database: one trait per aggregate
//! ([`ClientStore`], [`TokenStore`], [`KeyStore`], [`UserStore`], [`GrantStore`],
//! [`TrustStore`], [`IdpStore`], [`DeviceStore`], [`ReplayStore`], [`ThrottleStore`],
//! [`ChangeFeed`], [`Maintenance`], [`AuditStore`]) under the
//! [`Store`] supertrait, and [`StoreError`]. Each database crate implements them all; the
//! conformance suite runs the same tests against every implementation.
//!
//! Every method that changes something another node may have cached (a client, a revocation,
//! the keys) also appends to the change feed in the same transaction, so that every node can
//! invalidate its caches by polling [`ChangeFeed::changes_since`].

use async_trait::async_trait;

use crate::model::{
    AdminTokenRecord, AuditFilter, AuditRecord, Change, ClientRecord, CodeRecord, CodeUse,
    ConsentRecord, DeviceApproval, DeviceCodeRecord, DevicePoll, EnvDeletion, EnvRecord,
    ExternalIdentityRecord, GrantRecord, IdpRecord, KeyRecord, LogoutDeliveryRecord, PurgeReport,
    RefreshRecord, SessionRecord, TokenRecord, TrustRecord, UserRecord,
};
use crate::secret::SecretHash;

/// A storage failure. None of these is the client's fault, except [`StoreError::Conflict`].
///
/// The message of [`StoreError::Backend`] and [`StoreError::Unavailable`] includes the
/// cause's, and the cause is not also given as `source()`: an error chain printed whole (as
/// the command line does) names it once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with that key already exists.
    #[error("a record with this key already exists")]
    Conflict,
    /// The database failed.
    #[error("database error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A record breaks a rule the core sets for what is stored (see [`check_keys`]; the
    /// caller should have checked it first), or names a record that is not there, such as a
    /// client's environment deleted meanwhile.
    #[error("invalid record: {0}")]
    Invalid(String),
    /// The database cannot be reached (down, restarting, or no connection to be had): the
    /// request may succeed if retried later. Backends answer this at once while they know the
    /// database is down, rather than make every request wait for a connection.
    #[error("database unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether this, or an error it was the cause of, says the database cannot be reached.
    pub fn is_unavailable_cause(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(err);
        while let Some(e) = next {
            if matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::Unavailable(_))
            ) {
                return true;
            }
            next = e.source();
        }
        false
    }
}

/// Checks a key set about to be stored (a client's `jwks`, a trust registration's `keys`)
/// against the rules of a registration
/// ([`crate::client_keys::ClientKeys::check_registration`]: at most ten keys, RSA ones
/// of 2048 to 4096 bits, a distinct `kid` on each of several). Every implementation calls it
/// before it writes keys, so that no way into storage bypasses those rules.
pub fn check_keys(stored: &str) -> Result<(), StoreError> {
    let keys: crate::client_keys::ClientKeys = serde_json::from_str(stored)
        .map_err(|e| StoreError::Invalid(format!("not a key set: {e}")))?;
    keys.check_registration().map_err(StoreError::Invalid)
}

impl From<StoreError> for crate::error::OAuthError {
    fn from(e: StoreError) -> Self {
        let unavailable = matches!(e, StoreError::Unavailable(_));
        let mut err = crate::error::OAuthError::server_error(e);
        if unavailable {
            err.description = "the service is temporarily unavailable; retry later".into();
        }
        err
    }
}

/// Clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Adds a client. # Contract: `Conflict` if the id exists; logs a `Client` change.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// The client with this id.
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Removes a client. # Contract: returns whether it existed; logs a `Client` change.
    /// Its tokens are no longer active (their client is gone) and are purged when they
    /// expire.
    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Replaces what a client is registered for: name, grant types, redirect URIs, scopes,
    /// audiences, token format and lifetime, single-use flag (never its secret, keys, epoch or
    /// environment). # Contract:
    /// returns whether the client existed; logs a `Client` change.
    async fn update_client(&self, client: &ClientRecord, now: i64) -> Result<bool, StoreError>;
    /// Revokes every token issued to the client so far, by bumping its token epoch, without
    /// touching its secret. # Contract: returns whether the client existed; logs a `Client`
    /// change.
    async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Replaces the public keys of a `private_key_jwt` client. # Contract: returns whether
    /// the client existed; logs a `Client` change.
    async fn set_client_keys(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces the secret hash. # Contract: with `keep_old_until = Some(t)` the previous hash
    /// stays valid until `t` and nothing is revoked; with `None` the previous hash is dropped
    /// and the token epoch is bumped, which revokes every token issued before (tokens carry
    /// the epoch they were issued under). Returns whether the client existed; logs a `Client`
    /// change.
    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &SecretHash,
        keep_old_until: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Sets (or, with `None`, removes) the hash of the client's registration access token
    /// (RFC 7592 §3). # Contract: returns whether the client existed; the hash goes with the
    /// client (deleting it deletes the hash); logs a `Client` change.
    async fn set_registration_token(
        &self,
        client_id: &str,
        hash: Option<&SecretHash>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// The hash of the client's registration access token, if the client exists and has
    /// one. # Contract: read from the database, never from a cache.
    async fn registration_token(&self, client_id: &str) -> Result<Option<SecretHash>, StoreError>;
}

/// Access tokens and revocations.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores an opaque token (every field, including its environment, carried claims and
    /// single-use flag). # Contract: durable when this returns `Ok`.
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The opaque token with this id, revoked or not.
    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Marks an opaque token revoked if it belongs to `client_id`. # Contract: returns whether
    /// a row changed; logs a `Token` change (keyed by the token id) when it did.
    async fn revoke_token(
        &self,
        token_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Records a JWT as revoked until it expires. # Contract: idempotent; logs a `Jti` change.
    async fn revoke_jti(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Whether a JWT with this `jti` was revoked.
    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Every revoked `jti` that has not expired by `now` (to warm a cache).
    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError>;
    /// The revoked `jti`s that have not expired by `now` and sort after `after` (`""`: from
    /// the first), in order, at most `limit`: to fill a cache a page at a time, holding no
    /// more than a page in memory.
    async fn revoked_jtis_after(
        &self,
        now: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError>;
}

/// Signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Adds a key, unless a stored key is sealed under another secret than `key.sealed_by`
    /// (a process holding a secret that is no longer current must not store a key no other
    /// process can open). # Contract: the check and the insert are atomic with respect to
    /// every other `insert_key` and `reseal_keys`; keys whose `sealed_by` is unknown (`None`)
    /// do not count; returns whether the key was added (`false`: nothing written); logs a
    /// `Keys` change when it was.
    async fn insert_key(&self, key: &KeyRecord) -> Result<bool, StoreError>;
    /// Every key, oldest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Sets when a superseded key stops being published. # Contract: logs a `Keys` change.
    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError>;
    /// Replaces the sealed private halves of keys (after the sealing secret changed), all in
    /// one transaction, recording `sealed_by` (the new secret's fingerprint) for each.
    /// # Contract: all or nothing, atomic with respect to `insert_key`; returns `false` and
    /// changes nothing unless `sealed` names every stored key (one was added meanwhile: the
    /// caller reads the keys again); logs a `Keys` change, so that running servers learn that
    /// the keys are now sealed under another secret.
    async fn reseal_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        sealed_by: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// The change feed.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The newest position in the feed (0 when empty).
    async fn latest_change(&self) -> Result<i64, StoreError>;
    /// Entries after `seq`, oldest first, at most `limit`.
    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError>;
    /// The highest position whose entry may have been purged (0 while none was): every entry
    /// after it is still in the feed. A reader that polled [`ChangeFeed::changes_since`] from
    /// a position below the horizon (read after that poll) may have missed entries, and must
    /// drop what it cached. # Contract: never goes back; raised before any entry at or below
    /// it is deleted; [`ChangeFeed::latest_change`] is never below it, so a purge never
    /// makes positions go back.
    async fn feed_horizon(&self) -> Result<i64, StoreError>;
}

/// Housekeeping.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Deletes what has expired by `now`, in small batches.
    async fn purge_expired(&self, now: i64) -> Result<PurgeReport, StoreError>;
    /// The issuer the database is served under, if one was recorded.
    async fn recorded_issuer(&self) -> Result<Option<String>, StoreError>;
    /// Records the issuer the database is served under. # Contract: with `replace` false,
    /// records `issuer` only if none is recorded yet (atomic: of servers starting at once, one
    /// records and the others read its issuer) and returns the issuer on record afterwards;
    /// with `replace` true, replaces the recorded one and returns `issuer`.
    async fn record_issuer(
        &self,
        issuer: &str,
        replace: bool,
        now: i64,
    ) -> Result<String, StoreError>;
}

/// One-time use of assertion ids (`jti`), shared by every node.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` as used until `expires_at`. # Contract: atomic; returns `true` the first
    /// time a key is recorded and `false` every later time until it is purged after
    /// `expires_at`, whichever node asks.
    async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError>;
    /// Whether `key` was recorded by [`ReplayStore::use_once`]. # Contract: reads only; `true`
    /// from the first successful `use_once` of the key until it is purged, whichever node
    /// asks.
    async fn was_used(&self, key: &str) -> Result<bool, StoreError>;
}

/// What [`ThrottleStore::take_attempt`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// An attempt was taken: it is the `n`th of the window.
    Taken(u32),
    /// The budget is spent until this second (the end of the window).
    Refused {
        /// When the window ends.
        until: i64,
    },
}

/// Attempt budgets of the sign-in and client-authentication throttles, shared by every node
/// (RFC 6819 §4.3.2, OWASP's Authentication Cheat Sheet). A budget is a key (a hash the
/// caller derives: an address, a username, a device cookie, a client at an address) holding
/// `limit` attempts per fixed window of `window` seconds that starts with its first attempt.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Takes one attempt from the budget of `key` (`limit` at least 1). # Contract: atomic
    /// across every node: of any number of concurrent calls on a budget with `r` attempts
    /// left, exactly `r` get `Taken`; the others get `Refused` with the window's end and
    /// change nothing. Once the window has ended (`now >= until`) the budget is full again.
    /// Rows are purged after their window ends.
    async fn take_attempt(
        &self,
        key: &str,
        limit: u32,
        window: i64,
        now: i64,
    ) -> Result<Attempt, StoreError>;
    /// Gives back one attempt taken in the current window (it turned out not to be a
    /// failure). # Contract: never takes a budget below zero; does nothing once the window
    /// has ended or for a key never taken.
    async fn return_attempt(&self, key: &str, now: i64) -> Result<(), StoreError>;
}

/// Users, their browser sessions and the consents they gave.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user. # Contract: `Conflict` if the id or the username exists.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// The user with this id.
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this username (exact match).
    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Every user, oldest first.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Changes a user's username (to its prepared form, [`crate::username::prepare_stored`]).
    /// # Contract: returns whether the user existed; `Conflict` if another user has the name.
    async fn rename_user(&self, user_id: &str, username: &str) -> Result<bool, StoreError>;
    /// Removes a user. # Contract: returns whether it existed; also ends their sessions,
    /// forgets their consents and revokes their grants (logging a `Grant` change for each).
    async fn delete_user(&self, user_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Replaces a password hash. # Contract: returns whether the user existed; ends every
    /// session of the user.
    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Adds a session.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session whose cookie hashes to `hash`, expired or not.
    async fn get_session(&self, hash: &SecretHash) -> Result<Option<SessionRecord>, StoreError>;
    /// Ends a session. # Contract: returns whether it existed.
    async fn delete_session(&self, hash: &SecretHash) -> Result<bool, StoreError>;
    /// The scope a user consented to for a client, if any.
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Records (replaces) the scope a user consented to for a client.
    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Every consent of a user, by client id. # Contract: empty for an unknown user.
    async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError>;
    /// Forgets the consent of a user to a client and revokes every grant of that user to
    /// that client, in one transaction, so that their tokens stop working at once and the
    /// next authorization request asks for consent again. # Contract: returns whether a
    /// consent was there; revokes the grants even when none was; logs a `Grant` change for
    /// each grant it revoked (as [`GrantStore::revoke_grant`] does).
    async fn delete_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// Authorization codes, user grants (token families) and refresh tokens.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a code. # Contract: durable when this returns `Ok`.
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError>;
    /// Spends a code. # Contract: atomic across every node: of any number of concurrent
    /// calls with one hash, exactly one gets `Fresh`; every later call gets `Replayed` until
    /// the code is purged.
    async fn use_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeUse, StoreError>;
    /// Stores a grant, optionally with its first refresh token, in one transaction.
    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&RefreshRecord>,
    ) -> Result<(), StoreError>;
    /// The grant with this id, revoked or not.
    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError>;
    /// Revokes a grant and with it every token of the family. # Contract: returns whether a
    /// row changed; logs a `Grant` change when it did; idempotent.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Every grant of a user not yet purged, live and revoked (an operator sees what was
    /// revoked and when until the purge takes it), oldest first (by creation, then id).
    /// # Contract: empty for an unknown user.
    async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantRecord>, StoreError>;
    /// Every grant not yet purged that came from the sign-in session `sid`, live and revoked,
    /// oldest first (by creation, then id): which clients the session signed into (OpenID
    /// Connect Back-Channel Logout 1.0 §2.1). # Contract: empty for an unknown `sid`.
    async fn session_grants(&self, sid: &str) -> Result<Vec<GrantRecord>, StoreError>;
    /// Revokes every live grant of a user, or only those to `client_id`, and with them every
    /// token of their families, in one transaction. # Contract: returns how many grants it
    /// revoked; logs a `Grant` change for each (as [`GrantStore::revoke_grant`] does);
    /// idempotent (a second call revokes nothing and returns 0).
    async fn revoke_user_grants(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// Queues logout tokens to deliver, then, past `max_queued` waiting rows, drops the
    /// oldest (by queueing time, then id). # Contract: returns how many it dropped; with no
    /// rows, only applies the bound.
    async fn queue_logouts(
        &self,
        rows: &[LogoutDeliveryRecord],
        max_queued: u64,
    ) -> Result<u64, StoreError>;
    /// Claims up to `limit` queued logout tokens due by `now` (`next_attempt_at <= now`) for
    /// one delivery attempt: in the same atomic step their `next_attempt_at` becomes
    /// `lease_until`, the lease. # Contract: atomic across every node: of concurrent calls,
    /// each due row is returned by exactly one, and no call returns it again before
    /// `lease_until` (the claimer then ends it or schedules its retry); once the lease has
    /// passed (the claimer crashed) the row is due again. The rows taken are the earliest due
    /// (then oldest queued, then by id); they are returned oldest queued first (then by id),
    /// carrying `lease_until` as their `next_attempt_at`.
    async fn claim_logouts(
        &self,
        now: i64,
        lease_until: i64,
        limit: u64,
    ) -> Result<Vec<LogoutDeliveryRecord>, StoreError>;
    /// Takes a logout token out of the queue (delivered or given up); whether it was there.
    async fn end_logout(&self, id: &str) -> Result<bool, StoreError>;
    /// Records a failed attempt: `attempts` so far, the next one due at `next_attempt_at`.
    /// # Contract: whether the row was there.
    async fn retry_logout(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError>;
    /// The refresh token with this id, used or not.
    async fn get_refresh_token(&self, token_id: &str) -> Result<Option<RefreshRecord>, StoreError>;
    /// Rotates a refresh token: marks `token_id` used (keeping `successor_sealed` on it) and
    /// stores `successor`, in one transaction. # Contract: atomic across every node: of any
    /// number of concurrent calls for one `token_id`, exactly one returns `true`; the others
    /// (and every later call) return `false` and store nothing.
    async fn rotate_refresh_token(
        &self,
        token_id: &str,
        successor: &RefreshRecord,
        successor_sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Moves an unused refresh token's expiry on to `expires_at` (an idle lifetime renewed by
    /// a refresh that does not rotate). `false` when the token is gone or was used.
    async fn extend_refresh_token(
        &self,
        token_id: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
}

/// Deployment environments and the trusted issuers of JWT assertions (RFC 7523 §3).
///
/// The environment named [`crate::environment::DEFAULT_ENV`] exists from the start (the schema
/// creates it) and is never deleted.
#[async_trait]
pub trait TrustStore: Send + Sync {
    /// Creates the environment if it does not exist; returns it. # Contract: idempotent
    /// under concurrency (two callers both get the one row); logs an `Env` change (keyed by
    /// the name) only when it created the row.
    async fn ensure_env(&self, name: &str, now: i64) -> Result<EnvRecord, StoreError>;
    /// The environment with this name.
    async fn get_env(&self, name: &str) -> Result<Option<EnvRecord>, StoreError>;
    /// Every environment, by name.
    async fn list_envs(&self) -> Result<Vec<EnvRecord>, StoreError>;
    /// Sets whether the environment's access tokens are single-use. # Contract: returns
    /// whether it existed; logs an `Env` change.
    async fn set_env_single_use(
        &self,
        name: &str,
        single_use: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes an environment with its trust registrations and its `/sdk/token` client
    /// ([`crate::environment::sdk_client_id`]), all in one transaction. # Contract: refuses
    /// ([`EnvDeletion::InUse`]) while any other client is registered in it; logs `Env`,
    /// `Trust` and `Client` (the SDK client's id) changes when it deleted.
    async fn delete_env(&self, name: &str, now: i64) -> Result<EnvDeletion, StoreError>;
    /// Registers a trusted issuer. # Contract: its environment must exist (callers ensure
    /// it first; an error otherwise); `Conflict` if the environment already trusts this
    /// issuer; logs a `Trust` change keyed by the environment.
    async fn insert_trust(&self, trust: &TrustRecord) -> Result<(), StoreError>;
    /// The registration of `issuer` in `env`.
    async fn find_trust(&self, env: &str, issuer: &str) -> Result<Option<TrustRecord>, StoreError>;
    /// Every registration, of one environment or of all, oldest first.
    async fn list_trust(&self, env: Option<&str>) -> Result<Vec<TrustRecord>, StoreError>;
    /// Replaces the public keys of a registration (the issuer's key rotation). # Contract:
    /// returns whether it existed; logs a `Trust` change keyed by its environment when it
    /// did.
    async fn set_trust_keys(&self, id: &str, keys: &str, now: i64) -> Result<bool, StoreError>;
    /// Removes a registration by id. # Contract: returns whether it existed; logs a `Trust`
    /// change keyed by its environment when it did.
    async fn delete_trust(&self, id: &str, now: i64) -> Result<bool, StoreError>;
}

/// Upstream OpenID providers users sign in through, and the external identities linked to
/// local users (OpenID Connect Core §5.7: an upstream user is its `iss` and `sub`).
///
/// Nothing here is cached by a node: a sign-in through an upstream reads the provider and the
/// link from the database each time.
#[async_trait]
pub trait IdpStore: Send + Sync {
    /// Adds a provider with its e-mail domains. # Contract: `Conflict` if the name is used,
    /// or if one of its domains belongs to another provider (atomic: of two concurrent
    /// inserts claiming one domain, one gets `Conflict`); all or nothing.
    async fn insert_idp(&self, idp: &IdpRecord) -> Result<(), StoreError>;
    /// The provider with this name.
    async fn get_idp(&self, name: &str) -> Result<Option<IdpRecord>, StoreError>;
    /// Every provider, by name.
    async fn list_idps(&self) -> Result<Vec<IdpRecord>, StoreError>;
    /// Removes a provider and frees its domains. # Contract: returns whether it existed; the
    /// external identities first seen through it stay (their users keep their accounts).
    async fn delete_idp(&self, name: &str) -> Result<bool, StoreError>;
    /// Replaces the sealed client secret of a provider (after the sealing secret changed).
    /// # Contract: returns whether it existed; changes nothing else.
    async fn set_idp_secret(&self, name: &str, sealed: &[u8]) -> Result<bool, StoreError>;
    /// The link of the upstream identity (`issuer`, `subject`), if any.
    async fn find_external_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<ExternalIdentityRecord>, StoreError>;
    /// Links an upstream identity to a local user. # Contract: `Conflict` if (`issuer`,
    /// `subject`) is already linked (atomic: of concurrent calls, one links); the user must
    /// exist (an error otherwise); deleting the user deletes its links.
    async fn insert_external_identity(
        &self,
        link: &ExternalIdentityRecord,
    ) -> Result<(), StoreError>;
}

/// The audit trail ([`crate::audit`]): admin changes and security events, append-only.
///
/// Nothing here is cached by a node: entries are written and listed in the database.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry (its `id` is ignored). # Contract: returns the id given to it, greater
    /// than every id given before.
    async fn insert_audit(&self, record: &AuditRecord) -> Result<i64, StoreError>;
    /// The entries matching `filter`, newest (highest id) first, at most `filter.limit`
    /// (capped at [`crate::model::AUDIT_PAGE_MAX`]; below 1 means 1). # Contract: a page
    /// then `before_id` = the last id of it lists the next older page, with no entry missed
    /// or repeated.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes the entries from before `before` (their `at` below it), in small batches
    /// (the retention purge). # Contract: returns how many it deleted.
    async fn purge_audit(&self, before: i64) -> Result<u64, StoreError>;
}

/// Credentials of the admin API ([`AdminTokenRecord`]).
///
/// Nothing here is cached by a node: every admin request reads its token from the database,
/// so a revocation holds at once on every node.
#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    /// Adds a token. # Contract: `Conflict` if the id is taken.
    async fn insert_admin_token(&self, token: &AdminTokenRecord) -> Result<(), StoreError>;
    /// The token with this id, revoked or not.
    async fn get_admin_token(&self, id: &str) -> Result<Option<AdminTokenRecord>, StoreError>;
    /// Every token, revoked ones too, oldest first (then by id).
    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>, StoreError>;
    /// Revokes a token. # Contract: returns whether it existed and was not revoked yet; a
    /// revoked token keeps its first `revoked_at`.
    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Records that a token was accepted at `now`. # Contract: returns whether it exists.
    async fn touch_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError>;
}

/// Device authorizations (RFC 8628): the device code (by its hash) a client polls with, and
/// the user code a user types on the verification page.
///
/// Nothing here is cached by a node: every decision and every poll is made where every node
/// meets.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new device authorization. # Contract: `Conflict` if its device code hash or
    /// its user code is taken by a stored one (purged ones free theirs).
    async fn insert_device_code(&self, record: &DeviceCodeRecord) -> Result<(), StoreError>;
    /// The device authorization with this (normalised) user code, whatever its status or
    /// expiry, until it is purged.
    async fn find_device_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;
    /// Records the user's decision: approved with `approval` (its user, consented scope and
    /// sign-in time), or denied with `None`. # Contract: only a pending authorization that
    /// expires after `now` changes; returns whether it did; of concurrent decisions on one
    /// user code exactly one wins.
    async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// A poll with a device code by `client_id` (RFC 8628 §3.4, §3.5). # Contract: one
    /// atomic step: an unknown hash, or another client's, is `Unknown` (and unchanged); one expiring at or before `now` is `Expired` and unchanged;
    /// otherwise the poll is recorded at `now`, and if it comes before the previous poll plus
    /// the interval, the interval grows by `slow_down_step` and the answer is `SlowDown`
    /// (whatever the status); else an approved authorization becomes used and the answer is
    /// `Issued` (of any number of concurrent polls, exactly one gets it), and the others
    /// answer their status (`Pending`, `Denied`, `Used`).
    async fn poll_device_code(
        &self,
        device_code_hash: &SecretHash,
        client_id: &str,
        now: i64,
        slow_down_step: i64,
    ) -> Result<DevicePoll, StoreError>;
}

/// Everything a backend provides.
pub trait Store:
    ClientStore
    + TokenStore
    + KeyStore
    + UserStore
    + GrantStore
    + TrustStore
    + IdpStore
    + DeviceStore
    + AdminTokenStore
    + ReplayStore
    + ThrottleStore
    + ChangeFeed
    + Maintenance
    + AuditStore
{
}

impl<
        T: ClientStore
            + TokenStore
            + KeyStore
            + UserStore
            + GrantStore
            + TrustStore
            + IdpStore
            + DeviceStore
            + AdminTokenStore
            + ReplayStore
            + ThrottleStore
            + ChangeFeed
            + Maintenance
            + AuditStore,
    > Store for T
{
}

#[cfg(feature = "memory")]
pub mod memory;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;
