//! The token endpoint (RFC 6749 §3.2): the steps before any grant (duplicates,
//! `grant_type`, client authentication) and the dispatch through the grant table.

use tessera_core::error::ErrorCode;
use tessera_core::grant::GRANTS;

use crate::support::*;

#[test]
fn requests_refused_before_any_grant() {
    let w = World::new();
    let c = w.client(|_| {});
    let secret = c.secret.clone().unwrap();
    let rows: Vec<(&str, Vec<(&str, &str)>, ErrorCode, &str)> = vec![
        (
            "no grant_type",
            vec![("client_id", &c.id), ("client_secret", &secret)],
            ErrorCode::InvalidRequest,
            "grant_type",
        ),
        (
            "an unknown grant type",
            vec![
                ("grant_type", "urn:example:nothing"),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ],
            ErrorCode::UnsupportedGrantType,
            "not supported",
        ),
        (
            "the password grant (RFC 9700 §2.4)",
            vec![
                ("grant_type", "password"),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ],
            ErrorCode::UnsupportedGrantType,
            "RFC 9700",
        ),
        (
            "a repeated parameter (RFC 6749 §3.1)",
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ],
            ErrorCode::InvalidRequest,
            "repeated",
        ),
        (
            "no client authentication",
            vec![("grant_type", "client_credentials")],
            ErrorCode::InvalidClient,
            "",
        ),
        (
            "a secret without a client id",
            vec![
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
            ErrorCode::InvalidRequest,
            "without client_id",
        ),
        (
            "an unknown grant type from a client that fails to authenticate",
            vec![
                ("grant_type", "urn:example:nothing"),
                ("client_id", &c.id),
                ("client_secret", "wrong"),
            ],
            ErrorCode::InvalidClient,
            "",
        ),
        (
            "a client assertion of an unknown type",
            vec![
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:example:other"),
                ("client_assertion", "a.b.c"),
            ],
            ErrorCode::InvalidClient,
            "client_assertion_type",
        ),
        (
            "a client assertion without its type",
            vec![
                ("grant_type", "client_credentials"),
                ("client_assertion", "a.b.c"),
            ],
            ErrorCode::InvalidRequest,
            "go together",
        ),
    ];
    for (case, pairs, code, why) in rows {
        let got = run(tessera_core::endpoint::token::handle(
            &w.cx(),
            None,
            &World::raw(&pairs),
        ));
        refused(case, got, code, why);
    }
}

#[test]
fn every_grant_of_the_table_is_dispatched_to_its_module() {
    let w = World::new();
    // A client registered for no grant at all: each grant's module refuses it as not
    // authorized for that grant, never as an unsupported grant type.
    let none = w.client(|c| c.grant_types = Vec::new());
    assert!(!GRANTS.is_empty());
    for g in GRANTS {
        let got = w.token(&none, &[("grant_type", g.grant_type)]);
        assert_eq!(
            code_of(g.grant_type, got),
            ErrorCode::UnauthorizedClient,
            "{}",
            g.grant_type
        );
    }
}

/// A client assertion (RFC 7523 §2.2) of `client_id` made now, with edits.
fn client_assertion(
    w: &World,
    signer: &Signer,
    client_id: &str,
    edits: &[(&str, Option<serde_json::Value>)],
) -> String {
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{ISSUER}/oauth2/token"),
        "exp": w.now() + 60,
        "iat": w.now(),
        "jti": tessera_core::secret::generate_id(),
    });
    signer.sign(&crate::grant_jwt_bearer::edited(claims, edits))
}

#[test]
fn private_key_jwt_authenticates_a_client_once_per_assertion_while_it_is_valid() {
    use serde_json::json;
    let w = World::new();
    let signer = Signer::new(&w.sealer);
    let c = w.client(|c| {
        c.secret_hash = None;
        c.jwks = Some(signer.stored());
    });
    let stranger = Signer::new(&w.sealer);
    let request = |assertion: &str| {
        let params = World::raw(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                tessera_core::client_assertion::ASSERTION_TYPE,
            ),
            ("client_assertion", assertion),
        ]);
        run(tessera_core::endpoint::token::handle(
            &w.cx(),
            None,
            &params,
        ))
    };
    let now = w.now();
    let rows: Vec<(&str, String, Result<(), &str>)> = vec![
        ("as made", client_assertion(&w, &signer, &c.id, &[]), Ok(())),
        (
            "aud: the issuer",
            client_assertion(&w, &signer, &c.id, &[("aud", Some(json!(ISSUER)))]),
            Ok(()),
        ),
        (
            "aud: another server",
            client_assertion(
                &w,
                &signer,
                &c.id,
                &[("aud", Some(json!("https://x.example")))],
            ),
            Err("aud"),
        ),
        (
            "iss differs from sub",
            client_assertion(&w, &signer, &c.id, &[("iss", Some(json!("someone")))]),
            Err("iss and sub"),
        ),
        (
            "expired",
            client_assertion(&w, &signer, &c.id, &[("exp", Some(json!(now - 61)))]),
            Err("expired"),
        ),
        (
            "no jti",
            client_assertion(&w, &signer, &c.id, &[("jti", None)]),
            Err("jti"),
        ),
        (
            "signed by another key",
            client_assertion(&w, &stranger, &c.id, &[]),
            Err("signature"),
        ),
        (
            "an unknown client",
            client_assertion(&w, &signer, "no-such-client", &[]),
            Err("signature"),
        ),
    ];
    for (case, assertion, expect) in rows {
        match expect {
            Ok(()) => {
                let r = request(&assertion).unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(payload(&at(&r))["client_id"], c.id.as_str(), "{case}");
            }
            Err(why) => refused(case, request(&assertion), ErrorCode::InvalidClient, why),
        }
    }
    // RFC 7523 §3 item 7: once.
    let once = client_assertion(&w, &signer, &c.id, &[]);
    assert!(request(&once).is_ok());
    refused(
        "replayed",
        request(&once),
        ErrorCode::InvalidClient,
        "already used",
    );
    // Valid for a minute and a minute of leeway, by the clock.
    let late = client_assertion(&w, &signer, &c.id, &[]);
    let in_time = client_assertion(&w, &signer, &c.id, &[]);
    w.advance(119);
    assert!(request(&in_time).is_ok());
    w.advance(1);
    refused(
        "after exp and leeway",
        request(&late),
        ErrorCode::InvalidClient,
        "expired",
    );
}
