//! Client authentication at the token, introspection and revocation endpoints.
//!
//! Owns the rules of RFC 6749 §2.3: credentials by HTTP Basic (`client_secret_basic`, which
//! MUST be supported, §2.3.1) or in the body (`client_secret_post`; the body may be a form, or
//! JSON or multipart for products that use those), or none for a public client. Exactly one
//! method per request (RFC 6749 §2.3); secrets are compared as hashes in constant time; an
//! unknown client and a wrong secret get the same answer. On a host bound to an environment
//! ([`crate::config::Config::serves_env`]), a client of another environment is an unknown
//! client, in answer and in cost. A client imported from another server may keep its secret
//! as that server's hash ([`crate::imported_secret`]), checked in its own format (a slow
//! format costs more than an unknown client does: the existence of such a client is not
//! hidden by timing, its secret is). A client registered for mutual TLS (RFC 8705 §2)
//! names itself with `client_id` and authenticates with its certificate only
//! ([`crate::mtls::authenticate`]); a secret or an assertion from it is refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::client_assertion;
use crate::client_keys::SignatureError;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::imported_secret::ImportedHash;
use crate::model::{CertificateAuth, ClientRecord};
use crate::params::Params;
use crate::secret::{Secret, SecretHash};

/// Credentials from an `Authorization: Basic` header.
#[derive(Debug, Clone)]
pub struct BasicCredentials {
    /// The client id.
    pub client_id: String,
    /// The secret.
    pub secret: Secret,
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic.
    ClientSecretBasic,
    /// Secret in the body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A certificate chaining to a configured authority, with the registered subject
    /// (RFC 8705 §2.1).
    TlsClientAuth,
    /// A certificate the client registered (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
    /// A public client, identified but not authenticated.
    None,
}

impl AuthMethod {
    /// The RFC 8414 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::None => "none",
        }
    }
}

/// Parses an `Authorization` header value of scheme Basic. RFC 6749 §2.3.1: id and secret are
/// form-urlencoded before base64 encoding.
pub fn parse_basic(value: &[u8]) -> Result<BasicCredentials, OAuthError> {
    let bad = || OAuthError::invalid_client("malformed HTTP Basic credentials");
    let value = std::str::from_utf8(value).map_err(|_| bad())?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let client_id = unescape(id);
    if client_id.is_empty() {
        return Err(bad());
    }
    Ok(BasicCredentials {
        client_id,
        secret: Secret::new(unescape(secret)),
    })
}

/// Whether `value` is an `Authorization` header of scheme Basic.
pub fn is_basic(value: &[u8]) -> bool {
    value
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
        && value.len() > 6
}

/// Authenticates the client of a request; returns it and the method used.
pub async fn authenticate(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<(ClientRecord, AuthMethod), OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let assertion_type = params.get("client_assertion_type")?;
    let assertion = params.get("client_assertion")?;
    if assertion.is_some() || assertion_type.is_some() {
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: a client assertion, HTTP Basic or client_secret, not several",
            ));
        }
        let (Some(kind), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        };
        if kind != client_assertion::ASSERTION_TYPE {
            return Err(OAuthError::invalid_client(
                "unsupported client_assertion_type",
            ));
        }
        let id = client_assertion::asserted_client_id(assertion)?;
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_client(
                "client_id differs from the client assertion's subject",
            ));
        }
        let client = cx.store.get_client(&id).await?;
        let Some(client) = client.filter(|c| cx.config.serves_env(&c.env)) else {
            return Err(client_assertion::refuse_unknown(cx, assertion).await);
        };
        if client.user_flow.certificate_auth.is_some() {
            // Its registered method decides (RFC 8705 §2): its keys are for certificates.
            return Err(OAuthError::invalid_client("client authentication failed")
                .because("a client assertion from a client registered for mutual TLS"));
        }
        client_assertion::verify(cx, &client, assertion).await?;
        return Ok((client, AuthMethod::PrivateKeyJwt));
    }
    let (client_id, secret, method) = match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: HTTP Basic or client_secret in the body, not both",
            ))
        }
        (Some(b), Some(id), None) if id != b.client_id => {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the HTTP Basic client id",
            ))
        }
        (Some(b), _, None) => (
            b.client_id.as_str(),
            Some(b.secret.expose()),
            AuthMethod::ClientSecretBasic,
        ),
        (None, Some(id), Some(s)) => (id, Some(s), AuthMethod::ClientSecretPost),
        (None, Some(id), None) => (id, None, AuthMethod::None),
        (None, None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_secret given without client_id",
            ))
        }
        (None, None, None) => {
            return Err(OAuthError::invalid_client("client authentication is required"))
        }
    };
    let failed = || OAuthError::invalid_client("client authentication failed");
    // A client of an environment this host does not serve is unknown here.
    let client = cx
        .store
        .get_client(client_id)
        .await?
        .filter(|c| cx.config.serves_env(&c.env));
    // Hash before looking at the result so an unknown client costs the same as a wrong secret.
    let presented = secret.map(SecretHash::of);
    let Some(client) = client else {
        // The comparisons a known client's secret gets, against a hash nothing matches: an
        // unknown client costs what a wrong secret does (the store answers an unknown id
        // from memory as it does a known one, see the HTTP crate's cache).
        if let Some(p) = &presented {
            let unknown = unknown_client_hash();
            std::hint::black_box(unknown.ct_eq(p) | (unknown.ct_eq(p) & (cx.now < i64::MAX)));
        }
        return Err(failed().because("unknown client"));
    };
    // A client registered for mutual TLS authenticates with its certificate and nothing
    // else (RFC 8705 §2: the client_id names it, the certificate authenticates it).
    if let Some(how) = &client.user_flow.certificate_auth {
        if presented.is_some() {
            return Err(failed().because("a secret given for a client registered for mutual TLS"));
        }
        crate::mtls::authenticate(cx, &client, how)?;
        let method = match how {
            CertificateAuth::TlsClientAuth(_) => AuthMethod::TlsClientAuth,
            CertificateAuth::SelfSignedTlsClientAuth => AuthMethod::SelfSignedTlsClientAuth,
        };
        return Ok((client, method));
    }
    // The client is told only that authentication failed; the log says why.
    match (&presented, client.public) {
        (None, true) => Ok((client, AuthMethod::None)),
        (Some(p), false) => {
            let plain = secret.unwrap_or_default();
            if secret_matches(&client, p, cx.now) | imported_matches(cx, &client, plain).await {
                Ok((client, method))
            } else {
                Err(failed().because("wrong secret"))
            }
        }
        (None, false) => Err(failed().because("no secret given for a confidential client")),
        (Some(_), true) => Err(failed().because("a secret given for a public client")),
    }
}

