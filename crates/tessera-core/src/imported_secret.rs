//! Imported client secret hashes: secrets a client keeps across a migration from another
//! server, stored in the other server's own hash format and verified in it.
//!
//! Owns [`ImportedHash`]: parsing a hash given at import (refusing unknown forms, malformed
//! ones and ones whose cost is out of bounds), and checking a presented secret against it.
//!
//! The stored form is the hash text itself, in the client's `secret_hash` column beside
//! native hashes: a native hash ([`crate::secret::SecretHash`]) is 64 lowercase hex digits and
//! never contains `$`, and every imported form does, so [`ImportedHash::is_imported`] tells
//! the two apart without a column of its own. The accepted forms:
//!
//! | format | form |
//! |---|---|
//! | bcrypt | `$2a$`, `$2b$`, `$2y$` (modular crypt), cost 4 to [`MAX_BCRYPT_COST`] |
//! | PBKDF2 (PHC) | `$pbkdf2-sha256$i=N,l=L$SALT$HASH` and `$pbkdf2-sha512$…` (salt and hash in unpadded standard base64, as the PHC string format says) |
//! | PBKDF2 (passlib) | `$pbkdf2-sha256$N$SALT$HASH`, `$pbkdf2-sha512$…` (passlib's adapted base64: `.` for `+`) |
//! | PBKDF2 (Django) | `pbkdf2_sha256$N$SALT$HASH` (the salt used as text, the hash in padded base64) |
//! | Argon2 (PHC) | `$argon2id$…`, `$argon2i$…`, `$argon2d$…`, memory at most [`MAX_ARGON2_MEMORY_KIB`] |
//! | SHA-256 | `$sha256$HEX` (SHA-256 of the secret) or `$sha256$SALT$HEX` (SHA-256 of the salt's bytes followed by the secret's) |
//!
//! PBKDF2 iterations are at most [`MAX_PBKDF2_ITERATIONS`]. Every comparison of the derived
//! value with the stored one is constant-time (`subtle`, `ring::pbkdf2::verify`, and the
//! bcrypt and argon2 crates' own). bcrypt, PBKDF2 and Argon2 are slow on purpose
//! ([`ImportedHash::is_slow`]): client authentication runs them off the serving threads, a few
//! at a time ([`crate::cx::RemoteKeys::check_signature`]), and failed client authentication is
//! throttled per client and address by the HTTP layer.

use std::num::NonZeroU32;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use ring::digest;
use subtle::ConstantTimeEq;

/// Highest bcrypt cost accepted at import (2^14 rounds, about a second a check).
pub const MAX_BCRYPT_COST: u32 = 14;
/// Most PBKDF2 iterations accepted at import.
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
/// Most Argon2 memory accepted at import, KiB (64 MiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Most Argon2 passes accepted at import.
pub const MAX_ARGON2_PASSES: u32 = 16;
/// Longest hash text accepted.
const MAX_LEN: usize = 512;

/// A parsed imported hash.
#[derive(Clone, PartialEq, Eq)]
pub enum ImportedHash {
    /// bcrypt, in its modular crypt form (checked by the `bcrypt` crate).
    Bcrypt(String),
    /// PBKDF2 with HMAC-SHA-256 or -512.
    Pbkdf2 {
        /// SHA-512 rather than SHA-256.
        sha512: bool,
        /// Iterations.
        iterations: NonZeroU32,
        /// The salt's bytes.
        salt: Vec<u8>,
        /// The derived key.
        hash: Vec<u8>,
    },
    /// Argon2, in its PHC form (checked by the `argon2` crate).
    Argon2(String),
    /// SHA-256 of an optional salt followed by the secret.
    Sha256 {
        /// The salt's bytes (empty: none).
        salt: Vec<u8>,
        /// The digest.
        hash: [u8; 32],
    },
}

impl std::fmt::Debug for ImportedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImportedHash::Bcrypt(_) => "ImportedHash::Bcrypt",
            ImportedHash::Pbkdf2 { .. } => "ImportedHash::Pbkdf2",
            ImportedHash::Argon2(_) => "ImportedHash::Argon2",
            ImportedHash::Sha256 { .. } => "ImportedHash::Sha256",
        })
    }
}

impl ImportedHash {
    /// Whether stored hash text is an imported hash rather than a native one.
    pub fn is_imported(stored: &str) -> bool {
        stored.contains('$')
    }

