//! Protocol settings.
//!
//! Owns [`Config`]: the settings the protocol core obeys (issuer, token lifetimes, key
//! rotation, assertion limits, the dialects served), typed and validated once at start, [`Host`], a further public
//! base URL (a custom domain, a data centre) that answers as its own issuer, and
//! [`SigningAlg`], the algorithm of the signing keys it names. Where they come from (flags,
//! environment, file) is the binary's business. A leaf: settings name values, not the machinery that uses them.

use std::sync::Arc;

use crate::dialect::Dialects;

/// Default seconds an audit trail entry is kept: 90 days.
pub const DEFAULT_AUDIT_RETENTION: i64 = 90 * 86_400;

/// Settings of the protocol core.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2), byte-for-byte the `iss` of every token issued
    /// under this configuration: the main issuer, or, in a host's configuration
    /// ([`Config::for_host`]), that host's URL.
    pub issuer: String,
    /// Further public base URLs (custom domains, data centres), each answering as an issuer of
    /// its own; set by [`Config::with_hosts`].
    pub hosts: Vec<Host>,
    /// Every issuer whose tokens verify here (the main issuer first, then every host's URL):
    /// one server, one JWKS, several names.
    pub issuers: std::sync::Arc<[String]>,
    /// The environment this configuration serves alone: a host bound to one
    /// ([`Host::env`]); `None`: every environment.
    pub host_env: Option<String>,
    /// Default `aud` of access tokens; the issuer unless configured.
    pub default_audience: String,
    /// Access-token lifetime for clients registered without one, seconds.
    pub default_access_token_ttl: i64,
    /// Longest access-token lifetime any client may have, seconds. Decides how long a
    /// superseded signing key stays published.
    pub max_access_token_ttl: i64,
    /// Algorithm of newly made signing keys.
    pub signing_alg: SigningAlg,
    /// How long a new key is published before it signs, seconds: longer than verifiers cache
    /// the JWKS (the JWKS is served with `max-age` of half this).
    pub key_rotation_lead_time: i64,
    /// Rotate the signing key automatically when the newest key is this old, seconds (0: only
    /// by `tessera keys rotate`).
    pub key_rotation_interval: i64,
    /// Lifetime of ID tokens, seconds.
    pub id_token_ttl: i64,
    /// How long a sign-in lasts in the browser, seconds.
    pub session_ttl: i64,
    /// Longest a JWT assertion (RFC 7523: a client assertion or a jwt-bearer grant) may be
    /// valid for, from now or from its `iat`, seconds.
    pub assertion_max_lifetime: i64,
    /// Clock leeway for an assertion's `exp`, `nbf` and `iat`, seconds (RFC 7519 §4.1.4).
    pub assertion_leeway: i64,
    /// The dialects served ([`crate::dialect`]); the presets as they ship unless configured.
    pub dialects: Arc<Dialects>,
    /// Dynamic client registration (RFC 7591) at `/oauth2/register` [default: off].
    pub dynamic_registration: DynamicRegistration,
    /// How long audit trail entries ([`crate::audit`]) are kept before the purge deletes
    /// them, seconds.
    pub audit_retention: i64,
    /// Lifetime of a pushed authorization request's `request_uri`, seconds (RFC 9126 §2.2).
    pub par_ttl: i64,
    /// Every authorization request must be pushed first (RFC 9126 §5,
    /// `require_pushed_authorization_requests`).
    pub require_par: bool,
    /// DPoP proofs must carry a nonce this server provided (RFC 9449 §8, `DPoP-Nonce`).
    pub dpop_nonce: bool,
    /// How long a DPoP proof is accepted after its `iat`, seconds (RFC 9449 §11.1); its `jti`
    /// is remembered that long.
    pub dpop_proof_lifetime: i64,
    /// How long a nonce this server provides stays valid, seconds (at least this, at most
    /// twice this).
    pub dpop_nonce_lifetime: i64,
    /// Mutual TLS client authentication and certificate-bound tokens (RFC 8705).
    pub mtls: Mtls,
}

