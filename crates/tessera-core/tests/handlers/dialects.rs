//! Requests through a dialect (`tessera_core::dialect`): the token response's `token_type`
//! and `wid`, the code lifetime ceiling, the parameters added to the code redirect, access
//! and refresh lifetimes and the refresh policy, and the authorization-request parameters
//! carried into the tokens, with the attempts to smuggle claims through them.

use tessera_core::endpoint::authorize;
use tessera_core::error::ErrorCode;
use tessera_core::model::RefreshPolicy;
use tessera_core::scope::ScopeSet;

use crate::support::*;

const WORKFRONT: &str = r#"{"workfront": {
    "redirect_params": {"domain": "myorganization", "lane": "my"},
    "clients": {"preview-app": {"redirect_params": {"lane": "preview"}}}
}}"#;

#[test]
fn responses_through_workfront_are_labelled_session_id_and_name_the_user_in_wid() {
    let w = World::through(WORKFRONT, "workfront");
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let bob = w.user("bob");
    let first = w.tokens(&c, &alice, "read offline_access");
    assert_eq!(first.token_type, "sessionID");
    assert_eq!(first.wid.as_deref(), Some(alice.user_id.as_str()));
    // A second grant of the same user: the same wid; a refresh too.
    let second = w.tokens(&c, &alice, "read");
    assert_eq!(second.wid, first.wid);
    let refreshed = w.refresh(&c, &rt(&first), &[]).unwrap();
    assert_eq!(refreshed.token_type, "sessionID");
    assert_eq!(refreshed.wid, first.wid);
    // Another user, another wid.
    let other = w.tokens(&c, &bob, "read");
    assert_eq!(other.wid.as_deref(), Some(bob.user_id.as_str()));
    assert_ne!(other.wid, first.wid);
    // Client credentials act for no user: the label, but no wid.
    let cc = w.client(|_| {});
    let r = w
        .token(&cc, &[("grant_type", "client_credentials")])
        .unwrap();
    assert_eq!(r.token_type, "sessionID");
    assert_eq!(r.wid, None);
}

#[test]
fn without_a_dialect_responses_stay_bearer_without_wid() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let r = w.tokens(&c, &alice, "read");
    assert_eq!(r.token_type, "bearer");
    assert_eq!(r.wid, None);
    // Through a dialect with no extra field (vantage): bearer, no wid.
    let v = World::through(r#"{"vantage": {}}"#, "vantage");
    let c = v.code_client(|_| {});
    let alice = v.user("alice");
    let r = v.tokens(&c, &alice, "read");
    assert_eq!(r.token_type, "bearer");
    assert_eq!(r.wid, None);
}

#[test]
fn the_dialects_code_lifetime_is_a_ceiling() {
    // Workfront: 2 minutes, even for a client whose codes would live 10.
    let w = World::through(WORKFRONT, "workfront");
    let c = w.code_client(|c| c.user_flow.code_ttl = 600);
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "read");
    w.advance(119);
    assert!(w.exchange(&c, &code, &[]).is_ok(), "within 2 minutes");
    let late = w.code(&c, &alice, "read");
    w.advance(120);
    refused(
        "a code older than 2 minutes",
        w.exchange(&c, &late, &[]),
        ErrorCode::InvalidGrant,
        "expired",
    );
    // The document provider: 10 minutes at most; a client with shorter codes keeps them.
    let d = World::through(r#"{"workfront_documents": {}}"#, "workfront_documents");
    let long = d.code_client(|c| c.user_flow.code_ttl = 3600);
    let short = d.code_client(|c| c.user_flow.code_ttl = 60);
    let alice = d.user("alice");
    let a = d.code(&long, &alice, "read");
    let b = d.code(&short, &alice, "read");
    d.advance(61);
    assert_eq!(
        code_of("the client's 60 s", d.exchange(&short, &b, &[])),
        ErrorCode::InvalidGrant
    );
    d.advance(538);
    assert!(
        d.exchange(&long, &a, &[]).is_ok(),
        "599 s: within 10 minutes"
    );
    let c2 = d.code(&long, &alice, "read");
    d.advance(600);
    assert_eq!(
        code_of("past 10 minutes", d.exchange(&long, &c2, &[])),
        ErrorCode::InvalidGrant
    );
}

fn redirect_of(w: &World, c: &Creds, extra: &[(&str, &str)]) -> String {
    static USERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = USERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let alice = w.user(&format!("user{n}"));
    let req = w
        .validate(&World::authorize_params(c, "read", extra))
        .unwrap();
    run(authorize::issue_code(
        &w.cx(),
        &req,
        &w.session(&alice, w.now()),
    ))
    .unwrap()
}

