//! Authorization server metadata (RFC 8414) and OpenID Provider metadata.
//!
//! Owns the discovery document. It names only endpoints and values that exist; the issuer is
//! byte-for-byte the `iss` of every token (RFC 8414 §3.3).

use crate::client_assertion;
use crate::config::Config;
use crate::model::grant_types;

/// Client authentication methods of the token, introspection and revocation endpoints.
const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
use crate::keys::KeySet;

/// The metadata document.
pub fn metadata(config: &Config, keys: &KeySet) -> serde_json::Value {
    let mut algs = keys.algorithms();
    if !algs.contains(&config.signing_alg.as_str()) {
        algs.push(config.signing_alg.as_str());
    }
    serde_json::json!({
        "issuer": config.issuer,
        "token_endpoint": config.endpoint("/oauth2/token"),
        "introspection_endpoint": config.endpoint("/oauth2/introspect"),
        "revocation_endpoint": config.endpoint("/oauth2/revoke"),
        "jwks_uri": config.endpoint("/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials", grant_types::JWT_BEARER],
        "response_types_supported": [],
        "scopes_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "access_token_signing_alg_values_supported": algs,
        "service_documentation": "https://github.com/tessera-auth/tessera#readme",
    })
}
