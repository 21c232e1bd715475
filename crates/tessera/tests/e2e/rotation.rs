//! Secret rotation, client deletion and signing-key rotation, done by the CLI while the
//! server runs (as API platforms document it: "the old client secret stops working after the update, and access
//! tokens generated before expire with it").

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    decode_jwt, unix_now, verify_es256, wait_until, Creds, Server, FEED_DEADLINE,
};

async fn rotate(s: &Server, c: &Creds, extra: &[&str]) -> Creds {
    let mut args = vec!["client", "rotate-secret", c.id.as_str()];
    args.extend_from_slice(extra);
    args.push("--json");
    let out = s.cli_json(&args).await;
    assert_eq!(out["client_id"], c.id.as_str());
    let secret = out["client_secret"].as_str().expect("new secret");
    assert_ne!(secret, c.secret, "rotation must change the secret");
    c.with_secret(secret)
}

/// Rotates a client's secret and checks that, within a second, the old secret is refused and
/// the token issued before is inactive, while the new secret works.
async fn rotation_revokes_old_secret_and_tokens(format: &str) {
    let s = Server::start().await;
    let old = s.create_client(&["--access-token-format", format]).await;
    let observer = s.create_client(&[]).await;
    let before = s.access_token(&old).await;
    assert!(s.is_active(&observer, &before).await);

    let new = rotate(&s, &old, &[]).await;
    let (s, old_ref, observer_ref, before_ref) = (&s, &old, &observer, before.as_str());
    let took = wait_until(
        FEED_DEADLINE,
        "old secret refused and the token issued before it inactive",
        move || async move {
            s.token_status(old_ref).await == StatusCode::UNAUTHORIZED
                && !s.is_active(observer_ref, before_ref).await
        },
    )
    .await;
    assert!(took <= FEED_DEADLINE);

    let after = s.access_token(&new).await;
    assert!(
        s.is_active(&observer, &after).await,
        "token from the new secret"
    );
    assert!(
        s.is_active(&new, &after).await,
        "the client introspects with its new secret"
    );
    assert_eq!(
        s.introspect(&observer, &before).await,
        json!({"active": false})
    );
    let res = s.token(&old, None).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret stays refused"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // The old secret cannot be used at the other endpoints either.
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .basic_auth(&old.id, Some(&old.secret))
        .form(&[("token", after.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rotated_secret_is_refused_and_old_jwt_tokens_go_inactive_within_a_second() {
    rotation_revokes_old_secret_and_tokens("jwt").await;
}

#[tokio::test]
async fn rotated_secret_is_refused_and_old_opaque_tokens_go_inactive_within_a_second() {
    rotation_revokes_old_secret_and_tokens("opaque").await;
}

#[tokio::test]
async fn keeping_the_old_secret_lets_both_work_until_a_plain_rotation_ends_it() {
    let s = Server::start().await;
    let first = s.create_client(&[]).await;
    let opaque_first = s.create_client(&["--access-token-format", "opaque"]).await;
    let observer = s.create_client(&[]).await;
    let jwt_before = s.access_token(&first).await;
    let opaque_before = s.access_token(&opaque_first).await;

    let second = rotate(&s, &first, &["--keep-old-secret-for", "60"]).await;
    let opaque_second = rotate(&s, &opaque_first, &["--keep-old-secret-for", "60"]).await;
    let (sr, a, b) = (&s, &second, &opaque_second);
    wait_until(FEED_DEADLINE, "the new secrets work", move || async move {
        sr.token_status(a).await == StatusCode::OK && sr.token_status(b).await == StatusCode::OK
    })
    .await;
    // The server has the rotation now: the old secrets still work and nothing was revoked.
    assert_eq!(s.token_status(&first).await, StatusCode::OK);
    assert_eq!(s.token_status(&opaque_first).await, StatusCode::OK);
    assert!(s.is_active(&observer, &jwt_before).await);
    assert!(s.is_active(&observer, &opaque_before).await);
    let shown = s.cli_json(&["client", "show", &first.id, "--json"]).await;
    let until = shown["old_secret_valid_until"]
        .as_f64()
        .expect("overlap end");
    assert!((until - unix_now() - 60.0).abs() < 5.0, "{shown}");

    // A plain rotation ends the overlap at once and revokes everything issued before.
    let third = rotate(&s, &second, &[]).await;
    let (sr, f, sc, o, t) = (&s, &first, &second, &observer, jwt_before.as_str());
    wait_until(
        FEED_DEADLINE,
        "both earlier secrets refused and earlier tokens inactive",
        move || async move {
            sr.token_status(f).await == StatusCode::UNAUTHORIZED
                && sr.token_status(sc).await == StatusCode::UNAUTHORIZED
                && !sr.is_active(o, t).await
        },
    )
    .await;
    assert_eq!(s.token_status(&third).await, StatusCode::OK);
}

#[tokio::test]
async fn old_secret_stops_working_when_its_overlap_ends_and_its_tokens_stay_active() {
    let s = Server::start().await;
    let old = s.create_client(&[]).await;
    let observer = s.create_client(&[]).await;
    let before = s.access_token(&old).await;
    let new = rotate(&s, &old, &["--keep-old-secret-for", "1"]).await;
    let (sr, o) = (&s, &old);
    // The overlap ends at most 1 s after the rotation (whole seconds), plus the feed delay.
    wait_until(
        Duration::from_secs(3),
        "the old secret is refused after its overlap",
        move || async move { sr.token_status(o).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert_eq!(s.token_status(&new).await, StatusCode::OK);
    assert!(
        s.is_active(&observer, &before).await,
        "a rotation with an overlap revokes nothing"
    );
}

#[tokio::test]
async fn deleted_client_is_refused_and_its_tokens_go_inactive_within_a_second() {
    let s = Server::start().await;
    let jwt = s.create_client(&[]).await;
    let opaque = s.create_client(&["--access-token-format", "opaque"]).await;
    let observer = s.create_client(&[]).await;
    let jwt_token = s.access_token(&jwt).await;
    let opaque_token = s.access_token(&opaque).await;
    for c in [&jwt, &opaque] {
        let out = s.cli_json(&["client", "delete", &c.id, "--json"]).await;
        assert_eq!(out, json!({"client_id": c.id, "deleted": true}));
    }
    let (sr, j, o, obs, jt, ot) = (
        &s,
        &jwt,
        &opaque,
        &observer,
        jwt_token.as_str(),
        opaque_token.as_str(),
    );
    wait_until(
        FEED_DEADLINE,
        "deleted clients refused and their tokens inactive",
        move || async move {
            sr.token_status(j).await == StatusCode::UNAUTHORIZED
                && sr.token_status(o).await == StatusCode::UNAUTHORIZED
                && !sr.is_active(obs, jt).await
                && !sr.is_active(obs, ot).await
        },
    )
    .await;
    assert_eq!(
        s.introspect(&observer, &jwt_token).await,
        json!({"active": false})
    );
    assert_eq!(
        s.introspect(&observer, &opaque_token).await,
        json!({"active": false})
    );
    let listed = s.cli_json(&["client", "list", "--json"]).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .collect();
    assert_eq!(ids, [observer.id.as_str()]);
    let out = s.cli_output(&["client", "show", &jwt.id, "--json"]).await;
    assert!(!out.status.success(), "showing a deleted client fails");
    let out = s.cli_output(&["client", "delete", &jwt.id, "--json"]).await;
    assert!(!out.status.success(), "deleting twice fails");
}

/// A new signing key is published at once and signs only after its lead time (verifiers
/// that cache the JWKS must see it first); tokens signed by the old key stay valid. The lead
/// time is 2 s so that, with the change reaching the server within 1 s, there is always a
/// moment when the JWKS shows both keys while the old one still signs; the configured lead
/// time of 4 s has the JWKS cached for 2 s, so a 2 s lead time is allowed.
#[tokio::test]
async fn key_rotation_publishes_the_new_key_first_and_signs_with_it_after_the_lead_time() {
    let s = Server::start_with(&[("TESSERA_KEY_ROTATION_LEAD_TIME", "4")]).await;
    let c = s.create_client(&[]).await;
    let keys = s.cli_json(&["keys", "list", "--json"]).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let old_kid = keys[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(keys[0]["state"], "active");
    let old_token = s.access_token(&c).await;
    assert_eq!(decode_jwt(&old_token).header["kid"], old_kid.as_str());

    let rotated = s
        .cli_json(&["keys", "rotate", "--lead-time", "2", "--json"])
        .await;
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let activates_at = rotated["activates_at"].as_f64().unwrap();
    assert_eq!(rotated["alg"], "ES256");
    assert_ne!(new_kid, old_kid);

    let sr = &s;
    wait_until(
        FEED_DEADLINE,
        "the JWKS publishes the new key",
        move || async move {
            let jwks = sr.get_json("/.well-known/jwks.json").await;
            jwks["keys"].as_array().map(Vec::len) == Some(2)
        },
    )
    .await;
    let jwks = s.get_json("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{jwks}"
    );

    // Published but not yet signing.
    let early = s.access_token(&c).await;
    let early_done = unix_now();
    assert!(
        early_done < activates_at,
        "the key change reached the server too late to observe the lead time"
    );
    assert_eq!(decode_jwt(&early).header["kid"], old_kid.as_str());

    // Then, once the lead time is over, the new key signs; never before.
    let deadline = Duration::from_secs_f64((activates_at - unix_now()).max(0.0) + 1.5);
    let (sr, cr, new_kid_ref) = (&s, &c, new_kid.as_str());
    wait_until(
        deadline,
        "tokens are signed by the new key",
        move || async move {
            let token = sr.access_token(cr).await;
            let done = unix_now();
            let signed_by_new = decode_jwt(&token).header["kid"] == new_kid_ref;
            assert!(
                !signed_by_new || done >= activates_at,
                "signed by the new key at {done}, before it activates at {activates_at}"
            );
            signed_by_new
        },
    )
    .await;

    let new_token = s.access_token(&c).await;
    assert_eq!(decode_jwt(&new_token).header["kid"], new_kid.as_str());
    // Both keys verify their tokens, and the server still honours the old key's tokens.
    let jwks = s.get_json("/.well-known/jwks.json").await;
    assert_eq!(verify_es256(&jwks, &old_token), Ok(old_kid.clone()));
    assert_eq!(verify_es256(&jwks, &early), Ok(old_kid.clone()));
    assert_eq!(verify_es256(&jwks, &new_token), Ok(new_kid.clone()));
    assert!(s.is_active(&c, &old_token).await);
    assert!(s.is_active(&c, &new_token).await);
    let keys = s.cli_json(&["keys", "list", "--json"]).await;
    let state_of = |kid: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].clone())
    };
    assert_eq!(state_of(&old_kid), Some(json!("superseded")), "{keys}");
    assert_eq!(state_of(&new_kid), Some(json!("active")), "{keys}");
}

#[tokio::test]
async fn keys_resealed_under_a_new_secret_open_only_with_it() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let token = s.access_token(&c).await;
    let new_secret = "a-brand-new-sealing-secret-for-the-keys";
    let file = s.dir_path().join("new-secret");
    std::fs::write(&file, format!("{new_secret}\n")).unwrap();
    let out = s
        .cli_json(&[
            "keys",
            "reseal",
            "--new-secret-file",
            file.to_str().unwrap(),
            "--json",
        ])
        .await;
    assert!(out["resealed"].as_u64().unwrap() >= 1, "{out}");
    // With the new secret the keys open, and the token issued before still verifies.
    let with_new = s
        .cli_output_with(
            &["token", "introspect", &token, "--json"],
            &[("TESSERA_SECRET", new_secret)],
        )
        .await;
    assert!(with_new.status.success());
    let info: serde_json::Value = serde_json::from_slice(&with_new.stdout).unwrap();
    assert_eq!(info["active"], true);
    // The old secret no longer opens them, and says so.
    let with_old = s.cli_output(&["token", "introspect", &token]).await;
    assert!(!with_old.status.success());
    assert!(String::from_utf8_lossy(&with_old.stderr).contains("cannot unseal"));
    // A too-short new secret is refused and changes nothing.
    std::fs::write(&file, "short").unwrap();
    let refused = s
        .cli_output_with(
            &[
                "keys",
                "reseal",
                "--new-secret-file",
                file.to_str().unwrap(),
            ],
            &[("TESSERA_SECRET", new_secret)],
        )
        .await;
    assert!(!refused.status.success());
    let still = s
        .cli_output_with(
            &["token", "introspect", &token, "--json"],
            &[("TESSERA_SECRET", new_secret)],
        )
        .await;
    assert!(still.status.success());
}
