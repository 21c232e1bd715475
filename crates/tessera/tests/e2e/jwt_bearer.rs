//! The JWT-bearer grant (RFC 7523 §2.1 and §3) at `POST /oauth2/token`: a vendor backend's
//! assertion, signed by a key registered with `tessera trust add`, exchanged by an
//! authenticated client for an access token naming the end user. One test per rule an
//! assertion must pass, the deployment-environment boundary, carried claims in the token and
//! in introspection, and trust changes honoured by the running server.
//!
//! Keys are made with `ring` and assertions signed with `jsonwebtoken`, as a vendor would.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use ring::signature::{self as sig, KeyPair as _};
use serde_json::{json, Value};

use crate::support::{decode_jwt, unix_now, wait_until, Creds, Server, FEED_DEADLINE};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const ISSUER: &str = "https://vendor.example";

/// SubjectPublicKeyInfo DER of a P-256 key, up to the point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A vendor's ES256 key pair.
pub struct VendorKey {
    pub signing: EncodingKey,
    pub public_pem: String,
}

pub fn vendor_key() -> VendorKey {
    let rng = ring::rand::SystemRandom::new();
    let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(pair.public_key().as_ref());
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    VendorKey {
        signing: EncodingKey::from_ec_der(pkcs8.as_ref()),
        public_pem: format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        ),
    }
}

/// A fresh `jti`.
pub fn jti() -> String {
    URL_SAFE_NO_PAD.encode(
        ring::rand::generate::<[u8; 16]>(&ring::rand::SystemRandom::new())
            .unwrap()
            .expose(),
    )
}

/// Good claims for the token endpoint of `server`: end user `user-1` of team `team-7`.
pub fn claims(server: &Server) -> Value {
    let now = unix_now() as i64;
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": server.url("/oauth2/token"),
        "iat": now,
        "exp": now + 300,
        "jti": jti(),
        "anyflow_team_id": "team-7",
        "anyflow_user_id": "user-1",
    })
}

pub fn sign(key: &VendorKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key.signing).unwrap()
}

/// Registers `key` as trusted for `ISSUER` in `env`, carrying the seed's two claims.
pub async fn trust(server: &Server, key: &VendorKey, env: &str, extra: &[&str]) -> Value {
    let path = server
        .dir_path()
        .join(format!("vendor-{env}-{}.pem", jti()));
    std::fs::write(&path, &key.public_pem).unwrap();
    let mut args = vec![
        "trust",
        "add",
        "--issuer",
        ISSUER,
        "--public-key",
        path.to_str().unwrap(),
        "--env",
        env,
        "--scope",
        "sdk",
        "--claim",
        "anyflow_team_id",
        "--claim",
        "anyflow_user_id",
        "--json",
    ];
    args.extend_from_slice(extra);
    server.cli_json(&args).await
}

/// A client allowed the grant, in `env`.
pub async fn grant_client(server: &Server, env: &str, extra: &[&str]) -> Creds {
    let mut args = vec![
        "--grant-type",
        GRANT_TYPE,
        "--grant-type",
        "client_credentials",
        "--scope",
        "sdk",
        "--env",
        env,
    ];
    args.extend_from_slice(extra);
    server.create_client(&args).await
}

/// Exchanges an assertion at the token endpoint; returns the status and the JSON body.
pub async fn exchange(server: &Server, client: &Creds, assertion: &str) -> (StatusCode, Value) {
    let res = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", GRANT_TYPE), ("assertion", assertion)])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}

struct Fixture {
    server: Server,
    key: VendorKey,
    client: Creds,
}

async fn fixture() -> Fixture {
    fixture_with(&[]).await
}

async fn fixture_with(env: &[(&str, &str)]) -> Fixture {
    let server = Server::start_with(env).await;
    let key = vendor_key();
    trust(&server, &key, "default", &[]).await;
    let client = grant_client(&server, "default", &[]).await;
    Fixture {
        server,
        key,
        client,
    }
}

impl Fixture {
    /// Signs claims edited by `edit` and exchanges them; returns status and body.
    async fn try_claims(&self, edit: impl FnOnce(&mut Value)) -> (StatusCode, Value) {
        let mut c = claims(&self.server);
        edit(&mut c);
        exchange(&self.server, &self.client, &sign(&self.key, &c)).await
    }

    /// Asserts `invalid_grant` whose description mentions `why`.
    async fn refused(&self, edit: impl FnOnce(&mut Value), why: &str) {
        let (status, body) = self.try_claims(edit).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(why), "{why}: {description}");
    }
}

