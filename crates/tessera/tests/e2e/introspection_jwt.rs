//! JWT introspection responses (RFC 9701): a resource server that sends
//! `Accept: application/token-introspection+jwt` gets the introspection answer as a JWT
//! signed with the key `jwks_uri` publishes, verified here with `jsonwebtoken` as a resource
//! server would; any other `Accept` still gets JSON, and errors stay JSON.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, VARY};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{decode_jwt, Creds, Server};

const JWT_TYPE: &str = "application/token-introspection+jwt";

/// Introspects `token` as `caller` with the given `Accept` headers (one header per item).
async fn introspect_with(
    s: &Server,
    path: &str,
    caller: &Creds,
    token: &str,
    accept: &[&str],
) -> reqwest::Response {
    let mut req = s
        .http
        .post(s.url(path))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("token", token)]);
    for a in accept {
        req = req.header(ACCEPT, *a);
    }
    req.send().await.unwrap()
}

/// Checks the response is a signed introspection JWT for `audience` and returns its claims
/// after verifying its signature against the server's `jwks_uri`.
async fn verified(s: &Server, res: reqwest::Response, audience: &str) -> Value {
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], JWT_TYPE);
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(res.headers()[VARY], "accept");
    let jwt = res.text().await.unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let kid = header.kid.expect("a kid");
    let jwks: JwkSet = serde_json::from_value(jwks(s).await).unwrap();
    let jwk = jwks
        .find(&kid)
        .expect("the kid is published in the jwks_uri");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[s.issuer()]);
    validation.set_audience(&[audience]);
    validation.validate_exp = false;
    validation.required_spec_claims = ["iss", "aud"].iter().map(|c| c.to_string()).collect();
    let data =
        jsonwebtoken::decode::<Value>(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    // A tampered payload does not verify.
    let parts: Vec<&str> = jwt.split('.').collect();
    let forged_claims = json!({"iss": s.issuer(), "aud": audience, "iat": 1,
        "token_introspection": {"active": true}});
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(&serde_json::to_vec(&forged_claims).unwrap()),
        parts[2]
    );
    assert!(jsonwebtoken::decode::<Value>(
        &forged,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation
    )
    .is_err());
    data.claims
}

/// The key set at the `jwks_uri` discovery names.
async fn jwks(s: &Server) -> Value {
    let meta = s.get_json("/.well-known/openid-configuration").await;
    let res = s
        .http
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A client whose tokens are introspected and a resource server that introspects them.
async fn owner_and_resource_server(s: &Server) -> (Creds, Creds) {
    let owner = s.create_client(&["--scope", "read write"]).await;
    let rs = s.create_client(&[]).await;
    (owner, rs)
}

#[tokio::test]
async fn an_active_token_is_answered_as_a_signed_jwt_for_the_caller() {
    let s = Server::start().await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    let plain = s.introspect(&rs, &at).await;
    assert_eq!(plain["active"], true);
    let before = decode_jwt(&at).claims["iat"].as_i64().unwrap();
    let claims = verified(
        &s,
        introspect_with(&s, "/oauth2/introspect", &rs, &at, &[JWT_TYPE]).await,
        &rs.id,
    )
    .await;
    // Exactly iss, aud (the caller, not the token's owner), iat and token_introspection
    // (RFC 9701 §5): the token's sub, exp, scope, client_id and jti are not top-level claims.
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["aud", "iat", "iss", "token_introspection"]);
    assert_eq!(claims["iss"], s.issuer());
    assert_eq!(claims["aud"], rs.id.as_str());
    assert_ne!(claims["aud"], owner.id.as_str());
    assert!(claims["iat"].as_i64().unwrap() >= before);
    assert_eq!(claims["token_introspection"], plain);
    assert_eq!(
        claims["token_introspection"]["client_id"],
        owner.id.as_str()
    );

    // The owner introspecting its own token is the audience of its answer.
    let own = verified(
        &s,
        introspect_with(&s, "/oauth2/introspect", &owner, &at, &[JWT_TYPE]).await,
        &owner.id,
    )
    .await;
    assert_eq!(own["aud"], owner.id.as_str());
    assert_eq!(own["token_introspection"]["active"], true);
}

