//! Registered public keys and signature checks of JWTs signed with them: a client's keys for
//! `private_key_jwt` ([`crate::client_assertion`]) and a trusted issuer's for the JWT-bearer
//! grant ([`crate::grant::jwt_bearer`]), which register keys the same way.
//!
//! Owns [`ClientKeys`] (the stored form, a JWKS plus PEM keys; the registration rules; reading
//! a published JWKS), [`ClientKeys::verify_signature`] and [`SignatureError`]. A leaf: no
//! storage, no context, no claims (the callers check those).
//!
//! Verifying a signature costs CPU on a serving thread whoever sent it, so what one
//! assertion can cost is bounded: a client or issuer registers at most [`MAX_KEYS`] keys
//! (RSA ones of [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`] bits, RFC 7518 §3.3), a set of more
//! than one key must give each a distinct `kid`, and an assertion checked against more than
//! one key must name its key with `kid` (RFC 7515 §4.1.4): only that key is tried. A JWS
//! header with `crit` (RFC 7515 §4.1.11) is refused: Tessera understands no extension.
//! A PEM key is registered as a JWK whose `kid` is its RFC 7638 thumbprint ([`pem_jwk`]), so
//! several PEM keys can be registered together (as in a key rotation). A `kid` naming no key
//! costs one signature check all the same, against a stand-in key of the kind its `alg`
//! needs ([`stand_in_keys`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Signature algorithms accepted for client assertions.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/// Most public keys a client or a trusted issuer may register; also the most taken from a
/// JWKS an issuer publishes, and the most keys one signature is ever tried with.
pub const MAX_KEYS: usize = 10;
/// Smallest RSA modulus accepted, bits (RFC 7518 §3.3: 2048 or larger).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, bits: a larger key costs more to verify with than any
/// signer needs.
pub const MAX_RSA_BITS: usize = 4096;

/// The registered keys of a client, as stored: a JWKS plus PEM-encoded public keys.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
pub struct ClientKeys {
    /// JWKs.
    #[serde(default)]
    pub keys: Vec<Jwk>,
    /// PEM public keys (SubjectPublicKeyInfo).
    #[serde(default)]
    pub pems: Vec<String>,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// Not a compact JWS with a JSON header.
    Malformed,
    /// `alg` is not on the allow-list.
    Algorithm,
    /// The stored keys cannot be used.
    Keys,
    /// No key verifies it.
    Signature,
    /// More than one key could verify it and the header names none with `kid`.
    KidRequired,
    /// The header's `crit` is not a non-empty list of distinct extension header names that
    /// the header carries (RFC 7515 §4.1.11).
    CritMalformed,
    /// The header's `crit` names an extension, and Tessera understands none.
    CritUnsupported,
}

/// A usable verification key.
struct Key {
    kid: Option<String>,
    algs: &'static [Algorithm],
    key: DecodingKey,
}

impl ClientKeys {
    /// Parses the stored form, checking that every key is usable (not the registration
    /// limits of [`ClientKeys::check_registration`]: a set stored before them still works,
    /// and verification is bounded anyway).
    pub fn parse(stored: &str) -> Result<Self, String> {
        let keys: ClientKeys =
            serde_json::from_str(stored).map_err(|e| format!("not a key set: {e}"))?;
        let usable = keys.decoding_keys()?;
        if usable.is_empty() {
            return Err("no public key given".into());
        }
        Ok(keys)
    }

    /// Parses the stored form and checks it as a registration is checked
    /// ([`ClientKeys::check_registration`]).
    pub fn parse_registration(stored: &str) -> Result<Self, String> {
        let keys = Self::parse(stored)?;
        keys.check_registration()?;
        Ok(keys)
    }