#[tokio::test]
async fn a_trusted_assertion_gets_a_token_naming_the_end_user_with_the_carried_claims() {
    let f = fixture().await;
    let (status, body) = f.try_claims(|_| {}).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "sdk");
    let token = body["access_token"].as_str().unwrap();
    let jwt = decode_jwt(token).claims;
    assert_eq!(jwt["sub"], "user-1");
    assert_eq!(jwt["client_id"], f.client.id.as_str());
    assert_eq!(jwt["iss"], f.server.issuer());
    assert_eq!(jwt["env"], "default");
    assert_eq!(jwt["anyflow_team_id"], "team-7");
    assert_eq!(jwt["anyflow_user_id"], "user-1");
    // The vendor's API asks Tessera who the token is for.
    let api = f
        .server
        .create_client(&["--scope", "sdk", "--env", "default"])
        .await;
    let info = f.server.introspect(&api, token).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], "user-1");
    assert_eq!(info["env"], "default");
    assert_eq!(info["anyflow_team_id"], "team-7");
    assert_eq!(info["anyflow_user_id"], "user-1");
}

#[tokio::test]
async fn carried_claims_never_replace_registered_ones_and_opaque_tokens_carry_them_too() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "default", &[]).await;
    // The CLI refuses to carry a claim Tessera sets itself.
    let path = server.dir_path().join("k.pem");
    std::fs::write(&path, &key.public_pem).unwrap();
    let out = server
        .cli_output(&[
            "trust",
            "add",
            "--issuer",
            "other",
            "--public-key",
            path.to_str().unwrap(),
            "--claim",
            "client_id",
        ])
        .await;
    assert!(!out.status.success());
    let client = grant_client(&server, "default", &["--access-token-format", "opaque"]).await;
    let mut c = claims(&server);
    c["scope"] = "admin".into();
    c["client_id"] = "someone-else".into();
    let (status, body) = exchange(&server, &client, &sign(&key, &c)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("tat_"));
    let info = server.introspect(&client, token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["scope"], "sdk");
    assert_eq!(info["anyflow_team_id"], "team-7");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let f = fixture().await;
    let assertion = sign(&f.key, &claims(&f.server));
    let (first, _) = exchange(&f.server, &f.client, &assertion).await;
    assert_eq!(first, StatusCode::OK);
    let (status, body) = exchange(&f.server, &f.client, &assertion).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
}

#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let f = fixture().await;
    let now = unix_now() as i64;
    f.refused(
        |c| {
            c["iat"] = (now - 400).into();
            c["exp"] = (now - 120).into();
        },
        "expired",
    )
    .await;
}

#[tokio::test]
async fn an_assertion_not_yet_valid_is_refused() {
    let f = fixture().await;
    let now = unix_now() as i64;
    f.refused(|c| c["nbf"] = (now + 600).into(), "not valid yet")
        .await;
    f.refused(|c| c["iat"] = (now + 600).into(), "in the future")
        .await;
}

