//! DPoP proofs (RFC 9449).
//!
//! Owns the checks of a DPoP proof JWT exactly as RFC 9449 §4.3 lists them ([`verify`],
//! which does no I/O: one `DPoP` header; a well-formed JWS whose `typ` is `dpop+jwt`, whose
//! `alg` is one of [`ALGORITHMS`] (asymmetric only: never `none`, never an HMAC) and whose
//! `jwk` is a public key of that algorithm's type, with no private member; a valid signature
//! by that key; `jti`, `htm`, `htu` and `iat` present, `htm` the request's method, `htu` its
//! URI without query and fragment, both sides normalised per RFC 3986 §6.2.2 and §6.2.3;
//! `iat` within [`crate::config::Config::dpop_proof_lifetime`] of now, with the assertion
//! leeway for clocks ahead; `ath` the hash of the access token when one accompanies the
//! proof, and none otherwise), then the checks that need state ([`check`]): the server's
//! nonce when it asks for one (§8), and single use of the `jti` across every node (§11.1,
//! [`crate::store::ReplayStore::use_once`], remembered as long as the proof could pass the
//! `iat` check).
//!
//! Nonces (§8) are stateless: a nonce names a time slot and carries the server secret's MAC
//! of it ([`crate::keys::Sealer::mac`], shared by every node), so any node accepts the nonce
//! another handed out, for the current slot and the one before.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::audit::DpopInput;
use crate::client_keys::jwk_thumbprint;
use crate::cx::Cx;
use crate::error::OAuthError;

/// The signature algorithms a proof may use, in the order discovery lists them
/// (`dpop_signing_alg_values_supported`, RFC 9449 §5.1): asymmetric only (§4.3 step 5).
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "PS256", "RS256", "EdDSA"];

/// Longest proof taken, bytes: an RSA-4096 key in the header and the claims fit well.
const MAX_PROOF: usize = 8 * 1024;

/// Longest `jti` taken (RFC 9449 §4.2: enough randomness, not a document).
const MAX_JTI: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url (RFC 9449 §6.1).
    pub jkt: String,
    /// The proof's id.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
    /// The nonce it carries, if any.
    pub nonce: Option<String>,
}

fn invalid(description: &'static str) -> OAuthError {
    OAuthError::invalid_dpop_proof(description)
}

/// The RFC 3986 §6.2.2/§6.2.3 normal form of an HTTP URI without its query and fragment
/// (RFC 9449 §4.3 step 9): scheme and host in lower case, default port dropped,
/// percent-encodings in upper case, dot segments removed, an empty path as `/`.
pub fn normalize_htu(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    // The userinfo part is no part of what the proof names.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    // `url` normalises case, ports and dot segments; percent-encoding case is left as
    // written, so it is made upper case here (§6.2.2.1).
    let mut out = String::with_capacity(url.as_str().len());
    let mut after_percent = 0;
    for ch in url.as_str().chars() {
        if after_percent > 0 {
            out.push(ch.to_ascii_uppercase());
            after_percent -= 1;
        } else {
            if ch == '%' {
                after_percent = 2;
            }
            out.push(ch);
        }
    }
    Some(out)
}

/// Whether `s` has the shape of an RFC 7638 SHA-256 thumbprint in base64url: 43 characters
/// of the base64url alphabet.
pub fn is_thumbprint(s: &str) -> bool {
    s.len() == 43 && URL_SAFE_NO_PAD.decode(s).is_ok_and(|b| b.len() == 32)
}

/// The `ath` of an access token: base64url SHA-256 of its ASCII (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// What [`verify`] checks a proof against.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's URI (normalised here).
    pub uri: &'a str,
    /// The access token sent with the proof, if any (its hash must be the proof's `ath`).
    pub access_token: Option<&'a str>,
    /// Now, Unix seconds.
    pub now: i64,
    /// How long after its `iat` a proof is taken, seconds.
    pub lifetime: i64,
    /// How far ahead of now an `iat` may be, seconds.
    pub leeway: i64,
}

