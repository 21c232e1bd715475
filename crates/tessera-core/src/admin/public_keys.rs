//! The public keys of a `private_key_jwt` client (RFC 7523 §2.2) or of a trusted issuer
//! (RFC 7523 §3): read from a JWKS document and/or PEM keys, and checked as a registration
//! is ([`ClientKeys::check_registration`]: at most ten keys, RSA ones of 2048 to 4096 bits,
//! each with its own `kid` when several). A PEM key gets its RFC 7638 thumbprint as `kid`
//! ([`ClientKeys::add_pem`]), the one its signer puts in the JWS header.

use serde::Deserialize;

use super::{AdminError, AdminResult};
use crate::client_assertion::ClientKeys;

/// A key document as given, with where it came from (a file name, a field), for messages.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyDocument {
    /// Where it came from, named in messages about it (none: the message names no source).
    #[serde(default)]
    pub source: Option<String>,
    /// Its text: a JWKS document (RFC 7517 §5), or one PEM public key.
    pub text: String,
}

impl KeyDocument {
    fn fault(&self, e: String) -> AdminError {
        let reason = match &self.source {
            Some(s) => format!("{s}: {e}"),
            None => e,
        };
        AdminError::invalid("keys", reason)
    }
}

/// Public keys as given: a JWKS document, PEM keys, or both.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PublicKeys {
    /// A JWKS document.
    pub jwks: Option<KeyDocument>,
    /// PEM public keys.
    pub pems: Vec<KeyDocument>,
}

impl PublicKeys {
    /// Whether any key was given.
    pub fn given(&self) -> bool {
        self.jwks.is_some() || !self.pems.is_empty()
    }

    /// Reads and checks every key; the stored form. At least one key is needed.
    pub fn load(&self) -> AdminResult<String> {
        let mut keys = match &self.jwks {
            Some(doc) => ClientKeys::from_jwks(&doc.text).map_err(|e| doc.fault(e))?,
            None => ClientKeys::default(),
        };
        for doc in &self.pems {
            keys.add_pem(&doc.text).map_err(|e| doc.fault(e))?;
        }
        if keys.keys.is_empty() && keys.pems.is_empty() {
            return Err(AdminError::invalid(
                "keys",
                "private_key_jwt needs public keys: a JWKS or at least one PEM public key",
            ));
        }
        keys.check_registration()
            .map_err(|e| AdminError::invalid("keys", e))?;
        Ok(keys.to_stored())
    }
}

/// The `kid`s of a stored key set, in order (`None` for a key without one).
pub fn kids(stored: &str) -> Vec<Option<String>> {
    serde_json::from_str::<ClientKeys>(stored)
        .map(|k| k.kids())
        .unwrap_or_default()
}

/// How many keys a stored key set holds.
pub fn count(stored: &str) -> usize {
    serde_json::from_str::<ClientKeys>(stored)
        .map(|k| k.keys.len() + k.pems.len())
        .unwrap_or(0)
}