fn pairs_of(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn the_code_redirect_gets_the_dialects_parameters_per_client_and_never_replacing_its_own() {
    let w = World::through(WORKFRONT, "workfront");
    let c = w.code_client(|_| {});
    let location = redirect_of(&w, &c, &[]);
    let q = query(&location);
    assert_eq!(q["domain"], "myorganization");
    assert_eq!(q["lane"], "my");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], ISSUER);
    assert!(!q["code"].is_empty());
    // The client's own lane.
    let preview = w.code_client(|c| c.client_id = "preview-app".into());
    let q = query(&redirect_of(&w, &preview, &[]));
    assert_eq!(
        (q["domain"].as_str(), q["lane"].as_str()),
        ("myorganization", "preview")
    );
    // Hostile authorization request: its own `domain`, `lane` and `iss` are not reflected;
    // each name appears once, the dialect's and the server's values.
    w.advance(1);
    let location = redirect_of(
        &w,
        &c,
        &[
            ("domain", "evil.example"),
            ("lane", "x"),
            ("code", "forged"),
        ],
    );
    let all = pairs_of(&location);
    for name in ["code", "state", "iss", "domain", "lane"] {
        assert_eq!(
            all.iter().filter(|(k, _)| k == name).count(),
            1,
            "{name} in {location}"
        );
    }
    let q = query(&location);
    assert_eq!(q["domain"], "myorganization");
    assert_ne!(q["code"], "forged");
    // Without the dialect, nothing is added.
    let plain = World::new();
    let c = plain.code_client(|_| {});
    let q = query(&redirect_of(&plain, &c, &[]));
    assert!(!q.contains_key("domain") && !q.contains_key("lane"));
}

#[test]
fn vantage_gives_day_long_access_tokens_and_absolute_refresh_tokens_only_with_offline_access() {
    let mut w = World::through(r#"{"vantage": {}}"#, "vantage");
    let c = w.code_client(|c| {
        c.access_token_ttl = 600;
        c.user_flow.refresh_token_ttl = 90 * 86_400;
        c.user_flow.refresh_tokens = RefreshPolicy::Always;
    });
    let alice = w.user("alice");
    let r = w.tokens(&c, &alice, "read");
    assert_eq!(r.expires_in, 86_400);
    assert_eq!(payload(&at(&r))["exp"], w.now() + 86_400);
    assert!(
        r.refresh_token.is_none(),
        "the dialect's policy: only with offline_access"
    );
    let r = w.tokens(&c, &alice, "read offline_access");
    let mut current = rt(&r);
    // Refreshing keeps working for 30 days from the sign-in, never beyond.
    for _ in 0..29 {
        w.advance(86_400);
        current = rt(&w.refresh(&c, &current, &[]).unwrap());
    }
    w.advance(86_400);
    refused(
        "30 days after the sign-in",
        w.refresh(&c, &current, &[]),
        ErrorCode::InvalidGrant,
        "",
    );
    // A client that may not refresh gets none, whatever the dialect says.
    let never = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Never);
    let r = w.tokens(&never, &alice, "read offline_access");
    assert!(r.refresh_token.is_none());
    // Capped by the server's longest access-token lifetime.
    w.config.max_access_token_ttl = 3600;
    let r = w.tokens(&c, &alice, "read");
    assert_eq!(r.expires_in, 3600);
}