/// Checks one proof against the request it came with: every check of RFC 9449 §4.3 that
/// needs no state. The nonce and the `jti`'s single use are [`check`]'s.
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, OAuthError> {
    if proof.len() > MAX_PROOF {
        return Err(invalid("the DPoP proof is too large"));
    }
    // §4.3 step 2: a well-formed JWT (three base64url parts).
    let mut parts = proof.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the DPoP proof is not a compact JWS"));
    };
    let decode = |part: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header =
        decode(h).ok_or_else(|| invalid("the DPoP proof's header is not base64url JSON"))?;
    let claims =
        decode(c).ok_or_else(|| invalid("the DPoP proof's claims are not base64url JSON"))?;
    // §4.3 step 4: typ.
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    // RFC 7515 §4.1.11: Tessera understands no extension a `crit` could name.
    if header.contains_key("crit") {
        return Err(invalid(
            "the DPoP proof's header has crit, which is not understood",
        ));
    }
    // §4.3 step 5: an asymmetric algorithm from the allow-list.
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ALGORITHMS.contains(&alg_name) {
        return Err(invalid(
            "the DPoP proof's alg is not one this server accepts",
        ));
    }
    let alg: Algorithm = alg_name
        .parse()
        .map_err(|_| invalid("the DPoP proof's alg is not one this server accepts"))?;
    // §4.3 step 7: the jwk is a public key.
    let jwk_members = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the DPoP proof's header has no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_members.contains_key(*m)) {
        return Err(invalid("the DPoP proof's jwk must be a public key"));
    }
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk_members.clone()))
        .map_err(|_| invalid("the DPoP proof's jwk is not a key this server reads"))?;
    if !crate::client_keys::jwk_algorithms(&jwk).is_some_and(|a| a.contains(&alg)) {
        return Err(invalid("the DPoP proof's jwk is not a key of its alg"));
    }
    let jkt = jwk_thumbprint(jwk_members)
        .ok_or_else(|| invalid("the DPoP proof's jwk is not a key this server reads"))?;
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|_| invalid("the DPoP proof's jwk is not a key this server reads"))?;
    // §4.3 step 6: the signature.
    let message = &proof[..h.len() + 1 + c.len()];
    if !jsonwebtoken::crypto::verify(sig, message.as_bytes(), &key, alg).unwrap_or(false) {
        return Err(invalid("the DPoP proof's signature does not verify"));
    }
    // §4.3 step 3: the required claims.
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or_else(|| invalid("the DPoP proof has no usable jti"))?;
    let htm = claims
        .get("htm")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the DPoP proof has no htm"))?;
    let htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the DPoP proof has no htu"))?;
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the DPoP proof has no integer iat"))?;
    // §4.3 step 8: htm.
    if htm != expected.method {
        return Err(invalid("the DPoP proof's htm is not this request's method"));
    }
    // §4.3 step 9: htu.
    match (normalize_htu(htu), normalize_htu(expected.uri)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(invalid("the DPoP proof's htu is not this request's URI")),
    }
    // §4.3 step 11: iat within the window.
    if iat > expected.now.saturating_add(expected.leeway) {
        return Err(invalid("the DPoP proof's iat is in the future"));
    }
    if iat < expected.now.saturating_sub(expected.lifetime) {
        return Err(invalid("the DPoP proof is too old (iat)"));
    }
    // §4.3 step 12: ath with an access token, none without.
    match (expected.access_token, claims.get("ath")) {
        (Some(token), Some(Value::String(a))) => {
            let want = ath(token);
            if !bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), a.as_bytes())) {
                return Err(invalid(
                    "the DPoP proof's ath is not the hash of this access token",
                ));
            }
        }
        (Some(_), _) => return Err(invalid("the DPoP proof has no ath for the access token")),
        (None, _) => {}
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(invalid("the DPoP proof's nonce is not a string")),
    };
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

