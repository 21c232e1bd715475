//! Dynamic client registration (RFC 7591) and its management (RFC 7592): a registered
//! client works at once with the credentials returned, its metadata is checked as an
//! operator's registration is, open registration refuses what needs an operator's trust,
//! and a registration is read, replaced and deleted only with its own registration access
//! token, which is stored only as its hash.

use serde_json::{json, Value};
use tessera_core::admin::admin_tokens::{self, AdminTokenSpec};
use tessera_core::config::DynamicRegistration;
use tessera_core::endpoint::discovery::metadata;
use tessera_core::endpoint::register;
use tessera_core::error::ErrorCode;
use tessera_core::secret::SecretHash;
use tessera_core::store::ClientStore;

use crate::support::*;

fn open_world() -> World {
    let mut w = World::new();
    w.config.dynamic_registration = DynamicRegistration::Open;
    w
}

fn register(w: &World, body: &Value) -> Result<(Value, String), ErrorCode> {
    let r = run(register::register(
        &w.cx(),
        None,
        body.to_string().as_bytes(),
    ))
    .map_err(|e| e.code)?;
    let info = register::client_information(
        &w.cx(),
        &r.client,
        r.secret.as_ref(),
        Some(&r.registration_access_token),
    );
    Ok((info, r.registration_access_token.expose().to_owned()))
}

fn code_client() -> Value {
    json!({
        "client_name": "Registered app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile offline_access",
        "contacts": ["ops@app.example.com"],
        "logo_uri": "https://app.example.com/logo.png",
    })
}

#[test]
fn a_registered_client_signs_a_user_in_with_the_credentials_returned() {
    let w = open_world();
    let (info, token) = register(&w, &code_client()).unwrap();
    // RFC 7591 §3.2.1 and RFC 7592 §3.
    let id = info["client_id"].as_str().unwrap().to_owned();
    assert_eq!(info["client_id_issued_at"], T0);
    assert_eq!(info["client_secret_expires_at"], 0);
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(
        info["registration_client_uri"],
        format!("{ISSUER}/oauth2/register/{id}")
    );
    assert_eq!(info["registration_access_token"], token.as_str());
    let secret = info["client_secret"].as_str().unwrap().to_owned();
    let creds = Creds {
        id: id.clone(),
        secret: Some(secret),
    };
    let user = w.user("alice");
    let tokens = w.tokens(&creds, &user, "openid offline_access");
    assert!(!rt(&tokens).is_empty());
    // A wrong secret is refused.
    let wrong = Creds {
        id,
        secret: Some("tcs_wrong".into()),
    };
    let code = w.code(&creds, &user, "openid");
    assert_eq!(
        code_of("wrong secret", w.exchange(&wrong, &code, &[])),
        ErrorCode::InvalidClient
    );
}

#[test]
fn a_public_client_gets_no_secret_and_uses_pkce() {
    let w = open_world();
    let mut body = code_client();
    body["token_endpoint_auth_method"] = json!("none");
    let (info, _) = register(&w, &body).unwrap();
    assert!(info.get("client_secret").is_none());
    assert!(info.get("client_secret_expires_at").is_none());
    let creds = Creds {
        id: info["client_id"].as_str().unwrap().to_owned(),
        secret: None,
    };
    let user = w.user("bob");
    let tokens = w.tokens(&creds, &user, "openid");
    assert!(!at(&tokens).is_empty());
}

#[test]
fn the_registration_token_is_stored_only_as_its_hash() {
    let w = open_world();
    let (info, token) = register(&w, &code_client()).unwrap();
    let id = info["client_id"].as_str().unwrap();
    let stored = run(w.store.registration_token(id)).unwrap().unwrap();
    assert!(stored.ct_eq(&SecretHash::of(&token)));
    assert_ne!(stored.as_str(), token);
    assert!(!stored.as_str().contains(&token));
}