#[tokio::test]
async fn an_assertion_valid_for_too_long_is_refused_and_the_limit_is_configurable() {
    let f = fixture().await;
    let now = unix_now() as i64;
    f.refused(|c| c["exp"] = (now + 7_200).into(), "too long")
        .await;
    let (status, body) = f.try_claims(|c| c["exp"] = (now + 3_000).into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let strict = fixture_with(&[("TESSERA_ASSERTION_MAX_LIFETIME", "600")]).await;
    strict
        .refused(|c| c["exp"] = (now + 900).into(), "too long")
        .await;
}

#[tokio::test]
async fn leeway_is_honoured_and_configurable() {
    let f = fixture().await;
    let now = unix_now() as i64;
    let (status, body) = f.try_claims(|c| c["nbf"] = (now + 30).into()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "30 s is within the default leeway: {body}"
    );
    let strict = fixture_with(&[("TESSERA_ASSERTION_LEEWAY", "0")]).await;
    strict
        .refused(|c| c["nbf"] = (now + 30).into(), "not valid yet")
        .await;
}

#[tokio::test]
async fn an_assertion_signed_by_another_key_is_refused() {
    let f = fixture().await;
    let other = vendor_key();
    let (status, body) = exchange(&f.server, &f.client, &sign(&other, &claims(&f.server))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("signature"));
}

#[tokio::test]
async fn an_assertion_from_an_unknown_issuer_is_refused() {
    let f = fixture().await;
    f.refused(
        |c| c["iss"] = "https://stranger.example".into(),
        "not trusted",
    )
    .await;
    f.refused(
        |c| {
            c.as_object_mut().unwrap().remove("iss");
        },
        "no iss",
    )
    .await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture().await;
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    for header in [json!({"alg": "none"}), json!({"alg": "none", "typ": "JWT"})] {
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims(&f.server)));
        let (status, body) = exchange(&f.server, &f.client, &unsigned).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("algorithm"));
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let f = fixture().await;
    // The classic confusion attack: an HMAC whose secret is the (public) PEM text.
    for secret in [
        f.key.public_pem.as_bytes().to_vec(),
        f.key.public_pem.trim().as_bytes().to_vec(),
    ] {
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(&f.server),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let (status, body) = exchange(&f.server, &f.client, &forged).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("algorithm"));
    }
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    let f = fixture().await;
    f.refused(|c| c["aud"] = "https://other.example/token".into(), "aud")
        .await;
    f.refused(
        |c| {
            c.as_object_mut().unwrap().remove("aud");
        },
        "aud",
    )
    .await;
    let issuer = f.server.issuer().to_owned();
    let (status, body) = f.try_claims(|c| c["aud"] = json!(["x", issuer])).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the issuer is an accepted audience: {body}"
    );
}

#[tokio::test]
async fn an_assertion_without_jti_or_exp_is_refused() {
    let f = fixture().await;
    f.refused(
        |c| {
            c.as_object_mut().unwrap().remove("jti");
        },
        "no jti",
    )
    .await;
    f.refused(
        |c| {
            c.as_object_mut().unwrap().remove("exp");
        },
        "no exp",
    )
    .await;
}