    /// Parses hash text; `Err` says what is wrong with it (never quoting it).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_LEN {
            return Err(format!("longer than {MAX_LEN} characters"));
        }
        if let Some(rest) = text.strip_prefix("pbkdf2_sha256$") {
            return django(rest);
        }
        let mut fields = text.split('$');
        if fields.next() != Some("") {
            return Err(
                "not a known hash form (bcrypt, PBKDF2, Argon2 or SHA-256 in PHC or modular \
                 crypt form)"
                    .into(),
            );
        }
        match fields.next().unwrap_or_default() {
            "2a" | "2b" | "2y" => bcrypt_hash(text),
            "pbkdf2-sha256" => pbkdf2(text, false),
            "pbkdf2-sha512" => pbkdf2(text, true),
            "argon2id" | "argon2i" | "argon2d" => argon2_hash(text),
            "sha256" => sha256(fields.collect()),
            other => Err(format!(
                "unknown hash identifier '{}' (2a, 2b, 2y, pbkdf2-sha256, pbkdf2-sha512, \
                 argon2id, argon2i, sha256 or Django's pbkdf2_sha256)",
                other.chars().take(20).collect::<String>()
            )),
        }
    }

    /// Whether checking a secret against this hash costs real CPU (to be run off the
    /// serving threads).
    pub fn is_slow(&self) -> bool {
        !matches!(self, ImportedHash::Sha256 { .. })
    }

    /// Whether `secret` is the secret this hash was made from (constant-time compare).
    pub fn verify(&self, secret: &str) -> bool {
        match self {
            ImportedHash::Bcrypt(h) => bcrypt::verify(secret.as_bytes(), h).unwrap_or(false),
            ImportedHash::Pbkdf2 {
                sha512,
                iterations,
                salt,
                hash,
            } => {
                let alg = if *sha512 {
                    ring::pbkdf2::PBKDF2_HMAC_SHA512
                } else {
                    ring::pbkdf2::PBKDF2_HMAC_SHA256
                };
                ring::pbkdf2::verify(alg, *iterations, salt, secret.as_bytes(), hash).is_ok()
            }
            ImportedHash::Argon2(h) => PasswordHash::new(h).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            }),
            ImportedHash::Sha256 { salt, hash } => {
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(salt);
                ctx.update(secret.as_bytes());
                ctx.finish().as_ref().ct_eq(hash).into()
            }
        }
    }
}

fn bcrypt_hash(text: &str) -> Result<ImportedHash, String> {
    let parts: bcrypt::HashParts = text
        .parse()
        .map_err(|_| "a malformed bcrypt hash".to_owned())?;
    let cost = parts.get_cost();
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is out of bounds (4 to {MAX_BCRYPT_COST})"
        ));
    }
    // The hash part: 31 characters of bcrypt's base64 after the 22 of the salt.
    let tail = text.rsplit('$').next().unwrap_or_default();
    if tail.len() != 53 {
        return Err("a malformed bcrypt hash (salt and hash must be 53 characters)".into());
    }
    Ok(ImportedHash::Bcrypt(text.to_owned()))
}

fn argon2_hash(text: &str) -> Result<ImportedHash, String> {
    let parsed = PasswordHash::new(text).map_err(|e| format!("a malformed Argon2 hash: {e}"))?;
    let params =
        argon2::Params::try_from(&parsed).map_err(|e| format!("a malformed Argon2 hash: {e}"))?;
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("a malformed Argon2 hash: no salt or no hash".into());
    }
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB || params.t_cost() > MAX_ARGON2_PASSES {
        return Err(format!(
            "Argon2 cost out of bounds (at most {MAX_ARGON2_MEMORY_KIB} KiB and \
             {MAX_ARGON2_PASSES} passes)"
        ));
    }
    Ok(ImportedHash::Argon2(text.to_owned()))
}

fn iterations(n: &str) -> Result<NonZeroU32, String> {
    n.parse::<u32>()
        .ok()
        .and_then(NonZeroU32::new)
        .filter(|n| n.get() <= MAX_PBKDF2_ITERATIONS)
        .ok_or_else(|| {
            format!("PBKDF2 iterations must be a number from 1 to {MAX_PBKDF2_ITERATIONS}")
        })
}

