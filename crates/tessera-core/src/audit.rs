//! The audit trail.
//!
//! Owns [`AuditEvent`] (what happened, who did it, to what, with what outcome, from where),
//! its vocabulary ([`AuditKind`], [`Actor`], [`Outcome`]) and [`record`], the one way an event
//! is written: to the database through [`crate::store::AuditStore`] and, as a structured
//! event at info level with target `audit`, to the log. Every admin change (through the CLI or
//! the admin API) and every security event (a failed client authentication, a code or refresh
//! token replayed, a sign-in lock-out, an admin token used or refused) is recorded where it
//! happens. Nothing recorded is a secret: a client is named by its id, a token by its id
//! (never its value), and `detail` carries only facts an operator may read.
//!
//! Recording never fails the request it belongs to: a trail that cannot be written is logged
//! as a warning and the request goes on (the log line still carries the event).

use std::fmt;
use std::net::IpAddr;

use crate::model::AuditRecord;
use crate::store::Store;

/// The request an event happens in: its id (from the HTTP layer) and the address it came
/// from, and what the sender presented to prove who it is (a DPoP proof, a client
/// certificate). Empty for the command line and background work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The request id (`X-Request-Id`, as the HTTP layer accepted or made it).
    pub request_id: Option<String>,
    /// The client's address.
    pub source: Option<IpAddr>,
    /// The request's method, path and `DPoP` headers (RFC 9449 §4), when it came over HTTP.
    pub dpop: Option<DpopInput>,
    /// The DER of the client certificate of the mutual TLS connection the request came
    /// over, or that a trusted proxy passed on (RFC 8705 §2).
    pub client_cert: Option<std::sync::Arc<[u8]>>,
}

/// What the HTTP layer hands the core for a DPoP check (RFC 9449 §4.3): the `DPoP` header
/// values and the request they must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpopInput {
    /// Every `DPoP` header value of the request (more than one is an error, §4.3 step 1).
    pub proofs: Vec<String>,
    /// The HTTP method.
    pub method: String,
    /// The request's path, as received (the `htu` is the issuer's origin with it).
    pub path: String,
}

/// Longest request id kept; a longer or odd one from a client is replaced.
pub const REQUEST_ID_MAX: usize = 64;

/// Whether a request id a client sent may be kept as it is: 1 to [`REQUEST_ID_MAX`]
/// characters of `A-Z a-z 0-9 - _ . : /` (nothing that could forge a log line or a field).
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A client was registered.
    ClientCreated,
    /// A client's registration was changed (metadata, keys).
    ClientUpdated,
    /// A client's secret was replaced.
    ClientSecretRotated,
    /// A client was deleted.
    ClientDeleted,
    /// Every token of a client was revoked.
    ClientTokensRevoked,
    /// One token was revoked by an administrator.
    TokenRevoked,
    /// A user grant (token family) was revoked, or every grant of a user.
    GrantRevoked,
    /// A user's consent to a client was withdrawn.
    ConsentRevoked,
    /// A user was created.
    UserCreated,
    /// A user was changed (renamed).
    UserUpdated,
    /// A user was deleted.
    UserDeleted,
    /// A user's password was set.
    UserPasswordSet,
    /// A trusted issuer was registered.
    TrustAdded,
    /// A trusted issuer's keys were replaced.
    TrustUpdated,
    /// A trusted issuer was removed.
    TrustRemoved,
    /// An environment was created.
    EnvCreated,
    /// An environment's settings were changed.
    EnvUpdated,
    /// An environment was deleted.
    EnvDeleted,
    /// The signing keys were rotated (or resealed).
    KeyRotated,
    /// An upstream identity provider was added.
    IdpAdded,
    /// An upstream identity provider was removed.
    IdpRemoved,
    /// An admin token was created.
    AdminTokenCreated,
    /// An admin token was revoked.
    AdminTokenRevoked,
    /// An admin token was used.
    AdminTokenUsed,
    /// An admin credential was refused (unknown, expired, revoked or short of scope).
    AdminTokenRefused,
    /// A client failed to authenticate (RFC 6749 §2.3).
    ClientAuthFailed,
    /// An authorization code was presented a second time (RFC 6749 §4.1.2).
    CodeReplayed,
    /// A used refresh token was presented again (RFC 9700 §4.14.2).
    RefreshTokenReplayed,
    /// A sign-in was refused because its budget of failures was spent (RFC 6819 §4.3.2).
    SignInLockedOut,
    /// A failed client authentication spent the budget of that client at that address:
    /// further failures from there are answered `429` until the window ends (RFC 6819
    /// §4.3.2); the end is in the detail (`until`).
    ClientLockedOut,
    /// A logout token was not sent because the client's back-channel logout URI resolved to
    /// a refused address (OpenID Connect Back-Channel Logout 1.0; the reason is in the
    /// detail); its delivery ended.
    LogoutDeliveryRefused,
    /// A user code typed on the device verification page was refused unread because the
    /// address's budget of wrong codes was spent (RFC 8628 §5.1); the end is in the detail
    /// (`until`).
    UserCodeLockedOut,
    /// A change through the admin API of a kind not named above (its method and path are
    /// in the detail).
    AdminChange,
}