    /// Builds a key set from a JWKS document (`{"keys": [...]}`).
    pub fn from_jwks(text: &str) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
        let keys = ClientKeys {
            keys: set.keys,
            pems: Vec::new(),
        };
        keys.decoding_keys()?;
        if keys.keys.len() > MAX_KEYS {
            return Err(format!("more than {MAX_KEYS} keys"));
        }
        for jwk in &keys.keys {
            check_key_size(jwk_rsa_bits(jwk))?;
        }
        Ok(keys)
    }

    /// The rules of a registration, for a client or a trusted issuer: at most [`MAX_KEYS`]
    /// keys, RSA ones of [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`] bits, and, with more than one
    /// key, a distinct `kid` on each (an assertion must then name its key; a PEM key gets
    /// its RFC 7638 thumbprint as `kid` when it is registered, see [`ClientKeys::add_pem`]).
    pub fn check_registration(&self) -> Result<(), String> {
        let count = self.keys.len() + self.pems.len();
        if count > MAX_KEYS {
            return Err(format!(
                "{count} keys: at most {MAX_KEYS} may be registered"
            ));
        }
        for jwk in &self.keys {
            check_key_size(jwk_rsa_bits(jwk))?;
        }
        for pem in &self.pems {
            check_key_size(pem_rsa_bits(pem))?;
        }
        if count > 1 {
            if !self.pems.is_empty() {
                return Err(
                    "with more than one key, each needs a kid: register the PEM files again \
                     (each then gets its thumbprint as kid) or give a JWKS file"
                        .into(),
                );
            }
            let mut kids = Vec::with_capacity(count);
            for jwk in &self.keys {
                match jwk.common.key_id.as_deref() {
                    None | Some("") => {
                        return Err("with more than one key, each needs a kid".into())
                    }
                    Some(kid) if kids.contains(&kid) => {
                        return Err(format!(
                            "two keys have the kid '{kid}' (the same PEM key given twice?)"
                        ))
                    }
                    Some(kid) => kids.push(kid),
                }
            }
        }
        Ok(())
    }

    /// The usable signing keys of a JWKS published by a third party: keys for encryption,
    /// symmetric keys and unsupported types are left out rather than refused; anything
    /// unreadable gives an empty set.
    pub fn from_published_jwks(text: &str) -> Self {
        #[derive(Deserialize)]
        struct Published {
            keys: Vec<serde_json::Value>,
        }
        let keys = serde_json::from_str::<Published>(text)
            .map(|doc| doc.keys)
            .unwrap_or_default()
            .into_iter()
            // Each key alone: one this library cannot read does not hide the others.
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter(|jwk| {
                !matches!(
                    jwk.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                )
            })
            .filter(|jwk| {
                ClientKeys {
                    keys: vec![jwk.clone()],
                    pems: Vec::new(),
                }
                .decoding_keys()
                .is_ok()
                    && check_key_size(jwk_rsa_bits(jwk)).is_ok()
            })
            .take(MAX_KEYS)
            .collect();
        ClientKeys {
            keys,
            pems: Vec::new(),
        }
    }

    /// Adds a PEM public key, as a JWK whose `kid` is its RFC 7638 thumbprint
    /// ([`pem_jwk`]): a PEM file carries no `kid`, and with more than one key each needs
    /// one. Returns the `kid`.
    pub fn add_pem(&mut self, pem: &str) -> Result<String, String> {
        pem_key(pem)?;
        check_key_size(pem_rsa_bits(pem))?;
        let jwk = pem_jwk(pem)?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        self.keys.push(jwk);
        Ok(kid)
    }

    /// The `kid`s of the keys, in order (`None` for a key without one).
    pub fn kids(&self) -> Vec<Option<String>> {
        self.keys
            .iter()
            .map(|k| k.common.key_id.clone())
            .chain(self.pems.iter().map(|_| None))
            .collect()
    }

    /// Verifies the signature of a compact JWS with one of these keys: an algorithm from
    /// [`ALGORITHMS`] (never `none`, never an HMAC, which a public key must not key), only
    /// with a key of that algorithm's type, and with the key the header's `kid` names when
    /// both have one. With more than one key, the header must name one (RFC 7515 §4.1.4)
    /// and only keys with that `kid` are tried, at most [`MAX_KEYS`]: what a forged
    /// signature costs does not grow with the number of keys. A header with `crit` is
    /// refused (RFC 7515 §4.1.11). Claims are not looked at.
    pub fn verify_signature(&self, jws: &str) -> Result<(), SignatureError> {
        let keys = self.decoding_keys().map_err(|_| SignatureError::Keys)?;
        let header = read_header(jws.split('.').next())?;
        // The allow-list: `none` and HMAC are never accepted.
        if !ALGORITHMS.contains(&header.alg.as_str()) {
            return Err(SignatureError::Algorithm);
        }
        let alg: Algorithm = header.alg.parse().map_err(|_| SignatureError::Algorithm)?;
        if keys.len() > 1 && header.kid.is_none() {
            return Err(SignatureError::KidRequired);
        }
        let mut validation = Validation::new(alg);
        // Claims are checked by the caller against the context's clock; the library checks
        // the signature only.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let single = keys.len() == 1;
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| k.algs.contains(&alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                // A key without a kid is only ever used alone.
                (Some(_), None) => single,
                (None, _) => single,
            })
            .take(MAX_KEYS)
            .collect();
        let check = |k: &Key| jsonwebtoken::decode::<serde_json::Value>(jws, &k.key, &validation);
        if candidates.is_empty() {
            // No key to try (a kid naming none): one check with a stand-in key all the same,
            // so that a kid no key has costs what a wrong signature does, for known and
            // unknown clients alike (see [`crate::client_assertion::refuse_unknown`]).
            if let Some(stand_in) = stand_in_keys(jws)
                .decoding_keys()
                .ok()
                .and_then(|mut k| k.pop())
            {
                let _ = check(&stand_in);
            }
            return Err(SignatureError::Signature);
        }
        if candidates.into_iter().any(|k| check(k).is_ok()) {
            Ok(())
        } else {
            Err(SignatureError::Signature)
        }
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn decoding_keys(&self) -> Result<Vec<Key>, String> {
        let mut out = Vec::new();
        for jwk in &self.keys {
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                return Err("symmetric keys are not accepted".into());
            }
            let algs = jwk_algorithms(jwk).ok_or("unsupported key type")?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad JWK: {e}"))?;
            out.push(Key {
                kid: jwk.common.key_id.clone(),
                algs,
                key,
            });
        }
        for pem in &self.pems {
            let (algs, key) = pem_key(pem)?;
            out.push(Key {
                kid: None,
                algs,
                key,
            });
        }
        Ok(out)
    }
}

