//! The FAPI 2.0 Security Profile as a per-client profile ([`tessera_core::profile`]): a client
//! with `profile = fapi2` and `private_key_jwt` through the push, the authorization endpoint
//! and the token endpoint, each rule refused one way an attacker would try it (a plain
//! request, plain or missing PKCE, no `redirect_uri`, a secret, an assertion for the token
//! endpoint's URL, no sender constraint, a code past 60 seconds), the lifetimes moved under
//! the clock, and refresh without rotation. A client without the profile is untouched.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use tessera_core::audit::DpopInput;
use tessera_core::endpoint::authorize::{self, AuthorizeError};
use tessera_core::endpoint::{par, token};
use tessera_core::error::{ErrorCode, OAuthError};
use tessera_core::grant::TokenResponse;
use tessera_core::model::{ClientProfile, RefreshPolicy, UserRecord};
use tessera_core::params::Params;
use tessera_core::secret::generate_id;

use crate::support::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A fapi2 code-flow client authenticating with `private_key_jwt` (an ES256 key), always
/// given refresh tokens; its id and signer.
fn fapi2(w: &World) -> (Creds, Signer) {
    let signer = Signer::new(&w.sealer);
    let stored = signer.stored();
    let c = w.code_client(|c| {
        c.secret_hash = None;
        c.jwks = Some(stored);
        c.user_flow.profile = ClientProfile::Fapi2;
        c.user_flow.refresh_tokens = RefreshPolicy::Always;
    });
    (
        Creds {
            id: c.id,
            secret: None,
        },
        signer,
    )
}

/// A client assertion of `id` for `aud`, signed by `signer`, valid for a minute.
fn assertion(w: &World, signer: &Signer, id: &str, aud: &str) -> String {
    signer.sign(&serde_json::json!({
        "iss": id, "sub": id, "aud": aud, "iat": w.now(), "exp": w.now() + 60,
        "jti": generate_id(),
    }))
}

/// `pairs` with a fresh assertion of `c` for the issuer.
fn with_assertion(w: &World, c: &Creds, s: &Signer, pairs: &[(&str, &str)]) -> Params {
    let a = assertion(w, s, &c.id, ISSUER);
    let mut all = pairs.to_vec();
    all.push(("client_assertion_type", ASSERTION_TYPE));
    all.push(("client_assertion", &a));
    World::raw(&all)
}

/// Pushes `c`'s authorization request with `extra` (an empty value drops a parameter).
fn push(w: &World, c: &Creds, s: &Signer, extra: &[(&str, &str)]) -> Result<String, OAuthError> {
    let params = World::authorize_params(c, "openid read offline_access", extra);
    let pairs: Vec<(&str, &str)> = params
        .pairs()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    run(par::push(&w.cx(), None, &with_assertion(w, c, s, &pairs))).map(|r| {
        assert!(r.expires_in < 600, "{}", r.expires_in);
        r.request_uri
    })
}

/// A code for `user` through a push and the authorization endpoint.
fn code(w: &World, c: &Creds, s: &Signer, user: &UserRecord) -> String {
    let uri = push(w, c, s, &[]).unwrap();
    let resolved = run(par::resolve(
        &w.cx(),
        World::raw(&[("client_id", &c.id), ("request_uri", &uri)]),
    ))
    .unwrap();
    let req = w.validate(&resolved).unwrap();
    let session = w.session(user, w.now());
    let location = run(authorize::issue_code(&w.cx(), &req, &session)).unwrap();
    let p = query(&location);
    // RFC 9207, FAPI 2.0 §5.3.2.2 item 7: the issuer in the authorization response.
    assert_eq!(p["iss"], ISSUER);
    p["code"].clone()
}

/// A client's DPoP key (ES256), making proofs for the token endpoint (RFC 9449 §4.2).
struct Dpop(EcdsaKeyPair);

impl Dpop {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self(pair)
    }

    /// A fresh proof for `POST /oauth2/token` at `now`.
    fn proof(&self, now: i64) -> DpopInput {
        let point = self.0.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let claims = serde_json::json!({
            "jti": generate_id(), "htm": "POST", "htu": format!("{ISSUER}/oauth2/token"),
            "iat": now,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        DpopInput {
            proofs: vec![format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))],
            method: "POST".into(),
            path: "/oauth2/token".into(),
        }
    }
}

/// A token request of `c` with `pairs`, with a proof of `dpop` if given.
fn token_bound(
    w: &World,
    c: &Creds,
    s: &Signer,
    pairs: &[(&str, &str)],
    dpop: Option<&Dpop>,
) -> Result<TokenResponse, OAuthError> {
    let mut cx = w.cx();
    cx.request.dpop = dpop.map(|d| d.proof(w.now()));
    run(token::handle(&cx, None, &with_assertion(w, c, s, pairs)))
}

