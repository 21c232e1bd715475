//! Upstream OpenID providers users may sign in through (OpenID Connect Core §3.1: Tessera is
//! the relying party of the upstream).
//!
//! Owns the rules of a provider: its name (`[a-z0-9_-]{1,64}`, unique), its display name
//! (defaults to the name; no control, invisible or bidirectional characters), its issuer (an
//! https URL, or plain http on a loopback address for development; no query or fragment,
//! OpenID Connect Discovery §4.1 and Core §2), Tessera's client id and secret at the upstream
//! (the secret is required, and stored sealed with the [`Sealer`], never in clear: it must be
//! sent back out in the token request, so it cannot be hashed), its e-mail domains (lowercase
//! DNS names, each belonging to at most one provider) and whether a first sign-in may link to
//! an existing user by a verified e-mail address. What is listed never carries the secret.

use serde::Serialize;

use super::{AdminError, AdminResult};
use crate::keys::{KeyError, Sealer};
use crate::model::IdpRecord;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Longest provider name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_LEN: usize = 100;
/// Longest issuer URL.
pub const MAX_ISSUER_LEN: usize = 256;
/// Longest client id and client secret at the upstream.
pub const MAX_CREDENTIAL_LEN: usize = 1024;
/// Most e-mail domains of one provider.
pub const MAX_DOMAINS: usize = 100;

/// A provider to add.
#[derive(Debug, Clone, Default)]
pub struct IdpSpec {
    /// Its name (`[a-z0-9_-]{1,64}`).
    pub name: String,
    /// What the sign-in page shows [default: the name].
    pub display_name: Option<String>,
    /// The upstream's issuer URL, exactly as its ID tokens' `iss` says it.
    pub issuer: String,
    /// Tessera's client id at the upstream.
    pub client_id: String,
    /// Tessera's client secret at the upstream (sealed before it is stored).
    pub client_secret: Option<Secret>,
    /// E-mail domains whose users are sent to it.
    pub email_domains: Vec<String>,
    /// Whether a first sign-in may link to an existing user with the same, verified,
    /// e-mail address.
    pub link_by_email: bool,
}

/// A provider as an operator sees it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdpView {
    /// Its name.
    pub name: String,
    /// What the sign-in page shows.
    pub display_name: String,
    /// The upstream's issuer URL.
    pub issuer: String,
    /// Tessera's client id at the upstream.
    pub client_id: String,
    /// Its e-mail domains.
    pub email_domains: Vec<String>,
    /// Whether a first sign-in may link to an existing user by a verified e-mail address.
    pub link_by_email: bool,
    /// When it was added.
    pub created_at: i64,
}

impl From<&IdpRecord> for IdpView {
    fn from(r: &IdpRecord) -> Self {
        Self {
            name: r.name.clone(),
            display_name: r.display_name.clone(),
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            email_domains: r.email_domains.clone(),
            link_by_email: r.link_by_email,
            created_at: r.created_at,
        }
    }
}

/// What the secret of provider `name` is sealed to (the additional data of the AEAD), so that
/// one provider's sealed secret cannot be passed off as another's.
fn seal_label(name: &str) -> String {
    format!("idp:{name}")
}

/// Adds a provider; answers it as listed.
pub async fn add(
    store: &dyn Store,
    sealer: &Sealer,
    spec: IdpSpec,
    now: i64,
) -> AdminResult<IdpView> {
    check_name(&spec.name)?;
    let display_name = match spec.display_name {
        Some(d) => {
            check_display_name(&d)?;
            d
        }
        None => spec.name.clone(),
    };
    check_issuer(&spec.issuer)?;
    check_credential("client_id", &spec.client_id)?;
    let secret = spec
        .client_secret
        .ok_or_else(|| AdminError::invalid("client_secret", "client_secret is required"))?;
    check_credential("client_secret", secret.expose())?;
    if spec.email_domains.len() > MAX_DOMAINS {
        return Err(AdminError::invalid(
            "email_domains",
            format!("email_domains: at most {MAX_DOMAINS} domains"),
        ));
    }
    let mut domains: Vec<String> = Vec::with_capacity(spec.email_domains.len());
    for d in &spec.email_domains {
        let d = normalize_domain(d)?;
        if domains.contains(&d) {
            return Err(AdminError::invalid(
                "email_domains",
                format!("email_domains: {d} is given twice"),
            ));
        }
        domains.push(d);
    }
    let sealed = sealer
        .seal(&seal_label(&spec.name), secret.expose().as_bytes())
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let record = IdpRecord {
        name: spec.name,
        display_name,
        issuer: spec.issuer,
        client_id: spec.client_id,
        client_secret_sealed: sealed,
        email_domains: domains,
        link_by_email: spec.link_by_email,
        created_at: now,
    };
    match store.insert_idp(&record).await {
        Ok(()) => Ok(IdpView::from(&record)),
        Err(StoreError::Conflict) => Err(conflict(store, &record).await),
        Err(e) => Err(e.into()),
    }
}

