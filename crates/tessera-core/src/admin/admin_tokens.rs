//! Admin tokens: the credentials of the admin API, and what each may do.
//!
//! Owns the token value (`tsa_<id>_<secret>`: a public id to find the record, 256 random bits
//! behind it; stored only as the SHA-256 of the whole value, compared in constant time, as
//! [`crate::secret`] explains), the scopes (`RESOURCE:read`, `RESOURCE:write`, where write
//! implies read of the same resource, and `admin` for everything), creating, listing and
//! revoking tokens, and checking a presented credential: an admin token, or the bootstrap
//! token an operator configures (which has the scope `admin`).

use serde::Serialize;

use super::{AdminError, AdminResult};
use crate::model::AdminTokenRecord;
use crate::secret::{self, generate_id, Secret, SecretHash};
use crate::store::Store;

/// Prefix of admin token values (recognisable by secret scanners; adds no entropy).
pub const TOKEN_PREFIX: &str = "tsa_";

/// The scope that permits everything.
pub const ADMIN_SCOPE: &str = "admin";

/// The scope of an initial access token for dynamic client registration (RFC 7591 §3,
/// [`crate::endpoint::register`]); it permits nothing in the admin API.
pub const REGISTER_SCOPE: &str = "clients:register";

/// Every scope an admin token may have.
pub const SCOPES: &[&str] = &[
    "clients:read",
    "clients:write",
    "users:read",
    "users:write",
    "trust:read",
    "trust:write",
    "envs:read",
    "envs:write",
    "keys:read",
    "keys:write",
    "idps:read",
    "idps:write",
    "tokens:write",
    "grants:read",
    "grants:write",
    "audit:read",
    REGISTER_SCOPE,
    ADMIN_SCOPE,
];

/// Longest name of a token.
const MAX_NAME: usize = 200;

/// Whether `granted` permits `needed`: it holds `admin`, `needed` itself, or, for
/// `R:read`, `R:write`.
pub fn permits(granted: &[String], needed: &str) -> bool {
    granted.iter().any(|g| {
        g == ADMIN_SCOPE
            || g == needed
            || needed
                .strip_suffix(":read")
                .is_some_and(|r| g.strip_suffix(":write") == Some(r))
    })
}

/// A token to make.
#[derive(Debug, Clone, Default)]
pub struct AdminTokenSpec {
    /// A name for people.
    pub name: String,
    /// Its scopes, from [`SCOPES`]; at least one.
    pub scopes: Vec<String>,
    /// Seconds it lives, if it expires.
    pub expires_in: Option<i64>,
}

/// A token just made, with its value: shown this once, stored only as its hash.
#[derive(Debug)]
pub struct CreatedAdminToken {
    /// The stored record.
    pub record: AdminTokenRecord,
    /// The value to hand to its owner.
    pub token: Secret,
}

/// A token as listed: never its hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminTokenView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it expires, if ever.
    pub expires_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// When it was last used.
    pub last_used_at: Option<i64>,
}

