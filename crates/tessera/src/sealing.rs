//! What a sealing secret is: its shortest accepted length, how a good one is made, and what a
//! too-short one is told. Used by the settings (which check the secret they are given) and by
//! `tessera secret generate`; the key that seals signing keys at rest is derived from the secret
//! with HKDF-SHA256 (RFC 5869, [`tessera_core::keys::Sealer`]).

use base64::Engine as _;

/// The shortest sealing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// A new sealing secret: 32 random bytes, base64url without padding.
pub fn generate() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(tessera_core::secret::random_bytes::<32>())
}

/// What a too-short secret from `source` (e.g. `TESSERA_SECRET`) is told: the format expected
/// and the command that makes one.
pub fn too_short(source: &str, len: usize) -> String {
    format!(
        "{source} is {len} bytes long; a sealing secret must be at least {MIN_SECRET_BYTES} \
         bytes of any text (a good one is 32 random bytes in base64url, 43 characters): make \
         one with `tessera secret generate`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_43_base64url_characters_and_differ() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, b);
        assert!(tessera_core::keys::Sealer::from_secret(a.as_bytes()).is_ok());
    }

    #[test]
    fn the_short_secret_error_names_the_format_and_the_command() {
        let text = too_short("TESSERA_SECRET", 5);
        assert!(text.contains("at least 16 bytes"), "{text}");
        assert!(text.contains("tessera secret generate"), "{text}");
    }
}