fn exchange(
    w: &World,
    c: &Creds,
    s: &Signer,
    code: &str,
    dpop: Option<&Dpop>,
) -> Result<TokenResponse, OAuthError> {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    token_bound(w, c, s, &pairs, dpop)
}

fn redirected_error(case: &str, r: Result<authorize::AuthorizeRequest, AuthorizeError>) {
    match r {
        Err(AuthorizeError::Redirect(url)) => {
            let p = query(&url);
            assert_eq!(p["error"], "invalid_request", "{case}: {url}");
            assert_eq!(p["iss"], ISSUER, "{case}: {url}");
        }
        other => panic!("{case}: expected an error redirect, got {other:?}"),
    }
}

#[test]
fn the_code_flow_through_a_push_gives_a_bound_token() {
    let w = World::new();
    let (c, s) = fapi2(&w);
    let alice = w.user("alice");
    let code = code(&w, &c, &s, &alice);
    let tokens = exchange(&w, &c, &s, &code, Some(&Dpop::new())).unwrap();
    let claims = payload(&at(&tokens));
    assert!(claims["cnf"]["jkt"].is_string(), "{claims}");
    assert_eq!(tokens.token_type, "DPoP");
    assert!(tokens.id_token.is_some());
}

#[test]
fn authorization_requests_are_pushed_with_redirect_uri_and_s256() {
    let w = World::new();
    let (c, s) = fapi2(&w);
    // §5.3.2.2 item 3: a request not pushed goes back to the client refused.
    redirected_error(
        "not pushed",
        w.validate(&World::authorize_params(&c, "openid", &[])),
    );
    for (case, extra) in [
        ("no redirect_uri", vec![("redirect_uri", "")]),
        ("plain PKCE", vec![("code_challenge_method", "plain")]),
        (
            "no code_challenge_method",
            vec![("code_challenge_method", "")],
        ),
        (
            "no PKCE",
            vec![("code_challenge", ""), ("code_challenge_method", "")],
        ),
    ] {
        refused(
            case,
            push(&w, &c, &s, &extra),
            ErrorCode::InvalidRequest,
            "FAPI 2.0",
        );
    }
    // The same requests from a client without the profile are taken (it has one
    // registered redirect URI; PKCE is optional for a confidential client).
    let other = w.code_client(|_| {});
    for extra in [
        vec![("redirect_uri", "")],
        vec![("code_challenge", ""), ("code_challenge_method", "")],
    ] {
        let params = World::authorize_params(&other, "openid", &extra);
        assert!(w.validate(&params).is_ok(), "{extra:?}");
    }
}

#[test]
fn the_request_uri_lives_under_600_seconds() {
    let mut w = World::new();
    w.config.par_ttl = 600;
    let (c, s) = fapi2(&w);
    let uri = push(&w, &c, &s, &[]).unwrap();
    w.advance(599);
    let late = run(par::resolve(
        &w.cx(),
        World::raw(&[("client_id", &c.id), ("request_uri", &uri)]),
    ));
    match late {
        Err(AuthorizeError::Page(e)) => assert_eq!(e.code, ErrorCode::InvalidRequestUri),
        other => panic!("expected invalid_request_uri, got {other:?}"),
    }
}

#[test]
fn a_secret_or_the_token_endpoint_as_aud_does_not_authenticate_a_fapi2_client() {
    let w = World::new();
    // A record stored behind the registration's back: the profile still refuses a secret.
    let with_secret = w.code_client(|r| r.user_flow.profile = ClientProfile::Fapi2);
    refused(
        "client_secret_post",
        w.token(&with_secret, &[("grant_type", "client_credentials")]),
        ErrorCode::InvalidClient,
        "private_key_jwt",
    );
    // §5.3.2.1 item 8: the issuer, as a string, is the only aud accepted.
    let (c, s) = fapi2(&w);
    let a = assertion(&w, &s, &c.id, &format!("{ISSUER}/oauth2/token"));
    let params = World::raw(&[
        ("grant_type", "authorization_code"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &a),
    ]);
    let mut cx = w.cx();
    cx.request.dpop = Some(Dpop::new().proof(w.now()));
    refused(
        "aud: the token endpoint",
        run(token::handle(&cx, None, &params)),
        ErrorCode::InvalidClient,
        "aud",
    );
}

