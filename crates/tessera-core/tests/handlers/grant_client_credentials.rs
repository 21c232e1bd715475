//! The client credentials grant (RFC 6749 §4.4): who may use it, what scope and audience
//! the token gets, and how long it lives.

use tessera_core::error::ErrorCode;
use tessera_core::grant::types as grant_types;
use tessera_core::model::TokenFormat;
use tessera_core::secret::SecretHash;

use crate::support::*;

/// What a row expects.
enum Expect {
    /// A token with this scope and this audience.
    Token(&'static str, &'static [&'static str]),
    /// A refusal with this code.
    Refused(ErrorCode),
}

#[test]
fn requests_and_their_outcomes() {
    let w = World::new();
    let plain = w.client(|_| {});
    let with_apis = w.client(|c| {
        c.audiences = vec![
            "https://api.a.example".into(),
            "https://api.b.example".into(),
        ];
    });
    let public = w.client(|c| {
        c.public = true;
        c.grant_types = vec![grant_types::CLIENT_CREDENTIALS.into()];
    });
    let code_only = w.code_client(|_| {});
    let wrong_secret = Creds {
        id: plain.id.clone(),
        secret: Some("tcs_not-the-secret".into()),
    };
    let unknown = Creds {
        id: "no-such-client".into(),
        secret: Some("tcs_whatever".into()),
    };
    let no_secret = Creds {
        id: plain.id.clone(),
        secret: None,
    };
    let cc = ("grant_type", "client_credentials");
    let rows: Vec<(&str, &Creds, Vec<(&str, &str)>, Expect)> = vec![
        (
            "no scope: the registered ones",
            &plain,
            vec![cc],
            Expect::Token("read write", &[ISSUER]),
        ),
        (
            "a narrower scope",
            &plain,
            vec![cc, ("scope", "read")],
            Expect::Token("read", &[ISSUER]),
        ),
        (
            "a scope not registered",
            &plain,
            vec![cc, ("scope", "read admin")],
            Expect::Refused(ErrorCode::InvalidScope),
        ),
        (
            "a malformed scope",
            &plain,
            vec![cc, ("scope", "re\"ad")],
            Expect::Refused(ErrorCode::InvalidScope),
        ),
        (
            "no resource: the registered audiences",
            &with_apis,
            vec![cc],
            Expect::Token(
                "read write",
                &["https://api.a.example", "https://api.b.example"],
            ),
        ),
        (
            "one registered resource",
            &with_apis,
            vec![cc, ("resource", "https://api.b.example")],
            Expect::Token("read write", &["https://api.b.example"]),
        ),
        (
            "audience as a synonym",
            &with_apis,
            vec![cc, ("audience", "https://api.a.example")],
            Expect::Token("read write", &["https://api.a.example"]),
        ),
        (
            "a resource not registered",
            &with_apis,
            vec![cc, ("resource", "https://api.c.example")],
            Expect::Refused(ErrorCode::InvalidTarget),
        ),
        (
            "a resource that is not an absolute URI",
            &with_apis,
            vec![cc, ("resource", "api.a.example")],
            Expect::Refused(ErrorCode::InvalidTarget),
        ),
        (
            "a resource with a fragment",
            &with_apis,
            vec![cc, ("resource", "https://api.a.example#x")],
            Expect::Refused(ErrorCode::InvalidTarget),
        ),
        (
            "the default audience without registered ones",
            &plain,
            vec![cc, ("resource", ISSUER)],
            Expect::Token("read write", &[ISSUER]),
        ),
        (
            "a wrong secret",
            &wrong_secret,
            vec![cc],
            Expect::Refused(ErrorCode::InvalidClient),
        ),
        (
            "an unknown client",
            &unknown,
            vec![cc],
            Expect::Refused(ErrorCode::InvalidClient),
        ),
        (
            "a confidential client without its secret",
            &no_secret,
            vec![cc],
            Expect::Refused(ErrorCode::InvalidClient),
        ),
        (
            "a public client (RFC 6749 §4.4: confidential clients only)",
            &public,
            vec![cc],
            Expect::Refused(ErrorCode::UnauthorizedClient),
        ),
        (
            "a client not registered for the grant",
            &code_only,
            vec![cc],
            Expect::Refused(ErrorCode::UnauthorizedClient),
        ),
        (
            "a repeated parameter (RFC 6749 §3.1)",
            &plain,
            vec![cc, ("scope", "read"), ("scope", "write")],
            Expect::Refused(ErrorCode::InvalidRequest),
        ),
    ];
    for (case, creds, params, expect) in rows {
        let got = w.token(creds, &params);
        match expect {
            Expect::Refused(code) => assert_eq!(code_of(case, got), code, "{case}"),
            Expect::Token(scope, aud) => {
                let r = got.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(r.scope, scope, "{case}");
                assert_eq!(r.token_type, "bearer", "{case}");
                assert_eq!(r.expires_in, 3600, "{case}");
                // RFC 6749 §4.4.3: no refresh token.
                assert!(r.refresh_token.is_none() && r.id_token.is_none(), "{case}");
                let claims = payload(&at(&r));
                assert_eq!(claims["sub"], creds.id.as_str(), "{case}");
                assert_eq!(claims["client_id"], creds.id.as_str(), "{case}");
                assert_eq!(claims["iss"], ISSUER, "{case}");
                let want: Vec<&str> = aud.to_vec();
                let got_aud: Vec<String> = match &claims["aud"] {
                    serde_json::Value::String(s) => vec![s.clone()],
                    other => serde_json::from_value(other.clone()).unwrap(),
                };
                assert_eq!(got_aud, want, "{case}");
            }
        }
    }
}

#[test]
fn http_basic_authenticates_as_the_body_does() {
    let w = World::new();
    let c = w.client(|_| {});
    let secret = c.secret.clone().unwrap();
    let cc = [("grant_type", "client_credentials")];
    assert!(w.token_basic(&c.id, &secret, &cc).is_ok());
    let e = w.token_basic(&c.id, "wrong", &cc).unwrap_err();
    // (The `WWW-Authenticate` challenge that follows is the HTTP layer's.)
    assert_eq!(e.code, ErrorCode::InvalidClient);
    // One method per request (RFC 6749 §2.3).
    let both = [
        ("grant_type", "client_credentials"),
        ("client_secret", secret.as_str()),
    ];
    assert_eq!(
        code_of(
            "Basic and a body secret",
            w.token_basic(&c.id, &secret, &both)
        ),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn tokens_live_the_clients_lifetime_in_either_format() {
    let w = World::new();
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = w.client(|c| {
            c.access_token_format = format;
            c.access_token_ttl = 60;
        });
        let r = w
            .token(&c, &[("grant_type", "client_credentials")])
            .unwrap();
        assert_eq!(r.expires_in, 60);
        let token = at(&r);
        assert_eq!(token.starts_with("tat_"), format == TokenFormat::Opaque);
        let active = w.look(&token).expect("active when issued");
        assert_eq!(active.exp, w.now() + 60);
        assert_eq!(active.sub, c.id);
        w.advance(59);
        assert!(
            w.look(&token).is_some(),
            "{format:?}: active a second before exp"
        );
        w.advance(1);
        assert!(w.look(&token).is_none(), "{format:?}: inactive at exp");
    }
}

#[test]
fn the_previous_secret_works_until_its_overlap_ends() {
    let w = World::new();
    let c = w.client(|c| {
        c.old_secret_hash = Some(SecretHash::of("tcs_old-secret"));
        c.old_secret_expires_at = Some(T0 + 100);
    });
    let old = Creds {
        id: c.id.clone(),
        secret: Some("tcs_old-secret".into()),
    };
    let cc = [("grant_type", "client_credentials")];
    assert!(w.token(&old, &cc).is_ok());
    w.advance(99);
    assert!(w.token(&old, &cc).is_ok());
    w.advance(1);
    assert_eq!(
        code_of("old secret after overlap", w.token(&old, &cc)),
        ErrorCode::InvalidClient
    );
    assert!(w.token(&c, &cc).is_ok(), "the current secret still works");
}