impl AuditKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [AuditKind] = &[
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientSecretRotated,
        Self::ClientDeleted,
        Self::ClientTokensRevoked,
        Self::TokenRevoked,
        Self::GrantRevoked,
        Self::ConsentRevoked,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::UserPasswordSet,
        Self::TrustAdded,
        Self::TrustUpdated,
        Self::TrustRemoved,
        Self::EnvCreated,
        Self::EnvUpdated,
        Self::EnvDeleted,
        Self::KeyRotated,
        Self::IdpAdded,
        Self::IdpRemoved,
        Self::AdminTokenCreated,
        Self::AdminTokenRevoked,
        Self::AdminTokenUsed,
        Self::AdminTokenRefused,
        Self::ClientAuthFailed,
        Self::CodeReplayed,
        Self::RefreshTokenReplayed,
        Self::SignInLockedOut,
        Self::ClientLockedOut,
        Self::LogoutDeliveryRefused,
        Self::UserCodeLockedOut,
        Self::AdminChange,
    ];

    /// The stored name (`client_created`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCreated => "client_created",
            Self::ClientUpdated => "client_updated",
            Self::ClientSecretRotated => "client_secret_rotated",
            Self::ClientDeleted => "client_deleted",
            Self::ClientTokensRevoked => "client_tokens_revoked",
            Self::TokenRevoked => "token_revoked",
            Self::GrantRevoked => "grant_revoked",
            Self::ConsentRevoked => "consent_revoked",
            Self::UserCreated => "user_created",
            Self::UserUpdated => "user_updated",
            Self::UserDeleted => "user_deleted",
            Self::UserPasswordSet => "user_password_set",
            Self::TrustAdded => "trust_added",
            Self::TrustUpdated => "trust_updated",
            Self::TrustRemoved => "trust_removed",
            Self::EnvCreated => "env_created",
            Self::EnvUpdated => "env_updated",
            Self::EnvDeleted => "env_deleted",
            Self::KeyRotated => "key_rotated",
            Self::IdpAdded => "idp_added",
            Self::IdpRemoved => "idp_removed",
            Self::AdminTokenCreated => "admin_token_created",
            Self::AdminTokenRevoked => "admin_token_revoked",
            Self::AdminTokenUsed => "admin_token_used",
            Self::AdminTokenRefused => "admin_token_refused",
            Self::ClientAuthFailed => "client_auth_failed",
            Self::CodeReplayed => "code_replayed",
            Self::RefreshTokenReplayed => "refresh_token_replayed",
            Self::SignInLockedOut => "sign_in_locked_out",
            Self::ClientLockedOut => "client_locked_out",
            Self::LogoutDeliveryRefused => "logout_delivery_refused",
            Self::UserCodeLockedOut => "user_code_locked_out",
            Self::AdminChange => "admin_change",
        }
    }

    /// The kind with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator at the command line, on the database directly.
    Cli,
    /// A caller of the admin API holding the admin token with this id (`bootstrap` for the
    /// configured bootstrap credential).
    AdminToken(String),
    /// A client (authenticated, or the id it presented).
    Client(String),
    /// A signed-in user (by user id).
    User(String),
    /// Nobody known.
    Anonymous,
}