/// Refuses an RSA key outside [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`] (`bits` is `None` for
/// other key types).
fn check_key_size(bits: Option<usize>) -> Result<(), String> {
    match bits {
        Some(bits) if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) => Err(format!(
            "an RSA key of {bits} bits: {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
        )),
        _ => Ok(()),
    }
}

/// The bits of an unsigned big-endian integer.
fn integer_bits(bytes: &[u8]) -> usize {
    let mut digits = bytes.iter().skip_while(|b| **b == 0);
    match digits.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * digits.count(),
    }
}

/// The size of an RSA JWK's modulus, bits (`None` for other key types; 0 if unreadable).
fn jwk_rsa_bits(jwk: &Jwk) -> Option<usize> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => Some(
            URL_SAFE_NO_PAD
                .decode(rsa.n.trim_end_matches('='))
                .map(|n| integer_bits(&n))
                .unwrap_or(0),
        ),
        _ => None,
    }
}

/// The size of an RSA PEM public key's modulus, bits (`None` for other key types).
fn pem_rsa_bits(pem: &str) -> Option<usize> {
    if DecodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
        return None;
    }
    let der = pem_der(pem).unwrap_or_default();
    Some(der_rsa_modulus(&der).map(integer_bits).unwrap_or(0))
}

/// The DER bytes of a PEM block: its base64 body, without the armour lines and headers.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.contains(':'))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The JWK of a PEM public key (SubjectPublicKeyInfo of an EC P-256 or P-384, RSA or
/// Ed25519 key, or a PKCS#1 RSA public key), with its RFC 7638 thumbprint as `kid`.
pub fn pem_jwk(pem: &str) -> Result<Jwk, String> {
    const NOT_READABLE: &str = "not a PEM EC (P-256, P-384), RSA or Ed25519 public key";
    let der = pem_der(pem).ok_or(NOT_READABLE)?;
    let mut members = der_public_jwk(&der).ok_or(NOT_READABLE)?;
    let kid = jwk_thumbprint(&members).ok_or(NOT_READABLE)?;
    members.insert("kid".into(), kid.into());
    serde_json::from_value(serde_json::Value::Object(members)).map_err(|_| NOT_READABLE.into())
}