/// Mutual TLS settings (RFC 8705): whether clients may authenticate with a certificate, the
/// certificate authorities `tls_client_auth` chains are checked against (§2.1), and the base
/// URL of the endpoint aliases a client reaches with its certificate (§5).
#[derive(Debug, Clone, Default)]
pub struct Mtls {
    /// Whether mutual TLS is offered: the two client authentication methods of RFC 8705 §2
    /// and certificate-bound access tokens (§3).
    pub enabled: bool,
    /// The trusted certificate authorities of `tls_client_auth` (RFC 8705 §2.1), DER; none:
    /// only `self_signed_tls_client_auth` (§2.2) is offered.
    pub trust_anchors: Arc<[Vec<u8>]>,
    /// The certificate revocation lists of those authorities (RFC 5280 §5), parsed
    /// ([`crate::mtls::parse_crls`]): a `tls_client_auth` certificate, or an intermediate of
    /// its chain, that one of them lists is refused. None: no revocation check.
    pub crls: CrlSet,
    /// The base URL of the `mtls_endpoint_aliases` (RFC 8705 §5), without a trailing `/`.
    pub base_url: Option<String>,
}

/// The revocation lists in use, shared by every clone of the configuration, so that lists
/// read again while the server runs (a new file) take effect at once everywhere.
#[derive(Debug, Clone, Default)]
pub struct CrlSet(Arc<std::sync::RwLock<Arc<[webpki::CertRevocationList<'static>]>>>);

impl CrlSet {
    /// A set holding `lists`.
    pub fn new(lists: Vec<webpki::CertRevocationList<'static>>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(lists.into())))
    }

    /// The lists in use now.
    pub fn current(&self) -> Arc<[webpki::CertRevocationList<'static>]> {
        match self.0.read() {
            Ok(lists) => lists.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `lists` in use instead of the ones before.
    pub fn replace(&self, lists: Vec<webpki::CertRevocationList<'static>>) {
        match self.0.write() {
            Ok(mut held) => *held = lists.into(),
            Err(poisoned) => *poisoned.into_inner() = lists.into(),
        }
    }
}

impl Mtls {
    /// Whether `tls_client_auth` (RFC 8705 §2.1) is offered: mutual TLS is on and a
    /// certificate authority is configured.
    pub fn pki(&self) -> bool {
        self.enabled && !self.trust_anchors.is_empty()
    }
}

/// Whether clients may register themselves (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DynamicRegistration {
    /// No registration endpoint: `/oauth2/register` answers 404 and discovery does not name
    /// it.
    #[default]
    Off,
    /// A registration must carry an initial access token (RFC 7591 §3): an admin token
    /// ([`crate::admin::admin_tokens`]) with the scope
    /// [`crate::endpoint::register::REGISTER_SCOPE`], issued by an operator. The operator
    /// vouches for the registrant, so every grant type an operator may register is taken.
    Token,
    /// Anyone may register a client (RFC 7591 §3, without an initial access token); the
    /// grant types that need an operator's trust are refused
    /// ([`crate::endpoint::register`]).
    Open,
}

impl DynamicRegistration {
    /// Parses `off`, `token` or `open`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "token" => Some(Self::Token),
            "open" => Some(Self::Open),
            _ => None,
        }
    }

    /// Whether the registration endpoint is served.
    pub fn enabled(self) -> bool {
        self != Self::Off
    }
}

impl Config {
    /// Defaults for an issuer.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self {
            default_audience: issuer.clone(),
            hosts: Vec::new(),
            issuers: std::sync::Arc::from(vec![issuer.clone()]),
            host_env: None,
            issuer,
            default_access_token_ttl: 3600,
            max_access_token_ttl: 86_400,
            signing_alg: SigningAlg::Es256,
            key_rotation_lead_time: 600,
            key_rotation_interval: 0,
            id_token_ttl: 3600,
            session_ttl: 12 * 3600,
            assertion_max_lifetime: 3600,
            assertion_leeway: 60,
            dialects: Arc::new(Dialects::presets()),
            dynamic_registration: DynamicRegistration::Off,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            par_ttl: 60,
            require_par: false,
            dpop_nonce: false,
            dpop_proof_lifetime: 60,
            dpop_nonce_lifetime: 120,
            mtls: Mtls::default(),
        }
    }

    /// How long verifiers may cache the JWKS, seconds: the `max-age` of its `Cache-Control`,
    /// half the rotation lead time and at most 300 s. A new key must be published at least
    /// this long before it signs (RFC 7517 §5 leaves caching to HTTP; a verifier honouring
    /// the header then knows every key before it meets a token signed by it).
    pub fn jwks_max_age(&self) -> i64 {
        (self.key_rotation_lead_time / 2).clamp(0, 300)
    }

    /// The URL of an endpoint path under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// This configuration with further public base URLs ([`Host`]s, URLs without a trailing
    /// `/`); [`Config::issuers`] then names them too. The binary validates them first.
    pub fn with_hosts(mut self, hosts: Vec<Host>) -> Self {
        let mut issuers = Vec::with_capacity(hosts.len() + 1);
        issuers.push(self.issuer.clone());
        issuers.extend(hosts.iter().map(|h| h.url.clone()));
        self.issuers = issuers.into();
        self.hosts = hosts;
        self
    }

    /// The configuration a host answers with: this one with `issuer` replaced by the host's
    /// URL (discovery, `iss` of tokens, ID tokens and authorization responses) and bound to
    /// the host's environment, if any. Every other setting, the default audience included
    /// (resource servers see one audience whatever name a token was asked at), is shared.
    /// Built once at start, never per request.
    pub fn for_host(&self, host: &Host) -> Config {
        Config {
            issuer: host.url.clone(),
            host_env: host.env.clone(),
            ..self.clone()
        }
    }

    /// The main issuer (the one configured as `issuer`), whichever host this configuration
    /// answers as.
    pub fn main_issuer(&self) -> &str {
        self.issuers.first().map_or(&self.issuer, |i| i)
    }

    /// Whether `iss` names this server: the main issuer or any configured host. Tokens of
    /// every one of them verify on every one (one JWKS); nothing else does.
    pub fn accepts_issuer(&self, iss: &str) -> bool {
        iss == self.issuer || self.issuers.iter().any(|i| i == iss)
    }

    /// Whether this configuration serves clients of environment `env`: always, unless it is
    /// a host bound to another one. A client it does not serve is unknown here.
    pub fn serves_env(&self, env: &str) -> bool {
        !matches!(self.host_env.as_deref(), Some(bound) if bound != env)
    }
}

