//! Authorization server metadata (RFC 8414) and OpenID Provider metadata.
//!
//! Owns the discovery document. It names only endpoints and values that exist; the issuer is
//! byte-for-byte the `iss` of every token (RFC 8414 §3.3). The URLs of the endpoints come from
//! the endpoint table ([`crate::endpoint::ENDPOINTS`], each row's first path under its metadata
//! key) and `grant_types_supported` from the grant table ([`crate::grant::GRANTS`]).

use crate::client_keys;
use crate::config::Config;
use crate::endpoint::{EndpointId, ENDPOINTS};
use crate::grant::GRANTS;
use crate::keys::KeySet;

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

/// The metadata document.
pub fn metadata(config: &Config, keys: &KeySet) -> serde_json::Value {
    let mut algs = keys.algorithms();
    if !algs.contains(&config.signing_alg.as_str()) {
        algs.push(config.signing_alg.as_str());
    }
    let grant_types: Vec<&str> = GRANTS.iter().map(|g| g.grant_type).collect();
    let mut doc = serde_json::json!({
        "issuer": config.issuer,
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid",
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
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "require_pushed_authorization_requests": config.require_par,
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": crate::dpop::ALGORITHMS,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": client_keys::ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": client_keys::ALGORITHMS,
        // Signed introspection responses (RFC 9701 §7); encrypted ones are not offered.
        "introspection_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_signing_alg_values_supported": client_keys::ALGORITHMS,
        "access_token_signing_alg_values_supported": algs,
        "service_documentation": "https://github.com/tessera-auth/tessera#readme",
    });
    if let Some(doc) = doc.as_object_mut() {
        for endpoint in ENDPOINTS {
            if endpoint.id == EndpointId::Register && !config.dynamic_registration.enabled() {
                continue;
            }
            if let Some(key) = endpoint.metadata_key {
                doc.insert(key.to_owned(), config.endpoint(endpoint.path()).into());
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key, Sealer, SigningAlg};

    fn document() -> serde_json::Value {
        let sealer = Sealer::from_secret(b"discovery test secret").unwrap();
        let config = Config::new("https://issuer.example/");
        let key = generate_key(SigningAlg::Es256, &sealer, 0, 0).unwrap();
        let keys = KeySet::load(&[key], &sealer).unwrap();
        metadata(&config, &keys)
    }

    #[test]
    fn every_named_endpoint_and_every_grant_comes_from_its_table() {
        let doc = document();
        let named: Vec<_> = ENDPOINTS
            .iter()
            .filter(|e| e.metadata_key.is_some() && e.id != EndpointId::Register)
            .collect();
        // Off by default: not named.
        assert!(doc.get("registration_endpoint").is_none());
        assert_eq!(named.len(), 9);
        for e in named {
            let key = e.metadata_key.unwrap();
            assert_eq!(
                doc[key],
                format!("https://issuer.example{}", e.path()),
                "{key}"
            );
        }
        assert_eq!(doc["token_endpoint"], "https://issuer.example/oauth2/token");
        assert_eq!(
            doc["pushed_authorization_request_endpoint"],
            "https://issuer.example/oauth2/par"
        );
        assert_eq!(doc["require_pushed_authorization_requests"], false);
        assert_eq!(
            doc["jwks_uri"],
            "https://issuer.example/.well-known/jwks.json"
        );
        let grants: Vec<&str> = doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        assert_eq!(
            grants,
            [
                "client_credentials",
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:device_code"
            ]
        );
        assert!(doc.get("sdk_token_endpoint").is_none());
    }

    #[test]
    fn introspection_responses_are_signed_with_the_algorithms_of_the_keys_only() {
        let doc = document();
        assert_eq!(
            doc["introspection_signing_alg_values_supported"],
            serde_json::json!(["ES256"])
        );
        // RFC 9701 §7: no encryption is offered.
        assert!(doc
            .get("introspection_encryption_alg_values_supported")
            .is_none());
        assert!(doc
            .get("introspection_encryption_enc_values_supported")
            .is_none());
    }
}
