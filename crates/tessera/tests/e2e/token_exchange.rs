//! Token exchange (RFC 8693) against the real server: a client registered with the CLI
//! (`--grant-type urn:ietf:params:oauth:grant-type:token-exchange`,
//! `--token-exchange-audience`) exchanges a user token from the JWT-bearer grant for a
//! narrower token for one API; the response's fields and headers (§2.2.1), refusals in the
//! RFC's shape (§2.2.2), an attempt to widen the audience, delegation with `act` seen in
//! introspection, the policy shown by `client show` and the grant type in discovery.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::jwt_bearer::{self, claims, sign, trust, vendor_key};
use crate::support::{decode_jwt, Creds, Server};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const API_A: &str = "https://api-a.example";
const API_B: &str = "https://api-b.example";

/// The form of an exchange of `subject`, an access token of this server, for `audience`.
pub fn exchange_form<'a>(subject: &'a str, audience: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ]
}

/// A token request by `client`; the status, the `Cache-Control` header and the JSON body.
async fn token(
    server: &Server,
    client: &Creds,
    form: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let cache = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.text().await.unwrap();
    (
        status,
        cache,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}

#[tokio::test]
async fn a_user_token_exchanged_for_a_narrower_token_for_one_api() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "default", &[]).await;
    let client = server
        .create_client(&[
            "--grant-type",
            jwt_bearer::GRANT_TYPE,
            "--grant-type",
            "client_credentials",
            "--grant-type",
            GRANT_TYPE,
            "--scope",
            "sdk",
            "--audience",
            API_A,
            "--audience",
            API_B,
            "--token-exchange-audience",
            API_A,
        ])
        .await;
    let shown = server
        .cli_json(&["client", "show", &client.id, "--json"])
        .await;
    assert_eq!(shown["token_exchange_audiences"], json!([API_A]));
    let discovery = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(GRANT_TYPE)));

    // The vendor's user token: audience A and B.
    let assertion = sign(&key, &claims(&server));
    let (status, _, user) = token(
        &server,
        &client,
        &[
            ("grant_type", jwt_bearer::GRANT_TYPE),
            ("assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let subject = user["access_token"].as_str().unwrap().to_owned();
    assert_eq!(decode_jwt(&subject).claims["aud"], json!([API_A, API_B]));

    // Exchanged for API A only.
    let (status, cache, narrow) = token(
        &server,
        &client,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", API_A),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrow}");
    assert_eq!(cache, "no-store");
    assert_eq!(narrow["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(narrow["token_type"], "bearer");
    assert!(narrow.get("refresh_token").is_none());
    let issued = narrow["access_token"].as_str().unwrap().to_owned();
    let c = decode_jwt(&issued).claims;
    assert_eq!(c["aud"], API_A);
    assert_eq!(c["sub"], "user-1");
    assert_eq!(c["anyflow_team_id"], "team-7");

    // Widening: B is in the subject token but not in the policy; refused in the RFC's shape.
    let (status, _, err) = token(
        &server,
        &client,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &issued),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", API_B),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_target", "{err}");
    assert!(err["error_description"].is_string());
    let (status, _, err) = token(
        &server,
        &client,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &issued),
            ("subject_token_type", ACCESS_TOKEN),
            ("scope", "sdk admin"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_scope", "{err}");
    let (status, _, err) = token(
        &server,
        &client,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &issued),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            ),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_request", "{err}");

    // Delegation: the client acts with its own token; introspection shows the actor.
    let actor = server.access_token(&client).await;
    let (status, _, delegated) = token(
        &server,
        &client,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &issued),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{delegated}");
    let seen = server
        .introspect(&client, delegated["access_token"].as_str().unwrap())
        .await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["sub"], "user-1");
    assert_eq!(seen["act"], json!({"sub": client.id}));

    // Another client, also registered for the grant, cannot exchange this client's token.
    let other = server
        .create_client(&[
            "--grant-type",
            GRANT_TYPE,
            "--token-exchange-audience",
            API_A,
        ])
        .await;
    let (status, _, err) = token(
        &server,
        &other,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_request", "{err}");

    // A revoked subject token no longer exchanges.
    assert_eq!(server.revoke(&client, &subject).await, StatusCode::OK);
    let (status, _, err) = token(
        &server,
        &client,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_request", "{err}");

    // No token reaches the log.
    let logs = server.logs();
    for t in [&subject, &issued, &actor] {
        assert!(!logs.contains(t.as_str()), "a token in the log");
    }
}

#[tokio::test]
async fn the_cli_refuses_a_token_exchange_audience_that_is_not_an_absolute_uri() {
    let server = Server::start().await;
    let out = server
        .cli_output(&[
            "client",
            "create",
            "--name",
            "t",
            "--grant-type",
            GRANT_TYPE,
            "--token-exchange-audience",
            "not-a-uri",
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token-exchange-audience"), "{err}");
}