/// A public base URL besides the issuer: a custom domain, or one data centre's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Scheme, host and (when not the scheme's default) port, in lower case; no path, no
    /// trailing `/` ([`Host::parse`]).
    pub url: String,
    /// The deployment environment it serves alone; `None`: every environment.
    pub env: Option<String>,
}

/// Why a host's URL is not a public base URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host URL '{url}' {reason}")]
pub struct BadHostUrl {
    /// The URL as given (cut to 200 characters).
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Host {
    /// A host from its URL: `http` or `https`, a host name or IP literal, an optional port,
    /// nothing else (no user information, path, query or fragment; one trailing `/` is
    /// dropped). The result is in lower case (host names compare case-insensitively, RFC 3986
    /// §3.2.2) and without the scheme's default port (§6.2.3). Whether plain `http` is allowed
    /// is the caller's rule.
    pub fn parse(url: &str, env: Option<String>) -> Result<Host, BadHostUrl> {
        let bad = |reason| BadHostUrl {
            url: url.chars().take(200).collect(),
            reason,
        };
        let lower = url.trim().to_ascii_lowercase();
        let (scheme, rest) = lower
            .split_once("://")
            .ok_or_else(|| bad("is not an absolute URL (scheme://host)"))?;
        let default_port = match scheme {
            "https" => "443",
            "http" => "80",
            _ => return Err(bad("must be an http or https URL")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad("must have no path, query or fragment"));
        }
        if authority.contains('@') {
            return Err(bad("must have no user information"));
        }
        let (name, port) = split_port(authority).ok_or_else(|| bad("has an invalid port"))?;
        let name_ok = if let Some(v6) = name.strip_prefix('[') {
            v6.strip_suffix(']')
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !name.is_empty()
                && name.len() <= 253
                && name
                    .split('.')
                    .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-'))
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if !name_ok {
            return Err(bad("has an invalid host name"));
        }
        let url = match port {
            Some(p) if p != default_port => format!("{scheme}://{name}:{p}"),
            _ => format!("{scheme}://{name}"),
        };
        Ok(Host { url, env })
    }

    /// Host and port as a request names them (`Host`, RFC 9110 §7.2): the URL without its
    /// scheme.
    pub fn authority(&self) -> &str {
        url_authority(&self.url)
    }

    /// The default port of the host's scheme: a request naming it names the host too.
    pub fn default_port(&self) -> &'static str {
        if self.url.starts_with("https://") {
            "443"
        } else {
            "80"
        }
    }
}

/// The authority (host and port) of an absolute URL: between `://` and the next `/`, `?` or
/// `#`; empty when there is none.
pub fn url_authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// Splits `host[:port]`, the port all digits in 1..=65535 (an IPv6 literal keeps its colons
/// inside brackets); `None` for a bad port.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    match authority.rsplit_once(':') {
        Some((name, port)) if !name.starts_with('[') || name.ends_with(']') => {
            let ok = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
            ok.then_some((name, Some(port)))
        }
        _ => Some((authority, None)),
    }
}

