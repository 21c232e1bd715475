//! Request parameters, parsed once at the edge.
//!
//! Owns [`Params`], the ordered list of name/value pairs of a request body, and the parsers
//! that build it from `application/x-www-form-urlencoded` (RFC 6749 §3.2) and from a flat JSON
//! object (an extension some products rely on). Multipart bodies are split by the HTTP crate
//! and handed in as pairs. RFC 6749 §3.1: "Request and response parameters MUST NOT be
//! included more than once", so [`Params::get`] refuses a repeated parameter.

use crate::error::OAuthError;

/// Most parameters a request body may carry; more is refused as malformed.
pub const MAX_PARAMS: usize = 64;

/// The parameters of one request, in order of appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Builds params from pairs, refusing more than [`MAX_PARAMS`].
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        if pairs.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request("too many parameters"));
        }
        Ok(Self { pairs })
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, OAuthError> {
        let mut pairs = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if pairs.len() >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            if k.is_empty() {
                return Err(OAuthError::invalid_request(
                    "the body is not a valid application/x-www-form-urlencoded form",
                ));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self { pairs })
    }

    /// Parses a JSON object whose values are strings (numbers and booleans are taken as their
    /// text). Anything else is `invalid_request`.
    pub fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        use serde::Deserializer as _;
        // Read the members in order, keeping repeats, so that a repeated member is refused
        // like a repeated form field (a `serde_json::Value` would silently keep the last).
        let mut de = serde_json::Deserializer::from_slice(body);
        let members = de
            .deserialize_map(MembersVisitor)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| {
                if e.is_data() {
                    OAuthError::invalid_request("the JSON body must be an object")
                } else {
                    OAuthError::invalid_request("the body is not valid JSON")
                }
            })?;
        let mut pairs = Vec::with_capacity(members.len());
        for (k, v) in members {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(OAuthError::invalid_request(format!(
                        "JSON parameter '{}' must be a string",
                        truncate(&k)
                    )))
                }
            };
            pairs.push((k, v));
        }
        Self::from_pairs(pairs)
    }

    /// The single value of `name`, if present. A parameter given twice is `invalid_request`;
    /// an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name {
                if found.is_some() {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter '{}' is repeated",
                        truncate(name)
                    )));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// The single value of `name`, or `invalid_request` if it is missing.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| {
            OAuthError::invalid_request(format!("missing parameter '{}'", truncate(name)))
        })
    }

    /// Every value of a parameter that may be repeated (such as RFC 8707's `resource`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether any pair has this name.
    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Refuses any parameter given more than once (RFC 6749 §3.1), except `resource`, which
    /// RFC 8707 §2 allows to repeat.
    pub fn reject_duplicates(&self) -> Result<(), OAuthError> {
        for (i, (k, _)) in self.pairs.iter().enumerate() {
            if k != "resource" && self.pairs.iter().skip(i + 1).any(|(other, _)| other == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter '{}' is repeated",
                    truncate(k)
                )));
            }
        }
        Ok(())
    }
}

/// Collects the members of a JSON object in order, repeats included.
struct MembersVisitor;

impl<'de> serde::de::Visitor<'de> for MembersVisitor {
    type Value = Vec<(String, serde_json::Value)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
            if out.len() >= MAX_PARAMS {
                return Err(serde::de::Error::custom("too many members"));
            }
            out.push((k, v));
        }
        Ok(out)
    }
}

/// Cuts a client-supplied name for echoing in an error description.
fn truncate(s: &str) -> String {
    s.chars()
        .take(40)
        .filter(|c| !c.is_control())
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn form_values_are_decoded() {
        let p = Params::from_form(b"grant_type=client_credentials&scope=a+b%20c").unwrap();
        assert_eq!(p.get("grant_type").unwrap(), Some("client_credentials"));
        assert_eq!(p.get("scope").unwrap(), Some("a b c"));
        assert_eq!(p.get("missing").unwrap(), None);
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let p = Params::from_form(b"grant_type=a&grant_type=b").unwrap();
        assert_eq!(
            p.get("grant_type").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert!(p.reject_duplicates().is_err());
    }

    #[test]
    fn json_object_of_strings_is_accepted_and_others_refused() {
        let p = Params::from_json(br#"{"client_id":"x","n":3}"#).unwrap();
        assert_eq!(p.get("client_id").unwrap(), Some("x"));
        assert_eq!(p.get("n").unwrap(), Some("3"));
        for bad in [&b"[1]"[..], b"\"s\"", b"{\"a\":{}}", b"{", b""] {
            assert_eq!(
                Params::from_json(bad).unwrap_err().code,
                ErrorCode::InvalidRequest
            );
        }
    }

    #[test]
    fn repeated_json_member_is_kept_and_refused() {
        let p = Params::from_json(br#"{"client_secret":"a","client_secret":"b"}"#).unwrap();
        assert_eq!(p.pairs().len(), 2);
        assert_eq!(
            p.reject_duplicates().unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn empty_value_counts_as_absent() {
        let p = Params::from_form(b"scope=").unwrap();
        assert_eq!(p.get("scope").unwrap(), None);
        assert!(p.require("scope").is_err());
    }

    proptest! {
        #[test]
        fn form_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = Params::from_form(&body) {
                let _ = p.get("grant_type");
                let _ = p.reject_duplicates();
            }
        }

        #[test]
        fn json_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Params::from_json(&body);
        }

        #[test]
        fn json_parser_errors_are_invalid_request(s in "\\PC{0,64}") {
            if let Err(e) = Params::from_json(s.as_bytes()) {
                prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
            }
        }
    }
}
