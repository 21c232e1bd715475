//! Mutual TLS client authentication and certificate-bound access tokens (RFC 8705).
//!
//! Owns the rules that read a client certificate, which the HTTP layer hands over as the DER
//! of the leaf ([`crate::audit::RequestMeta::client_cert`]) once the TLS handshake proved
//! that the client holds its private key (on Tessera's own listener, or on a trusted
//! TLS-terminating proxy):
//!
//! - client authentication (§2): `tls_client_auth` (§2.1), a certificate that chains to one
//!   of the configured authorities ([`crate::config::Mtls::trust_anchors`], RFC 5280 path
//!   validation with the client-authentication key purpose when the certificate names any,
//!   and no certificate of the path on a revocation list of its issuer,
//!   [`crate::config::Mtls::crls`], RFC 5280 §6.3) and whose subject is the one the client
//!   registered: its subject DN (RFC 4514) or
//!   exactly one subject alternative name (§2.1.2); and `self_signed_tls_client_auth`
//!   (§2.2), a certificate registered in the client's key set: the first `x5c` entry of one
//!   of its keys, or a certificate holding one of its public keys (§2.2.2). Trust is
//!   decided here, per client, never at the TLS layer (§2);
//! - certificate-bound access tokens (§3): [`certificate_binding`] gives the `cnf`
//!   (`x5t#S256`, §3.1) of the tokens a request mints, and [`check_presented`] is the
//!   protected resource's check that a bound token comes over a connection with the same
//!   certificate (§3: otherwise `invalid_token`); a public client's refresh tokens are bound
//!   to the certificate the family started with ([`refresh_binding`],
//!   [`check_refresh_binding`], §4).
//!
//! What a refusal says: a failed certificate authentication is `invalid_client` like every
//! other (RFC 6749 §5.2), with the precise reason kept for the logs.

use subtle::ConstantTimeEq as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::client_keys::{self, ClientKeys};
use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::model::{CertificateAuth, CertificateSubject, ClientRecord};

/// Whether the client's access tokens are bound to the certificate it presents (RFC 8705
/// §3.4 `tls_client_certificate_bound_access_tokens`): as registered, and by default when it
/// authenticates with a certificate.
pub fn binds_tokens(client: &ClientRecord) -> bool {
    client
        .user_flow
        .certificate_bound_access_tokens
        .unwrap_or(client.user_flow.certificate_auth.is_some())
}

/// The binding of the access tokens a token request mints (RFC 8705 §3.1): the SHA-256
/// thumbprint of the certificate the request's connection presented, when there is one
/// and the client binds its tokens ([`binds_tokens`]).
pub fn certificate_binding(cx: &Cx<'_>, client: &ClientRecord) -> Option<Confirmation> {
    let der = cx.request.client_cert.as_deref()?;
    binds_tokens(client).then(|| Confirmation::of_certificate(der))
}

/// A protected resource's check of a certificate-bound token (RFC 8705 §3): the request's
/// connection presented the certificate whose thumbprint the token's `cnf` names (compared
/// in constant time). Anything else is `invalid_token`. A binding of another kind (a DPoP
/// key) is not this module's and passes.
pub fn check_presented(cx: &Cx<'_>, confirmation: &Confirmation) -> Result<(), OAuthError> {
    let Confirmation::X5tS256(expected) = confirmation else {
        return Ok(());
    };
    let refused = || {
        OAuthError::invalid_token(
            "the access token is bound to a client certificate this request did not present",
        )
    };
    let der = cx.request.client_cert.as_deref().ok_or_else(refused)?;
    let Confirmation::X5tS256(presented) = Confirmation::of_certificate(der) else {
        return Err(refused());
    };
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(refused().because("another certificate than the token's"))
    }
}

/// The certificate a new family's refresh tokens are bound to: the request's, for a public
/// client whose tokens it binds (RFC 8705 §4: a confidential client's refresh tokens are
/// bound by its authentication already).
pub fn refresh_binding(cx: &Cx<'_>, client: &ClientRecord) -> Option<String> {
    match &cx.confirmation {
        Some(Confirmation::X5tS256(t)) if client.public => Some(t.clone()),
        _ => None,
    }
}