/// The RFC 7638 thumbprint of a JWK's members: SHA-256 over the JSON object of the key
/// type's required members, in lexicographic order and without whitespace (§3.2), in
/// base64url without padding (§3.1). `None` for a key type without required members here.
pub fn jwk_thumbprint(members: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let required: &[&str] = match members.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in required.iter().enumerate() {
        let value = members.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // The members' values are base64url or names: no character needs escaping, and
        // serde_json writes them as RFC 7638 §3.3 asks anyway.
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// The JWK members (`kty` and the key's public parameters) of a SubjectPublicKeyInfo
/// (RFC 5280 §4.1.2.7) or a PKCS#1 RSAPublicKey (RFC 8017 §A.1.1).
fn der_public_jwk(der: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OID: u8 = 0x06;
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    let b64 = |bytes: &[u8]| serde_json::Value::String(URL_SAFE_NO_PAD.encode(bytes));
    // An RSA integer without the leading zero DER adds to keep it positive (RFC 7518 §6.3.1).
    let unsigned =
        |bytes: &'_ [u8]| -> Vec<u8> { bytes.iter().copied().skip_while(|b| *b == 0).collect() };
    let rsa = |key: &[u8]| -> Option<serde_json::Map<String, serde_json::Value>> {
        let (tag, seq, _) = der_element(key)?;
        if tag != SEQUENCE {
            return None;
        }
        let (tag, n, rest) = der_element(seq)?;
        let (tag_e, e, _) = der_element(rest)?;
        if tag != INTEGER || tag_e != INTEGER {
            return None;
        }
        let mut m = serde_json::Map::new();
        m.insert("kty".into(), "RSA".into());
        m.insert("n".into(), b64(&unsigned(n)));
        m.insert("e".into(), b64(&unsigned(e)));
        Some(m)
    };
    let (tag, outer, _) = der_element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, algorithm, after) = der_element(outer)?;
    if tag == INTEGER {
        return rsa(der);
    }
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, params) = der_element(algorithm)?;
    if tag != OID {
        return None;
    }
    let (tag, bits, _) = der_element(after)?;
    if tag != BIT_STRING {
        return None;
    }
    // The first byte of a BIT STRING counts its unused bits: none in a key.
    let key = match bits.split_first()? {
        (0, key) => key,
        _ => return None,
    };
    let mut m = serde_json::Map::new();
    if oid == RSA_ENCRYPTION {
        return rsa(key);
    } else if oid == EC_PUBLIC_KEY {
        let (tag, curve, _) = der_element(params)?;
        let (crv, size) = match (tag, curve) {
            (OID, c) if c == P256 => ("P-256", 32),
            (OID, c) if c == P384 => ("P-384", 48),
            _ => return None,
        };
        // An uncompressed point: 0x04, x, y (SEC 1 §2.3.3).
        let (&4, point) = key.split_first()? else {
            return None;
        };
        if point.len() != 2 * size {
            return None;
        }
        let (x, y) = point.split_at(size);
        m.insert("kty".into(), "EC".into());
        m.insert("crv".into(), crv.into());
        m.insert("x".into(), b64(x));
        m.insert("y".into(), b64(y));
    } else if oid == ED25519 {
        if key.len() != 32 {
            return None;
        }
        m.insert("kty".into(), "OKP".into());
        m.insert("crv".into(), "Ed25519".into());
        m.insert("x".into(), b64(key));
    } else {
        return None;
    }
    Some(m)
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(count)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The modulus of an RSA public key, from a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) or an
/// RSAPublicKey (RFC 8017 §A.1.1).
fn der_rsa_modulus(der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    let (tag, outer, _) = der_element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _, after) = der_element(outer)?;
    let rsa_public_key = match tag {
        INTEGER => outer,
        SEQUENCE => {
            let (tag, bits, _) = der_element(after)?;
            if tag != BIT_STRING {
                return None;
            }
            // The first byte of a BIT STRING counts its unused bits.
            let (tag, inner, _) = der_element(bits.get(1..)?)?;
            if tag != SEQUENCE {
                return None;
            }
            inner
        }
        _ => return None,
    };
    let (tag, modulus, _) = der_element(rsa_public_key)?;
    (tag == INTEGER).then_some(modulus)
}

/// The algorithms a JWK may verify, by its key type and curve; `None` for a key Tessera does not use.
pub fn jwk_algorithms(jwk: &Jwk) -> Option<&'static [Algorithm]> {
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(&[Algorithm::ES256]),
            EllipticCurve::P384 => Some(&[Algorithm::ES384]),
            _ => None,
        },
        AlgorithmParameters::RSA(_) => Some(&[Algorithm::RS256, Algorithm::PS256]),
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(&[Algorithm::EdDSA])
        }
        _ => None,
    }
}

fn pem_key(pem: &str) -> Result<(&'static [Algorithm], DecodingKey), String> {
    // Only public keys: a private key handed in by mistake must not be stored.
    let label_ok = pem.trim_start().starts_with("-----BEGIN PUBLIC KEY-----")
        || pem
            .trim_start()
            .starts_with("-----BEGIN RSA PUBLIC KEY-----");
    if !label_ok || pem.contains("PRIVATE KEY") {
        return Err("not a PEM public key (-----BEGIN PUBLIC KEY-----)".into());
    }
    let bytes = pem.as_bytes();
    if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
        // The PEM does not say the curve to jsonwebtoken; P-256 is what ES256 needs.
        return Ok((&[Algorithm::ES256, Algorithm::ES384], k));
    }
    if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
        return Ok((&[Algorithm::RS256, Algorithm::PS256], k));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
        return Ok((&[Algorithm::EdDSA], k));
    }
    Err("not a PEM EC, RSA or Ed25519 public key".into())
}