fn check_pbkdf2_lengths(salt: &[u8], hash: &[u8]) -> Result<(), String> {
    if salt.is_empty() || salt.len() > 128 || !(16..=128).contains(&hash.len()) {
        return Err("a malformed PBKDF2 hash (salt 1 to 128 bytes, hash 16 to 128)".into());
    }
    Ok(())
}

fn pbkdf2(text: &str, sha512: bool) -> Result<ImportedHash, String> {
    let fields: Vec<&str> = text.split('$').collect();
    let malformed = || "a malformed PBKDF2 hash".to_owned();
    // passlib: $pbkdf2-sha256$ROUNDS$SALT$HASH, adapted base64.
    if let [_, _, rounds, salt, hash] = fields.as_slice() {
        if !rounds.is_empty() && rounds.bytes().all(|b| b.is_ascii_digit()) {
            let ab64 = |s: &str| STANDARD_NO_PAD.decode(s.replace('.', "+"));
            let salt = ab64(salt).map_err(|_| malformed())?;
            let hash = ab64(hash).map_err(|_| malformed())?;
            check_pbkdf2_lengths(&salt, &hash)?;
            return Ok(ImportedHash::Pbkdf2 {
                sha512,
                iterations: iterations(rounds)?,
                salt,
                hash,
            });
        }
    }
    // PHC: $pbkdf2-sha256$i=N,l=L$SALT$HASH.
    let parsed = PasswordHash::new(text).map_err(|e| format!("a malformed PBKDF2 hash: {e}"))?;
    let rounds = parsed
        .params
        .get_str("i")
        .ok_or_else(|| "a PBKDF2 hash without its i= (iterations) parameter".to_owned())?;
    let (Some(salt), Some(hash)) = (parsed.salt, parsed.hash) else {
        return Err("a malformed PBKDF2 hash: no salt or no hash".into());
    };
    let salt = STANDARD_NO_PAD
        .decode(salt.as_str())
        .map_err(|_| malformed())?;
    let hash = hash.as_bytes().to_vec();
    if let Some(l) = parsed.params.get_str("l") {
        if l.parse::<usize>().ok() != Some(hash.len()) {
            return Err("a PBKDF2 hash whose l= differs from its hash's length".into());
        }
    }
    check_pbkdf2_lengths(&salt, &hash)?;
    Ok(ImportedHash::Pbkdf2 {
        sha512,
        iterations: iterations(rounds)?,
        salt,
        hash,
    })
}

fn django(rest: &str) -> Result<ImportedHash, String> {
    let [rounds, salt, hash] = rest.split('$').collect::<Vec<_>>()[..] else {
        return Err("a malformed Django PBKDF2 hash (pbkdf2_sha256$ITERATIONS$SALT$HASH)".into());
    };
    let hash = STANDARD
        .decode(hash)
        .map_err(|_| "a malformed Django PBKDF2 hash (its hash is not base64)".to_owned())?;
    check_pbkdf2_lengths(salt.as_bytes(), &hash)?;
    Ok(ImportedHash::Pbkdf2 {
        sha512: false,
        iterations: iterations(rounds)?,
        salt: salt.as_bytes().to_vec(),
        hash,
    })
}

