//! The admin API's OpenAPI description checked into the repository
//! (`docs/admin-openapi.json`) is the one the code generates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/admin-openapi.json")
}

#[test]
fn the_checked_in_openapi_description_is_the_generated_one() {
    let generated = tessera_http::admin_api::openapi_text();
    let path = checked_in();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == generated,
        "docs/admin-openapi.json differs from the description the code generates; regenerate \
         it with `UPDATE_OPENAPI=1 cargo test -p tessera-http --test admin_openapi` and commit it"
    );
}

#[test]
fn every_operation_needs_a_scope_and_documents_its_errors() {
    let doc: serde_json::Value =
        serde_json::from_str(&tessera_http::admin_api::openapi_text()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut ids = std::collections::BTreeSet::new();
    assert!(paths.contains_key("/admin/clients"));
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let scopes = op["security"][0]["admin_token"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} names no admin scope"));
            assert_eq!(scopes.len(), 1, "{method} {path}");
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} is not unique");
            for code in ["400", "401", "403", "404"] {
                assert!(
                    op["responses"][code].is_object(),
                    "{method} {path} does not document {code}"
                );
            }
        }
    }
}