/// Refuses a refresh of a family bound to a certificate unless the request came with that
/// certificate (RFC 8705 §4): `invalid_grant`.
pub fn check_refresh_binding(cx: &Cx<'_>, bound: Option<&str>) -> Result<(), OAuthError> {
    let Some(want) = bound else {
        return Ok(());
    };
    let presented = cx
        .request
        .client_cert
        .as_deref()
        .map(Confirmation::of_certificate);
    match presented {
        Some(Confirmation::X5tS256(have)) if bool::from(have.as_bytes().ct_eq(want.as_bytes())) => {
            Ok(())
        }
        _ => Err(OAuthError::invalid_grant(
            "the refresh token is bound to a client certificate this request did not present",
        )),
    }
}

/// Authenticates a client registered for a certificate method (RFC 8705 §2) by the
/// certificate of the request. The answer to every failure is the same `invalid_client`.
pub fn authenticate(
    cx: &Cx<'_>,
    client: &ClientRecord,
    how: &CertificateAuth,
) -> Result<(), OAuthError> {
    let failed = || OAuthError::invalid_client("client authentication failed");
    if !cx.config.mtls.enabled {
        return Err(failed().because("mutual TLS is not enabled"));
    }
    let Some(der) = cx.request.client_cert.as_deref() else {
        return Err(failed().because("no client certificate presented"));
    };
    match how {
        CertificateAuth::TlsClientAuth(subject) => {
            if !cx.config.mtls.pki() {
                return Err(failed().because("no certificate authority is configured"));
            }
            let mtls = &cx.config.mtls;
            match chains_to_anchor(der, &mtls.trust_anchors, &mtls.crls.current(), cx.now) {
                Ok(()) => {}
                Err(ChainRefusal::Revoked) => {
                    return Err(failed().because("the client certificate is revoked (CRL)"))
                }
                Err(ChainRefusal::Untrusted) => {
                    return Err(failed()
                        .because("the client certificate does not chain to a trusted authority"))
                }
            }
            if !subject_matches(der, subject) {
                return Err(
                    failed().because("the client certificate's subject is not the registered one")
                );
            }
            Ok(())
        }
        CertificateAuth::SelfSignedTlsClientAuth => {
            let registered = client
                .jwks
                .as_deref()
                .and_then(|k| serde_json::from_str::<ClientKeys>(k).ok())
                .unwrap_or_default();
            if registered_certificate(der, &registered) {
                Ok(())
            } else {
                Err(failed().because("the client certificate is not one the client registered"))
            }
        }
    }
}

/// Why a certificate's chain is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRefusal {
    /// No valid path to a trusted authority.
    Untrusted,
    /// A certificate of the path is on a revocation list of its issuer.
    Revoked,
}

/// A parsed certificate revocation list (RFC 5280 §5).
pub type Crl = webpki::CertRevocationList<'static>;

/// Parses certificate revocation lists (RFC 5280 §5, DER). The first that does not parse
/// is an error naming its position.
pub fn parse_crls(ders: &[Vec<u8>]) -> Result<Vec<Crl>, String> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            webpki::OwnedCertRevocationList::from_der(der)
                .map(webpki::CertRevocationList::from)
                .map_err(|e| format!("revocation list {} does not parse: {e:?}", i + 1))
        })
        .collect()
}