/// The request's one proof (§4.3 step 1: exactly one `DPoP` header).
pub fn single(input: &DpopInput) -> Result<&str, OAuthError> {
    match input.proofs.as_slice() {
        [one] => Ok(one),
        [] => Err(invalid("a DPoP proof is required")),
        _ => Err(invalid("send exactly one DPoP header")),
    }
}

/// Checks the request's proof fully: [`verify`] against the request (its URI is this host's
/// issuer origin with the request's path), then the server's nonce when it requires one, then
/// the `jti`'s single use across nodes.
pub async fn check(
    cx: &Cx<'_>,
    input: &DpopInput,
    access_token: Option<&str>,
) -> Result<Proof, OAuthError> {
    let proof_text = single(input)?;
    let uri = cx.config.endpoint(&input.path);
    let proof = verify(
        proof_text,
        &Expected {
            method: &input.method,
            uri: &uri,
            access_token,
            now: cx.now,
            lifetime: cx.config.dpop_proof_lifetime,
            leeway: cx.config.assertion_leeway,
        },
    )?;
    if cx.config.dpop_nonce {
        match &proof.nonce {
            Some(n) if nonce_valid(cx, n) => {}
            Some(_) => {
                return Err(OAuthError::use_dpop_nonce(
                    "the DPoP proof's nonce is not current: use the one in the DPoP-Nonce header",
                ))
            }
            None => return Err(OAuthError::use_dpop_nonce(
                "this server requires a nonce in DPoP proofs: use the one in the DPoP-Nonce header",
            )),
        }
    }
    // §11.1: single use. Remembered while the proof could pass the iat check.
    let key = replay_key(&proof);
    let until = proof
        .iat
        .saturating_add(cx.config.dpop_proof_lifetime)
        .max(cx.now)
        .saturating_add(cx.config.assertion_leeway);
    if !cx.store.use_once(&key, until).await? {
        return Err(invalid("the DPoP proof was used before (jti)"));
    }
    Ok(proof)
}

/// The replay store key of a proof: a hash of its key's thumbprint and its `jti` (a
/// client's `jti` is unique only per key).
fn replay_key(proof: &Proof) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(proof.jkt.as_bytes());
    ctx.update(b"\0");
    ctx.update(proof.jti.as_bytes());
    format!("dpop:{}", URL_SAFE_NO_PAD.encode(ctx.finish().as_ref()))
}

/// The nonce this server hands out now (`DPoP-Nonce`, RFC 9449 §8).
pub fn nonce(cx: &Cx<'_>) -> String {
    nonce_for_slot(cx, slot(cx))
}

fn slot(cx: &Cx<'_>) -> i64 {
    cx.now.div_euclid(cx.config.dpop_nonce_lifetime.max(1))
}