impl Actor {
    /// The stored form: `cli`, `admin_token:ID`, `client:ID`, `user:ID`, `anonymous`.
    pub fn stored(&self) -> String {
        match self {
            Self::Cli => "cli".into(),
            Self::AdminToken(id) => format!("admin_token:{id}"),
            Self::Client(id) => format!("client:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::Anonymous => "anonymous".into(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stored())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was refused or failed.
    Failure,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One event of the trail, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When, Unix seconds.
    pub at: i64,
    /// What happened.
    pub kind: AuditKind,
    /// Who did it.
    pub actor: Actor,
    /// What it was done to, if anything: a client id, a user id, a token or grant id.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request it happened in, if any.
    pub request_id: Option<String>,
    /// The address the request came from, if any.
    pub source: Option<String>,
    /// Further facts (a JSON object; never a secret).
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// A successful event with no target, request, source or detail.
    pub fn new(at: i64, kind: AuditKind, actor: Actor) -> Self {
        Self {
            at,
            kind,
            actor,
            target: None,
            outcome: Outcome::Success,
            request_id: None,
            source: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    /// This event with a target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// This event, failed.
    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    /// This event with the address it came from.
    pub fn source(mut self, source: Option<std::net::IpAddr>) -> Self {
        self.source = source.map(|a| a.to_string());
        self
    }

    /// This event with the request it happened in.
    pub fn request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// This event with the request it happened in and its address.
    pub fn request(mut self, meta: &RequestMeta) -> Self {
        self.request_id = meta.request_id.clone();
        self.source = meta.source.map(|a| a.to_string());
        self
    }

    /// This event with further facts.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// The stored row.
    pub fn to_record(&self) -> AuditRecord {
        AuditRecord {
            id: 0,
            at: self.at,
            kind: self.kind.as_str().to_owned(),
            actor: self.actor.stored(),
            target: self.target.clone(),
            outcome: self.outcome.as_str().to_owned(),
            request_id: self.request_id.clone(),
            source: self.source.clone(),
            detail: self.detail.to_string(),
        }
    }
}

/// Records an event: logs it (info, target `audit`, every field a structured field) and
/// writes it to the trail. Returns the stored id, or `None` when it could not be written
/// (that failure is logged; the caller's request goes on).
pub async fn record(store: &dyn Store, event: AuditEvent) -> Option<i64> {
    let rec = event.to_record();
    log(&rec);
    match store.insert_audit(&rec).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(target: "audit", error = %e, kind = %rec.kind, "recording an audit event failed");
            None
        }
    }
}

/// Logs an event: info level, target `audit`, message `audit event`, every field of the row
/// a structured field. The one shape of the line, for what [`record`] writes and for what a
/// server learns another process wrote (the command line's changes, which `tessera-node`
/// picks up from the trail).
pub fn log(rec: &AuditRecord) {
    tracing::info!(
        target: "audit",
        at = rec.at,
        kind = %rec.kind,
        actor = %rec.actor,
        target = rec.target.as_deref(),
        outcome = %rec.outcome,
        request_id = rec.request_id.as_deref(),
        source = rec.source.as_deref(),
        detail = %rec.detail,
        "audit event"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name_that_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for &k in AuditKind::ALL {
            assert!(seen.insert(k.as_str()), "{k} named twice");
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(AuditKind::parse("client_created "), None);
        assert_eq!(AuditKind::parse(""), None);
    }

    #[test]
    fn actors_are_stored_by_kind_and_id() {
        assert_eq!(Actor::Cli.stored(), "cli");
        assert_eq!(Actor::AdminToken("t1".into()).stored(), "admin_token:t1");
        assert_eq!(Actor::Client("c".into()).stored(), "client:c");
        assert_eq!(Actor::User("u".into()).stored(), "user:u");
        assert_eq!(Actor::Anonymous.stored(), "anonymous");
    }

    #[test]
    fn request_ids_that_could_forge_a_line_or_a_field_are_refused() {
        for ok in ["a", "req-1", "0f8e.2:x/y_z", &"a".repeat(REQUEST_ID_MAX)] {
            assert!(is_valid_request_id(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a\nkind=client_created",
            "\"}",
            "é",
            "a=b",
            &"a".repeat(REQUEST_ID_MAX + 1),
        ] {
            assert!(!is_valid_request_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_event_carries_its_request() {
        let meta = RequestMeta {
            request_id: Some("r-9".into()),
            source: Some("2001:db8::1".parse().unwrap()),
            ..RequestMeta::default()
        };
        let r = AuditEvent::new(1, AuditKind::UserDeleted, Actor::Cli)
            .request(&meta)
            .to_record();
        assert_eq!(r.request_id.as_deref(), Some("r-9"));
        assert_eq!(r.source.as_deref(), Some("2001:db8::1"));
        assert_eq!(r.actor, "cli");
        assert_eq!(r.outcome, "success");
    }

    #[test]
    fn an_event_becomes_its_row() {
        let e = AuditEvent::new(5, AuditKind::ClientAuthFailed, Actor::Anonymous)
            .target("c1")
            .failed()
            .source(Some("192.0.2.7".parse().unwrap()))
            .detail(serde_json::json!({"endpoint": "token"}));
        let r = e.to_record();
        assert_eq!(r.kind, "client_auth_failed");
        assert_eq!(r.outcome, "failure");
        assert_eq!(r.source.as_deref(), Some("192.0.2.7"));
        assert_eq!(r.target.as_deref(), Some("c1"));
        assert_eq!(r.detail, r#"{"endpoint":"token"}"#);
    }
}