/// Whether `der` is a valid certificate chaining to one of `anchors` at `now` (RFC 5280
/// §6: signatures, validity, basic constraints, name constraints), for client
/// authentication when it names key purposes. The anchors serve as intermediates too, so
/// a bundle may hold an issuing authority beside its root. With `crls`, no certificate of
/// the path may be listed by a list of its issuer (RFC 5280 §6.3); a certificate whose
/// issuer has no list here passes, and a list past its `nextUpdate` still counts (a stale
/// list still names what it revoked).
pub fn chains_to_anchor(
    der: &[u8],
    anchors: &[Vec<u8>],
    crls: &[webpki::CertRevocationList<'static>],
    now: i64,
) -> Result<(), ChainRefusal> {
    use rustls_pki_types::{CertificateDer, UnixTime};
    let certificates: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.as_slice()))
        .collect();
    let trust: Vec<_> = certificates
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let leaf = CertificateDer::from(der);
    let Ok(leaf) = webpki::EndEntityCert::try_from(&leaf) else {
        return Err(ChainRefusal::Untrusted);
    };
    let Ok(now) = u64::try_from(now) else {
        return Err(ChainRefusal::Untrusted);
    };
    let lists: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let revocation = webpki::RevocationOptionsBuilder::new(&lists).ok().map(|b| {
        b.with_depth(webpki::RevocationCheckDepth::Chain)
            .with_status_policy(webpki::UnknownStatusPolicy::Allow)
            .with_expiration_policy(webpki::ExpirationPolicy::Ignore)
            .build()
    });
    match leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &trust,
        &certificates,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
        webpki::KeyUsage::client_auth(),
        revocation,
        None,
    ) {
        Ok(_) => Ok(()),
        Err(webpki::Error::CertRevoked) => Err(ChainRefusal::Revoked),
        Err(_) => Err(ChainRefusal::Untrusted),
    }
}

/// Whether the certificate `der` has the registered subject (RFC 8705 §2.1.2): the subject
/// DN, compared as [`same_dn`] does, or a subject alternative name of the registered type
/// equal to the registered value (DNS names without regard to ASCII case, IP addresses as
/// addresses, URIs and email addresses exactly).
pub fn subject_matches(der: &[u8], subject: &CertificateSubject) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    if let CertificateSubject::SubjectDn(registered) = subject {
        return match (parse_dn(registered), certificate_dn(&cert)) {
            (Some(registered), Some(presented)) => same_dn(&registered, &presented),
            _ => false,
        };
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value
        .general_names
        .iter()
        .any(|name| match (subject, name) {
            (CertificateSubject::SanDns(v), GeneralName::DNSName(n)) => v.eq_ignore_ascii_case(n),
            (CertificateSubject::SanUri(v), GeneralName::URI(n)) => v == n,
            (CertificateSubject::SanEmail(v), GeneralName::RFC822Name(n)) => v == n,
            (CertificateSubject::SanIp(v), GeneralName::IPAddress(bytes)) => {
                let presented = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                    16 => <[u8; 16]>::try_from(*bytes)
                        .ok()
                        .map(std::net::IpAddr::from),
                    _ => None,
                };
                presented.is_some_and(|p| v.parse::<std::net::IpAddr>().ok() == Some(p))
            }
            _ => false,
        })
}

/// Whether `der` is a certificate registered in `keys` (RFC 8705 §2.2): byte for byte the
/// first `x5c` certificate of one of the keys, or a certificate whose public key is one of
/// them (by RFC 7638 thumbprint).
pub fn registered_certificate(der: &[u8], keys: &ClientKeys) -> bool {
    if keys.certificates().iter().any(|c| c.as_slice() == der) {
        return true;
    }
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let Some(presented) = client_keys::spki_thumbprint(cert.public_key().raw) else {
        return false;
    };
    keys.thumbprints().contains(&presented)
}

/// A distinguished name: its relative distinguished names in RFC 4514 order (most specific
/// first), each a list of (attribute type, value) pairs; types are lower-case short names
/// (`cn`, `o`) or dotted OIDs.
pub type Dn = Vec<Vec<(String, String)>>;

/// The short names of RFC 4514 §3 (and the common `emailaddress`) by OID.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "cn"),
    ("2.5.4.7", "l"),
    ("2.5.4.8", "st"),
    ("2.5.4.10", "o"),
    ("2.5.4.11", "ou"),
    ("2.5.4.6", "c"),
    ("2.5.4.9", "street"),
    ("0.9.2342.19200300.100.1.25", "dc"),
    ("0.9.2342.19200300.100.1.1", "uid"),
    ("2.5.4.5", "serialnumber"),
    ("1.2.840.113549.1.9.1", "emailaddress"),
];

