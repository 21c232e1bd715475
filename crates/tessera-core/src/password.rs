//! User passwords: Argon2id.
//!
//! Owns [`hash`] and [`verify`]. Hashes are PHC strings with the OWASP-recommended Argon2id
//! parameters (19 MiB, 2 passes, 1 lane), so they can be raised later and old hashes still
//! verify. [`verify_unknown_user`] spends the same work as a real check, so that a sign-in
//! with an unknown username takes as long as one with a wrong password (no user enumeration
//! by timing). These functions are CPU-heavy (tens of milliseconds): callers on an async
//! runtime run them on a blocking thread, and cap how many run at once.
//!
//! Every check works in Argon2 memory (19 MiB) taken from a small pool of block buffers and
//! put back afterwards, so a burst of sign-ins reuses the same few buffers rather than
//! allocating (and leaving the allocator holding) 19 MiB per check: memory stays bounded by
//! the number of checks that run at once ([`keep_buffers`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::secret::random_bytes;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

/// Passwords shorter than this are refused when set.
pub const MIN_LENGTH: usize = 8;
/// Passwords longer than this are refused (hashing cost is bounded).
pub const MAX_LENGTH: usize = 1024;

/// The stored "hash" of a user who has no password (one made by a sign-in through an
/// upstream provider): not a PHC string, so [`verify`] never accepts anything against it, and
/// the password form does the work of an unknown user's check for it ([`has_password`]).
pub const NO_PASSWORD: &str = "!none";

/// Whether a stored hash is a password at all (not [`NO_PASSWORD`]).
pub fn has_password(stored: &str) -> bool {
    !stored.starts_with('!')
}

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| PasswordError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Block buffers kept for reuse between checks.
static POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
/// How many buffers the pool keeps; more checks at once allocate and free their own.
static POOL_SIZE: AtomicUsize = AtomicUsize::new(4);
/// The largest buffer the pool keeps, in 1 KiB blocks (a hash with a larger memory cost,
/// which this server never makes, is checked in memory of its own).
const POOL_MAX_BLOCKS: usize = 64 * 1024;

/// Keeps up to `n` Argon2 memory buffers for reuse: the number of password checks a caller
/// lets run at once.
pub fn keep_buffers(n: usize) {
    POOL_SIZE.store(n.max(1), Ordering::Relaxed);
}

/// Runs `f` over `blocks` Argon2 memory blocks from the pool.
fn with_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let pooled = POOL.lock().ok().and_then(|mut pool| {
        let i = pool.iter().position(|b| b.len() >= blocks)?;
        Some(pool.swap_remove(i))
    });
    let mut memory = pooled.unwrap_or_else(|| vec![Block::new(); blocks]);
    let result = match memory.get_mut(..blocks) {
        Some(m) => f(m),
        None => f(&mut []),
    };
    if memory.len() <= POOL_MAX_BLOCKS {
        if let Ok(mut pool) = POOL.lock() {
            if pool.len() < POOL_SIZE.load(Ordering::Relaxed) {
                pool.push(memory);
            }
        }
    }
    result
}

/// Whether `password` matches a stored PHC hash. A malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let hashed = with_memory(params.block_count(), |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    });
    hashed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// Spends the work of one [`verify`] and answers `false`.
pub fn verify_unknown_user(password: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a password of anyone").unwrap_or_default());
    let _ = verify(password, dummy);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password_and_is_salted() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("correct horse", "not-a-hash"));
        assert!(!verify_unknown_user("correct horse"));
    }

    #[test]
    fn checks_reuse_pooled_memory_and_agree_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier;
        keep_buffers(2);
        let h = hash("battery staple").unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        for pw in ["battery staple", "battery stapler", ""] {
            let ours = verify(pw, &h);
            let theirs = Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok();
            assert_eq!(ours, theirs, "{pw:?}");
        }
        // The buffers went back to the pool, which keeps no more than it was told to.
        assert!(verify("battery staple", &h));
        assert!(POOL.lock().unwrap().len() <= 2);
        // Another parameter set (fewer blocks) verifies in a larger pooled buffer.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"tiny", &SaltString::encode_b64(&[7u8; 16]).unwrap())
        .unwrap()
        .to_string();
        assert!(verify("tiny", &small));
        assert!(!verify("tinY", &small));
    }
}
