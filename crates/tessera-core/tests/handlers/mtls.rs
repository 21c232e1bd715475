//! Certificate-bound tokens through the token endpoint (RFC 8705 §3, §4): the access tokens
//! of a request carry the thumbprint of its certificate; a public client's refresh tokens
//! are bound to the certificate the family started with, a confidential client's are not
//! (its authentication binds them).

use std::sync::Arc;

use tessera_core::confirmation::Confirmation;
use tessera_core::endpoint::token;
use tessera_core::error::{ErrorCode, OAuthError};
use tessera_core::grant::TokenResponse;
use tessera_core::model::RefreshPolicy;

use crate::support::*;

fn certificate() -> Vec<u8> {
    rcgen::generate_simple_self_signed(vec!["client.example.com".into()])
        .unwrap()
        .cert
        .der()
        .to_vec()
}

/// A token request by `c` over a connection that presented `cert`.
fn with_cert(
    w: &World,
    cert: Option<&[u8]>,
    c: &Creds,
    pairs: &[(&str, &str)],
) -> Result<TokenResponse, OAuthError> {
    let mut cx = w.cx();
    cx.request.client_cert = cert.map(Arc::from);
    run(token::handle(&cx, None, &World::params(c, pairs)))
}

fn thumbprint(der: &[u8]) -> serde_json::Value {
    Confirmation::of_certificate(der).cnf()["x5t#S256"].clone()
}

/// A code-flow client binding its tokens to its certificate, public or not, and the tokens
/// of a first sign-in made over a connection with `cert`.
fn family(w: &World, public: bool, cert: &[u8]) -> (Creds, TokenResponse) {
    let c = w.code_client(|c| {
        c.public = public;
        c.user_flow.refresh_tokens = RefreshPolicy::Always;
        c.user_flow.certificate_bound_access_tokens = Some(true);
    });
    let user = w.user(&format!("u{}", tessera_core::secret::generate_id()));
    let code = w.code(&c, &user, "openid read");
    let t = with_cert(
        w,
        Some(cert),
        &c,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .unwrap();
    (c, t)
}

#[test]
fn a_public_clients_refresh_tokens_need_the_certificate_the_family_started_with() {
    let w = World::new();
    let own = certificate();
    let (c, t) = family(&w, true, &own);
    assert_eq!(payload(&at(&t))["cnf"]["x5t#S256"], thumbprint(&own));
    let first = rt(&t);
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first.as_str()),
    ];
    for other in [Some(certificate()), None] {
        let e = with_cert(&w, other.as_deref(), &c, &refresh).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant, "{e:?}");
    }
    let next = with_cert(&w, Some(&own), &c, &refresh).unwrap();
    assert_eq!(payload(&at(&next))["cnf"]["x5t#S256"], thumbprint(&own));
}

#[test]
fn a_confidential_clients_refresh_tokens_are_bound_by_its_authentication_only() {
    let w = World::new();
    let own = certificate();
    let (c, t) = family(&w, false, &own);
    assert_eq!(payload(&at(&t))["cnf"]["x5t#S256"], thumbprint(&own));
    // A new certificate (a renewal): the refresh works, the new tokens name it.
    let renewed = certificate();
    let first = rt(&t);
    let next = with_cert(
        &w,
        Some(&renewed),
        &c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first.as_str()),
        ],
    )
    .unwrap();
    assert_eq!(payload(&at(&next))["cnf"]["x5t#S256"], thumbprint(&renewed));
}

#[test]
fn a_client_that_does_not_bind_gets_bearer_tokens_whatever_it_presents() {
    let w = World::new();
    let c = w.client(|_| {});
    let t = with_cert(
        &w,
        Some(&certificate()),
        &c,
        &[("grant_type", "client_credentials")],
    )
    .unwrap();
    assert!(payload(&at(&t)).get("cnf").is_none());
}