/// An attribute type as [`Dn`] holds it: a known OID (or `OID.`-prefixed OID) by its short
/// name, a short name in lower case, another OID as is.
fn attribute_type(t: &str) -> String {
    let t = t.trim();
    let oid = t
        .strip_prefix("OID.")
        .or_else(|| t.strip_prefix("oid."))
        .unwrap_or(t);
    if let Some((_, short)) = SHORT_NAMES.iter().find(|(o, _)| *o == oid) {
        return (*short).to_owned();
    }
    t.to_ascii_lowercase()
}

/// The subject DN of a certificate, in RFC 4514 order; `None` when a value is not a string.
fn certificate_dn(cert: &X509Certificate<'_>) -> Option<Dn> {
    let mut dn = Vec::new();
    for rdn in cert.subject().iter() {
        let mut pairs = Vec::new();
        for atv in rdn.iter() {
            let value = atv.as_str().ok()?;
            pairs.push((
                attribute_type(&atv.attr_type().to_id_string()),
                value.to_owned(),
            ));
        }
        dn.push(pairs);
    }
    // RFC 4514 §2.1: the string starts with the last RDN of the sequence.
    dn.reverse();
    Some(dn)
}

/// Parses an RFC 4514 string (`CN=client,O=Example\, Inc.,C=JP`): `,` between RDNs, `+`
/// between the attributes of one, `\` escaping a special character or giving a byte in hex.
/// `None` for a malformed string, an empty one, or a value in `#` hex form (Tessera compares
/// string values).
pub fn parse_dn(text: &str) -> Option<Dn> {
    let mut dn: Dn = Vec::new();
    let mut rdn = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut kind = String::new();
        let mut equals = false;
        for c in chars.by_ref() {
            if c == '=' {
                equals = true;
                break;
            }
            kind.push(c);
        }
        let kind = kind.trim();
        if !equals || kind.is_empty() || kind.contains([',', '+', '\\', '"']) {
            return None;
        }
        let mut value: Vec<u8> = Vec::new();
        let mut end = None;
        if chars.peek() == Some(&'#') {
            return None;
        }
        while let Some(c) = chars.next() {
            match c {
                ',' | '+' => {
                    end = Some(c);
                    break;
                }
                '\\' => {
                    let first = chars.next()?;
                    if first.is_ascii_hexdigit() {
                        let second = chars.next().filter(char::is_ascii_hexdigit)?;
                        let hex = [first as u8, second as u8];
                        let byte = u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?;
                        value.push(byte);
                    } else {
                        let mut buf = [0; 4];
                        value.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
                    }
                }
                '"' | ';' | '<' | '>' => return None,
                c => {
                    let mut buf = [0; 4];
                    value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        let value = String::from_utf8(value).ok()?;
        rdn.push((attribute_type(kind), value));
        match end {
            Some('+') => continue,
            Some(_) => dn.push(std::mem::take(&mut rdn)),
            None => {
                dn.push(rdn);
                return Some(dn);
            }
        }
    }
}

/// Whether two DNs are the same: the same RDNs in the same order, each with the same
/// attributes in any order; types compared as [`Dn`] holds them, values as the
/// `caseIgnoreMatch` rule (RFC 4517 §4.2.11) compares them: case and leading, trailing and
/// repeated spaces do not count.
pub fn same_dn(a: &Dn, b: &Dn) -> bool {
    fn normal(rdn: &[(String, String)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = rdn
            .iter()
            .map(|(t, v)| {
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                (t.clone(), v.to_lowercase())
            })
            .collect();
        out.sort();
        out
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| normal(x) == normal(y))
}

/// Checks a registered subject (RFC 8705 §2.1.2) before it is stored: a DN must parse as
/// RFC 4514, an IP address as an address, and no value may be empty. Returns why not.
pub fn check_subject(subject: &CertificateSubject) -> Result<(), String> {
    let (field, value) = subject.field();
    if value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    match subject {
        CertificateSubject::SubjectDn(dn) if parse_dn(dn).is_none() => Err(format!(
            "{field} is not an RFC 4514 distinguished name of string values"
        )),
        CertificateSubject::SanIp(ip) if ip.parse::<std::net::IpAddr>().is_err() => {
            Err(format!("{field} is not an IPv4 or IPv6 address"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
    };

    struct Ca {
        der: Vec<u8>,
        issuer: rcgen::Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn leaf(ca: &Ca, cn: &str, sans: Vec<SanType>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example, Inc.");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.signed_by(&key, &ca.issuer).unwrap().der().to_vec()
    }

    const NOW: i64 = 1_900_000_000;

    #[test]
    fn a_certificate_chains_only_to_its_own_authority() {
        let (good, other) = (ca("Good CA"), ca("Other CA"));
        let cert = leaf(&good, "client", vec![]);
        let chains =
            |der: &[u8], anchors: &[Vec<u8>], now| chains_to_anchor(der, anchors, &[], now).is_ok();
        assert!(chains(&cert, std::slice::from_ref(&good.der), NOW));
        assert!(!chains(&cert, std::slice::from_ref(&other.der), NOW));
        assert!(!chains(&cert, &[], NOW));
        // Outside its validity (rcgen's default ends in 4096): refused.
        assert!(!chains(&cert, std::slice::from_ref(&good.der), 0));
        assert!(!chains(b"not a certificate", &[good.der], NOW));
    }

    /// A leaf of `ca` with the given serial number.
    fn numbered_leaf(ca: &Ca, serial: u64) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "client");
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        params.signed_by(&key, &ca.issuer).unwrap().der().to_vec()
    }

    /// A revocation list of `ca` naming `serials`, made a year before `next_year`, its
    /// `nextUpdate`.
    fn crl(ca: &Ca, serials: &[u64], next_year: i32) -> Vec<u8> {
        let params = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(next_year - 1, 1, 1),
            next_update: rcgen::date_time_ymd(next_year, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(next_year - 1, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&ca.issuer).unwrap().der().to_vec()
    }

    #[test]
    fn a_certificate_its_authority_revoked_is_refused() {
        let (good, other) = (ca("Good CA"), ca("Other CA"));
        let (revoked, kept) = (numbered_leaf(&good, 7), numbered_leaf(&good, 8));
        let anchors = std::slice::from_ref(&good.der);
        let lists = parse_crls(&[crl(&good, &[7], 2031)]).unwrap();
        assert_eq!(
            chains_to_anchor(&revoked, anchors, &lists, NOW),
            Err(ChainRefusal::Revoked)
        );
        assert_eq!(chains_to_anchor(&kept, anchors, &lists, NOW), Ok(()));
        // A list past its nextUpdate still names what it revoked.
        let stale = parse_crls(&[crl(&good, &[7], 2029)]).unwrap();
        assert_eq!(
            chains_to_anchor(&revoked, anchors, &stale, NOW),
            Err(ChainRefusal::Revoked)
        );
        // Another authority's list, naming the same serial, revokes nothing of this one;
        // a certificate whose issuer has no list here passes.
        let theirs = parse_crls(&[crl(&other, &[7], 2031)]).unwrap();
        assert_eq!(chains_to_anchor(&revoked, anchors, &theirs, NOW), Ok(()));
        assert!(parse_crls(&[b"not a list".to_vec()])
            .unwrap_err()
            .contains("revocation list 1"));
    }

    #[test]
    fn the_subject_dn_is_compared_in_rfc_4514_order() {
        let cert = leaf(&ca("CA"), "client one", vec![]);
        let dn = |s: &str| subject_matches(&cert, &CertificateSubject::SubjectDn(s.into()));
        assert!(dn(r"CN=client one,O=Example\, Inc."));
        assert!(dn(r"cn=Client  One, o=example\2C inc."));
        assert!(dn(r"2.5.4.3=client one,OID.2.5.4.10=Example\, Inc."));
        assert!(!dn(r"O=Example\, Inc.,CN=client one"));
        assert!(!dn("CN=client one"));
        assert!(!dn(r"CN=client two,O=Example\, Inc."));
        assert!(!dn(r"CN=client one,O=Example\, Inc.,C=JP"));
    }

    #[test]
    fn each_san_type_matches_only_its_own_kind() {
        let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let cert = leaf(
            &ca("CA"),
            "client",
            vec![
                SanType::DnsName("client.example.com".try_into().unwrap()),
                SanType::URI("https://client.example.com/id".try_into().unwrap()),
                SanType::IpAddress(ip),
                SanType::Rfc822Name("ops@client.example.com".try_into().unwrap()),
            ],
        );
        let m = |s: CertificateSubject| subject_matches(&cert, &s);
        assert!(m(CertificateSubject::SanDns("Client.Example.com".into())));
        assert!(!m(CertificateSubject::SanDns("other.example.com".into())));
        assert!(m(CertificateSubject::SanUri(
            "https://client.example.com/id".into()
        )));
        assert!(!m(CertificateSubject::SanUri(
            "https://client.example.com/".into()
        )));
        assert!(m(CertificateSubject::SanIp("2001:db8:0::1".into())));
        assert!(!m(CertificateSubject::SanIp("2001:db8::2".into())));
        assert!(m(CertificateSubject::SanEmail(
            "ops@client.example.com".into()
        )));
        // A DNS name registered as a URI is not a match: the type counts.
        assert!(!m(CertificateSubject::SanUri("client.example.com".into())));
        assert!(!m(CertificateSubject::SanEmail(
            "client.example.com".into()
        )));
    }

    #[test]
    fn a_self_signed_certificate_matches_its_registered_key_or_x5c() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        let mut by_key = ClientKeys::default();
        by_key.add_pem(&key.public_key_pem()).unwrap();
        assert!(registered_certificate(&der, &by_key));
        use base64::Engine as _;
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x5c": [x5c],
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }]});
        let by_x5c = ClientKeys::from_jwks(&jwks.to_string()).unwrap();
        assert!(registered_certificate(&der, &by_x5c));
        let other = CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap();
        assert!(!registered_certificate(other.der(), &by_key));
        assert!(!registered_certificate(other.der(), &by_x5c));
        assert!(!registered_certificate(&der, &ClientKeys::default()));
    }

    #[test]
    fn certificate_clients_bind_their_tokens_unless_they_say_otherwise() {
        let mut c = crate::store::testsuite::client(&crate::secret::SecretHash::of("s"));
        assert!(
            !binds_tokens(&c),
            "a secret client binds nothing by default"
        );
        c.user_flow.certificate_bound_access_tokens = Some(true);
        assert!(
            binds_tokens(&c),
            "unless it registered the binding (RFC 8705 §3.4)"
        );
        c.user_flow.certificate_bound_access_tokens = None;
        c.user_flow.certificate_auth = Some(CertificateAuth::SelfSignedTlsClientAuth);
        assert!(binds_tokens(&c), "a certificate client binds by default");
        c.user_flow.certificate_bound_access_tokens = Some(false);
        assert!(!binds_tokens(&c), "unless it registered false");
    }

    #[test]
    fn malformed_dns_are_refused() {
        for bad in [
            "",
            "CN",
            "=x",
            "CN=#04024869",
            "CN=a\\",
            "CN=a\\4",
            "CN=\"x\"",
        ] {
            assert_eq!(parse_dn(bad), None, "{bad}");
        }
        assert_eq!(
            parse_dn(r"CN=a\+b+UID=1,O=x"),
            Some(vec![
                vec![("cn".into(), "a+b".into()), ("uid".into(), "1".into())],
                vec![("o".into(), "x".into())]
            ])
        );
        assert!(check_subject(&CertificateSubject::SanIp("not-an-ip".into())).is_err());
        assert!(check_subject(&CertificateSubject::SanDns(" ".into())).is_err());
        assert!(check_subject(&CertificateSubject::SubjectDn("CN=ok".into())).is_ok());
    }
}
