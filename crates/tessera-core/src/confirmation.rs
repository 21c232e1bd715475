//! Sender-constrained tokens: the key a token is bound to.
//!
//! Owns [`Confirmation`], the `cnf` claim of a bound access token: the RFC 7638 thumbprint
//! of a DPoP key (`jkt`, RFC 9449 §6) or the SHA-256 thumbprint of a client certificate
//! (`x5t#S256`, RFC 8705 §3.1). The token endpoint decides the binding of a request
//! ([`crate::cx::Cx::confirmation`]); [`crate::issue`] writes it into every access token the
//! request mints (a JWT's claims, an opaque token's stored claims, so that introspection
//! returns it, RFC 9449 §6.2 and RFC 8705 §3.2); a protected resource compares it with the
//! proof or certificate the request presents.

use serde_json::{json, Map, Value};

/// What a bound token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// A DPoP public key, by its RFC 7638 SHA-256 JWK thumbprint, base64url (RFC 9449 §6.1).
    Jkt(String),
    /// A client certificate, by the base64url SHA-256 of its DER (RFC 8705 §3.1).
    X5tS256(String),
}

impl Confirmation {
    /// The `cnf` claim's value (RFC 7800 §3.1).
    pub fn cnf(&self) -> Value {
        match self {
            Confirmation::Jkt(t) => json!({ "jkt": t }),
            Confirmation::X5tS256(t) => json!({ "x5t#S256": t }),
        }
    }

    /// The confirmation of a token, read from its claims' `cnf`, if it is bound.
    pub fn of_claims(claims: &Map<String, Value>) -> Option<Self> {
        let cnf = claims.get("cnf")?.as_object()?;
        if let Some(t) = cnf.get("jkt").and_then(Value::as_str) {
            return Some(Confirmation::Jkt(t.to_owned()));
        }
        cnf.get("x5t#S256")
            .and_then(Value::as_str)
            .map(|t| Confirmation::X5tS256(t.to_owned()))
    }

    /// The `token_type` a token with this binding is issued as: `DPoP` for a DPoP-bound
    /// token (RFC 9449 §5), `Bearer` for a certificate-bound one (RFC 8705 §3: it is still
    /// presented as a bearer token, over the mutual TLS connection).
    pub fn token_type(&self) -> &'static str {
        match self {
            Confirmation::Jkt(_) => "DPoP",
            Confirmation::X5tS256(_) => "Bearer",
        }
    }

    /// The base64url SHA-256 thumbprint of a DER certificate (RFC 8705 §3.1).
    pub fn of_certificate(der: &[u8]) -> Self {
        use base64::Engine as _;
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        Confirmation::X5tS256(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnf_round_trips_through_claims() {
        for c in [
            Confirmation::Jkt("abc".into()),
            Confirmation::X5tS256("def".into()),
        ] {
            let mut claims = Map::new();
            claims.insert("cnf".into(), c.cnf());
            assert_eq!(Confirmation::of_claims(&claims), Some(c));
        }
        assert_eq!(Confirmation::of_claims(&Map::new()), None);
    }

    #[test]
    fn certificate_thumbprint_is_base64url_sha256() {
        // SHA-256 of the empty string.
        assert_eq!(
            Confirmation::of_certificate(b""),
            Confirmation::X5tS256("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU".into())
        );
    }
}
