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

/// Re-seals the client secret of every provider under `new` (after the sealing secret
/// changed, with the signing keys: [`super::keys::reseal`]); returns how many it re-sealed.
/// A secret that `new` already opens is left as it is, so a re-run after an interruption
/// finishes the job; one that neither opens is an error naming the provider, and the others
/// are still re-sealed.
pub async fn reseal(store: &dyn Store, old: &Sealer, new: &Sealer) -> AdminResult<usize> {
    let mut resealed = 0;
    let mut unopened = Vec::new();
    for idp in store.list_idps().await? {
        if open_secret(new, &idp).is_ok() {
            continue;
        }
        let Ok(secret) = open_secret(old, &idp) else {
            unopened.push(idp.name);
            continue;
        };
        let sealed = new
            .seal(&seal_label(&idp.name), secret.expose().as_bytes())
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        if store.set_idp_secret(&idp.name, &sealed).await? {
            resealed += 1;
        }
    }
    if !unopened.is_empty() {
        return Err(AdminError::Conflict(format!(
            "the client secret of identity provider(s) {} opens with neither the old nor the \
             new sealing secret: add them again with `tessera idp remove` and `tessera idp add`",
            unopened.join(", ")
        )));
    }
    Ok(resealed)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::IdpStore;

    const NOW: i64 = 1_700_000_000;

    fn sealer() -> Sealer {
        Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn spec(name: &str) -> IdpSpec {
        IdpSpec {
            name: name.into(),
            display_name: None,
            issuer: "https://login.corp.example".into(),
            client_id: "tessera".into(),
            client_secret: Some(Secret::new("upstream-secret-value")),
            email_domains: vec!["corp.example".into()],
            link_by_email: false,
        }
    }

    /// The field of an `Invalid`, or a description of what came instead.
    fn invalid_field<T: std::fmt::Debug>(r: Result<T, AdminError>) -> String {
        match r {
            Err(AdminError::Invalid { field, .. }) => field.to_owned(),
            other => format!("not Invalid: {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_provider_rule_is_refused_with_its_field() {
        let store = MemoryStore::new();
        let s = sealer();
        let cases: Vec<(&str, IdpSpec)> = vec![
            ("name", spec("")),
            ("name", spec("Corp")),
            ("name", spec("corp idp")),
            ("name", spec("corp.example")),
            ("name", spec("corp/../x")),
            ("name", spec("kørp")),
            ("name", spec(&"a".repeat(65))),
            (
                "display_name",
                IdpSpec {
                    display_name: Some("  ".into()),
                    ..spec("corp")
                },
            ),
            (
                "display_name",
                IdpSpec {
                    display_name: Some("Corp\u{202e}evil".into()),
                    ..spec("corp")
                },
            ),
            (
                "display_name",
                IdpSpec {
                    display_name: Some("x".repeat(101)),
                    ..spec("corp")
                },
            ),
        ];
        let issuers = [
            "",
            "login.corp.example",
            "ftp://login.corp.example",
            "http://login.corp.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example/",
            "https://",
            "https:///path",
            "https://user@login.corp.example",
            "https://login.corp.example?tenant=1",
            "https://login.corp.example#frag",
            "https://login corp.example",
            "https://lögin.corp.example",
        ];
        let mut cases = cases;
        for issuer in issuers {
            cases.push((
                "issuer",
                IdpSpec {
                    issuer: issuer.into(),
                    ..spec("corp")
                },
            ));
        }
        cases.push((
            "issuer",
            IdpSpec {
                issuer: format!("https://corp.example/{}", "a".repeat(300)),
                ..spec("corp")
            },
        ));
        cases.push((
            "client_id",
            IdpSpec {
                client_id: String::new(),
                ..spec("corp")
            },
        ));
        cases.push((
            "client_id",
            IdpSpec {
                client_id: "a\nb".into(),
                ..spec("corp")
            },
        ));
        cases.push((
            "client_secret",
            IdpSpec {
                client_secret: None,
                ..spec("corp")
            },
        ));
        cases.push((
            "client_secret",
            IdpSpec {
                client_secret: Some(Secret::new("")),
                ..spec("corp")
            },
        ));
        cases.push((
            "client_secret",
            IdpSpec {
                client_secret: Some(Secret::new("x".repeat(MAX_CREDENTIAL_LEN + 1))),
                ..spec("corp")
            },
        ));
        for domain in [
            "",
            "corp",
            "corp..example",
            ".corp.example",
            "corp.example.",
            "-corp.example",
            "corp-.example",
            "corp_x.example",
            "user@corp.example",
            "*.corp.example",
            "10.0.0.1",
            "córp.example",
            "corp.example/path",
        ] {
            cases.push((
                "email_domains",
                IdpSpec {
                    email_domains: vec![domain.into()],
                    ..spec("corp")
                },
            ));
        }
        cases.push((
            "email_domains",
            IdpSpec {
                email_domains: vec!["corp.example".into(), "CORP.example".into()],
                ..spec("corp")
            },
        ));
        cases.push((
            "email_domains",
            IdpSpec {
                email_domains: (0..=MAX_DOMAINS).map(|i| format!("d{i}.example")).collect(),
                ..spec("corp")
            },
        ));
        for (field, bad) in cases {
            let shown = format!("{bad:?}");
            assert_eq!(
                invalid_field(add(&store, &s, bad, NOW).await),
                field,
                "{shown}"
            );
        }
        // Nothing refused was stored.
        assert!(store.list_idps().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_provider_is_added_with_its_secret_sealed_and_listed_without_it() {
        let store = MemoryStore::new();
        let s = sealer();
        let view = add(
            &store,
            &s,
            IdpSpec {
                display_name: Some("Corp SSO".into()),
                email_domains: vec![" Corp.Example ".into(), "eu.corp.example".into()],
                link_by_email: true,
                ..spec("corp")
            },
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(view.name, "corp");
        assert_eq!(view.display_name, "Corp SSO");
        // Domains are stored lowercase.
        assert_eq!(view.email_domains, ["corp.example", "eu.corp.example"]);
        assert!(view.link_by_email);
        assert_eq!(view.created_at, NOW);

        let stored = store.get_idp("corp").await.unwrap().unwrap();
        // Not in clear, and opened back to the secret given.
        let plain = b"upstream-secret-value";
        assert!(!stored
            .client_secret_sealed
            .windows(plain.len())
            .any(|w| w == plain));
        assert_eq!(
            open_secret(&s, &stored).unwrap().expose(),
            "upstream-secret-value"
        );
        // Another sealing secret cannot open it, nor can another provider's record pass it
        // off as its own.
        let other = Sealer::from_secret(b"another secret, also 32 bytes ..").unwrap();
        assert!(open_secret(&other, &stored).is_err());
        let renamed = IdpRecord {
            name: "evil".into(),
            ..stored.clone()
        };
        assert!(open_secret(&s, &renamed).is_err());

        // Listed without the secret: the view has no field for it, and its JSON says nothing
        // of it.
        let listed = list(&store).await.unwrap();
        assert_eq!(listed, vec![view]);
        let json = serde_json::to_string(&listed).unwrap();
        assert!(!json.contains("secret"), "{json}");

        // Development issuers on loopback addresses, and a display name by default.
        for (name, issuer) in [
            ("dev1", "http://127.0.0.1:8080/realms/dev"),
            ("dev2", "http://localhost"),
            ("dev3", "http://[::1]:9000"),
        ] {
            let v = add(
                &store,
                &s,
                IdpSpec {
                    issuer: issuer.into(),
                    email_domains: vec![],
                    ..spec(name)
                },
                NOW,
            )
            .await
            .unwrap();
            assert_eq!(v.display_name, name);
        }
    }

    #[tokio::test]
    async fn a_taken_name_or_domain_is_a_conflict_and_removal_frees_them() {
        let store = MemoryStore::new();
        let s = sealer();
        add(&store, &s, spec("corp"), NOW).await.unwrap();
        let err = add(
            &store,
            &s,
            IdpSpec {
                email_domains: vec![],
                ..spec("corp")
            },
            NOW,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, AdminError::Conflict(m) if m.contains("named 'corp'")),
            "{err:?}"
        );
        // A domain is claimed in another case: still the same domain.
        let err = add(
            &store,
            &s,
            IdpSpec {
                email_domains: vec!["other.example".into(), "CORP.EXAMPLE".into()],
                ..spec("hostile")
            },
            NOW,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, AdminError::Conflict(m) if m.contains("corp.example") && m.contains("'corp'")),
            "{err:?}"
        );
        assert!(store.get_idp("hostile").await.unwrap().is_none());

        assert!(matches!(
            remove(&store, "nope").await,
            Err(AdminError::NotFound { .. })
        ));
        remove(&store, "corp").await.unwrap();
        assert!(list(&store).await.unwrap().is_empty());
        add(&store, &s, spec("hostile"), NOW).await.unwrap();
    }

    #[tokio::test]
    async fn secrets_are_resealed_under_a_new_sealing_secret_once() {
        let store = MemoryStore::new();
        let old = sealer();
        let new = Sealer::from_secret(b"the new sealing secret, 32 bytes").unwrap();
        add(&store, &old, spec("corp"), NOW).await.unwrap();
        add(
            &store,
            &old,
            IdpSpec {
                email_domains: vec![],
                client_secret: Some(Secret::new("second")),
                ..spec("second")
            },
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(reseal(&store, &old, &new).await.unwrap(), 2);
        let corp = store.get_idp("corp").await.unwrap().unwrap();
        assert_eq!(
            open_secret(&new, &corp).unwrap().expose(),
            "upstream-secret-value"
        );
        assert!(open_secret(&old, &corp).is_err());
        // Again (an interrupted run finished): nothing left to do.
        assert_eq!(reseal(&store, &old, &new).await.unwrap(), 0);
        // A secret neither opens is named, and the rest is still done.
        let stranger = Sealer::from_secret(b"a third secret, nobody's at all.").unwrap();
        add(
            &store,
            &stranger,
            IdpSpec {
                email_domains: vec![],
                ..spec("lost")
            },
            NOW,
        )
        .await
        .unwrap();
        let err = reseal(&store, &new, &old).await.unwrap_err();
        assert!(
            matches!(&err, AdminError::Conflict(m) if m.contains("lost")),
            "{err:?}"
        );
        let corp = store.get_idp("corp").await.unwrap().unwrap();
        assert!(open_secret(&old, &corp).is_ok());
    }
}
