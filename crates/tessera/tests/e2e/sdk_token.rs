//! The Anyflow Embed `POST /sdk/token` (the `anyflow` dialect, docs/dialects/anyflow.toml):
//! a vendor-signed JWT and an environment in JSON, a 5-minute access token back, no client
//! credentials; the whole vendor flow through the CLI (`jwt keygen`, `trust add`, `jwt sign`),
//! environments, single-use tokens (with the 50-way race), and errors in the token endpoint's
//! shape.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::jwt_bearer::{claims, sign, trust, vendor_key};
use crate::support::{decode_jwt, unix_now, wait_until, Server, FEED_DEADLINE};

/// Posts a JSON body to `/sdk/token`; returns the status and the JSON answer.
async fn sdk_token(server: &Server, body: &Value) -> (StatusCode, Value) {
    let res = server
        .http
        .post(server.url("/sdk/token"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// Claims as an SDK vendor's backend writes them: no audience.
fn seed_claims(server: &Server) -> Value {
    let mut c = claims(server);
    c.as_object_mut().unwrap().remove("aud");
    c
}

#[tokio::test]
async fn the_vendor_flow_end_to_end_with_keygen_trust_add_and_sign() {
    let server = Server::start().await;
    // The resource server (the vendor's API) introspects with credentials of its own.
    let api = server.create_client(&["--scope", "sdk"]).await;
    for (alg, issuer) in [
        ("ES256", "anyflow-es"),
        ("EdDSA", "anyflow-ed"),
        ("RS256", "anyflow-rs"),
    ] {
        let dir = server.dir_path().join(format!("keys-{alg}"));
        let dir_s = dir.to_str().unwrap();
        let made = server
            .cli_json(&["jwt", "keygen", "--out", dir_s, "--alg", alg, "--json"])
            .await;
        assert_eq!(made["alg"], alg);
        let private = std::fs::read_to_string(dir.join("private.pem")).unwrap();
        let public = std::fs::read_to_string(dir.join("public.pem")).unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{alg}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("private.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the private key is not readable by others");
        }
        // keygen never overwrites a key.
        let again = server
            .cli_output(&["jwt", "keygen", "--out", dir_s, "--alg", alg])
            .await;
        assert!(!again.status.success());
        let public_path = dir.join("public.pem");
        server
            .cli(&[
                "trust",
                "add",
                "--issuer",
                issuer,
                "--public-key",
                public_path.to_str().unwrap(),
                "--subject-claim",
                "anyflow_user_id",
                "--claim",
                "anyflow_team_id",
                "--claim",
                "anyflow_user_id",
                "--scope",
                "sdk",
            ])
            .await;
        let private_path = dir.join("private.pem");
        let jwt = server
            .cli(&[
                "jwt",
                "sign",
                "--key",
                private_path.to_str().unwrap(),
                "--iss",
                issuer,
                "--sub",
                "vendor-user-9",
                "--claim",
                "anyflow_team_id=team-42",
                "--claim",
                "anyflow_user_id=user-9",
            ])
            .await;
        let jwt = jwt.trim().to_owned();
        let header = decode_jwt(&jwt).header;
        assert_eq!(header["alg"], alg);
        let signed = decode_jwt(&jwt).claims;
        assert!(signed["jti"].as_str().is_some_and(|j| j.len() >= 16));
        let iat = signed["iat"].as_i64().unwrap();
        assert!((iat - unix_now() as i64).abs() < 30);
        assert_eq!(signed["exp"].as_i64().unwrap() - iat, 300);
        let (status, body) = sdk_token(&server, &json!({ "jwt": jwt })).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {body}");
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 300);
        let token = body["access_token"].as_str().unwrap().to_owned();
        let at = decode_jwt(&token).claims;
        assert_eq!(
            at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
            300
        );
        assert_eq!(at["sub"], "user-9", "the subject claim chosen at trust add");
        assert_eq!(at["client_id"], "sdk:default");
        // A JWT already used is refused: always send a new one.
        let (status, again) = sdk_token(&server, &json!({ "jwt": jwt, "env": "default" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
        assert_eq!(again["error"], "invalid_grant");
        // The API learns who the end user is.
        let info = server.introspect(&api, &token).await;
        assert_eq!(info["active"], true, "{alg}: {info}");
        assert_eq!(info["sub"], "user-9");
        assert_eq!(info["anyflow_team_id"], "team-42");
        assert_eq!(info["anyflow_user_id"], "user-9");
        assert_eq!(info["scope"], "sdk");
        assert_eq!(info["env"], "default");
        // Calling an /sdk-style API with the token as a bearer works like any token of ours.
        let res = server
            .http
            .post(server.url("/oauth2/introspect"))
            .basic_auth(&api.id, Some(&api.secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let listed = server.cli_json(&["trust", "list", "--json"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_env_selects_the_trust_registrations_and_the_token_carries_it() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "staging", &[]).await;
    let envs = server.cli_json(&["env", "list", "--json"]).await;
    let names: Vec<&str> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["default", "staging"], "created on first use");
    // Not trusted in the default environment.
    let (status, body) =
        sdk_token(&server, &json!({"jwt": sign(&key, &seed_claims(&server))})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = sdk_token(
        &server,
        &json!({"jwt": sign(&key, &seed_claims(&server)), "env": "staging"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(decode_jwt(token).claims["env"], "staging");
    assert_eq!(decode_jwt(token).claims["client_id"], "sdk:staging");
    let staging_api = server.create_client(&["--env", "staging"]).await;
    let default_api = server.create_client(&[]).await;
    assert!(!server.is_active(&default_api, token).await);
    assert!(server.is_active(&staging_api, token).await);
    // An unknown environment.
    let (status, body) = sdk_token(
        &server,
        &json!({"jwt": sign(&key, &seed_claims(&server)), "env": "nowhere"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    // Deleting the environment is refused while a client is in it; then it takes its trust
    // registrations and its /sdk/token client (whose tokens die with it).
    let refused = server.cli_output(&["env", "delete", "staging"]).await;
    assert!(!refused.status.success());
    server.cli(&["client", "delete", &staging_api.id]).await;
    server.cli(&["env", "delete", "staging"]).await;
    assert!(server.cli_json(&["trust", "list", "--json"]).await == json!([]));
    assert!(!server
        .cli_output(&["env", "delete", "default"])
        .await
        .status
        .success());
    let out = server
        .cli_json(&["token", "introspect", token, "--json"])
        .await;
    assert_eq!(out["active"], false);
    // Made again, the environment's SDK client does not bring the old tokens back. (First
    // the server honours the deletion, as it does within a second.)
    let (server_ref, key_ref) = (&server, &key);
    wait_until(
        FEED_DEADLINE,
        "the deleted environment is unknown",
        || async move {
            let body = json!({"jwt": sign(key_ref, &seed_claims(server_ref)), "env": "staging"});
            sdk_token(server_ref, &body).await.1["error"] == "invalid_request"
        },
    )
    .await;
    trust(&server, &key, "staging", &[]).await;
    let issued = std::sync::Mutex::new(None::<String>);
    let issued_ref = &issued;
    wait_until(
        FEED_DEADLINE,
        "the environment is known again",
        || async move {
            let body = json!({"jwt": sign(key_ref, &seed_claims(server_ref)), "env": "staging"});
            let (status, answer) = sdk_token(server_ref, &body).await;
            if status == StatusCode::OK {
                *issued_ref.lock().unwrap() = answer["access_token"].as_str().map(str::to_owned);
            }
            status == StatusCode::OK
        },
    )
    .await;
    let fresh = issued.lock().unwrap().clone().unwrap();
    let fresh = fresh.as_str();
    let out = server
        .cli_json(&["token", "introspect", fresh, "--json"])
        .await;
    assert_eq!(out["active"], true);
    let out = server
        .cli_json(&["token", "introspect", token, "--json"])
        .await;
    assert_eq!(out["active"], false, "the old token stays dead");
}

#[tokio::test]
async fn sdk_token_rules_and_errors_in_the_token_endpoint_shape() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "default", &[]).await;
    let check = |status: StatusCode, body: &Value, code: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(body["error_description"].is_string(), "{body}");
    };
    // aud is optional, but checked when present.
    let mut c = seed_claims(&server);
    c["aud"] = server.url("/sdk/token").into();
    let (status, body) = sdk_token(&server, &json!({"jwt": sign(&key, &c)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut c = seed_claims(&server);
    c["aud"] = "https://elsewhere.example".into();
    let (status, body) = sdk_token(&server, &json!({"jwt": sign(&key, &c)})).await;
    check(status, &body, "invalid_grant");
    // jti, exp and the signature are always required.
    for field in ["jti", "exp"] {
        let mut c = seed_claims(&server);
        c.as_object_mut().unwrap().remove(field);
        let (status, body) = sdk_token(&server, &json!({"jwt": sign(&key, &c)})).await;
        check(status, &body, "invalid_grant");
    }
    let (status, body) = sdk_token(
        &server,
        &json!({"jwt": sign(&vendor_key(), &seed_claims(&server))}),
    )
    .await;
    check(status, &body, "invalid_grant");
    let now = unix_now() as i64;
    let mut c = seed_claims(&server);
    c["exp"] = (now - 600).into();
    c["iat"] = (now - 900).into();
    let (status, body) = sdk_token(&server, &json!({"jwt": sign(&key, &c)})).await;
    check(status, &body, "invalid_grant");
    // Bad bodies.
    for body in [
        json!({}),
        json!({"jwt": 5}),
        json!({"jwt": "x", "env": 3}),
        json!([1]),
    ] {
        let (status, answer) = sdk_token(&server, &body).await;
        check(status, &answer, "invalid_request");
    }
    let (status, answer) = sdk_token(&server, &json!({"jwt": ""})).await;
    check(status, &answer, "invalid_request");
    for (content_type, raw) in [
        ("application/json", "{not json"),
        ("application/x-www-form-urlencoded", "jwt=abc"),
        ("application/json", ""),
    ] {
        let res = server
            .http
            .post(server.url("/sdk/token"))
            .header("content-type", content_type)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{raw}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{raw}");
    }
    let res = server
        .http
        .get(server.url("/sdk/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    // A JWT that is not one.
    let (status, body) = sdk_token(&server, &json!({"jwt": "a.b.c"})).await;
    check(status, &body, "invalid_grant");
}

#[tokio::test]
async fn single_use_tokens_of_an_environment_are_consumed_by_exactly_one_of_50_parallel_checks() {
    let server = Server::start().await;
    let key = vendor_key();
    server.cli(&["env", "create", "hosted"]).await;
    let set = server
        .cli_json(&["env", "set", "hosted", "--single-use-tokens", "--json"])
        .await;
    assert_eq!(set["single_use_tokens"], true);
    trust(&server, &key, "hosted", &[]).await;
    let api = server.create_client(&["--env", "hosted"]).await;
    let (status, body) = sdk_token(
        &server,
        &json!({"jwt": sign(&key, &seed_claims(&server)), "env": "hosted"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The anyflow dialect's hosted case: invalid once used, or 10 minutes after issue.
    assert_eq!(body["expires_in"], 600);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(decode_jwt(&token).claims["single_use"], true);
    // A check by a client of another environment does not consume it.
    let outsider = server.create_client(&[]).await;
    assert!(!server.is_active(&outsider, &token).await);
    let checks = (0..50).map(|_| server.introspect(&api, &token));
    let answers = join_all(checks).await;
    let active: Vec<&Value> = answers.iter().filter(|a| a["active"] == true).collect();
    assert_eq!(active.len(), 1, "exactly one check sees it active");
    assert_eq!(active[0]["sub"], "user-1");
    assert!(
        !server.is_active(&api, &token).await,
        "used: inactive from now on"
    );
}

#[tokio::test]
async fn single_use_tokens_of_a_client_in_both_formats() {
    let server = Server::start().await;
    let api = server.create_client(&[]).await;
    for format in ["jwt", "opaque"] {
        let client = server
            .create_client(&["--single-use-tokens", "--access-token-format", format])
            .await;
        let shown = server
            .cli_json(&["client", "show", &client.id, "--json"])
            .await;
        assert_eq!(shown["single_use_tokens"], true);
        let token = server.access_token(&client).await;
        let answers = join_all((0..50).map(|_| server.introspect(&api, &token))).await;
        let active = answers.iter().filter(|a| a["active"] == true).count();
        assert_eq!(active, 1, "{format}");
        // An ordinary token of the same client after `client update` is reusable again.
        server
            .cli(&[
                "client",
                "update",
                &client.id,
                "--single-use-tokens",
                "false",
            ])
            .await;
        let server_ref = &server;
        let client_ref = &client;
        let api_ref = &api;
        crate::support::wait_until(
            crate::support::FEED_DEADLINE,
            "tokens are no longer single-use",
            || async move {
                let t = server_ref.access_token(client_ref).await;
                server_ref.is_active(api_ref, &t).await && server_ref.is_active(api_ref, &t).await
            },
        )
        .await;
    }
}

#[tokio::test]
async fn parallel_first_exchanges_in_a_new_environment_all_succeed() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "fresh", &[]).await;
    let requests = (0..20).map(|_| {
        let body = json!({"jwt": sign(&key, &seed_claims(&server)), "env": "fresh"});
        let server = &server;
        async move { sdk_token(server, &body).await }
    });
    let answers = join_all(requests).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let clients = server.cli_json(&["client", "list", "--json"]).await;
    let sdk: Vec<&Value> = clients
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["client_id"] == "sdk:fresh")
        .collect();
    assert_eq!(sdk.len(), 1, "one SDK client per environment");
    assert_eq!(sdk[0]["env"], "fresh");
}

#[tokio::test]
async fn failed_exchanges_from_one_address_are_throttled() {
    let server = Server::start_with(&[("TESSERA_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    for _ in 0..3 {
        let (status, body) = sdk_token(&server, &json!({"jwt": "e30.e30.e30"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    let (status, body) = sdk_token(&server, &json!({"jwt": "e30.e30.e30"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "slow_down");
}

/// Posts a JSON body to `/sdk/token` with a `DPoP` header.
async fn sdk_token_with_proof(server: &Server, body: &Value, proof: &str) -> (StatusCode, Value) {
    let res = server
        .http
        .post(server.url("/sdk/token"))
        .header("DPoP", proof)
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

/// An SDK holding a DPoP key (RFC 9449) gets a token bound to it; a bad proof is refused
/// before the vendor's JWT is used up, and a proof is taken once.
#[tokio::test]
async fn a_dpop_proof_binds_the_sdk_token_to_its_key() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "default", &[]).await;
    let dpop = crate::dpop::DpopKey::new();
    let jwt = sign(&key, &seed_claims(&server));
    // A proof for another URL: refused, and the JWT is still good afterwards.
    let wrong = dpop.proof("POST", &server.url("/oauth2/token"));
    let (status, body) = sdk_token_with_proof(&server, &json!({"jwt": jwt}), &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    let proof = dpop.proof("POST", &server.url("/sdk/token"));
    let (status, body) = sdk_token_with_proof(&server, &json!({"jwt": jwt}), &proof).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["cnf"]["jkt"], dpop.thumbprint(), "{claims:?}");
    // The same proof again, with a fresh JWT.
    let again = sign(&key, &seed_claims(&server));
    let (status, body) = sdk_token_with_proof(&server, &json!({"jwt": again}), &proof).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    // Without a proof: a bearer token, as before.
    let (status, body) = sdk_token(&server, &json!({"jwt": again})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert!(claims.get("cnf").is_none(), "{claims:?}");
}
