//! Authorization server metadata (RFC 8414): the issuer, endpoints that exist, and the grant
//! types of the grant table, each of which the token endpoint dispatches.

use serde_json::Value;
use tessera_core::config::Config;
use tessera_core::endpoint::discovery::metadata;
use tessera_core::error::ErrorCode;
use tessera_core::grant::GRANTS;

use crate::support::*;

#[test]
fn the_document_names_the_issuer_and_its_endpoints() {
    let w = World::new();
    let m = metadata(&w.config, &w.keys);
    // RFC 8414 §3.3: byte-for-byte the `iss` of every token.
    assert_eq!(m["issuer"], ISSUER);
    let token = at(&w
        .token(&w.client(|_| {}), &[("grant_type", "client_credentials")])
        .unwrap());
    assert_eq!(payload(&token)["iss"], m["issuer"]);
    for (field, path) in [
        ("token_endpoint", "/oauth2/token"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("authorization_endpoint", "/oauth2/authorize"),
        ("userinfo_endpoint", "/userinfo"),
        ("end_session_endpoint", "/oauth2/logout"),
    ] {
        assert_eq!(m[field], format!("{ISSUER}{path}"), "{field}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let algs = m["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.iter().any(|a| a == "ES256"), "{algs:?}");
    // A trailing slash is not part of the issuer.
    let slash = metadata(&Config::new(format!("{ISSUER}/")), &w.keys);
    assert_eq!(slash["issuer"], ISSUER);
}

#[test]
fn the_grant_types_are_the_grant_tables_and_each_is_dispatched() {
    let w = World::new();
    let m = metadata(&w.config, &w.keys);
    let listed: Vec<&str> = m["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let table: Vec<&str> = GRANTS.iter().map(|g| g.grant_type).collect();
    assert_eq!(listed, table);
    let none = w.client(|c| c.grant_types = Vec::new());
    for g in listed {
        let got = w.token(&none, &[("grant_type", g)]);
        assert_ne!(code_of(g, got), ErrorCode::UnsupportedGrantType, "{g}");
    }
}