#[test]
fn invalid_metadata_is_refused_with_the_rfcs_codes() {
    let w = open_world();
    let cases: Vec<(&str, Value, ErrorCode)> = vec![
        (
            "fragment in redirect URI",
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            ErrorCode::InvalidRedirectUri,
        ),
        (
            "code flow without redirect URI",
            json!({"grant_types": ["authorization_code"]}),
            ErrorCode::InvalidRedirectUri,
        ),
        (
            "response type without its grant",
            json!({"redirect_uris": [REDIRECT], "grant_types": ["refresh_token"],
                   "response_types": ["code"]}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "grant without its response type",
            json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code"],
                   "response_types": []}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "implicit response type",
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "unknown auth method",
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_jwt"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "jwks_uri",
            json!({"redirect_uris": [REDIRECT], "jwks_uri": "https://app.example.com/jwks"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "private_key_jwt without keys",
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "redirect_uris not an array",
            json!({"redirect_uris": REDIRECT}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "scope not a string",
            json!({"redirect_uris": [REDIRECT], "scope": ["openid"]}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "logo_uri not a string",
            json!({"redirect_uris": [REDIRECT], "logo_uri": 7}),
            ErrorCode::InvalidClientMetadata,
        ),
        (
            "software statement",
            json!({"redirect_uris": [REDIRECT], "software_statement": "a.b.c"}),
            ErrorCode::UnapprovedSoftwareStatement,
        ),
        (
            "not an object",
            json!(["redirect_uris"]),
            ErrorCode::InvalidClientMetadata,
        ),
    ];
    for (case, body, want) in cases {
        assert_eq!(register(&w, &body).err(), Some(want), "{case}");
    }
    assert_eq!(
        run(register::register(&w.cx(), None, b"{not json"))
            .unwrap_err()
            .code,
        ErrorCode::InvalidClientMetadata
    );
    // Nothing was registered by any of them.
    assert!(run(w.store.list_clients()).unwrap().is_empty());
}

#[test]
fn open_registration_refuses_grants_that_need_an_operators_trust() {
    let w = open_world();
    for g in [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let body = json!({"redirect_uris": [REDIRECT], "grant_types": [g],
                          "response_types": []});
        assert_eq!(
            register(&w, &body).err(),
            Some(ErrorCode::InvalidClientMetadata),
            "{g}"
        );
    }
    // A hostile registrant cannot make itself first-party or pick an audience.
    let mut body = code_client();
    body["skip_consent"] = json!(true);
    body["audiences"] = json!(["https://internal.example.com"]);
    body["token_exchange_audiences"] = json!(["https://internal.example.com"]);
    let (info, _) = register(&w, &body).unwrap();
    let rec = run(w.store.get_client(info["client_id"].as_str().unwrap()))
        .unwrap()
        .unwrap();
    assert!(!rec.user_flow.skip_consent);
    assert!(rec.audiences.is_empty());
    assert!(rec.user_flow.token_exchange_audiences.is_empty());
    // Nor register for token exchange.
    let body = json!({"redirect_uris": [REDIRECT], "response_types": [],
                      "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]});
    assert_eq!(
        register(&w, &body).err(),
        Some(ErrorCode::InvalidClientMetadata)
    );
}

#[test]
fn an_operator_vouched_registration_names_its_token_exchange_audiences() {
    let w = token_world();
    let (_, good) = admin_token(&w, &["clients:register"], None);
    let body = json!({"client_name": "Gateway", "response_types": [], "scope": "read",
                      "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                      "token_exchange_audiences": ["https://reports.example.com"]});
    let info = register_with(&w, Some(&good), &body).unwrap();
    assert_eq!(
        info["token_exchange_audiences"],
        json!(["https://reports.example.com"])
    );
    let rec = run(w.store.get_client(info["client_id"].as_str().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.user_flow.token_exchange_audiences,
        vec!["https://reports.example.com".to_owned()]
    );
    // Checked as the admin API checks it.
    let mut bad = body.clone();
    bad["token_exchange_audiences"] = json!(["not a uri"]);
    assert_eq!(
        register_with(&w, Some(&good), &bad).err(),
        Some(ErrorCode::InvalidClientMetadata)
    );
}

#[test]
fn discovery_names_the_registration_endpoint_only_when_on() {
    let off = World::new();
    assert!(metadata(&off.config, &off.keys)
        .get("registration_endpoint")
        .is_none());
    let on = open_world();
    assert_eq!(
        metadata(&on.config, &on.keys)["registration_endpoint"],
        format!("{ISSUER}/oauth2/register")
    );
}

#[test]
fn a_registration_is_read_replaced_and_deleted_with_its_own_token_only() {
    let w = open_world();
    let (info, token) = register(&w, &code_client()).unwrap();
    let id = info["client_id"].as_str().unwrap().to_owned();
    let secret = info["client_secret"].as_str().unwrap().to_owned();
    let (other, other_token) = register(&w, &code_client()).unwrap();
    let other_id = other["client_id"].as_str().unwrap();

    // Read (RFC 7592 §2.1).
    let cx = w.cx();
    let rec = run(register::authorize(&cx, &id, Some(&token))).unwrap();
    assert_eq!(rec.client_id, id);
    for (case, t) in [
        ("no token", None),
        ("another client's token", Some(other_token.as_str())),
        ("a made-up token", Some("trat_guess")),
        ("the client secret", Some(secret.as_str())),
    ] {
        assert_eq!(
            run(register::authorize(&cx, &id, t)).unwrap_err().code,
            ErrorCode::InvalidToken,
            "{case}"
        );
    }
    // A token for an id that is not its client's.
    assert_eq!(
        run(register::authorize(&cx, other_id, Some(&token)))
            .unwrap_err()
            .code,
        ErrorCode::InvalidToken
    );

    // Replace (RFC 7592 §2.2): client_id must match; the secret stays.
    let mut body = code_client();
    body["client_name"] = json!("Renamed app");
    body["scope"] = json!("openid");
    let update = |b: &Value, t: Option<&str>| {
        run(register::update(&w.cx(), &id, t, b.to_string().as_bytes())).map_err(|e| e.code)
    };
    assert_eq!(
        update(&body, Some(&token)).unwrap_err(),
        ErrorCode::InvalidClientMetadata,
        "no client_id"
    );
    body["client_id"] = json!(other_id);
    assert_eq!(
        update(&body, Some(&token)).unwrap_err(),
        ErrorCode::InvalidClientMetadata,
        "another client_id"
    );
    body["client_id"] = json!(id);
    assert_eq!(
        update(&body, Some(&other_token)).unwrap_err(),
        ErrorCode::InvalidToken
    );
    body["client_secret"] = json!("tcs_not_it");
    assert_eq!(
        update(&body, Some(&token)).unwrap_err(),
        ErrorCode::InvalidClientMetadata,
        "wrong secret"
    );
    body["client_secret"] = json!(secret);
    body["token_endpoint_auth_method"] = json!("none");
    assert_eq!(
        update(&body, Some(&token)).unwrap_err(),
        ErrorCode::InvalidClientMetadata,
        "a confidential client cannot become public"
    );
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    body["redirect_uris"] = json!(["http://evil.example.com/cb"]);
    assert_eq!(
        update(&body, Some(&token)).unwrap_err(),
        ErrorCode::InvalidRedirectUri
    );
    body["redirect_uris"] = json!([REDIRECT]);
    let rec = update(&body, Some(&token)).unwrap();
    assert_eq!(rec.name, "Renamed app");
    assert_eq!(rec.scopes.to_string(), "openid");
    let creds = Creds {
        id: id.clone(),
        secret: Some(secret),
    };
    let user = w.user("carol");
    let tokens = w.tokens(&creds, &user, "openid");
    let access = at(&tokens);
    assert!(w.active(&creds, &access));

    // Delete (RFC 7592 §2.3): only with its token; then the client and its tokens are gone.
    assert_eq!(
        run(register::delete(&w.cx(), &id, Some(&other_token)))
            .unwrap_err()
            .code,
        ErrorCode::InvalidToken
    );
    run(register::delete(&w.cx(), &id, Some(&token))).unwrap();
    assert!(run(w.store.get_client(&id)).unwrap().is_none());
    assert!(w.look(&access).is_none());
    assert_eq!(
        run(register::authorize(&w.cx(), &id, Some(&token)))
            .unwrap_err()
            .code,
        ErrorCode::InvalidToken
    );
    // The other registration is untouched.
    assert!(run(register::authorize(&w.cx(), other_id, Some(&other_token))).is_ok());
}

fn token_world() -> World {
    let mut w = World::new();
    w.config.dynamic_registration = DynamicRegistration::Token;
    w
}

/// An admin token with `scopes`, expiring in `expires_in` seconds if given.
fn admin_token(w: &World, scopes: &[&str], expires_in: Option<i64>) -> (String, String) {
    let made = run(admin_tokens::create(
        &w.store,
        AdminTokenSpec {
            name: "registrar".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_in,
        },
        w.now(),
    ))
    .unwrap();
    (made.record.id, made.token.expose().to_owned())
}

fn register_with(w: &World, token: Option<&str>, body: &Value) -> Result<Value, ErrorCode> {
    let r = run(register::register(
        &w.cx(),
        token,
        body.to_string().as_bytes(),
    ))
    .map_err(|e| e.code)?;
    Ok(register::client_information(
        &w.cx(),
        &r.client,
        r.secret.as_ref(),
        Some(&r.registration_access_token),
    ))
}

fn service_client() -> Value {
    json!({"client_name": "Batch job", "grant_types": ["client_credentials"],
           "response_types": [], "scope": "read"})
}

#[test]
fn token_registration_requires_an_initial_access_token_with_the_register_scope() {
    let w = token_world();
    let (_, good) = admin_token(&w, &["clients:register"], None);
    let (_, writer) = admin_token(&w, &["clients:write", "clients:read"], None);
    let (revoked_id, revoked) = admin_token(&w, &["clients:register"], None);
    run(admin_tokens::revoke(&w.store, &revoked_id, w.now())).unwrap();
    let (_, short) = admin_token(&w, &["clients:register"], Some(60));
    w.advance(61);
    // No token, a made-up one, a revoked one, an expired one: invalid_token.
    for token in [
        None,
        Some("tsa_nope"),
        Some(revoked.as_str()),
        Some(short.as_str()),
    ] {
        assert_eq!(
            register_with(&w, token, &service_client()).err(),
            Some(ErrorCode::InvalidToken),
            "{token:?}"
        );
    }
    // An admin token for other work is not an initial access token.
    assert_eq!(
        register_with(&w, Some(&writer), &service_client()).err(),
        Some(ErrorCode::InsufficientScope)
    );
    // A token of another kind: a registration access token, a client secret.
    let info = register_with(&w, Some(&good), &code_client()).unwrap();
    for other in [
        info["registration_access_token"].as_str().unwrap(),
        info["client_secret"].as_str().unwrap(),
    ] {
        assert_eq!(
            register_with(&w, Some(other), &service_client()).err(),
            Some(ErrorCode::InvalidToken)
        );
    }
    // The token checks come before the metadata: garbage without a token is invalid_token.
    assert_eq!(
        run(register::register(&w.cx(), None, b"{not json"))
            .err()
            .map(|e| e.code),
        Some(ErrorCode::InvalidToken)
    );
    // With the token, an operator-vouched registrant may register client credentials, and
    // the client gets tokens at once.
    let info = register_with(&w, Some(&good), &service_client()).unwrap();
    let creds = Creds {
        id: info["client_id"].as_str().unwrap().to_owned(),
        secret: Some(info["client_secret"].as_str().unwrap().to_owned()),
    };
    let tokens = w
        .token(&creds, &[("grant_type", "client_credentials")])
        .unwrap();
    assert!(!at(&tokens).is_empty());
    // ...but its metadata is still checked as the admin API checks it.
    let mut public = service_client();
    public["token_endpoint_auth_method"] = json!("none");
    assert_eq!(
        register_with(&w, Some(&good), &public).err(),
        Some(ErrorCode::InvalidClientMetadata)
    );
    let mut wildcard = code_client();
    wildcard["redirect_uris"] = json!(["https://*.app.example.com/cb"]);
    assert_eq!(
        register_with(&w, Some(&good), &wildcard).err(),
        Some(ErrorCode::InvalidRedirectUri)
    );
    // An admin token with `admin` may register too; the bootstrap credential is not
    // consulted here (it is never handed to a registrant).
    let (_, root) = admin_token(&w, &["admin"], None);
    assert!(register_with(&w, Some(&root), &service_client()).is_ok());
}

#[test]
fn open_and_off_modes_ignore_an_initial_access_token() {
    let w = open_world();
    assert!(register_with(&w, Some("tsa_anything"), &code_client()).is_ok());
    assert_eq!(
        register_with(&w, None, &service_client()).err(),
        Some(ErrorCode::InvalidClientMetadata)
    );
}

/// Every entry of the audit trail, newest first.
fn trail(w: &World) -> Vec<tessera_core::model::AuditRecord> {
    use tessera_core::store::AuditStore;
    run(w.store.list_audit(&tessera_core::model::AuditFilter {
        limit: 1000,
        ..Default::default()
    }))
    .unwrap()
}

#[test]
fn registrations_their_changes_and_refused_initial_tokens_are_in_the_audit_trail() {
    // Token mode: the registrant is the admin token that vouched for it; a refused token is
    // recorded without its value.
    let w = token_world();
    let (token_id, good) = admin_token(&w, &["clients:register"], None);
    assert_eq!(
        register_with(&w, Some("tsa_made_up_value"), &service_client()).err(),
        Some(ErrorCode::InvalidToken)
    );
    let info = register_with(&w, Some(&good), &code_client()).unwrap();
    let id = info["client_id"].as_str().unwrap().to_owned();
    let entries = trail(&w);
    let created = entries
        .iter()
        .find(|r| r.kind == "client_created")
        .expect("the registration is recorded");
    assert_eq!(created.actor, format!("admin_token:{token_id}"));
    assert_eq!(created.target.as_deref(), Some(id.as_str()));
    assert_eq!(created.outcome, "success");
    let refused = entries
        .iter()
        .find(|r| r.kind == "admin_token_refused")
        .expect("the refused initial access token is recorded");
    assert_eq!(refused.outcome, "failure");
    for r in &entries {
        let row = format!("{r:?}");
        for secret in [
            good.as_str(),
            "tsa_made_up_value",
            info["client_secret"].as_str().unwrap(),
            info["registration_access_token"].as_str().unwrap(),
        ] {
            assert!(!row.contains(secret), "{row} holds a secret");
        }
    }

    // Open mode: an anonymous registrant; RFC 7592 changes are the client's own.
    let w = open_world();
    let (info, token) = register(&w, &code_client()).unwrap();
    let id = info["client_id"].as_str().unwrap().to_owned();
    let mut replaced = code_client();
    replaced["client_id"] = json!(id);
    replaced["client_name"] = json!("renamed");
    run(register::update(
        &w.cx(),
        &id,
        Some(&token),
        replaced.to_string().as_bytes(),
    ))
    .unwrap();
    run(register::delete(&w.cx(), &id, Some(&token))).unwrap();
    let kinds: Vec<(String, String)> = trail(&w)
        .into_iter()
        .filter(|r| r.target.as_deref() == Some(id.as_str()))
        .map(|r| (r.kind, r.actor))
        .collect();
    let client = format!("client:{id}");
    assert_eq!(
        kinds,
        vec![
            ("client_deleted".to_owned(), client.clone()),
            ("client_updated".to_owned(), client),
            ("client_created".to_owned(), "anonymous".to_owned()),
        ]
    );
}
