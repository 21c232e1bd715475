//! Deployment environments' names: the one that exists from the start and what a name may be.
//!
//! A leaf: stored records ([`crate::model::EnvRecord`]), tokens and the endpoints that take an
//! environment name all follow these rules.

/// The name of the environment that exists from the start and cannot be deleted.
pub const DEFAULT_ENV: &str = "default";

/// Whether a string is an acceptable environment name: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The client id under which `/sdk/token` issues the tokens of an environment
/// ([`crate::endpoint::sdk_token`]). It has no secret and no keys, so nothing can
/// authenticate as it; deleting it (as deleting the environment does) revokes those tokens.
pub fn sdk_client_id(env: &str) -> String {
    format!("sdk:{env}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for ok in [DEFAULT_ENV, "staging", "eu-west_2", &"a".repeat(64)] {
            assert!(valid_env_name(ok), "{ok}");
        }
        for bad in ["", "Staging", "a b", "ä", "a/b", &"a".repeat(65)] {
            assert!(!valid_env_name(bad), "{bad}");
        }
    }
}
