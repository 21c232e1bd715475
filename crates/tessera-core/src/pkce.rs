//! Proof Key for Code Exchange (RFC 7636).
//!
//! Owns the checks of a `code_challenge` at the authorization endpoint and of a
//! `code_verifier` at the token endpoint. `S256` always; `plain` only for a client allowed it
//! (RFC 9700 §2.1.1 recommends S256).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;
use subtle::ConstantTimeEq;

use crate::error::OAuthError;

/// The two methods of RFC 7636 §4.2.
pub const S256: &str = "S256";
/// The `plain` method.
pub const PLAIN: &str = "plain";

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
/// The challenge of either method has the same shape.
fn well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a challenge and its method at the authorization endpoint; returns the method
/// (`plain` when none was given, RFC 7636 §4.3).
pub fn check_challenge(
    challenge: &str,
    method: Option<&str>,
    allow_plain: bool,
) -> Result<&'static str, OAuthError> {
    let method = match method {
        Some(S256) => S256,
        Some(PLAIN) | None if allow_plain => PLAIN,
        Some(PLAIN) | None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ))
        }
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256 or plain",
            ))
        }
    };
    if !well_formed(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]",
        ));
    }
    Ok(method)
}

/// Whether `verifier` answers `challenge` under `method`, compared in constant time.
pub fn verify(challenge: &str, method: &str, verifier: &str) -> bool {
    if !well_formed(verifier) {
        return false;
    }
    let computed = match method {
        S256 => URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes())),
        PLAIN => verifier.to_owned(),
        _ => return false,
    };
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies() {
        assert!(verify(CHALLENGE, S256, VERIFIER));
        assert!(!verify(CHALLENGE, S256, &VERIFIER.replace('d', "e")));
        assert!(!verify(CHALLENGE, PLAIN, VERIFIER));
        assert!(verify(VERIFIER, PLAIN, VERIFIER));
        assert!(!verify(CHALLENGE, "S512", VERIFIER));
    }

    #[test]
    fn short_or_odd_values_are_refused() {
        assert!(!verify("abc", PLAIN, "abc"));
        assert!(check_challenge("short", Some(S256), false).is_err());
        assert!(check_challenge(&"a".repeat(129), Some(S256), false).is_err());
        assert!(check_challenge(&format!("{}!", &CHALLENGE[1..]), Some(S256), false).is_err());
        assert_eq!(check_challenge(CHALLENGE, Some(S256), false).unwrap(), S256);
    }

    #[test]
    fn plain_only_when_allowed() {
        assert!(check_challenge(CHALLENGE, Some(PLAIN), false).is_err());
        assert!(check_challenge(CHALLENGE, None, false).is_err());
        assert_eq!(check_challenge(CHALLENGE, None, true).unwrap(), PLAIN);
        assert!(check_challenge(CHALLENGE, Some("S1"), true).is_err());
    }
}
