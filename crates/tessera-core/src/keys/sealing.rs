//! Sealing private keys at rest: AES-256-GCM under a key derived with HKDF-SHA256 from the
//! operator's secret, each sealed key bound to its `kid`; and the fingerprint of that secret
//! stored beside every sealed key, so that a process can tell, before it writes a key, whether
//! the stored keys were sealed under the secret it holds.

use ring::aead;
use ring::hkdf;

use super::KeyError;
use crate::secret::random_bytes;

/// Seals private keys at rest with AES-256-GCM under a key derived (HKDF-SHA256) from the
/// operator's secret.
pub struct Sealer {
    key: aead::LessSafeKey,
    mac: ring::hmac::Key,
    fingerprint: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

struct Len16;
impl hkdf::KeyType for Len16 {
    fn len(&self) -> usize {
        16
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl Sealer {
    /// Derives the sealing key from secret material (at least 16 bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 16 {
            return Err(KeyError::Invalid(
                "sealing secret (must be at least 16 bytes)".into(),
            ));
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera/v1/key-sealing");
        let prk = salt.extract(secret);
        let okm = prk
            .expand(&[b"aes-256-gcm"], Len32)
            .map_err(|_| KeyError::Invalid("sealing secret".into()))?;
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes)
            .map_err(|_| KeyError::Invalid("sealing secret".into()))?;
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &bytes)
            .map_err(|_| KeyError::Invalid("sealing secret".into()))?;
        let mut mac_bytes = [0u8; 32];
        prk.expand(&[b"hmac-sha256"], Len32)
            .and_then(|okm| okm.fill(&mut mac_bytes))
            .map_err(|_| KeyError::Invalid("sealing secret".into()))?;
        // A third HKDF output: one-way, and independent of the sealing and MAC keys, so it
        // can be stored in the clear without telling anything about them or the secret.
        let mut fp = [0u8; 16];
        prk.expand(&[b"fingerprint"], Len16)
            .and_then(|okm| okm.fill(&mut fp))
            .map_err(|_| KeyError::Invalid("sealing secret".into()))?;
        Ok(Self {
            key: aead::LessSafeKey::new(unbound),
            mac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_bytes),
            fingerprint: fp.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// The fingerprint of the sealing secret (32 hex digits, derived with HKDF-SHA256 and
    /// never the secret): stored with every key sealed by this sealer, and equal for every
    /// process holding the same secret.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// An HMAC-SHA256 tag of `data` under a key derived from the same secret (every node
    /// sharing the secret computes the same tag): for values the server hands out and must
    /// recognise later, such as CSRF tokens.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.mac, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `tag` is the tag of `data`, compared in constant time.
    pub fn mac_matches(&self, data: &[u8], tag: &[u8]) -> bool {
        ring::hmac::verify(&self.mac, data, tag).is_ok()
    }

    /// Seals `plain`, binding it to `kid`: nonce (12 bytes) then ciphertext and tag.
    pub fn seal(&self, kid: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let nonce_bytes = random_bytes::<12>();
        let nonce = aead::Nonce::assume_unique_for_key(nonce_bytes);
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, aead::Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| KeyError::Invalid(kid.to_owned()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] made for `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let (nonce, body) = sealed
            .split_at_checked(12)
            .ok_or_else(|| KeyError::Unseal(kid.to_owned()))?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| KeyError::Unseal(kid.to_owned()))?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| KeyError::Unseal(kid.to_owned()))?;
        Ok(plain.to_vec())
    }
}