fn nonce_for_slot(cx: &Cx<'_>, slot: i64) -> String {
    let mut data = b"tessera dpop nonce ".to_vec();
    data.extend_from_slice(&slot.to_be_bytes());
    let tag = cx.sealer.mac(&data);
    let mut raw = slot.to_be_bytes().to_vec();
    raw.extend_from_slice(&tag[..16]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Whether `nonce` is one this server handed out for the current slot or the one before.
fn nonce_valid(cx: &Cx<'_>, nonce: &str) -> bool {
    let now = slot(cx);
    let Some(raw) = URL_SAFE_NO_PAD.decode(nonce).ok().filter(|r| r.len() == 24) else {
        return false;
    };
    let Some((slot_bytes, mac)) = raw.split_first_chunk::<8>() else {
        return false;
    };
    let slot = i64::from_be_bytes(*slot_bytes);
    if slot != now && slot != now - 1 {
        return false;
    }
    let mut data = b"tessera dpop nonce ".to_vec();
    data.extend_from_slice(&slot.to_be_bytes());
    let tag = cx.sealer.mac(&data);
    tag.get(..16)
        .is_some_and(|t| bool::from(subtle::ConstantTimeEq::ct_eq(t, mac)))
}

/// The `WWW-Authenticate` challenge of a DPoP-protected resource (RFC 9449 §7.1): the
/// scheme, the error if any, and the algorithms it takes.
pub fn challenge(error: Option<&str>) -> String {
    let algs = ALGORITHMS.join(" ");
    match error {
        Some(e) => format!("DPoP error=\"{e}\", algs=\"{algs}\""),
        None => format!("DPoP algs=\"{algs}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    struct Key(EcdsaKeyPair, ring::rand::SystemRandom);

    impl Key {
        fn new() -> Self {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Key(pair, rng)
        }

        fn jwk(&self) -> Value {
            let p = self.0.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256",
                   "x": URL_SAFE_NO_PAD.encode(p.get(1..33).unwrap()),
                   "y": URL_SAFE_NO_PAD.encode(p.get(33..65).unwrap())})
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self.0.sign(&self.1, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    const URL: &str = "https://as.example.com/oauth2/token";

    fn expected(token: Option<&str>) -> Expected<'_> {
        Expected {
            method: "POST",
            uri: URL,
            access_token: token,
            now: 1_000_000,
            lifetime: 60,
            leeway: 5,
        }
    }

    fn claims() -> Value {
        json!({"jti": "j-1", "htm": "POST", "htu": URL, "iat": 1_000_000})
    }

    #[test]
    fn a_good_proof_passes_with_its_keys_thumbprint() {
        let k = Key::new();
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk()});
        let p = verify(&k.sign(&header, &claims()), &expected(None)).unwrap();
        let jwk = k.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            jwk["x"], jwk["y"]
        );
        let want = URL_SAFE_NO_PAD
            .encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref());
        assert_eq!(p.jkt, want);
        assert_eq!(p.jti, "j-1");
        assert!(is_thumbprint(&p.jkt));
    }

    #[test]
    fn the_window_of_iat_and_the_ath_are_enforced() {
        let k = Key::new();
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk()});
        for (iat, ok) in [
            (1_000_000 - 60, true),
            (1_000_000 - 61, false),
            (1_000_000 + 5, true),
            (1_000_000 + 6, false),
        ] {
            let mut c = claims();
            c["iat"] = json!(iat);
            assert_eq!(
                verify(&k.sign(&header, &c), &expected(None)).is_ok(),
                ok,
                "{iat}"
            );
        }
        let mut c = claims();
        c["ath"] = json!(ath("tok"));
        let proof = k.sign(&header, &c);
        assert!(verify(&proof, &expected(Some("tok"))).is_ok());
        let e = verify(&proof, &expected(Some("other"))).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidDpopProof);
        assert!(verify(&k.sign(&header, &claims()), &expected(Some("tok"))).is_err());
    }

    #[test]
    fn htu_is_normalised_on_both_sides() {
        let n = |s| normalize_htu(s).unwrap();
        assert_eq!(
            n("HTTPS://Server.Example.COM:443/token"),
            "https://server.example.com/token"
        );
        assert_eq!(
            n("https://server.example.com/token?x=1#f"),
            "https://server.example.com/token"
        );
        assert_eq!(
            n("https://server.example.com/a/../token"),
            "https://server.example.com/token"
        );
        assert_eq!(
            n("https://server.example.com/t%7eo"),
            n("https://server.example.com/t%7Eo")
        );
        assert_eq!(n("http://localhost:80"), "http://localhost/");
        assert_ne!(
            n("https://server.example.com/token"),
            n("https://server.example.com/token2")
        );
        assert_ne!(
            n("http://server.example.com/token"),
            n("https://server.example.com/token")
        );
        assert_eq!(normalize_htu("urn:x:y"), None);
        assert_eq!(normalize_htu("not a uri"), None);
    }

    #[test]
    fn ath_is_the_rfc_example() {
        // RFC 9449 §7.1's example token and its ath.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn challenge_names_scheme_error_and_algs() {
        assert_eq!(
            challenge(Some("invalid_dpop_proof")),
            "DPoP error=\"invalid_dpop_proof\", algs=\"ES256 ES384 PS256 RS256 EdDSA\""
        );
    }
}