#[test]
fn vantage_lets_the_code_exchange_ask_offline_access_for_a_client_registered_for_it() {
    let w = World::through(r#"{"vantage": {}}"#, "vantage");
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    // The authorization request asks `read`; the token request adds `offline_access`, as
    // Vantage's clients do: a refresh token, and the scope says so.
    let code = w.code(&c, &alice, "read");
    let r = w
        .exchange(&c, &code, &[("scope", "read offline_access")])
        .unwrap();
    assert!(r.refresh_token.is_some(), "a refresh token");
    assert_eq!(r.scope, "read offline_access");
    let refreshed = w.refresh(&c, &rt(&r), &[]).unwrap();
    assert!(refreshed.refresh_token.is_some());
    // Without asking, none.
    let code = w.code(&c, &alice, "read");
    let r = w.exchange(&c, &code, &[]).unwrap();
    assert!(r.refresh_token.is_none());
    // Hostile: nothing but offline_access is ever added.
    let code = w.code(&c, &alice, "read");
    refused(
        "another scope at the exchange",
        w.exchange(&c, &code, &[("scope", "read openid offline_access")]),
        ErrorCode::InvalidScope,
        "",
    );
    // Hostile: a client not registered for offline_access cannot add it.
    let plain = w.code_client(|c| c.scopes = ScopeSet::parse("openid read").unwrap());
    let code = w.code(&plain, &alice, "read");
    refused(
        "a client not registered for offline_access",
        w.exchange(&plain, &code, &[("scope", "read offline_access")]),
        ErrorCode::InvalidScope,
        "",
    );
    // Without the dialect (Tessera's own rules), the exchange can only narrow the scope.
    let std = World::new();
    let c = std.code_client(|_| {});
    let alice = std.user("alice");
    let code = std.code(&c, &alice, "read");
    refused(
        "offline_access added outside the dialect",
        std.exchange(&c, &code, &[("scope", "read offline_access")]),
        ErrorCode::InvalidScope,
        "",
    );
}

#[test]
fn vantage_carries_product_id_into_the_tokens_and_introspection() {
    let w = World::through(r#"{"vantage": {}}"#, "vantage");
    for format in [
        tessera_core::model::TokenFormat::Jwt,
        tessera_core::model::TokenFormat::Opaque,
    ] {
        let c = w.code_client(|c| c.access_token_format = format);
        let alice = w.user(&format!("alice-{format:?}"));
        let code = w.code_at(
            &c,
            &alice,
            w.now(),
            "read offline_access",
            &[("productId", "p-42")],
        );
        let r = w.exchange(&c, &code, &[]).unwrap();
        let seen = w.introspect(&c, &at(&r)).unwrap();
        assert_eq!(seen["active"], true);
        assert_eq!(seen["productId"], "p-42", "{format:?}: {seen}");
        if format == tessera_core::model::TokenFormat::Jwt {
            assert_eq!(payload(&at(&r))["productId"], "p-42");
        }
        // Refreshed tokens of the same grant carry it too.
        let refreshed = w.refresh(&c, &rt(&r), &[]).unwrap();
        let seen = w.introspect(&c, &at(&refreshed)).unwrap();
        assert_eq!(seen["productId"], "p-42", "{format:?} refreshed: {seen}");
    }
}

#[test]
fn no_other_claim_and_no_dialect_can_be_smuggled_through_authorization_parameters() {
    let w = World::through(r#"{"vantage": {}}"#, "vantage");
    let c = w.code_client(|_| {});
    let alice = w.user("alice");
    let code = w.code_at(
        &c,
        &alice,
        w.now(),
        "read",
        &[
            ("productId", "p-1"),
            // Parameters named like claims, the store's reserved member, a dialect.
            ("sub", "admin"),
            ("client_id_x", "y"),
            ("tessera:carried", r#"{"sub":"admin","scope":"all"}"#),
            ("role", "admin"),
            ("token_type", "sessionID"),
            ("dialect", "workfront"),
        ],
    );
    let r = w.exchange(&c, &code, &[]).unwrap();
    let claims = payload(&at(&r));
    assert_eq!(claims["sub"], alice.user_id.as_str());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["productId"], "p-1");
    for name in [
        "role",
        "tessera:carried",
        "client_id_x",
        "dialect",
        "token_type",
    ] {
        assert!(claims.get(name).is_none(), "{name} was smuggled: {claims}");
    }
    assert_eq!(r.token_type, "bearer");
    assert_eq!(r.wid, None);
    assert_eq!(claims["scope"], "read");
    // Without a dialect that carries it, productId is kept on the code but not carried.
    let plain = World::new();
    let c = plain.code_client(|_| {});
    let alice = plain.user("alice");
    let code = plain.code_at(&c, &alice, plain.now(), "read", &[("productId", "p-1")]);
    let r = plain.exchange(&c, &code, &[]).unwrap();
    assert!(payload(&at(&r)).get("productId").is_none());
}

#[test]
fn the_json_exchange_takes_its_lifetime_and_audience_rule_from_the_dialects_sdk_keys() {
    use tessera_core::endpoint::sdk_token::{handle, SdkTokenRequest};
    let w = World::through(
        r#"{"anyflow": {"sdk": {"ttl": 60, "audience": "required"}}}"#,
        "anyflow",
    );
    let signer = w.trust("default", |_, _| {});
    let exchange = |claims: &serde_json::Value| {
        let req = SdkTokenRequest {
            jwt: signer.sign(claims),
            env: None,
        };
        run(handle(&w.cx(), &req))
    };
    // With an audience: a one-minute token.
    let r = exchange(&crate::grant_jwt_bearer::claims(&w)).unwrap();
    assert_eq!(r.expires_in, 60);
    assert_eq!(r.token_type, "bearer");
    // Without one: refused, where the preset would accept it.
    let no_aud =
        crate::grant_jwt_bearer::edited(crate::grant_jwt_bearer::claims(&w), &[("aud", None)]);
    assert_eq!(
        code_of("an assertion without aud", exchange(&no_aud)),
        ErrorCode::InvalidGrant
    );
}

#[test]
fn a_dialect_whose_policy_is_never_gives_and_takes_no_refresh_tokens() {
    let mut w = World::new();
    let c = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let alice = w.user("alice");
    // Issued without a dialect.
    let r = w.tokens(&c, &alice, "read");
    let issued = rt(&r);
    let never = World::through(r#"{"workfront": {"refresh_tokens": "never"}}"#, "workfront");
    w.dialect = never.dialect.clone();
    w.config.dialects = never.config.dialects.clone();
    assert!(w
        .tokens(&c, &alice, "read offline_access")
        .refresh_token
        .is_none());
    refused(
        "a refresh through a dialect that offers none",
        w.refresh(&c, &issued, &[]),
        ErrorCode::UnauthorizedClient,
        "not offered",
    );
    // Elsewhere it still works.
    w.dialect = None;
    assert!(w.refresh(&c, &issued, &[]).is_ok());
}
