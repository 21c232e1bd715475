//! Scopes (RFC 6749 §3.3).
//!
//! Owns [`ScopeSet`]: a parsed, de-duplicated list of scope tokens, and the rule that a request
//! may only ask for scopes its client was registered with.

use crate::error::OAuthError;

/// A set of scope tokens, in the order first given, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string. RFC 6749 §3.3: scope-token =
    /// 1*( %x21 / %x23-5B / %x5D-7E ).
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let mut out: Vec<String> = Vec::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            if !tok
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(OAuthError::invalid_scope(
                    "scope contains invalid characters",
                ));
            }
            if !out.iter().any(|t| t == tok) {
                out.push(tok.to_owned());
            }
        }
        Ok(Self(out))
    }

    /// Whether no scope is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the set has this scope.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|t| t == scope)
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Checks that every scope of `self` is in `allowed`, naming the first that is not.
    pub fn check_within(&self, allowed: &ScopeSet) -> Result<(), OAuthError> {
        match self.0.iter().find(|t| !allowed.contains(t)) {
            Some(t) => Err(OAuthError::invalid_scope(format!(
                "scope '{}' is not allowed for this client",
                t.chars().take(64).collect::<String>()
            ))),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_dedups() {
        let s = ScopeSet::parse("read  write read").unwrap();
        assert_eq!(s.to_string(), "read write");
    }

    #[test]
    fn rejects_quotes_and_backslashes() {
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
    }

    #[test]
    fn scope_outside_client_is_invalid_scope() {
        let allowed = ScopeSet::parse("read write").unwrap();
        assert!(ScopeSet::parse("read")
            .unwrap()
            .check_within(&allowed)
            .is_ok());
        let err = ScopeSet::parse("admin")
            .unwrap()
            .check_within(&allowed)
            .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::InvalidScope);
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(s in "[a-z:._-]{1,8}( [a-z:._-]{1,8}){0,5}") {
            let set = ScopeSet::parse(&s).unwrap();
            prop_assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set);
        }
    }
}