#[tokio::test]
async fn an_opaque_token_is_answered_as_a_signed_jwt_too() {
    let s = Server::start().await;
    let owner = s
        .create_client(&["--scope", "read", "--access-token-format", "opaque"])
        .await;
    let rs = s.create_client(&[]).await;
    let at = s.access_token(&owner).await;
    let plain = s.introspect(&rs, &at).await;
    assert_eq!(plain["active"], true);
    let claims = verified(
        &s,
        introspect_with(&s, "/oauth2/introspect", &rs, &at, &[JWT_TYPE]).await,
        &rs.id,
    )
    .await;
    assert_eq!(claims["token_introspection"], plain);
}

#[tokio::test]
async fn an_inactive_token_gives_active_false_inside_a_signed_jwt() {
    let s = Server::start().await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    assert_eq!(s.revoke(&owner, &at).await, StatusCode::OK);
    for token in [
        at.as_str(),
        "not-a-token",
        "tat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let claims = verified(
            &s,
            introspect_with(&s, "/oauth2/introspect", &rs, token, &[JWT_TYPE]).await,
            &rs.id,
        )
        .await;
        assert_eq!(
            claims["token_introspection"],
            json!({"active": false}),
            "{token:.20}"
        );
        assert_eq!(claims["aud"], rs.id.as_str());
        assert_eq!(claims["iss"], s.issuer());
    }
}

