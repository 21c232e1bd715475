//! The JWT-bearer grant (RFC 7523 §2.1, §3) at the token endpoint: the issuer trusted in the
//! client's environment, the signature, `aud`, `exp`, `nbf`, `iat`, `jti` once, the subject,
//! carried claims, scope, and who may use the grant.

use serde_json::{json, Value};
use tessera_core::error::ErrorCode;
use tessera_core::grant::types as grant_types;

use crate::support::*;

/// A JWT-bearer client (scopes `read write`) in `env`.
pub fn bearer_client(w: &World, env: &str) -> Creds {
    w.client(|c| {
        c.grant_types = vec![grant_types::JWT_BEARER.into()];
        c.env = env.into();
    })
}

/// The claims of a good assertion made now for the token endpoint.
pub fn claims(w: &World) -> Value {
    json!({
        "iss": VENDOR,
        "sub": "user-1",
        "aud": format!("{ISSUER}/oauth2/token"),
        "exp": w.now() + 300,
        "iat": w.now(),
        "jti": tessera_core::secret::generate_id(),
        "anyflow_team_id": "team-9",
    })
}

/// `claims` with edits: a value sets a claim, `None` removes it.
pub fn edited(mut claims: Value, edits: &[(&str, Option<Value>)]) -> Value {
    let m = claims.as_object_mut().unwrap();
    for (k, v) in edits {
        match v {
            Some(v) => m.insert((*k).to_owned(), v.clone()),
            None => m.remove(*k),
        };
    }
    claims
}

fn grant(
    w: &World,
    c: &Creds,
    assertion: &str,
    extra: &[(&str, &str)],
) -> Result<tessera_core::grant::TokenResponse, tessera_core::OAuthError> {
    let mut pairs = vec![
        ("grant_type", grant_types::JWT_BEARER),
        ("assertion", assertion),
    ];
    pairs.extend_from_slice(extra);
    w.token(c, &pairs)
}

#[test]
fn a_trusted_issuers_assertion_gives_a_token_for_its_user() {
    let w = World::new();
    let signer = w.trust("default", |_, _| {});
    let c = bearer_client(&w, "default");
    let r = grant(&w, &c, &signer.sign(&claims(&w)), &[]).unwrap();
    // The scope both the client and the registration allow.
    assert_eq!(r.scope, "read");
    assert!(r.refresh_token.is_none());
    let token = payload(&at(&r));
    assert_eq!(token["sub"], "user-1");
    assert_eq!(token["client_id"], c.id.as_str());
    assert_eq!(token["anyflow_team_id"], "team-9");
    assert_eq!(token["env"], "default");
}