/// A supported JWS signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// Parses a JWS `alg` name (case-insensitive for configuration convenience).
    pub fn parse(s: &str) -> Result<Self, UnsupportedAlg> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(SigningAlg::Es256),
            "EDDSA" | "ED25519" => Ok(SigningAlg::EdDsa),
            _ => Err(UnsupportedAlg(s.to_owned())),
        }
    }
}

/// A signing algorithm Tessera does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signing algorithm '{0}' (use ES256 or EdDSA)")]
pub struct UnsupportedAlg(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<String, BadHostUrl> {
        Host::parse(s, None).map(|h| h.url)
    }

    #[test]
    fn host_urls_are_normalised() {
        assert_eq!(
            url("https://API.Example.com").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            url("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            url("https://api.example.com:443").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(url("http://localhost:80").unwrap(), "http://localhost");
        assert_eq!(
            url("https://api.example.com:8443").unwrap(),
            "https://api.example.com:8443"
        );
        assert_eq!(
            url("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(url("http://[::1]:9000").unwrap(), "http://[::1]:9000");
        assert_eq!(url("http://[::1]").unwrap(), "http://[::1]");
        let h = Host::parse("https://EU.example.com:8443", Some("prod".into())).unwrap();
        assert_eq!(h.authority(), "eu.example.com:8443");
        assert_eq!(h.default_port(), "443");
        assert_eq!(h.env.as_deref(), Some("prod"));
    }

    #[test]
    fn host_urls_with_more_than_a_base_are_refused() {
        for bad in [
            "api.example.com",
            "ftp://api.example.com",
            "https://",
            "https://api.example.com/oauth2",
            "https://api.example.com//",
            "https://api.example.com?x=1",
            "https://api.example.com#top",
            "https://user:pw@api.example.com",
            "https://api.example.com:",
            "https://api.example.com:0",
            "https://api.example.com:65536",
            "https://api.example.com:443x",
            "https://api..example.com",
            "https://-api.example.com",
            "https://api_example.com",
            "https://[::1",
            "https://[zz]:80",
            "https://exa mple.com",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_host_configuration_answers_as_the_host_and_accepts_every_name() {
        let main = Config::new("https://auth.example.com/").with_hosts(vec![
            Host::parse("https://eu.example.com", None).unwrap(),
            Host::parse("https://api.customer.com", Some("prod".into())).unwrap(),
        ]);
        assert_eq!(main.issuer, "https://auth.example.com");
        assert_eq!(main.main_issuer(), "https://auth.example.com");
        let custom = main.for_host(&main.hosts[1]);
        assert_eq!(custom.issuer, "https://api.customer.com");
        assert_eq!(custom.main_issuer(), "https://auth.example.com");
        assert_eq!(custom.default_audience, "https://auth.example.com");
        assert_eq!(
            custom.endpoint("/oauth2/token"),
            "https://api.customer.com/oauth2/token"
        );
        for c in [&main, &custom] {
            for iss in [
                "https://auth.example.com",
                "https://eu.example.com",
                "https://api.customer.com",
            ] {
                assert!(c.accepts_issuer(iss), "{iss}");
            }
            for other in [
                "https://evil.example",
                "https://auth.example.com/",
                "HTTPS://eu.example.com",
                "",
            ] {
                assert!(!c.accepts_issuer(other), "{other}");
            }
        }
        assert!(main.serves_env("prod") && main.serves_env("staging"));
        assert!(custom.serves_env("prod"));
        assert!(!custom.serves_env("staging"));
        assert!(!custom.serves_env("default"));
    }

    #[test]
    fn the_authority_of_a_url() {
        assert_eq!(
            url_authority("https://a.example.com/x?y#z"),
            "a.example.com"
        );
        assert_eq!(url_authority("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(url_authority("nonsense"), "");
    }
}