/// Which of the provider's keys clashed: its name, or one of its domains.
async fn conflict(store: &dyn Store, record: &IdpRecord) -> AdminError {
    let taken = match store.list_idps().await {
        Ok(all) => all,
        Err(e) => return e.into(),
    };
    if taken.iter().any(|p| p.name == record.name) {
        return AdminError::Conflict(format!(
            "an identity provider named '{}' exists: remove it first",
            record.name
        ));
    }
    for p in &taken {
        if let Some(d) = record
            .email_domains
            .iter()
            .find(|d| p.email_domains.contains(d))
        {
            return AdminError::Conflict(format!(
                "the e-mail domain {d} belongs to identity provider '{}'",
                p.name
            ));
        }
    }
    AdminError::Conflict(format!(
        "identity provider '{}' clashes with one added meanwhile",
        record.name
    ))
}

/// Every provider, by name, without secrets.
pub async fn list(store: &dyn Store) -> AdminResult<Vec<IdpView>> {
    Ok(store.list_idps().await?.iter().map(IdpView::from).collect())
}

/// Removes a provider. Its users keep their accounts and links: adding a provider with the
/// same issuer again signs them in to the same accounts.
pub async fn remove(store: &dyn Store, name: &str) -> AdminResult<()> {
    if !store.delete_idp(name).await? {
        return Err(AdminError::not_found(
            "identity provider",
            name.escape_default().to_string(),
        ));
    }
    Ok(())
}

/// Opens the client secret of a provider, to authenticate Tessera at the upstream's token
/// endpoint (OpenID Connect Core §9, `client_secret_basic` or `client_secret_post`).
pub fn open_secret(sealer: &Sealer, idp: &IdpRecord) -> Result<Secret, KeyError> {
    let label = seal_label(&idp.name);
    let plain = sealer.open(&label, &idp.client_secret_sealed)?;
    String::from_utf8(plain)
        .map(Secret::new)
        .map_err(|_| KeyError::Unseal(label))
}

/// Whether `name` is a valid provider name: 1 to 64 of `a-z`, `0-9`, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check_name(name: &str) -> AdminResult<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "name",
            format!("name must be 1 to {MAX_NAME_LEN} of a-z, 0-9, '-' and '_'"),
        ))
    }
}

fn check_display_name(d: &str) -> AdminResult<()> {
    if d.trim().is_empty() || d.chars().count() > MAX_DISPLAY_NAME_LEN {
        return Err(AdminError::invalid(
            "display_name",
            format!("display_name must be 1 to {MAX_DISPLAY_NAME_LEN} characters, not blank"),
        ));
    }
    crate::username::check_display_name(d)
        .map_err(|e| AdminError::invalid("display_name", format!("display_name: {e}")))
}

/// An issuer must be an https URL, or plain http on a loopback address (development), with
/// a host and no query, fragment, user information or whitespace (OpenID Connect Discovery
/// §4.1: the discovery document is at the issuer plus `/.well-known/openid-configuration`).
pub fn check_issuer(issuer: &str) -> AdminResult<()> {
    let bad = |why: &str| Err(AdminError::invalid("issuer", format!("issuer {why}")));
    if issuer.is_empty() || issuer.len() > MAX_ISSUER_LEN {
        return bad(&format!("must be 1 to {MAX_ISSUER_LEN} characters"));
    }
    if issuer
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return bad("must be an ASCII URL without spaces");
    }
    if issuer.contains(['?', '#']) {
        return bad("must have no query or fragment");
    }
    let (loopback_only, rest) = if let Some(rest) = issuer.strip_prefix("https://") {
        (false, rest)
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        (true, rest)
    } else {
        return bad("must be an https URL (plain http only on a loopback address)");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return bad("must name a host (and no user information)");
    }
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map(|i| &authority[..=i])
            .unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return bad("must name a host");
    }
    if loopback_only && !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return bad("must be an https URL (plain http only on a loopback address)");
    }
    Ok(())
}

fn check_credential(field: &'static str, value: &str) -> AdminResult<()> {
    if value.is_empty() {
        return Err(AdminError::invalid(field, format!("{field} is required")));
    }
    if value.len() > MAX_CREDENTIAL_LEN || value.chars().any(|c| c.is_control()) {
        return Err(AdminError::invalid(
            field,
            format!(
                "{field} must be at most {MAX_CREDENTIAL_LEN} bytes, without control characters"
            ),
        ));
    }
    Ok(())
}

/// The stored form of an e-mail domain: lowercased, then a DNS name of at least two labels,
/// each 1 to 63 letters, digits and inner hyphens (RFC 1035 §2.3.1, RFC 5890 A-labels for
/// international names), at most 253 bytes in all.
pub fn normalize_domain(input: &str) -> AdminResult<String> {
    let d = input.trim().to_ascii_lowercase();
    let bad = || {
        AdminError::invalid(
            "email_domains",
            format!(
                "email_domains: '{}' is not a domain name such as example.com",
                input.escape_default()
            ),
        )
    };
    if d.is_empty() || d.len() > 253 {
        return Err(bad());
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err(bad());
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    // The last label of a DNS name is never all digits (which would be an IPv4 address).
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(d)
}
