//! Signing keys: making, sealing, choosing and publishing them.
//!
//! Owns [`Sealer`] (AES-256-GCM over private keys at rest), [`KeySet`] (the loaded keys: which
//! one signs now, which are published in the JWKS, which verifies a given `kid`) and the
//! rotation plan. Keys are ES256 (P-256, the default) or EdDSA (Ed25519), signed with `ring`.
//!
//! Rotation follows what verifiers need, since they cache the JWKS: a new key is published
//! from its creation but signs only from `activates_at` (creation plus a lead time longer than
//! the JWKS cache lifetime), and a superseded key stays published until every token it signed
//! has expired (`retires_at`).
//!
//! Every key is stored with the fingerprint of the secret that sealed it
//! ([`Sealer::fingerprint`]). Whatever writes keys (a rotation, automatic or by `tessera keys
//! rotate`, and `tessera keys reseal`) first opens every stored key with the secret it holds
//! and refuses if one does not open or names another secret, so no command run with the wrong
//! secret can leave a database that no server starts from.

mod rotation;
mod sealing;

pub use rotation::{
    check_sealed_by, ensure_key, reseal, retirements, rotate, rotate_if_due, KeyRotationError,
};
pub use sealing::Sealer;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

pub use crate::config::{SigningAlg, UnsupportedAlg};
use crate::model::KeyRecord;
use crate::secret::generate_id;

/// A key-handling failure.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The sealed key could not be opened: wrong sealing secret or corrupt data.
    #[error("cannot unseal signing key {0}: wrong TESSERA_SECRET / key file, or corrupt data")]
    Unseal(String),
    /// The key material is not valid.
    #[error("invalid key material for {0}")]
    Invalid(String),
    /// The algorithm is not supported.
    #[error(transparent)]
    UnsupportedAlg(#[from] UnsupportedAlg),
    /// There is no key that may sign now.
    #[error("no active signing key")]
    NoActiveKey,
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// One loaded key: can sign, and verify what it signed.
pub struct SigningKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// From when it signs.
    pub activates_at: i64,
    /// When it stops being published, if superseded.
    pub retires_at: Option<i64>,
    /// The public JWK (JSON text).
    pub public_jwk: String,
    /// The base64url JWS header for access tokens, computed once.
    pub(crate) at_header_b64: String,
    /// The base64url JWS header for ID tokens (`typ: JWT`), computed once.
    pub(crate) id_header_b64: String,
    /// The base64url JWS header for introspection responses (RFC 9701 §5,
    /// `typ: token-introspection+jwt`, as `jwt::INTROSPECTION_TYP`; spelled out here because
    /// `jwt` imports this module), computed once.
    pub(crate) introspection_header_b64: String,
    public: Vec<u8>,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Signs `msg`, returning the raw JWS signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Es256(p) => p
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Invalid(self.kid.clone())),
            Pair::EdDsa(p) => Ok(p.sign(msg).as_ref().to_vec()),
        }
    }

    /// Verifies a raw JWS signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            SigningAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            SigningAlg::EdDsa => &signature::ED25519,
        };
        UnparsedPublicKey::new(alg, &self.public)
            .verify(msg, sig)
            .is_ok()
    }

    fn load(rec: &KeyRecord, sealer: &Sealer) -> Result<Self, KeyError> {
        let alg = SigningAlg::parse(&rec.alg)?;
        let pkcs8 = sealer.open(&rec.kid, &rec.private_sealed)?;
        let pair = match alg {
            SigningAlg::Es256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                    &SystemRandom::new(),
                )
                .map_err(|_| KeyError::Invalid(rec.kid.clone()))?,
            ),
            SigningAlg::EdDsa => Pair::EdDsa(
                Ed25519KeyPair::from_pkcs8(&pkcs8)
                    .map_err(|_| KeyError::Invalid(rec.kid.clone()))?,
            ),
        };
        let public = match &pair {
            Pair::Es256(p) => p.public_key().as_ref().to_vec(),
            Pair::EdDsa(p) => p.public_key().as_ref().to_vec(),
        };
        let header = |typ: &str| {
            URL_SAFE_NO_PAD.encode(
                serde_json::json!({"alg": alg.as_str(), "kid": rec.kid, "typ": typ}).to_string(),
            )
        };
        Ok(Self {
            kid: rec.kid.clone(),
            alg,
            activates_at: rec.activates_at,
            retires_at: rec.retires_at,
            public_jwk: rec.public_jwk.clone(),
            at_header_b64: header("at+jwt"),
            id_header_b64: header("JWT"),
            introspection_header_b64: header("token-introspection+jwt"),
            public,
            pair,
        })
    }
}

/// Makes a new key record, sealed, that signs from `activates_at`.
pub fn generate_key(
    alg: SigningAlg,
    sealer: &Sealer,
    now: i64,
    activates_at: i64,
) -> Result<KeyRecord, KeyError> {
    let rng = SystemRandom::new();
    let kid = generate_id();
    let bad = || KeyError::Invalid(kid.clone());
    let (pkcs8, jwk) = match alg {
        SigningAlg::Es256 => {
            let doc =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| bad())?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                doc.as_ref(),
                &rng,
            )
            .map_err(|_| bad())?;
            let pt = pair.public_key().as_ref();
            // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
            let (x, y) = match pt {
                [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err(bad()),
            };
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            });
            (doc.as_ref().to_vec(), jwk)
        }
        SigningAlg::EdDsa => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| bad())?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| bad())?;
            let jwk = serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (doc.as_ref().to_vec(), jwk)
        }
    };
    Ok(KeyRecord {
        private_sealed: sealer.seal(&kid, &pkcs8)?,
        kid,
        alg: alg.as_str().to_owned(),
        public_jwk: jwk.to_string(),
        created_at: now,
        activates_at,
        retires_at: None,
        sealed_by: Some(sealer.fingerprint().to_owned()),
    })
}

