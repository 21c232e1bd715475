//! `POST /sdk/token`: a vendor-signed JWT exchanged without client credentials, in an
//! environment, for a short-lived token of the environment's SDK client.

use serde_json::{json, Value};
use tessera_core::endpoint::sdk_token::{handle, SdkTokenRequest, SINGLE_USE_TTL, TTL};
use tessera_core::environment::sdk_client_id;
use tessera_core::error::ErrorCode;
use tessera_core::grant::TokenResponse;
use tessera_core::store::{ClientStore, TrustStore};
use tessera_core::OAuthError;

use crate::grant_jwt_bearer::{claims, edited};
use crate::support::*;

fn sdk(w: &World, jwt: &str, env: Option<&str>) -> Result<TokenResponse, OAuthError> {
    let req = SdkTokenRequest {
        jwt: jwt.into(),
        env: env.map(str::to_owned),
    };
    run(handle(&w.cx(), &req))
}

/// Claims of an SDK vendor's JWTs: no `aud`.
fn sdk_claims(w: &World) -> Value {
    edited(claims(w), &[("aud", None)])
}

#[test]
fn a_vendor_jwt_gives_a_five_minute_token_of_the_environments_sdk_client() {
    let w = World::new();
    let signer = w.trust("default", |_, _| {});
    let r = sdk(&w, &signer.sign(&sdk_claims(&w)), None).unwrap();
    assert_eq!(r.expires_in, TTL);
    assert_eq!(r.scope, "", "no scope in the response");
    assert!(r.refresh_token.is_none());
    let token = payload(&at(&r));
    assert_eq!(token["sub"], "user-1");
    assert_eq!(token["client_id"], sdk_client_id("default"));
    assert_eq!(token["scope"], "read");
    assert_eq!(token["anyflow_team_id"], "team-9");
    let sdk_client = run(w.store.get_client(&sdk_client_id("default")))
        .unwrap()
        .unwrap();
    assert!(sdk_client.secret_hash.is_none() && sdk_client.jwks.is_none());
    // Made once: the next request issues under the same client and epoch.
    let again = sdk(&w, &signer.sign(&sdk_claims(&w)), Some("default")).unwrap();
    assert!(w.look(&at(&again)).is_some());
    assert!(w.look(&at(&r)).is_some());
    w.advance(TTL - 1);
    assert!(w.look(&at(&r)).is_some());
    w.advance(1);
    assert!(w.look(&at(&r)).is_none(), "five minutes");
}

#[test]
fn requests_and_their_outcomes() {
    let w = World::new();
    let signer = w.trust("default", |_, _| {});
    let now = w.now();
    let rows: Vec<(&str, Value, Option<&str>, Result<(), (ErrorCode, &str)>)> = vec![
        ("no aud", sdk_claims(&w), None, Ok(())),
        (
            "aud naming /sdk/token",
            edited(
                sdk_claims(&w),
                &[("aud", Some(json!(format!("{ISSUER}/sdk/token"))))],
            ),
            None,
            Ok(()),
        ),
        (
            "aud naming another server",
            edited(
                sdk_claims(&w),
                &[("aud", Some(json!("https://other.example")))],
            ),
            None,
            Err((ErrorCode::InvalidGrant, "aud")),
        ),
        (
            "no exp",
            edited(sdk_claims(&w), &[("exp", None)]),
            None,
            Err((ErrorCode::InvalidGrant, "exp")),
        ),
        (
            "expired",
            edited(sdk_claims(&w), &[("exp", Some(json!(now - 61)))]),
            None,
            Err((ErrorCode::InvalidGrant, "expired")),
        ),
        (
            "no jti",
            edited(sdk_claims(&w), &[("jti", None)]),
            None,
            Err((ErrorCode::InvalidGrant, "jti")),
        ),
        (
            "an unknown environment",
            sdk_claims(&w),
            Some("nowhere"),
            Err((ErrorCode::InvalidRequest, "unknown env")),
        ),
        (
            "an invalid environment name",
            sdk_claims(&w),
            Some("Not A Name"),
            Err((ErrorCode::InvalidRequest, "unknown env")),
        ),
    ];
    for (case, claims, env, expect) in rows {
        let got = sdk(&w, &signer.sign(&claims), env);
        match expect {
            Ok(()) => {
                got.unwrap_or_else(|e| panic!("{case}: {e}"));
            }
            Err((code, why)) => refused(case, got, code, why),
        }
    }
    refused(
        "an empty jwt",
        sdk(&w, "", None),
        ErrorCode::InvalidRequest,
        "jwt is required",
    );
    let once = signer.sign(&sdk_claims(&w));
    assert!(sdk(&w, &once, None).is_ok());
    refused(
        "replayed",
        sdk(&w, &once, None),
        ErrorCode::InvalidGrant,
        "already used",
    );
    for body in [
        &b"not json"[..],
        b"{}",
        br#"{"jwt": 5}"#,
        br#"{"jwt": "x", "env": 1}"#,
    ] {
        let e = SdkTokenRequest::from_json(body).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}

#[test]
fn the_issuer_must_be_trusted_in_the_requested_environment() {
    let w = World::new();
    let signer = w.trust("staging", |_, _| {});
    refused(
        "trusted in another environment",
        sdk(&w, &signer.sign(&sdk_claims(&w)), None),
        ErrorCode::InvalidGrant,
        "not trusted",
    );
    let r = sdk(&w, &signer.sign(&sdk_claims(&w)), Some("staging")).unwrap();
    let token = payload(&at(&r));
    assert_eq!(token["env"], "staging");
    assert_eq!(token["client_id"], sdk_client_id("staging"));
}

#[test]
fn a_single_use_environment_gives_ten_minute_single_use_tokens() {
    let w = World::new();
    let signer = w.trust("hosted", |_, _| {});
    assert!(run(w.store.set_env_single_use("hosted", true, w.now())).unwrap());
    let r = sdk(&w, &signer.sign(&sdk_claims(&w)), Some("hosted")).unwrap();
    assert_eq!(r.expires_in, SINGLE_USE_TTL);
    let caller = w.client(|c| c.env = "hosted".into());
    assert!(w.active(&caller, &at(&r)));
    assert!(!w.active(&caller, &at(&r)), "used up by the first check");
}
