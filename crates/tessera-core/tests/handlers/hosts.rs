//! Hosts (custom domains, data centres): the same handlers answering as a host's
//! configuration ([`Config::for_host`]): the issuer of everything issued there is the host,
//! tokens of every host verify on every host, and a host bound to an environment serves only
//! that environment's clients, refusing the others exactly as unknown ones.

use tessera_core::config::{Config, Host};
use tessera_core::endpoint::authorize::AuthorizeError;
use tessera_core::error::ErrorCode;
use tessera_core::model::TokenFormat;
use tessera_core::store::TrustStore;

use crate::support::*;

const CUSTOM: &str = "https://api.customer.com";
const EU: &str = "https://eu.example.com";

/// The main configuration, with a custom domain bound to `prod` and a data centre.
fn main_config() -> Config {
    Config::new(ISSUER).with_hosts(vec![
        Host::parse(CUSTOM, Some("prod".into())).unwrap(),
        Host::parse(EU, None).unwrap(),
    ])
}

fn world() -> World {
    let mut w = World::new();
    w.config = main_config();
    run(w.store.ensure_env("prod", T0)).unwrap();
    w
}

/// Answers as the host at `index` of [`main_config`] from now on.
fn answer_as(w: &mut World, index: usize) {
    let main = main_config();
    w.config = main.for_host(&main.hosts[index]);
}

#[test]
fn a_code_flow_at_a_host_issues_everything_as_that_host() {
    let mut w = world();
    answer_as(&mut w, 1);
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let req = w
        .validate(&World::authorize_params(
            &c,
            "openid offline_access read",
            &[],
        ))
        .unwrap();
    let location = run(tessera_core::endpoint::authorize::issue_code(
        &w.cx(),
        &req,
        &w.session(&alice, T0),
    ))
    .unwrap();
    let p = query(&location);
    assert_eq!(
        p["iss"], EU,
        "RFC 9207: the authorization response names the host"
    );
    let r = w.exchange(&c, &p["code"], &[]).unwrap();
    assert_eq!(payload(&at(&r))["iss"], EU);
    assert_eq!(payload(r.id_token.as_deref().unwrap())["iss"], EU);
    // The default audience is the server's, whatever name the token was asked at.
    assert_eq!(payload(&at(&r))["aud"], ISSUER);
    // The main issuer verifies it and names its issuer; its own refresh is issued as itself.
    w.config = main_config();
    let info = w.introspect(&c, &at(&r)).unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["iss"], EU);
    let refreshed = w.refresh(&c, &rt(&r), &[]).unwrap();
    assert_eq!(payload(&at(&refreshed))["iss"], ISSUER);
    // And a host verifies the main issuer's tokens.
    answer_as(&mut w, 0);
    assert_eq!(w.look(&at(&refreshed)).unwrap().iss, ISSUER);
}

#[test]
fn opaque_tokens_keep_the_host_they_were_issued_as() {
    let mut w = world();
    let c = w.client(|r| r.access_token_format = TokenFormat::Opaque);
    answer_as(&mut w, 1);
    let at_eu = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    w.config = main_config();
    let at_main = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    for (token, iss) in [(&at_eu, EU), (&at_main, ISSUER)] {
        for host in [None, Some(1)] {
            match host {
                Some(i) => answer_as(&mut w, i),
                None => w.config = main_config(),
            }
            let info = w.introspect(&c, token).unwrap();
            assert_eq!(info["active"], true);
            assert_eq!(info["iss"], iss, "{host:?}: {info}");
            assert_eq!(
                info.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k == "iss")
                    .count(),
                1
            );
        }
    }
}

#[test]
fn a_token_whose_issuer_is_no_configured_host_verifies_nowhere() {
    let mut w = world();
    answer_as(&mut w, 1);
    let c = w.client(|_| {});
    let token = at(&w
        .token(&c, &[("grant_type", "client_credentials")])
        .unwrap());
    assert!(w.look(&token).is_some());
    // The same server without that host configured: the token names someone else.
    // (A server's hosts never change while it runs, and every host accepts the same issuers,
    // so the verified-token cache is shared; here the configuration changes under it.)
    w.config = Config::new(ISSUER);
    w.verified.clear();
    assert!(w.look(&token).is_none());
    assert!(!w.active(&c, &token));
}

#[test]
fn a_host_bound_to_an_environment_refuses_other_clients_as_unknown_ones() {
    let mut w = world();
    let prod = w.client(|r| r.env = "prod".into());
    let other = w.client(|_| {});
    let code_client = w.code_client(|_| {});
    answer_as(&mut w, 0);
    let cc = [("grant_type", "client_credentials")];
    assert!(w.token(&prod, &cc).is_ok());
    let refused = w.token(&other, &cc).unwrap_err();
    let unknown = w
        .token_basic("no-such-client", other.secret.as_deref().unwrap(), &cc)
        .unwrap_err();
    let basic = w
        .token_basic(&other.id, other.secret.as_deref().unwrap(), &cc)
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidClient);
    assert_eq!(basic.code, unknown.code);
    assert_eq!(basic.description, unknown.description);
    // Introspection and revocation there refuse it too.
    let token = at(&w.token(&prod, &cc).unwrap());
    assert_eq!(
        w.introspect(&other, &token).unwrap_err().code,
        ErrorCode::InvalidClient
    );
    assert_eq!(
        w.revoke(&other, &token).unwrap_err().code,
        ErrorCode::InvalidClient
    );
    // The authorization endpoint does not know it either.
    match w.validate(&World::authorize_params(&code_client, "openid", &[])) {
        Err(AuthorizeError::Page(e)) => assert_eq!(e.description, "unknown client"),
        other => panic!("{other:?}"),
    }
    // Everywhere else the client is served.
    for host in [None, Some(1)] {
        match host {
            Some(i) => answer_as(&mut w, i),
            None => w.config = main_config(),
        }
        assert!(w.token(&other, &cc).is_ok(), "{host:?}");
        assert!(w
            .validate(&World::authorize_params(&code_client, "openid", &[]))
            .is_ok());
    }
}