#[test]
fn assertions_and_their_outcomes() {
    let w = World::new();
    let signer = w.trust("default", |t, _| {
        t.claims = vec!["anyflow_team_id".into(), "anyflow_user_id".into()];
    });
    let stranger = Signer::new(&w.sealer);
    let c = bearer_client(&w, "default");
    let now = w.now();
    let token_endpoint = format!("{ISSUER}/oauth2/token");
    type Edits = Vec<(&'static str, Option<Value>)>;
    // (case, edits, Ok(sub) or Err(description fragment))
    let rows: Vec<(&str, Edits, Result<&str, &str>)> = vec![
        ("as made", vec![], Ok("user-1")),
        (
            "aud: the issuer",
            vec![("aud", Some(json!(ISSUER)))],
            Ok("user-1"),
        ),
        (
            "aud: a list naming the token endpoint",
            vec![(
                "aud",
                Some(json!(["https://other.example", token_endpoint])),
            )],
            Ok("user-1"),
        ),
        (
            "aud: another server",
            vec![("aud", Some(json!("https://other.example")))],
            Err("aud"),
        ),
        (
            "no aud (RFC 7523 §3 item 3)",
            vec![("aud", None)],
            Err("aud"),
        ),
        ("no exp", vec![("exp", None)], Err("no exp")),
        (
            "expired",
            vec![("exp", Some(json!(now - 61)))],
            Err("expired"),
        ),
        (
            "expired within the leeway",
            vec![("exp", Some(json!(now - 30)))],
            Ok("user-1"),
        ),
        (
            "valid for too long",
            vec![("exp", Some(json!(now + 3600 + 61)))],
            Err("too long"),
        ),
        (
            "not valid yet",
            vec![("nbf", Some(json!(now + 61)))],
            Err("not valid yet"),
        ),
        (
            "issued in the future",
            vec![("iat", Some(json!(now + 61)))],
            Err("future"),
        ),
        (
            "issued too long ago",
            vec![("iat", Some(json!(now - 3600 - 61)))],
            Err("too old"),
        ),
        ("no jti", vec![("jti", None)], Err("no jti")),
        ("no iss", vec![("iss", None)], Err("no iss")),
        (
            "an issuer not trusted",
            vec![("iss", Some(json!("https://unknown.example")))],
            Err("not trusted"),
        ),
        ("no subject", vec![("sub", None)], Err("subject")),
        (
            "an integer subject",
            vec![("sub", Some(json!(42)))],
            Ok("42"),
        ),
        (
            "a fractional subject",
            vec![("sub", Some(json!(1.5)))],
            Err("not an integer"),
        ),
        (
            "a subject too long",
            vec![("sub", Some(json!("x".repeat(256))))],
            Err("too long"),
        ),
        (
            "a carried claim too large",
            vec![("anyflow_user_id", Some(json!("x".repeat(1100))))],
            Err("larger than 1024"),
        ),
    ];
    for (case, edits, expect) in rows {
        let assertion = signer.sign(&edited(claims(&w), &edits));
        let got = grant(&w, &c, &assertion, &[]);
        match expect {
            Ok(sub) => {
                let r = got.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(payload(&at(&r))["sub"], sub, "{case}");
            }
            Err(why) => refused(case, got, ErrorCode::InvalidGrant, why),
        }
    }
    let other_key = stranger.sign(&claims(&w));
    refused(
        "signed by a key the issuer did not register",
        grant(&w, &c, &other_key, &[]),
        ErrorCode::InvalidGrant,
        "signature",
    );
    let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
    let body = base64_url(&claims(&w).to_string());
    refused(
        "alg none",
        grant(&w, &c, &format!("{header}.{body}."), &[]),
        ErrorCode::InvalidGrant,
        "",
    );
    refused(
        "not a JWT",
        grant(&w, &c, "not-a-jwt", &[]),
        ErrorCode::InvalidGrant,
        "well-formed",
    );
    refused(
        "no assertion",
        w.token(&c, &[("grant_type", grant_types::JWT_BEARER)]),
        ErrorCode::InvalidRequest,
        "assertion",
    );
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn an_assertion_is_used_once() {
    let w = World::new();
    let signer = w.trust("default", |_, _| {});
    let c = bearer_client(&w, "default");
    let assertion = signer.sign(&claims(&w));
    assert!(grant(&w, &c, &assertion, &[]).is_ok());
    refused(
        "the same assertion again (RFC 7523 §3 item 7)",
        grant(&w, &c, &assertion, &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    // By another client too: once per issuer.
    let other = bearer_client(&w, "default");
    refused(
        "by another client",
        grant(&w, &other, &assertion, &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    // A refused assertion is not recorded: the same jti in a good one still works.
    let jti = tessera_core::secret::generate_id();
    let bad = signer.sign(&edited(
        claims(&w),
        &[("jti", Some(json!(jti))), ("aud", None)],
    ));
    assert!(grant(&w, &c, &bad, &[]).is_err());
    let good = signer.sign(&edited(claims(&w), &[("jti", Some(json!(jti)))]));
    assert!(grant(&w, &c, &good, &[]).is_ok());
}

#[test]
fn an_assertion_expires_as_the_clock_moves() {
    let w = World::new();
    let signer = w.trust("default", |_, _| {});
    let c = bearer_client(&w, "default");
    // Made now for five minutes; presented when those and the minute of leeway are over.
    let late = signer.sign(&claims(&w));
    let in_time = signer.sign(&claims(&w));
    w.advance(359);
    assert!(
        grant(&w, &c, &in_time, &[]).is_ok(),
        "within exp plus leeway"
    );
    w.advance(1);
    refused(
        "after exp plus leeway",
        grant(&w, &c, &late, &[]),
        ErrorCode::InvalidGrant,
        "expired",
    );
}

#[test]
fn the_issuer_must_be_trusted_in_the_clients_environment() {
    let w = World::new();
    let signer = w.trust("staging", |_, _| {});
    let in_default = bearer_client(&w, "default");
    let in_staging = bearer_client(&w, "staging");
    refused(
        "a client of another environment",
        grant(&w, &in_default, &signer.sign(&claims(&w)), &[]),
        ErrorCode::InvalidGrant,
        "not trusted",
    );
    let r = grant(&w, &in_staging, &signer.sign(&claims(&w)), &[]).unwrap();
    assert_eq!(payload(&at(&r))["env"], "staging");
}

#[test]
fn scope_and_client_rules() {
    let w = World::new();
    let signer = w.trust("default", |t, _| {
        t.scopes = tessera_core::scope::ScopeSet::parse("read write admin").unwrap();
    });
    let c = bearer_client(&w, "default");
    let public = w.client(|c| {
        c.public = true;
        c.grant_types = vec![grant_types::JWT_BEARER.into()];
    });
    let cc_only = w.client(|_| {});
    let r = grant(&w, &c, &signer.sign(&claims(&w)), &[]).unwrap();
    assert_eq!(
        r.scope, "read write",
        "what both the client and the issuer allow"
    );
    let r = grant(&w, &c, &signer.sign(&claims(&w)), &[("scope", "write")]).unwrap();
    assert_eq!(r.scope, "write");
    for (case, by, extra, code) in [
        (
            "a scope only the issuer allows",
            &c,
            &[("scope", "admin")][..],
            ErrorCode::InvalidScope,
        ),
        (
            "a resource not registered",
            &c,
            &[("resource", "https://x.example")][..],
            ErrorCode::InvalidTarget,
        ),
        (
            "a public client",
            &public,
            &[][..],
            ErrorCode::UnauthorizedClient,
        ),
        (
            "a client not registered for the grant",
            &cc_only,
            &[][..],
            ErrorCode::UnauthorizedClient,
        ),
    ] {
        let got = grant(&w, by, &signer.sign(&claims(&w)), extra);
        assert_eq!(code_of(case, got), code, "{case}");
    }
}

#[test]
fn keys_published_at_a_jwks_uri_are_fetched_again_when_the_issuer_rotates() {
    let w = World::new();
    let uri = "https://vendor.example.com/jwks.json";
    let first = w.trust("default", |t, _| {
        t.keys = r#"{"keys":[]}"#.into();
        t.jwks_uri = Some(uri.into());
    });
    w.remote.publish(uri, &first.jwks);
    let c = bearer_client(&w, "default");
    assert!(grant(&w, &c, &first.sign(&claims(&w)), &[]).is_ok());
    // The issuer rotates: the stale document fails, one fresh fetch finds the new key.
    let second = Signer::new(&w.sealer);
    w.remote.publish(uri, &second.jwks);
    assert!(grant(&w, &c, &second.sign(&claims(&w)), &[]).is_ok());
    refused(
        "the retired key",
        grant(&w, &c, &first.sign(&claims(&w)), &[]),
        ErrorCode::InvalidGrant,
        "",
    );
}
