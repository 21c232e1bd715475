//! Spans per storage call, for OpenTelemetry tracing.
//!
//! Owns [`Traced`], a [`Store`] that passes every call to the store it wraps inside a span
//! named after the method, shaped as the OpenTelemetry semantic conventions describe a
//! database client span (`db.system.name`, `db.operation.name`; `error.type` and an error
//! status when the call failed, a conflict excepted: that is an answer, not a failure). The
//! span carries no argument and no result, so that no secret, hash or token reaches a trace.
//!
//! A call made outside any span (the background loop's feed polls, every 250 ms) is passed
//! through without a span of its own: traces follow requests, and a request's storage calls
//! become the children of its span (`tessera_http::otel`).
//!
//! The binary wraps the database's store in it below [`crate::cache::CachedStore`], so the
//! spans are the calls that reach the database; a cache hit makes none. Without tracing the
//! binary does not wrap the store at all.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tessera_core::model::{
    AdminTokenRecord, AuditFilter, AuditRecord, Change, ClientRecord, CodeRecord, CodeUse,
    ConsentRecord, EnvDeletion, EnvRecord, ExternalIdentityRecord, GrantRecord, IdpRecord,
    KeyRecord, LogoutDeliveryRecord, PurgeReport, RefreshRecord, SessionRecord, TokenRecord,
    TrustRecord, UserRecord,
};
use tessera_core::model::{DeviceApproval, DeviceCodeRecord, DevicePoll};
use tessera_core::secret::SecretHash;
use tessera_core::store::DeviceStore;
use tessera_core::store::{
    AdminTokenStore, Attempt, AuditStore, ChangeFeed, ClientStore, GrantStore, IdpStore, KeyStore,
    Maintenance, ReplayStore, Store, StoreError, ThrottleStore, TokenStore, TrustStore, UserStore,
};
use tracing::field::Empty;
use tracing::Instrument as _;

/// The `tracing` target of storage spans.
pub const TARGET: &str = "tessera::store";

/// A store whose every call, made inside a span, gets a span of its own.
pub struct Traced {
    inner: Arc<dyn Store>,
    /// `db.system.name`: `sqlite` or `postgresql`.
    system: &'static str,
}

impl Traced {
    /// Wraps `inner`, a database of the kind `system` names (`sqlite`, `postgresql`).
    pub fn new(inner: Arc<dyn Store>, system: &'static str) -> Self {
        Self { inner, system }
    }

    /// Runs one call, inside its span when there is a span to be its parent.
    async fn call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        if tracing::Span::current().is_none() {
            return call.await;
        }
        let span = tracing::info_span!(
            target: TARGET,
            "store",
            otel.name = op,
            otel.kind = "client",
            otel.status_code = Empty,
            db.system.name = self.system,
            db.operation.name = op,
            error.type = Empty,
        );
        let result = call.instrument(span.clone()).await;
        if let Err(e) = &result {
            let kind = match e {
                StoreError::Conflict => None,
                StoreError::Backend(_) => Some("backend"),
                StoreError::Corrupt(_) => Some("corrupt"),
                StoreError::Invalid(_) => Some("invalid"),
                StoreError::Unavailable(_) => Some("unavailable"),
            };
            if let Some(kind) = kind {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", kind);
            }
        }
        result
    }
}

/// Implements a storage trait for [`Traced`]: each method is [`Traced::call`] around the
/// same method of the wrapped store.
macro_rules! traced {
    ($trait:ident $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait]
        impl $trait for Traced {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    self.call(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*
        }
    };
}