/// What an unknown client's secret is compared with: a hash no value has (all zeros).
fn unknown_client_hash() -> &'static SecretHash {
    static UNKNOWN: std::sync::OnceLock<SecretHash> = std::sync::OnceLock::new();
    UNKNOWN.get_or_init(|| SecretHash::from_stored("0".repeat(64)))
}

/// Whether a presented secret hash matches the client's current native secret hash, or its
/// previous one while the rotation overlap lasts. Both comparisons always run (constant
/// time). An imported hash ([`crate::imported_secret`]) never equals a native one; see
/// [`imported_matches`].
pub fn secret_matches(client: &ClientRecord, presented: &SecretHash, now: i64) -> bool {
    let current = client
        .secret_hash
        .as_ref()
        .is_some_and(|h| h.ct_eq(presented));
    let old = match (&client.old_secret_hash, client.old_secret_expires_at) {
        (Some(h), Some(until)) => h.ct_eq(presented) & (now < until),
        _ => false,
    };
    current | old
}

/// Whether a presented secret matches the client's current secret or its previous one (while
/// the rotation overlap lasts) where that is an imported hash, checked in its own format
/// ([`ImportedHash::verify`]). The slow formats run where [`crate::cx::RemoteKeys`] runs
/// signature checks: off the serving threads, a few at a time.
pub async fn imported_matches(cx: &Cx<'_>, client: &ClientRecord, secret: &str) -> bool {
    let old_live = client.old_secret_expires_at.is_some_and(|u| cx.now < u);
    let candidates = [
        client.secret_hash.as_ref(),
        client.old_secret_hash.as_ref().filter(|_| old_live),
    ];
    let mut matched = false;
    for stored in candidates.into_iter().flatten() {
        if !ImportedHash::is_imported(stored.as_str()) {
            continue;
        }
        // A stored hash that no longer parses (it was checked at import) matches nothing.
        let Ok(hash) = ImportedHash::parse(stored.as_str()) else {
            continue;
        };
        matched |= match cx.remote_keys.filter(|_| hash.is_slow()) {
            Some(remote) => {
                let secret = secret.to_owned();
                remote
                    .check_signature(Box::new(move || {
                        if hash.verify(&secret) {
                            Ok(())
                        } else {
                            Err(SignatureError::Signature)
                        }
                    }))
                    .await
                    .is_ok()
            }
            None => hash.verify(secret),
        };
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
    }

    #[test]
    fn basic_credentials_are_decoded_and_unescaped() {
        let c = parse_basic(&basic("my%20client", "s%3Acret")).unwrap();
        assert_eq!(c.client_id, "my client");
        assert_eq!(c.secret.expose(), "s:cret");
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for bad in [
            &b"Basic !!!"[..],
            b"Bearer abc",
            b"Basic",
            b"Basic Om5vaWQ=",
        ] {
            let e = parse_basic(bad).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::InvalidClient);
        }
    }

    proptest! {
        #[test]
        fn basic_parser_never_panics(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_basic(&v);
        }
    }
}