fn sha256(fields: Vec<&str>) -> Result<ImportedHash, String> {
    let (salt, hex) = match fields.as_slice() {
        [hex] => ("", *hex),
        [salt, hex] if !salt.is_empty() && salt.len() <= 128 => (*salt, *hex),
        _ => return Err("a malformed SHA-256 hash ($sha256$HEX or $sha256$SALT$HEX)".into()),
    };
    let mut hash = [0u8; 32];
    if hex.len() != 64 {
        return Err("a malformed SHA-256 hash (64 hex digits)".into());
    }
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = hex
            .get(i * 2..i * 2 + 2)
            .and_then(|d| u8::from_str_radix(d, 16).ok())
            .ok_or_else(|| "a malformed SHA-256 hash (64 hex digits)".to_owned())?;
    }
    Ok(ImportedHash::Sha256 {
        salt: salt.as_bytes().to_vec(),
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str, secret: &str) {
        let h = ImportedHash::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(h.verify(secret), "{text} should verify");
        assert!(!h.verify("wrong-secret"), "{text} accepted a wrong secret");
        assert!(!h.verify(""), "{text} accepted an empty secret");
        assert!(ImportedHash::is_imported(text));
    }

    // Known vectors, made outside Tessera: Python's hashlib (SHA-256, PBKDF2) and the
    // reference tools' published examples; the bcrypt and Argon2 ones by their own crates'
    // upstream test vectors.
    #[test]
    fn bcrypt_vectors_verify() {
        // The OpenBSD test vector "U*U" and the $2y$ variant from PHP's documentation.
        ok(
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "U*U",
        );
        ok(
            "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a",
            "rasmuslerdorf",
        );
        let b = bcrypt::hash_with_salt("s3cret", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        ok(&b, "s3cret");
    }

    #[test]
    fn pbkdf2_vectors_verify() {
        // hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 1) (RFC 7914 §11's inputs).
        let phc = format!(
            "$pbkdf2-sha256$i=1,l=32${}${}",
            STANDARD_NO_PAD.encode(b"salt"),
            "Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs"
        );
        ok(&phc, "password");
        // Django: pbkdf2_sha256$1$salt$base64(the same derived key).
        ok(
            "pbkdf2_sha256$1$salt$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
            "password",
        );
        // passlib's form, adapted base64.
        ok(
            &format!(
                "$pbkdf2-sha256$1${}$Eg.2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
                STANDARD_NO_PAD.encode(b"salt")
            ),
            "password",
        );
        let mut out = [0u8; 64];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA512,
            NonZeroU32::new(1000).unwrap(),
            b"0123456789abcdef",
            b"s3cret",
            &mut out,
        );
        ok(
            &format!(
                "$pbkdf2-sha512$i=1000,l=64${}${}",
                STANDARD_NO_PAD.encode(b"0123456789abcdef"),
                STANDARD_NO_PAD.encode(out)
            ),
            "s3cret",
        );
    }

    #[test]
    fn argon2_vectors_verify() {
        // Argon2i with small explicit parameters, and Argon2id as Tessera hashes passwords.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"somesaltsomesalt").unwrap();
        let params = argon2::Params::new(64, 2, 1, None).unwrap();
        let i = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params)
            .hash_password(b"password", &salt)
            .unwrap()
            .to_string();
        assert!(i.starts_with("$argon2i$v=19$m=64,t=2,p=1$"));
        ok(&i, "password");
        ok(
            &crate::password::hash("an argon2 secret").unwrap(),
            "an argon2 secret",
        );
    }

    #[test]
    fn sha256_vectors_verify() {
        // sha256(b"password") and sha256(b"salt" + b"password").
        ok(
            "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
            "password",
        );
        ok(
            "$sha256$salt$13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322",
            "password",
        );
        assert!(!ImportedHash::parse(
            "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        )
        .unwrap()
        .is_slow());
    }

    #[test]
    fn malformed_and_unknown_hashes_are_refused() {
        for bad in [
            "",
            "plaintext",
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
            "$md5$abc",
            "$1$salt$hash",
            "$2a$05$short",
            "$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "$pbkdf2-sha256$i=1,l=32$c2FsdA$!!!",
            "$pbkdf2-sha256$i=0,l=32$c2FsdA$EgxcEhHFhJapjcU02SKGsyYtVB2nWIiiNDd2ofetnEs",
            "$pbkdf2-sha256$i=99999999,l=32$c2FsdA$EgxcEhHFhJapjcU02SKGsyYtVB2nWIiiNDd2ofetnEs",
            "$pbkdf2-sha256$l=32$c2FsdA$EgxcEhHFhJapjcU02SKGsyYtVB2nWIiiNDd2ofetnEs",
            "$pbkdf2-sha256$i=1,l=31$c2FsdA$EgxcEhHFhJapjcU02SKGsyYtVB2nWIiiNDd2ofetnEs",
            "pbkdf2_sha256$1$salt",
            "pbkdf2_sha256$x$salt$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
            "$argon2id$v=19$m=16,t=2,p=1$c29tZXNhbHQ",
            "$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
            "$sha256$abc",
            "$sha256$zz884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
            "$sha256$a$b$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
        ] {
            assert!(ImportedHash::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(ImportedHash::parse(&format!("$sha256${}", "a".repeat(600))).is_err());
    }

    #[test]
    fn native_hashes_are_not_imported_ones() {
        let native = crate::secret::SecretHash::of("x");
        assert!(!ImportedHash::is_imported(native.as_str()));
    }

    #[test]
    fn debug_shows_no_hash_material() {
        let h = ImportedHash::parse(
            "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
        )
        .unwrap();
        assert!(!format!("{h:?}").contains("5e88"));
    }
}