impl From<&AdminTokenRecord> for AdminTokenView {
    fn from(r: &AdminTokenRecord) -> Self {
        AdminTokenView {
            id: r.id.clone(),
            name: r.name.clone(),
            scopes: r.scopes.clone(),
            expires_at: r.expires_at,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// Checks a list of scopes: each known, no duplicates kept, at least one.
pub fn check_scopes(scopes: &[String]) -> AdminResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split_whitespace()) {
        if !SCOPES.contains(&s) {
            return Err(AdminError::invalid(
                "scopes",
                format!(
                    "scopes: '{s}' is not an admin scope ({})",
                    SCOPES.join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err(AdminError::invalid(
            "scopes",
            "scopes: at least one is needed",
        ));
    }
    Ok(out)
}

/// Makes a token.
pub async fn create(
    store: &dyn Store,
    spec: AdminTokenSpec,
    now: i64,
) -> AdminResult<CreatedAdminToken> {
    let name = spec.name.trim();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "name",
            format!("name must be 1 to {MAX_NAME} characters, without control characters"),
        ));
    }
    let scopes = check_scopes(&spec.scopes)?;
    let expires_at = match spec.expires_in {
        None => None,
        Some(s) if s > 0 => Some(now.saturating_add(s)),
        Some(_) => {
            return Err(AdminError::invalid(
                "expires_in",
                "expires_in must be a positive number of seconds",
            ))
        }
    };
    let id = generate_id();
    let token = Secret::new(format!(
        "{TOKEN_PREFIX}{id}_{}",
        secret::generate("").expose()
    ));
    let record = AdminTokenRecord {
        id,
        token_hash: token.hash(),
        name: name.to_owned(),
        scopes,
        expires_at,
        created_at: now,
        revoked_at: None,
        last_used_at: None,
    };
    store.insert_admin_token(&record).await?;
    Ok(CreatedAdminToken { record, token })
}

/// Every token, revoked ones too, oldest first.
pub async fn list(store: &dyn Store) -> AdminResult<Vec<AdminTokenRecord>> {
    Ok(store.list_admin_tokens().await?)
}

/// Revokes a token; `NotFound` if there is none, `Conflict` if it was already revoked.
pub async fn revoke(store: &dyn Store, id: &str, now: i64) -> AdminResult<()> {
    if store.revoke_admin_token(id, now).await? {
        return Ok(());
    }
    match store.get_admin_token(id).await? {
        None => Err(AdminError::not_found("admin token", id)),
        Some(_) => Err(AdminError::Conflict(format!(
            "admin token '{id}' is already revoked"
        ))),
    }
}

/// Whether any admin token could be accepted now (not revoked, not expired).
pub async fn any_usable(store: &dyn Store, now: i64) -> AdminResult<bool> {
    Ok(store
        .list_admin_tokens()
        .await?
        .iter()
        .any(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now)))
}

/// Who made an admin request, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal {
    /// The admin token's id; `None` for the bootstrap token.
    pub token_id: Option<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
}

impl AdminPrincipal {
    /// Whether it may act with `scope`.
    pub fn may(&self, scope: &str) -> bool {
        permits(&self.scopes, scope)
    }

    /// How an audit trail names it: `admin-token:<id>` or `admin-token:bootstrap`.
    pub fn actor(&self) -> String {
        format!(
            "admin-token:{}",
            self.token_id.as_deref().unwrap_or("bootstrap")
        )
    }
}

/// Why a presented credential was refused (all answered 401 `invalid_token`, RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a credential this server issued or knows.
    #[error("the admin token is not valid")]
    Unknown,
    /// Past its expiry.
    #[error("the admin token has expired")]
    Expired,
    /// Revoked.
    #[error("the admin token has been revoked")]
    Revoked,
}