traced! {
    ClientStore
    fn insert_client(client: &ClientRecord) -> ();
    fn get_client(client_id: &str) -> Option<ClientRecord>;
    fn list_clients() -> Vec<ClientRecord>;
    fn delete_client(client_id: &str, now: i64) -> bool;
    fn update_client(client: &ClientRecord, now: i64) -> bool;
    fn revoke_client_tokens(client_id: &str, now: i64) -> bool;
    fn set_client_keys(client_id: &str, jwks: &str, now: i64) -> bool;
    fn rotate_client_secret(client_id: &str, new_hash: &SecretHash, keep_old_until: Option<i64>, now: i64) -> bool;
    fn set_registration_token(client_id: &str, hash: Option<&SecretHash>, now: i64) -> bool;
    fn registration_token(client_id: &str) -> Option<SecretHash>;
}
traced! {
    TokenStore
    fn insert_token(token: &TokenRecord) -> ();
    fn get_token(token_id: &str) -> Option<TokenRecord>;
    fn revoke_token(token_id: &str, client_id: &str, now: i64) -> bool;
    fn revoke_jti(jti: &str, client_id: &str, expires_at: i64, now: i64) -> ();
    fn is_jti_revoked(jti: &str) -> bool;
    fn revoked_jtis(now: i64) -> Vec<String>;
    fn revoked_jtis_after(now: i64, after: &str, limit: i64) -> Vec<String>;
}
traced! {
    KeyStore
    fn insert_key(key: &KeyRecord) -> bool;
    fn list_keys() -> Vec<KeyRecord>;
    fn retire_key(kid: &str, retires_at: i64) -> ();
    fn reseal_keys(sealed: &[(String, Vec<u8>)], sealed_by: &str, now: i64) -> bool;
}
traced! {
    ChangeFeed
    fn latest_change() -> i64;
    fn changes_since(seq: i64, limit: i64) -> Vec<Change>;
    fn feed_horizon() -> i64;
}
traced! {
    Maintenance
    fn ping() -> ();
    fn purge_expired(now: i64) -> PurgeReport;
    fn recorded_issuer() -> Option<String>;
    fn record_issuer(issuer: &str, replace: bool, now: i64) -> String;
}
traced! {
    ReplayStore
    fn use_once(key: &str, expires_at: i64) -> bool;
    fn was_used(key: &str) -> bool;
}
traced! {
    ThrottleStore
    fn take_attempt(key: &str, limit: u32, window: i64, now: i64) -> Attempt;
    fn return_attempt(key: &str, now: i64) -> ();
}
traced! {
    UserStore
    fn insert_user(user: &UserRecord) -> ();
    fn get_user(user_id: &str) -> Option<UserRecord>;
    fn find_user(username: &str) -> Option<UserRecord>;
    fn list_users() -> Vec<UserRecord>;
    fn rename_user(user_id: &str, username: &str) -> bool;
    fn delete_user(user_id: &str, now: i64) -> bool;
    fn set_password(user_id: &str, password_hash: &str, now: i64) -> bool;
    fn insert_session(session: &SessionRecord) -> ();
    fn get_session(hash: &SecretHash) -> Option<SessionRecord>;
    fn delete_session(hash: &SecretHash) -> bool;
    fn get_consent(user_id: &str, client_id: &str) -> Option<String>;
    fn put_consent(user_id: &str, client_id: &str, scope: &str, now: i64) -> ();
    fn list_consents(user_id: &str) -> Vec<ConsentRecord>;
    fn delete_consent(user_id: &str, client_id: &str, now: i64) -> bool;
}
traced! {
    GrantStore
    fn insert_code(code: &CodeRecord) -> ();
    fn use_code(code_hash: &SecretHash, now: i64) -> CodeUse;
    fn insert_grant(grant: &GrantRecord, refresh: Option<&RefreshRecord>) -> ();
    fn get_grant(grant_id: &str) -> Option<GrantRecord>;
    fn revoke_grant(grant_id: &str, now: i64) -> bool;
    fn list_user_grants(user_id: &str) -> Vec<GrantRecord>;
    fn session_grants(sid: &str) -> Vec<GrantRecord>;
    fn queue_logouts(rows: &[LogoutDeliveryRecord], max_queued: u64) -> u64;
    fn claim_logouts(now: i64, lease_until: i64, limit: u64) -> Vec<LogoutDeliveryRecord>;
    fn end_logout(id: &str) -> bool;
    fn retry_logout(id: &str, attempts: i64, next_attempt_at: i64) -> bool;
    fn revoke_user_grants(user_id: &str, client_id: Option<&str>, now: i64) -> u64;
    fn get_refresh_token(token_id: &str) -> Option<RefreshRecord>;
    fn rotate_refresh_token(token_id: &str, successor: &RefreshRecord, successor_sealed: Option<&[u8]>, now: i64) -> bool;
    fn extend_refresh_token(token_id: &str, expires_at: i64) -> bool;
}
traced! {
    TrustStore
    fn ensure_env(name: &str, now: i64) -> EnvRecord;
    fn get_env(name: &str) -> Option<EnvRecord>;
    fn list_envs() -> Vec<EnvRecord>;
    fn set_env_single_use(name: &str, single_use: bool, now: i64) -> bool;
    fn delete_env(name: &str, now: i64) -> EnvDeletion;
    fn insert_trust(trust: &TrustRecord) -> ();
    fn find_trust(env: &str, issuer: &str) -> Option<TrustRecord>;
    fn list_trust(env: Option<&str>) -> Vec<TrustRecord>;
    fn set_trust_keys(id: &str, keys: &str, now: i64) -> bool;
    fn delete_trust(id: &str, now: i64) -> bool;
}
traced! {
    IdpStore
    fn insert_idp(idp: &IdpRecord) -> ();
    fn get_idp(name: &str) -> Option<IdpRecord>;
    fn list_idps() -> Vec<IdpRecord>;
    fn delete_idp(name: &str) -> bool;
    fn set_idp_secret(name: &str, sealed: &[u8]) -> bool;
    fn find_external_identity(issuer: &str, subject: &str) -> Option<ExternalIdentityRecord>;
    fn insert_external_identity(link: &ExternalIdentityRecord) -> ();
}
traced! {
    AuditStore
    fn insert_audit(record: &AuditRecord) -> i64;
    fn list_audit(filter: &AuditFilter) -> Vec<AuditRecord>;
    fn purge_audit(before: i64) -> u64;
}
traced! {
    AdminTokenStore
    fn insert_admin_token(token: &AdminTokenRecord) -> ();
    fn get_admin_token(id: &str) -> Option<AdminTokenRecord>;
    fn list_admin_tokens() -> Vec<AdminTokenRecord>;
    fn revoke_admin_token(id: &str, now: i64) -> bool;
    fn touch_admin_token(id: &str, now: i64) -> bool;
}
traced! {
    DeviceStore
    fn insert_device_code(record: &DeviceCodeRecord) -> ();
    fn find_device_user_code(user_code: &str) -> Option<DeviceCodeRecord>;
    fn decide_device_code(user_code: &str, approval: Option<&DeviceApproval>, now: i64) -> bool;
    fn poll_device_code(device_code_hash: &SecretHash, client_id: &str, now: i64, slow_down_step: i64) -> DevicePoll;
}