#[test]
fn a_token_request_without_a_sender_constraint_is_refused_and_spends_nothing() {
    let w = World::new();
    let key = Dpop::new();
    let (c, s) = fapi2(&w);
    let alice = w.user("alice");
    let code = code(&w, &c, &s, &alice);
    refused(
        "no DPoP proof, no certificate",
        exchange(&w, &c, &s, &code, None),
        ErrorCode::InvalidRequest,
        "sender-constrained",
    );
    // The code was not spent by the refused request.
    assert!(exchange(&w, &c, &s, &code, Some(&key)).is_ok());
}

#[test]
fn a_code_lives_at_most_60_seconds() {
    let w = World::new();
    let key = Dpop::new();
    let (c, s) = fapi2(&w);
    assert_eq!(w.client_record(&c).user_flow.code_ttl, 120);
    let alice = w.user("alice");
    let in_time = code(&w, &c, &s, &alice);
    let late = code(&w, &c, &s, &alice);
    w.advance(59);
    assert!(exchange(&w, &c, &s, &in_time, Some(&key)).is_ok());
    w.advance(1);
    refused(
        "a code 60 seconds old",
        exchange(&w, &c, &s, &late, Some(&key)),
        ErrorCode::InvalidGrant,
        "",
    );
}

#[test]
fn refresh_tokens_are_not_rotated() {
    let w = World::new();
    let key = Dpop::new();
    let (c, s) = fapi2(&w);
    let alice = w.user("alice");
    let code = code(&w, &c, &s, &alice);
    let first = exchange(&w, &c, &s, &code, Some(&key)).unwrap();
    let refresh = rt(&first);
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    for _ in 0..3 {
        w.advance(10);
        let again = token_bound(&w, &c, &s, &pairs, Some(&key)).unwrap();
        assert!(again.refresh_token.is_none(), "no new refresh token");
        assert_ne!(at(&again), at(&first));
    }
    // Revoking the refresh token still ends it.
    let revoke = with_assertion(&w, &c, &s, &[("token", &refresh)]);
    run(tessera_core::endpoint::revoke::handle(
        &w.cx(),
        None,
        &revoke,
    ))
    .unwrap();
    refused(
        "revoked",
        token_bound(&w, &c, &s, &pairs, Some(&key)),
        ErrorCode::InvalidGrant,
        "",
    );
}

#[test]
fn dynamic_registration_neither_sets_nor_drops_the_profile() {
    use tessera_core::admin::clients::{self, ClientPatch, ClientSettings};
    use tessera_core::endpoint::register;

    let mut w = World::new();
    w.config.dynamic_registration = tessera_core::config::DynamicRegistration::Open;
    let signer = Signer::new(&w.sealer);
    let jwks: serde_json::Value = serde_json::from_str(&signer.jwks).unwrap();
    let mut body = serde_json::json!({
        "client_name": "bank app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks,
        "profile": "fapi2",
    });
    let r = run(register::register(
        &w.cx(),
        None,
        body.to_string().as_bytes(),
    ))
    .unwrap();
    let id = r.client.client_id.clone();
    let token = r.registration_access_token.expose().to_owned();
    // A registrant does not choose the profile: the operator does.
    assert_eq!(
        w.client_record(&Creds {
            id: id.clone(),
            secret: None
        })
        .user_flow
        .profile,
        ClientProfile::None
    );
    let patch = ClientPatch {
        name: None,
        settings: ClientSettings {
            profile: Some("fapi2".into()),
            ..ClientSettings::default()
        },
    };
    run(clients::update(&w.store, &w.config, &id, patch, w.now())).unwrap();
    // Replacing its metadata (RFC 7592 §2.2) without the profile keeps it, and its
    // information says its requests must be pushed.
    body["client_id"] = serde_json::json!(id);
    body.as_object_mut().unwrap().remove("profile");
    let updated = run(register::update(
        &w.cx(),
        &id,
        Some(&token),
        body.to_string().as_bytes(),
    ))
    .unwrap();
    assert_eq!(updated.user_flow.profile, ClientProfile::Fapi2);
    let info = register::client_information(&w.cx(), &updated, None, None);
    assert_eq!(
        info["require_pushed_authorization_requests"], true,
        "{info}"
    );
    // The profile is refused to a client with a secret, whoever asks.
    let secret_client = w.code_client(|_| {});
    let patch = ClientPatch {
        name: None,
        settings: ClientSettings {
            profile: Some("fapi2".into()),
            ..ClientSettings::default()
        },
    };
    let refused = run(clients::update(
        &w.store,
        &w.config,
        &secret_client.id,
        patch,
        w.now(),
    ));
    assert!(refused.is_err(), "{refused:?}");
}
