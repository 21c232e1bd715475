//! The format of opaque access tokens: a public selector and a secret verifier.
//!
//! Owns [`mint`], [`selector`] and [`expiry_cutoff`]. A token is `tat_` + a 32-hex-digit id +
//! 43 base64url chars of secret (256 random bits). The id is the row's key and starts with the
//! token's expiry second, so that:
//! - new rows land in a few places of the index (one per token lifetime in use) instead of at
//!   random ones: one group commit touches a few pages, not one page per token;
//! - expired rows are one range of keys, deleted without a second index on expiry (which
//!   cost a fifth of the write throughput, measured);
//! - lookups never compare secrets inside the database.
//!
//! The whole token is hashed (SHA-256) and that hash is what is stored and compared, in
//! constant time, after the row is found by id. The id reveals when the token expires, which
//! `expires_in` already told its holder.

use crate::secret::{self, hex, random_bytes, Secret};

/// Prefix of opaque access tokens (recognisable by secret scanners; adds no entropy).
pub const PREFIX: &str = "tat_";
const ID_LEN: usize = 32;
const SECRET_LEN: usize = 43;

/// Prefix of refresh tokens, which have the same shape.
pub const REFRESH_PREFIX: &str = "trt_";

/// Makes a new token that expires at `expires_at`; returns it and its id.
pub fn mint(expires_at: i64) -> (Secret, String) {
    mint_with(PREFIX, expires_at)
}

/// Makes a new refresh token that expires at `expires_at`; returns it and its id.
pub fn mint_refresh(expires_at: i64) -> (Secret, String) {
    mint_with(REFRESH_PREFIX, expires_at)
}

fn mint_with(prefix: &str, expires_at: i64) -> (Secret, String) {
    let mut id = hex(&second(expires_at));
    id.push_str(&hex(&random_bytes::<12>()));
    let verifier = secret::generate("");
    let token = Secret::new(format!("{prefix}{id}{}", verifier.expose()));
    (token, id)
}

/// Every id below this one belongs to a token that expired before `now`.
pub fn expiry_cutoff(now: i64) -> String {
    hex(&second(now))
}

fn second(t: i64) -> [u8; 4] {
    (t.clamp(0, i64::from(u32::MAX)) as u32).to_be_bytes()
}

/// The id of a well-formed opaque access token, or `None` for anything else.
pub fn selector(token: &str) -> Option<&str> {
    selector_with(PREFIX, token)
}

/// The id of a well-formed refresh token, or `None` for anything else.
pub fn refresh_selector(token: &str) -> Option<&str> {
    selector_with(REFRESH_PREFIX, token)
}

fn selector_with<'t>(prefix: &str, token: &'t str) -> Option<&'t str> {
    let rest = token.strip_prefix(prefix)?;
    if rest.len() != ID_LEN + SECRET_LEN {
        return None;
    }
    let (id, verifier) = rest.split_at_checked(ID_LEN)?;
    let id_ok = id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let verifier_ok = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && verifier_ok).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minted_tokens_parse_back_to_their_id_and_differ() {
        let (a, id_a) = mint(1_700_000_000);
        let (b, id_b) = mint(1_700_000_000);
        assert_ne!(a, b);
        assert_ne!(id_a, id_b);
        assert_eq!(selector(a.expose()), Some(id_a.as_str()));
        assert!(id_a.starts_with(&hex(&1_700_000_000u32.to_be_bytes())));
    }

    #[test]
    fn ids_sort_by_expiry_and_the_cutoff_splits_expired_from_live() {
        let (_, early) = mint(1_000);
        let (_, late) = mint(1_001);
        assert!(early < late);
        assert!(
            early.as_str() < expiry_cutoff(1_001).as_str(),
            "expired before 1001"
        );
        assert!(
            late.as_str() >= expiry_cutoff(1_001).as_str(),
            "not expired before 1001"
        );
    }

    #[test]
    fn malformed_tokens_have_no_selector() {
        let (t, _) = mint(5);
        let s = t.expose();
        assert!(selector(&s[..s.len() - 1]).is_none());
        assert!(selector(&s.replace("tat_", "tax_")).is_none());
        assert!(selector(&s.to_uppercase()).is_none());
        assert!(selector("").is_none());
    }

    proptest! {
        #[test]
        fn selector_never_panics(s in "\\PC{0,100}") {
            let _ = selector(&s);
        }
    }
}