#[tokio::test]
async fn the_accept_header_chooses_by_quality_and_across_several_headers() {
    let s = Server::start().await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    let jwt_cases: &[&[&str]] = &[
        &["application/json;q=0.5, application/token-introspection+jwt"],
        &["application/token-introspection+jwt;q=0.9, */*;q=0.1"],
        &["text/html", "application/token-introspection+jwt"],
        &[
            "application/json;q=0.2",
            "application/token-introspection+jwt;q=0.8",
        ],
        &["APPLICATION/Token-Introspection+JWT"],
    ];
    for accept in jwt_cases {
        let res = introspect_with(&s, "/oauth2/introspect", &rs, &at, accept).await;
        let claims = verified(&s, res, &rs.id).await;
        assert_eq!(claims["token_introspection"]["active"], true, "{accept:?}");
    }
    let json_cases: &[&[&str]] = &[
        &[],
        &["application/json"],
        &["*/*"],
        &["application/jwt"],
        &["text/html"],
        &["application/token-introspection+jwt;q=0.4, application/json"],
        &["application/token-introspection+jwt;q=0"],
        &["application/token-introspection+jwt;q=0.3", "*/*"],
    ];
    for accept in json_cases {
        let res = introspect_with(&s, "/oauth2/introspect", &rs, &at, accept).await;
        assert_eq!(res.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(
            res.headers()[CONTENT_TYPE],
            "application/json",
            "{accept:?}"
        );
        assert_eq!(res.headers()[VARY], "accept", "{accept:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["active"], true, "{accept:?}");
        assert_eq!(body["client_id"], owner.id.as_str(), "{accept:?}");
    }
}

#[tokio::test]
async fn errors_stay_json_whatever_was_accepted() {
    let s = Server::start().await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    // A wrong secret: 401 invalid_client, as JSON.
    let res = introspect_with(
        &s,
        "/oauth2/introspect",
        &rs.with_secret("wrong"),
        &at,
        &[JWT_TYPE],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].is_string());
    // An unknown client: the same.
    let ghost = Creds {
        id: "no-such-client".into(),
        secret: "x".into(),
    };
    let res = introspect_with(&s, "/oauth2/introspect", &ghost, &at, &[JWT_TYPE]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // A public client cannot introspect (RFC 7662 §2.1), nor get a signed answer.
    let public = s
        .create_client(&["--public", "--redirect-uri", "https://app.example/cb"])
        .await;
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .header(ACCEPT, JWT_TYPE)
        .form(&[("token", at.as_str()), ("client_id", public.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // No token: 400 invalid_request, as JSON.
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .basic_auth(&rs.id, Some(&rs.secret))
        .header(ACCEPT, JWT_TYPE)
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_signed_introspection_response_is_not_an_access_token() {
    let s = Server::start().await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    let res = introspect_with(&s, "/oauth2/introspect", &rs, &at, &[JWT_TYPE]).await;
    let response_jwt = res.text().await.unwrap();
    // Presented as a token, it is neither active at introspection nor accepted at userinfo.
    assert_eq!(
        s.introspect(&rs, &response_jwt).await,
        json!({"active": false})
    );
    let meta = s.get_json("/.well-known/openid-configuration").await;
    let res = s
        .http
        .get(meta["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(&response_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Revoking it as a token does nothing to the token it describes.
    assert_eq!(s.revoke(&rs, &response_jwt).await, StatusCode::OK);
    assert!(s.is_active(&rs, &at).await);
}

#[tokio::test]
async fn discovery_names_the_signing_algorithms_of_introspection_responses() {
    let s = Server::start().await;
    let meta = s.get_json("/.well-known/openid-configuration").await;
    let algs = meta["introspection_signing_alg_values_supported"]
        .as_array()
        .expect("introspection_signing_alg_values_supported");
    assert!(algs.contains(&json!("ES256")), "{algs:?}");
    let jwks = jwks(&s).await;
    for key in jwks["keys"].as_array().unwrap() {
        assert!(algs.contains(&key["alg"]), "{key}");
    }
    // No encrypted responses are offered.
    assert!(meta
        .get("introspection_encryption_alg_values_supported")
        .is_none());
}

#[tokio::test]
async fn a_dialect_introspection_path_answers_the_same_way() {
    const PATH: &str = "/integrations/oauth2/api/v1/introspect";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "[dialects.workfront]\nredirect_params = {{ domain = \"myorganization\", lane = \"my\" }}\npaths = {{ introspect = [\"{PATH}\"] }}\n"
        ),
    )
    .unwrap();
    let path = path.display().to_string();
    let s = Server::start_with(&[("TESSERA_CONFIG", path.as_str())]).await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    let plain = introspect_with(&s, PATH, &rs, &at, &[]).await;
    assert_eq!(plain.headers()[CONTENT_TYPE], "application/json");
    let plain: Value = plain.json().await.unwrap();
    assert_eq!(plain["active"], true);
    let claims = verified(
        &s,
        introspect_with(&s, PATH, &rs, &at, &[JWT_TYPE]).await,
        &rs.id,
    )
    .await;
    assert_eq!(claims["token_introspection"], plain);
    let res = introspect_with(&s, PATH, &rs.with_secret("wrong"), &at, &[JWT_TYPE]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn the_signed_answer_names_the_host_it_was_asked_at_as_its_issuer() {
    const EU: &str = "https://eu.tessera.test";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, format!("[[hosts]]\nurl = \"{EU}\"\n")).unwrap();
    let path = path.display().to_string();
    let s = Server::start_with(&[("TESSERA_CONFIG", path.as_str())]).await;
    let (owner, rs) = owner_and_resource_server(&s).await;
    let at = s.access_token(&owner).await;
    let res = s
        .http
        .post(s.url("/oauth2/introspect"))
        .header(reqwest::header::HOST, "eu.tessera.test")
        .header(ACCEPT, JWT_TYPE)
        .basic_auth(&rs.id, Some(&rs.secret))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[CONTENT_TYPE], JWT_TYPE);
    let claims = decode_jwt(&res.text().await.unwrap()).claims;
    assert_eq!(claims["iss"], EU);
    assert_eq!(claims["aud"], rs.id.as_str());
    // The token was issued at the main issuer, and says so inside.
    assert_eq!(claims["token_introspection"]["iss"], s.issuer());
}
