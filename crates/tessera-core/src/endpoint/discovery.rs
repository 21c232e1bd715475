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

/// The token endpoint also takes public clients (`none`) for the code flow.
const TOKEN_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
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
        "authorization_endpoint": config.endpoint("/oauth2/authorize"),
        "userinfo_endpoint": config.endpoint("/userinfo"),
        "end_session_endpoint": config.endpoint("/oauth2/logout"),
        "grant_types_supported": [
            "client_credentials", "authorization_code", "refresh_token", grant_types::JWT_BEARER
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
            "name", "preferred_username", "email", "email_verified"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256", "plain"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["en", "ja"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "access_token_signing_alg_values_supported": algs,
        "service_documentation": "https://github.com/tessera-auth/tessera#readme",
    })
}