#[tokio::test]
async fn an_assertion_trusted_only_in_another_environment_is_refused_and_tokens_stay_in_theirs() {
    let server = Server::start().await;
    let key = vendor_key();
    trust(&server, &key, "staging", &[]).await;
    let prod_client = grant_client(&server, "default", &[]).await;
    let staging_client = grant_client(&server, "staging", &[]).await;
    let (status, body) = exchange(&server, &prod_client, &sign(&key, &claims(&server))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("not trusted in this environment"));
    let (status, body) = exchange(&server, &staging_client, &sign(&key, &claims(&server))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(decode_jwt(token).claims["env"], "staging");
    // A token of one environment is not valid in another.
    assert!(!server.is_active(&prod_client, token).await);
    let info = server.introspect(&staging_client, token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["env"], "staging");
    // Client-credentials tokens carry their client's environment the same way.
    let prod_token = server.access_token(&prod_client).await;
    assert_eq!(decode_jwt(&prod_token).claims["env"], "default");
    assert!(!server.is_active(&staging_client, &prod_token).await);
    assert!(server.is_active(&prod_client, &prod_token).await);
}

#[tokio::test]
async fn a_client_not_allowed_the_grant_is_unauthorized_client_and_a_missing_assertion_invalid_request(
) {
    let f = fixture().await;
    let plain = f.server.create_client(&["--scope", "sdk"]).await;
    let (status, body) = exchange(&f.server, &plain, &sign(&f.key, &claims(&f.server))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let res = f
        .server
        .http
        .post(f.server.url("/oauth2/token"))
        .basic_auth(&f.client.id, Some(&f.client.secret))
        .form(&[("grant_type", GRANT_TYPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    for garbage in [
        "",
        "not-a-jwt",
        "a.b.c",
        "....",
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
    ] {
        let (status, body) = exchange(&f.server, &f.client, garbage).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{garbage}: {body}");
        assert!(
            body["error"] == "invalid_grant" || body["error"] == "invalid_request",
            "{garbage}: {body}"
        );
    }
}

#[tokio::test]
async fn trust_changes_are_honoured_by_the_running_server_within_a_second() {
    let f = fixture().await;
    let (status, _) = f.try_claims(|_| {}).await;
    assert_eq!(status, StatusCode::OK);
    let list = f.server.cli_json(&["trust", "list", "--json"]).await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["issuer"], ISSUER);
    f.server.cli(&["trust", "remove", &id]).await;
    let server = &f.server;
    let key = &f.key;
    let client = &f.client;
    wait_until(
        FEED_DEADLINE,
        "the removed issuer is refused",
        || async move {
            exchange(server, client, &sign(key, &claims(server)))
                .await
                .0
                == StatusCode::BAD_REQUEST
        },
    )
    .await;
    trust(server, key, "default", &[]).await;
    wait_until(
        FEED_DEADLINE,
        "the re-added issuer is accepted",
        || async move {
            exchange(server, client, &sign(key, &claims(server)))
                .await
                .0
                == StatusCode::OK
        },
    )
    .await;
}

#[tokio::test]
async fn discovery_lists_the_jwt_bearer_grant() {
    let server = Server::start().await;
    let meta = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let grants = meta["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == GRANT_TYPE), "{meta}");
}

/// The public JWK of a vendor key, with a `kid`.
fn jwk(key: &VendorKey, kid: &str) -> Value {
    let body: String = key
        .public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).unwrap();
    let point = &der[P256_SPKI_PREFIX.len()..];
    json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    })
}

/// A vendor's JWKS endpoint: serves whatever document it holds now; counts the fetches.
struct JwksServer {
    url: String,
    document: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    async fn start(document: Value) -> JwksServer {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let doc = std::sync::Arc::new(std::sync::Mutex::new(document.to_string()));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (d, f) = (doc.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (d, f) = (d.clone(), f.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = d.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        JwksServer {
            url,
            document: doc,
            fetches,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn publish(&self, document: Value) {
        *self.document.lock().unwrap() = document.to_string();
    }
}

fn sign_with_kid(key: &VendorKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.signing).unwrap()
}

#[tokio::test]
async fn keys_from_a_jwks_url_are_fetched_cached_and_refetched_after_a_rotation() {
    let server = Server::start().await;
    let old = vendor_key();
    let jwks = JwksServer::start(json!({"keys": [
        jwk(&old, "old"),
        // A key for encryption and a symmetric key are ignored, not fatal.
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
    ]}))
    .await;
    let added = server
        .cli_json(&[
            "trust",
            "add",
            "--issuer",
            ISSUER,
            "--jwks-url",
            &jwks.url,
            "--scope",
            "sdk",
            "--json",
        ])
        .await;
    assert_eq!(added["jwks_url"], jwks.url.as_str());
    assert!(
        !server
            .cli_output(&[
                "trust",
                "add",
                "--issuer",
                "x",
                "--jwks-url",
                "http://example.com/j"
            ])
            .await
            .status
            .success(),
        "plain http only on loopback"
    );
    let client = grant_client(&server, "default", &[]).await;
    for _ in 0..3 {
        let (status, body) = exchange(
            &server,
            &client,
            &sign_with_kid(&old, "old", &claims(&server)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(jwks.fetches(), 1, "cached");
    // The vendor rotates: the new key is published, and its first assertion makes the server
    // fetch again at once.
    let new = vendor_key();
    jwks.publish(json!({"keys": [jwk(&new, "new")]}));
    let (status, body) = exchange(
        &server,
        &client,
        &sign_with_kid(&new, "new", &claims(&server)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(jwks.fetches(), 2);
    // Forged assertions do not make it fetch again and again.
    for _ in 0..5 {
        let forger = vendor_key();
        let (status, _) = exchange(
            &server,
            &client,
            &sign_with_kid(&forger, "new", &claims(&server)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(jwks.fetches(), 2, "at most one refresh per 30 s");
    let (status, _) = exchange(
        &server,
        &client,
        &sign_with_kid(&old, "old", &claims(&server)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the old key is gone");
}
