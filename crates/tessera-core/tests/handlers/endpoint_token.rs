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