/// What the checks use of a JWS header.
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Header parameters defined by RFC 7515 §4.1 and RFC 7518 §4.1, which `crit` must not
/// list (RFC 7515 §4.1.11).
const DEFINED_HEADER_PARAMETERS: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc",
    "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
];

/// Reads a JWS header and applies RFC 7515 §4.1.11: a `crit` must be a non-empty list of
/// distinct names of extension parameters present in the header, and since Tessera
/// understands no extension, any well-formed `crit` is refused as well.
fn read_header(part: Option<&str>) -> Result<Header, SignatureError> {
    let map: serde_json::Map<String, serde_json::Value> = part
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(SignatureError::Malformed)?;
    if let Some(crit) = map.get("crit") {
        let names = crit.as_array().ok_or(SignatureError::CritMalformed)?;
        let mut seen: Vec<&str> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_str().ok_or(SignatureError::CritMalformed)?;
            if name.is_empty()
                || seen.contains(&name)
                || DEFINED_HEADER_PARAMETERS.contains(&name)
                || !map.contains_key(name)
            {
                return Err(SignatureError::CritMalformed);
            }
            seen.push(name);
        }
        if seen.is_empty() {
            return Err(SignatureError::CritMalformed);
        }
        return Err(SignatureError::CritUnsupported);
    }
    let alg = match map.get("alg") {
        Some(serde_json::Value::String(alg)) => alg.clone(),
        _ => return Err(SignatureError::Malformed),
    };
    let kid = match map.get("kid") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(SignatureError::Malformed),
    };
    Ok(Header { alg, kid })
}

/// Stand-in public keys, one of each kind an assertion may be signed with. Their private
/// halves were thrown away when they were made: nothing verifies against them.
const STAND_IN_P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIqo/HjNSOddIsmdsVqffZ2vaP1oL
gxvHA/Gl0CmH62KdSwmPB+x9s8cCTiCCiAkktLlCY2oh2xfezLy7ifIYKg==
-----END PUBLIC KEY-----
";
const STAND_IN_P384: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEjzOg4RRrIb0gAEjPVY5n+TWavmN4sJyZ
rWP1mh0fbcF7Eyd4ZaCQ9Yq74I4Stiedb+LYwS+odeDpcyZMbbO423+uPhI0Y8wC
oObyLMezcNdiEPpzGQtodMiOrk6E6gJ2
-----END PUBLIC KEY-----
";
const STAND_IN_RSA: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxv3ZjJ66GxYtnc//XTD3
9EFgGQjjYNTBI4j7/nL5Si8SIvLfM8cwtBKkF54WvXjVnqG0WUS1iUFtg3J55zJr
0JcW1dFuL5NQPnXgYQxp2ZJdv9J2utpafexrhLGfO6AxyzJJvExJvzKUk1OelLNU
FkQT09w7qcxcwISL7uuC1ioU64e0z6acNJ69LmMEgjxqAmx2Xfa1KvJNkfmcfjlW
CkXQifMxBxHDzGelX/32fwgQA0idJCs5Bkg0cyBJZOO873FDYufunLvWQLqOwmH9
UR3s0pDDNY7qK9WLsDlmRdGNhUDDofAweea5etMu3QgUVw6i8cItSd5lK5kpSV6k
awIDAQAB
-----END PUBLIC KEY-----
";
const STAND_IN_ED25519: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAlyekL6g/44rQRkHRQU4yhuhL7qP1CIiPmvuttqNLRnY=
-----END PUBLIC KEY-----
";