/// Checks a presented credential: the bootstrap token (its hash given by the caller), or an
/// admin token that is neither revoked nor expired (its last use is then recorded).
pub async fn authenticate(
    store: &dyn Store,
    presented: &str,
    bootstrap: Option<&SecretHash>,
    now: i64,
) -> Result<Result<AdminPrincipal, Refused>, AdminError> {
    let hash = SecretHash::of(presented);
    if let Some(b) = bootstrap {
        if b.ct_eq(&hash) {
            return Ok(Ok(AdminPrincipal {
                token_id: None,
                scopes: vec![ADMIN_SCOPE.to_owned()],
            }));
        }
    }
    let Some(id) = presented
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| {
            rest.get(..32)
                .filter(|_| rest.as_bytes().get(32) == Some(&b'_'))
        })
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Ok(Err(Refused::Unknown));
    };
    let Some(record) = store.get_admin_token(id).await? else {
        return Ok(Err(Refused::Unknown));
    };
    if !record.token_hash.ct_eq(&hash) {
        return Ok(Err(Refused::Unknown));
    }
    if record.revoked_at.is_some() {
        return Ok(Err(Refused::Revoked));
    }
    if record.expires_at.is_some_and(|e| e <= now) {
        return Ok(Err(Refused::Expired));
    }
    store.touch_admin_token(&record.id, now).await?;
    Ok(Ok(AdminPrincipal {
        token_id: Some(record.id),
        scopes: record.scopes,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::AdminTokenStore;

    fn spec(scopes: &[&str], expires_in: Option<i64>) -> AdminTokenSpec {
        AdminTokenSpec {
            name: "vendor".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_in,
        }
    }

    #[test]
    fn write_implies_read_of_the_same_resource_only() {
        let g = vec!["clients:write".to_owned()];
        assert!(permits(&g, "clients:write"));
        assert!(permits(&g, "clients:read"));
        assert!(!permits(&g, "users:read"));
        assert!(!permits(&g, "users:write"));
        assert!(!permits(&["clients:read".to_owned()], "clients:write"));
        assert!(permits(&["admin".to_owned()], "keys:write"));
        assert!(!permits(&[], "clients:read"));
    }

    #[test]
    fn scopes_are_checked() {
        assert!(check_scopes(&["clients:write".into(), "root".into()]).is_err());
        assert!(check_scopes(&[]).is_err());
        assert_eq!(
            check_scopes(&["clients:write users:read".into(), "clients:write".into()]).unwrap(),
            vec!["clients:write".to_owned(), "users:read".to_owned()]
        );
    }

    #[tokio::test]
    async fn a_token_is_stored_hashed_and_accepted_until_revoked_or_expired() {
        let s = MemoryStore::new();
        let made = create(&s, spec(&["clients:write"], Some(100)), 1_000)
            .await
            .unwrap();
        let value = made.token.expose().to_owned();
        assert!(value.starts_with("tsa_"));
        let stored = s.get_admin_token(&made.record.id).await.unwrap().unwrap();
        assert_ne!(stored.token_hash.as_str(), value);
        assert_eq!(stored.token_hash, SecretHash::of(&value));

        let p = authenticate(&s, &value, None, 1_050)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.token_id.as_deref(), Some(made.record.id.as_str()));
        assert!(p.may("clients:read") && !p.may("users:read"));
        let touched = s.get_admin_token(&made.record.id).await.unwrap().unwrap();
        assert_eq!(touched.last_used_at, Some(1_050));

        assert_eq!(
            authenticate(&s, &value, None, 1_100).await.unwrap(),
            Err(Refused::Expired)
        );
        // A changed secret part with the right id is unknown.
        let mut forged = value.clone();
        forged.pop();
        forged.push(if value.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            authenticate(&s, &forged, None, 1_050).await.unwrap(),
            Err(Refused::Unknown)
        );
        revoke(&s, &made.record.id, 1_060).await.unwrap();
        assert_eq!(
            authenticate(&s, &value, None, 1_070).await.unwrap(),
            Err(Refused::Revoked)
        );
        assert!(matches!(
            revoke(&s, &made.record.id, 1_061).await,
            Err(AdminError::Conflict(_))
        ));
        assert!(matches!(
            revoke(&s, "nope", 1_061).await,
            Err(AdminError::NotFound { .. })
        ));
        assert!(!any_usable(&s, 1_070).await.unwrap());
    }

    #[tokio::test]
    async fn the_bootstrap_token_has_every_scope_and_garbage_is_unknown() {
        let s = MemoryStore::new();
        let boot = SecretHash::of("bootstrap-secret");
        let p = authenticate(&s, "bootstrap-secret", Some(&boot), 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.token_id, None);
        assert!(p.may("keys:write"));
        for bad in [
            "",
            "tsa_",
            "tsa_zz",
            "bootstrap-secreT",
            "tsa_ééééééééééééééééééééééééééééééééé_x",
        ] {
            assert_eq!(
                authenticate(&s, bad, Some(&boot), 0).await.unwrap(),
                Err(Refused::Unknown),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn bad_specs_are_refused_by_field() {
        let s = MemoryStore::new();
        for (sp, field) in [
            (spec(&["nope"], None), "scopes"),
            (spec(&[], None), "scopes"),
            (spec(&["admin"], Some(0)), "expires_in"),
            (
                AdminTokenSpec {
                    name: " ".into(),
                    ..spec(&["admin"], None)
                },
                "name",
            ),
        ] {
            match create(&s, sp, 0).await {
                Err(AdminError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
        assert!(s.list_admin_tokens().await.unwrap().is_empty());
    }
}