/// The loaded keys of the server.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
}

impl KeySet {
    /// Loads and unseals key records.
    pub fn load(records: &[KeyRecord], sealer: &Sealer) -> Result<Self, KeyError> {
        let mut keys = records
            .iter()
            .map(|r| SigningKey::load(r, sealer).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| k.activates_at);
        Ok(Self { keys })
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that signs at `now`: the most recently activated one.
    pub fn signing_key(&self, now: i64) -> Result<&Arc<SigningKey>, KeyError> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.activates_at <= now)
            .ok_or(KeyError::NoActiveKey)
    }

    /// The key with this `kid`, if it is still published at `now`.
    pub fn verifier(&self, kid: &str, now: i64) -> Option<&Arc<SigningKey>> {
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.retires_at.is_none_or(|r| r > now))
    }

    /// The JWKS document (RFC 7517 §5) at `now`: every key not yet retired, including keys
    /// that will sign soon.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .filter(|k| k.retires_at.is_none_or(|r| r > now))
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The algorithms of the published keys.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self.keys.iter().map(|k| k.alg.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn sealed_key_opens_only_with_the_same_secret_and_kid() {
        let s = sealer();
        let sealed = s.seal("kid1", b"private").unwrap();
        assert_eq!(s.open("kid1", &sealed).unwrap(), b"private");
        assert!(s.open("kid2", &sealed).is_err());
        let other = Sealer::from_secret(b"another-secret-of-enough-length").unwrap();
        assert!(other.open("kid1", &sealed).is_err());
    }

    #[test]
    fn the_fingerprint_names_the_secret_without_revealing_it() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let fp = sealer().fingerprint().to_owned();
        assert_eq!(fp.len(), 32);
        assert_eq!(Sealer::from_secret(secret).unwrap().fingerprint(), fp);
        let other = Sealer::from_secret(b"another-secret-of-enough-length").unwrap();
        assert_ne!(other.fingerprint(), fp);
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!hex.contains(&fp) && !fp.contains("0123456789abcdef"));
    }

    #[test]
    fn only_the_secret_that_sealed_the_stored_keys_passes_the_check() {
        let s = sealer();
        let other = Sealer::from_secret(b"another-secret-of-enough-length").unwrap();
        let key = generate_key(SigningAlg::Es256, &s, 0, 0).unwrap();
        assert_eq!(key.sealed_by.as_deref(), Some(s.fingerprint()));
        assert!(check_sealed_by(std::slice::from_ref(&key), &s).is_ok());
        assert!(matches!(
            check_sealed_by(std::slice::from_ref(&key), &other),
            Err(KeyRotationError::SealedElsewhere)
        ));
        // A key from before fingerprints were recorded must still open.
        let legacy = KeyRecord {
            sealed_by: None,
            ..key
        };
        assert!(check_sealed_by(std::slice::from_ref(&legacy), &s).is_ok());
        assert!(matches!(
            check_sealed_by(&[legacy], &other),
            Err(KeyRotationError::Key(KeyError::Unseal(_)))
        ));
    }

    #[test]
    fn both_algorithms_sign_and_verify() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
            let rec = generate_key(alg, &sealer(), 100, 100).unwrap();
            let set = KeySet::load(&[rec], &sealer()).unwrap();
            let key = set.signing_key(100).unwrap();
            let sig = key.sign(b"msg").unwrap();
            assert!(key.verify(b"msg", &sig));
            assert!(!key.verify(b"msh", &sig));
        }
    }

    #[test]
    fn new_key_is_published_before_it_signs_and_old_key_after_it_stops() {
        let s = sealer();
        let old = generate_key(SigningAlg::Es256, &s, 0, 0).unwrap();
        let mut new = generate_key(SigningAlg::Es256, &s, 1000, 1600).unwrap();
        new.retires_at = None;
        let ret = retirements(std::slice::from_ref(&old), new.activates_at, 3600);
        assert_eq!(ret, vec![(old.kid.clone(), 1600 + 3600)]);
        let mut old_retired = old.clone();
        old_retired.retires_at = Some(ret[0].1);
        let set = KeySet::load(&[old_retired, new.clone()], &s).unwrap();
        // Before activation: both published, old signs.
        assert_eq!(set.jwks(1200)["keys"].as_array().unwrap().len(), 2);
        assert_eq!(set.signing_key(1200).unwrap().kid, old.kid);
        // After activation: new signs, old still verifies.
        assert_eq!(set.signing_key(1600).unwrap().kid, new.kid);
        assert!(set.verifier(&old.kid, 1700).is_some());
        // After every old token expired: old no longer published.
        assert_eq!(set.jwks(5201)["keys"].as_array().unwrap().len(), 1);
        assert!(set.verifier(&old.kid, 5201).is_none());
    }
}