/// One stand-in key of the kind the assertion's `alg` needs (any, when the header cannot be
/// read: the check then fails before a key is used, as it does for a known client).
pub fn stand_in_keys(assertion: &str) -> ClientKeys {
    let alg = read_header(assertion.split('.').next()).map(|h| h.alg);
    let pem = match alg.as_deref() {
        Ok("ES384") => STAND_IN_P384,
        Ok("RS256" | "PS256") => STAND_IN_RSA,
        Ok("EdDSA") => STAND_IN_ED25519,
        _ => STAND_IN_P256,
    };
    ClientKeys {
        keys: Vec::new(),
        pems: vec![pem.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_keys_are_refused_at_registration() {
        let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(ClientKeys::from_jwks(jwks).is_err());
        assert!(ClientKeys::parse(r#"{"keys":[],"pems":[]}"#).is_err());
        assert!(ClientKeys::default().add_pem("not a pem").is_err());
        let private =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert!(ClientKeys::default().add_pem(private).is_err());
    }

    #[test]
    fn a_published_jwks_keeps_only_usable_signing_keys() {
        let ec = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        let mut enc = ec.clone();
        enc["use"] = "enc".into();
        enc["kid"] = "enc".into();
        let doc = serde_json::json!({"keys": [
            ec, enc, {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "EC", "crv": "P-256", "x": "bad"},
        ]});
        let keys = ClientKeys::from_published_jwks(&doc.to_string());
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].common.key_id.as_deref(), Some("sig"));
        assert!(ClientKeys::from_published_jwks("not json").keys.is_empty());
    }

    /// An ES256 key pair: the signing half and its public JWK with `kid`.
    fn es256(kid: Option<&str>) -> (jsonwebtoken::EncodingKey, Jwk) {
        use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let mut jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        if let Some(kid) = kid {
            jwk["kid"] = kid.into();
        }
        (
            jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            serde_json::from_value(jwk).unwrap(),
        )
    }

    /// A JWS over `{"sub":"c1"}` with exactly this header, signed by `key` with ES256.
    fn signed(key: &jsonwebtoken::EncodingKey, header: serde_json::Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"c1"}"#)
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::ES256).unwrap();
        format!("{message}.{sig}")
    }

    fn set(keys: Vec<Jwk>) -> ClientKeys {
        ClientKeys {
            keys,
            pems: Vec::new(),
        }
    }

    #[test]
    fn a_crit_header_is_refused_malformed_or_not() {
        let (key, jwk) = es256(Some("k1"));
        let keys = set(vec![jwk]);
        let with = |extra: serde_json::Value| {
            let mut h = serde_json::json!({"alg": "ES256", "kid": "k1"});
            for (k, v) in extra.as_object().unwrap() {
                h[k] = v.clone();
            }
            keys.verify_signature(&signed(&key, h))
        };
        assert_eq!(with(serde_json::json!({})), Ok(()), "no crit");
        assert_eq!(
            with(serde_json::json!({"crit": ["exp"], "exp": 5})),
            Err(SignatureError::CritUnsupported)
        );
        assert_eq!(
            with(serde_json::json!({"crit": ["b64"], "b64": false})),
            Err(SignatureError::CritUnsupported),
            "RFC 7797 is not understood either"
        );
        for (case, extra) in [
            ("empty list", serde_json::json!({"crit": []})),
            ("not a list", serde_json::json!({"crit": "exp", "exp": 5})),
            ("null", serde_json::json!({"crit": null})),
            ("not strings", serde_json::json!({"crit": [1]})),
            ("empty name", serde_json::json!({"crit": [""]})),
            (
                "absent from the header",
                serde_json::json!({"crit": ["exp"]}),
            ),
            (
                "a name RFC 7515 defines",
                serde_json::json!({"crit": ["alg"]}),
            ),
            (
                "listed twice",
                serde_json::json!({"crit": ["exp", "exp"], "exp": 5}),
            ),
        ] {
            assert_eq!(with(extra), Err(SignatureError::CritMalformed), "{case}");
        }
    }

    #[test]
    fn with_more_than_one_key_the_assertion_names_its_key_and_only_that_key_is_tried() {
        let (a, a_jwk) = es256(Some("a"));
        let (b, b_jwk) = es256(Some("b"));
        let both = set(vec![a_jwk.clone(), b_jwk]);
        let es = |kid: Option<&str>| match kid {
            Some(kid) => serde_json::json!({"alg": "ES256", "kid": kid}),
            None => serde_json::json!({"alg": "ES256"}),
        };
        assert_eq!(
            both.verify_signature(&signed(&a, es(None))),
            Err(SignatureError::KidRequired)
        );
        assert_eq!(both.verify_signature(&signed(&a, es(Some("a")))), Ok(()));
        assert_eq!(both.verify_signature(&signed(&b, es(Some("b")))), Ok(()));
        assert_eq!(
            both.verify_signature(&signed(&a, es(Some("b")))),
            Err(SignatureError::Signature),
            "the key the kid names, not any key"
        );
        assert_eq!(
            both.verify_signature(&signed(&a, es(Some("c")))),
            Err(SignatureError::Signature)
        );
        // One key: no kid needed, and a key without a kid is used for any.
        let (c, c_jwk) = es256(None);
        let one = set(vec![c_jwk]);
        assert_eq!(one.verify_signature(&signed(&c, es(None))), Ok(()));
        assert_eq!(one.verify_signature(&signed(&c, es(Some("x")))), Ok(()));
        assert_eq!(
            set(vec![a_jwk]).verify_signature(&signed(&a, es(None))),
            Ok(())
        );
    }

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A big-endian modulus of exactly `bits` bits (not a real key: only its size matters).
    #[test]
    fn a_pem_key_gets_its_rfc_7638_thumbprint_as_kid() {
        // RFC 7638 §3.1: this RSA key's thumbprint.
        let n = URL_SAFE_NO_PAD
            .decode(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6t\
                 Soc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v\
                 -65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08\
                 qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8aw\
                 apJzKnqDKgw",
            )
            .unwrap();
        let key = der(
            0x30,
            &[der(0x02, &[vec![0], n].concat()), der(0x02, &[1, 0, 1])].concat(),
        );
        let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        let alg = der(0x30, &[der(0x06, &rsa_oid), vec![0x05, 0x00]].concat());
        let spki = der(0x30, &[alg, der(0x03, &[vec![0], key].concat())].concat());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(spki)
        );
        let mut keys = ClientKeys::default();
        assert_eq!(
            keys.add_pem(&pem).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // EC and Ed25519 keys too; two PEM keys make a valid registration, the same one twice
        // does not.
        let ec = keys.add_pem(STAND_IN_P256).unwrap();
        let ed = keys.add_pem(STAND_IN_ED25519).unwrap();
        let p384 = pem_jwk(STAND_IN_P384).unwrap();
        assert!(
            matches!(&p384.algorithm, AlgorithmParameters::EllipticCurve(ec)
            if ec.curve == EllipticCurve::P384)
        );
        assert_eq!(ec.len(), 43);
        assert_ne!(ec, ed);
        assert_eq!(keys.kids().len(), 3);
        keys.check_registration().unwrap();
        keys.add_pem(STAND_IN_ED25519).unwrap();
        assert!(keys.check_registration().unwrap_err().contains("two keys"));
        assert!(pem_jwk("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
    }

    #[test]
    fn a_pem_key_registered_with_its_thumbprint_verifies_its_signatures() {
        use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
        const P256_SPKI_PREFIX: [u8; 26] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let rng = ring::rand::SystemRandom::new();
        for _ in 0..50 {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            let spki = [&P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
            let pem = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(spki)
            );
            let mut keys = ClientKeys::default();
            let kid = keys.add_pem(&pem).unwrap();
            let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
            for header in [
                serde_json::json!({"alg": "ES256"}),
                serde_json::json!({"alg": "ES256", "kid": kid}),
            ] {
                let jws = signed(&key, header);
                assert_eq!(keys.verify_signature(&jws), Ok(()), "{pem}");
            }
        }
    }

    #[test]
    fn nothing_verifies_against_the_stand_in_keys_and_they_match_the_algorithm() {
        let (key, _) = es256(Some("k1"));
        let jws = signed(&key, serde_json::json!({"alg": "ES256", "kid": "k1"}));
        assert_eq!(
            stand_in_keys(&jws).verify_signature(&jws),
            Err(SignatureError::Signature)
        );
        for (alg, pem) in [
            ("ES256", STAND_IN_P256),
            ("ES384", STAND_IN_P384),
            ("RS256", STAND_IN_RSA),
            ("PS256", STAND_IN_RSA),
            ("EdDSA", STAND_IN_ED25519),
        ] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let keys = stand_in_keys(&format!("{header}.e30.AAAA"));
            assert_eq!(keys.pems, vec![pem.to_owned()], "{alg}");
            assert!(ClientKeys::parse(&keys.to_stored()).is_ok(), "{alg}");
        }
    }

    fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0x80];
        n.resize(bits / 8, 0x35);
        n
    }

    /// An RSA public key PEM (SubjectPublicKeyInfo) with a modulus of `bits` bits.
    fn rsa_pem(bits: usize) -> String {
        let mut n = vec![0];
        n.extend(modulus(bits));
        let key = der(0x30, &[der(0x02, &n), der(0x02, &[1, 0, 1])].concat());
        let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        let alg = der(0x30, &[der(0x06, &rsa_oid), vec![0x05, 0x00]].concat());
        let spki = der(0x30, &[alg, der(0x03, &[vec![0], key].concat())].concat());
        let body = base64::engine::general_purpose::STANDARD.encode(spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn rsa_jwk(bits: usize, kid: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA", "kid": kid, "e": "AQAB", "n": URL_SAFE_NO_PAD.encode(modulus(bits)),
        })
    }

    #[test]
    fn registration_bounds_the_number_and_size_of_keys() {
        let jwks = |keys: Vec<serde_json::Value>| serde_json::json!({ "keys": keys }).to_string();
        let ec = |kid: &str| serde_json::to_value(es256(Some(kid)).1).unwrap();
        let ten: Vec<_> = (0..MAX_KEYS).map(|i| ec(&format!("k{i}"))).collect();
        let keys = ClientKeys::from_jwks(&jwks(ten.clone())).unwrap();
        assert_eq!(keys.check_registration(), Ok(()));
        assert!(ClientKeys::parse_registration(&keys.to_stored()).is_ok());
        let mut eleven = ten;
        eleven.push(ec("k10"));
        let e = ClientKeys::from_jwks(&jwks(eleven.clone())).unwrap_err();
        assert!(e.contains("more than 10 keys"), "{e}");
        let stored = serde_json::json!({"keys": eleven, "pems": []}).to_string();
        assert!(
            ClientKeys::parse(&stored).is_ok(),
            "a stored set still verifies"
        );
        let e = ClientKeys::parse_registration(&stored).unwrap_err();
        assert!(e.contains("at most 10"), "{e}");

        for bits in [2048, 3072, 4096] {
            assert!(
                ClientKeys::from_jwks(&jwks(vec![rsa_jwk(bits, "r")])).is_ok(),
                "{bits}"
            );
            assert!(
                ClientKeys::default().add_pem(&rsa_pem(bits)).is_ok(),
                "{bits}"
            );
        }
        for bits in [1024, 4104, 8192, 16384] {
            let e = ClientKeys::from_jwks(&jwks(vec![rsa_jwk(bits, "r")])).unwrap_err();
            assert!(e.contains(&format!("{bits} bits")), "{e}");
            let e = ClientKeys::default().add_pem(&rsa_pem(bits)).unwrap_err();
            assert!(e.contains(&format!("{bits} bits")), "{e}");
        }

        let no_kid = serde_json::to_value(es256(None).1).unwrap();
        let e = ClientKeys::from_jwks(&jwks(vec![ec("a"), no_kid]))
            .unwrap()
            .check_registration()
            .unwrap_err();
        assert!(e.contains("each needs a kid"), "{e}");
        let e = ClientKeys::from_jwks(&jwks(vec![ec("a"), ec("a")]))
            .unwrap()
            .check_registration()
            .unwrap_err();
        assert!(e.contains("two keys have the kid 'a'"), "{e}");
        // A PEM key gets a kid (its thumbprint): it goes with other keys.
        let mut with_pem = ClientKeys::from_jwks(&jwks(vec![ec("a")])).unwrap();
        with_pem.add_pem(&rsa_pem(2048)).unwrap();
        with_pem.check_registration().unwrap();
        // One stored as a bare PEM (without a kid) does not.
        let mut bare_pem = ClientKeys::from_jwks(&jwks(vec![ec("a")])).unwrap();
        bare_pem.pems.push(rsa_pem(2048));
        let e = bare_pem.check_registration().unwrap_err();
        assert!(e.contains("PEM"), "{e}");
    }

    #[test]
    fn a_published_jwks_gives_at_most_max_keys_of_accepted_sizes() {
        let mut keys: Vec<serde_json::Value> = vec![rsa_jwk(8192, "big")];
        keys.extend(
            (0..20).map(|i| serde_json::to_value(es256(Some(&format!("k{i}"))).1).unwrap()),
        );
        let doc = serde_json::json!({ "keys": keys }).to_string();
        let published = ClientKeys::from_published_jwks(&doc);
        assert_eq!(published.keys.len(), MAX_KEYS);
        assert_eq!(published.keys[0].common.key_id.as_deref(), Some("k0"));
    }

    proptest::proptest! {
        #[test]
        fn reading_any_der_never_panics(bytes in proptest::collection::vec(0u8.., 0..64)) {
            let _ = der_rsa_modulus(&bytes);
        }

        #[test]
        fn reading_any_header_never_panics(s in "\\PC{0,100}") {
            let _ = read_header(Some(&URL_SAFE_NO_PAD.encode(&s)));
            let _ = read_header(Some(&s));
        }
    }
}
