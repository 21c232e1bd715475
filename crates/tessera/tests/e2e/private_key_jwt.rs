//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3): registration with a JWKS or
//! PEM public keys, assertions at the token, introspection and revocation endpoints, every
//! rule an assertion must pass, replay, key replacement through the change feed, and
//! discovery.
//!
//! Keys are made with `ring` and assertions signed with `jsonwebtoken`, as a client would.
//! RSA keys need `openssl` on PATH; without it only the RSA parts are skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;
use ring::rand::SecureRandom as _;
use ring::signature::{self as sig, KeyPair as _};
use serde_json::{json, Value};

use crate::support::{unix_now, wait_until, Creds, Server, FEED_DEADLINE};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// SubjectPublicKeyInfo DER up to the key bytes, per key type.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const P384_SPKI_PREFIX: &str = "3076301006072a8648ce3d020106052b81040022036200";
const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";

// ---------------------------------------------------------------------------------------------
// Keys and assertions

/// A client key pair: what the client signs with and what it registers.
pub(crate) struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) signing: EncodingKey,
    /// PKCS#8 of EC and Ed25519 keys, to sign arbitrary bytes with `ring`.
    pub(crate) pkcs8: Vec<u8>,
    /// The public JWK (with `kid`).
    pub(crate) jwk: Value,
    /// The public key as a SubjectPublicKeyInfo PEM.
    pub(crate) pem: String,
}

impl Key {
    /// A `{"keys": [...]}` document with this key alone.
    pub(crate) fn jwks(&self) -> String {
        json!({ "keys": [self.jwk] }).to_string()
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn spki_pem(prefix_hex: &str, raw_public: &[u8]) -> String {
    let mut der = hex(prefix_hex);
    der.extend_from_slice(raw_public);
    pem("PUBLIC KEY", &der)
}

fn ec_key(kid: &str, p384: bool) -> Key {
    let rng = ring::rand::SystemRandom::new();
    let (signing_alg, alg, crv, prefix) = if p384 {
        (
            &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            Algorithm::ES384,
            "P-384",
            P384_SPKI_PREFIX,
        )
    } else {
        (
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            Algorithm::ES256,
            "P-256",
            P256_SPKI_PREFIX,
        )
    };
    let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(signing_alg, &rng).unwrap();
    let pair = sig::EcdsaKeyPair::from_pkcs8(signing_alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let n = (point.len() - 1) / 2;
    Key {
        alg,
        signing: EncodingKey::from_ec_der(pkcs8.as_ref()),
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({
            "kty": "EC", "crv": crv, "x": b64(&point[1..=n]), "y": b64(&point[n + 1..]),
            "kid": kid, "alg": if p384 { "ES384" } else { "ES256" }, "use": "sig",
        }),
        pem: spki_pem(prefix, point),
    }
}

pub(crate) fn p256(kid: &str) -> Key {
    ec_key(kid, false)
}

fn p384(kid: &str) -> Key {
    ec_key(kid, true)
}

pub(crate) fn ed25519(kid: &str) -> Key {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref();
    Key {
        alg: Algorithm::EdDSA,
        signing: EncodingKey::from_ed_der(pkcs8.as_ref()),
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64(public), "kid": kid, "alg": "EdDSA",
            "use": "sig",
        }),
        pem: spki_pem(ED25519_SPKI_PREFIX, public),
    }
}

/// An RSA key made by `openssl genpkey` (2048 bits), signing with `alg`; `None` when openssl
/// is not on PATH (or fails), so callers skip their RSA part.
pub(crate) fn openssl_rsa(dir: &Path, kid: &str, alg: Algorithm) -> Option<Key> {
    let private = dir.join(format!("{kid}-private.pem"));
    let public = dir.join(format!("{kid}-public.pem"));
    let ok = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    if !ok(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .arg("-out")
        .arg(&private))
        || !ok(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public))
    {
        eprintln!("openssl is not available: skipping the RSA part of this test");
        return None;
    }
    let private_pem = std::fs::read_to_string(&private).unwrap();
    let der: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(der).unwrap();
    let pair = sig::RsaKeyPair::from_pkcs8(&der).unwrap();
    let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
    Some(Key {
        alg,
        signing: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        pkcs8: der,
        jwk: json!({
            "kty": "RSA", "n": b64(&parts.n), "e": b64(&parts.e), "kid": kid, "use": "sig",
        }),
        pem: std::fs::read_to_string(&public).unwrap(),
    })
}

/// Signs `claims` with `key` under its own algorithm; `kid` goes in the header if given.
pub(crate) fn sign(key: &Key, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.signing).unwrap()
}

/// A JWS with any header, signed by an EC or Ed25519 key with `ring` (the header's `alg` need
/// not be the key's).
fn sign_raw(key: &Key, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let signature = match key.alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let alg = if key.alg == Algorithm::ES256 {
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = sig::EcdsaKeyPair::from_pkcs8(alg, &key.pkcs8, &rng).unwrap();
            pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
        }
        Algorithm::EdDSA => sig::Ed25519KeyPair::from_pkcs8(&key.pkcs8)
            .unwrap()
            .sign(input.as_bytes())
            .as_ref()
            .to_vec(),
        other => panic!("sign_raw does not do {other:?}"),
    };
    format!("{input}.{}", b64(&signature))
}

/// An HS256 JWS with `secret` as the HMAC key.
pub(crate) fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// An unsecured JWS (`alg: none`): `header.payload.` with an empty signature.
fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn now() -> i64 {
    unix_now() as i64
}

/// A fresh, unique `jti`.
pub(crate) fn jti() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).unwrap();
    b64(&bytes)
}

/// Valid claims of an assertion by client `id` for audience `aud` (a string or an array).
fn claims(id: &str, aud: impl Into<Value>) -> Value {
    let t = now();
    json!({"iss": id, "sub": id, "aud": aud.into(), "iat": t, "exp": t + 300, "jti": jti()})
}

/// `claims` with `edit` applied.
fn claims_with(id: &str, aud: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims(id, aud);
    edit(&mut c);
    c
}

fn remove(c: &mut Value, name: &str) {
    c.as_object_mut().unwrap().remove(name);
}

// ---------------------------------------------------------------------------------------------
// Requests

/// What an endpoint answered.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    /// Whether a `WWW-Authenticate` header was sent.
    challenge: bool,
    /// The JSON body (a JSON string of the text if it is not JSON).
    body: Value,
}

/// POSTs a form to `path`, with HTTP Basic if `basic` is given.
async fn post(s: &Server, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut req = s.http.post(s.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let challenge = res.headers().contains_key(WWW_AUTHENTICATE);
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        challenge,
        body,
    }
}

/// The three endpoints that authenticate clients, with the form each needs besides the
/// client's credentials.
#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Token,
    Introspect,
    Revoke,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [Endpoint::Token, Endpoint::Introspect, Endpoint::Revoke];

    fn path(self) -> &'static str {
        match self {
            Endpoint::Token => "/oauth2/token",
            Endpoint::Introspect => "/oauth2/introspect",
            Endpoint::Revoke => "/oauth2/revoke",
        }
    }

    fn form(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::Token => ("grant_type", "client_credentials"),
            Endpoint::Introspect | Endpoint::Revoke => ("token", "not-a-token-of-this-server"),
        }
    }
}

/// A request to `ep` authenticated by `assertion`, plus `extra` form members.
async fn with_assertion(
    s: &Server,
    ep: Endpoint,
    assertion: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut form = vec![
        ep.form(),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    post(s, ep.path(), &form, None).await
}

/// A token request with `assertion`; must succeed; returns the access token.
async fn token_ok(s: &Server, assertion: &str, extra: &[(&str, &str)]) -> String {
    let r = with_assertion(s, Endpoint::Token, assertion, extra).await;
    assert_eq!(r.status, StatusCode::OK, "token request failed: {}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// Introspects `token`, authenticated by `assertion`; returns the body.
async fn introspect(s: &Server, assertion: &str, token: &str) -> Value {
    let r = post(
        s,
        "/oauth2/introspect",
        &[
            ("token", token),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "introspection failed: {}", r.body);
    r.body
}

/// Asserts a 401 `invalid_client` without a Basic challenge (Basic was not tried).
fn assert_invalid_client(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
    assert_eq!(r.body["error"], "invalid_client", "{what}");
    assert!(!r.challenge, "{what}: WWW-Authenticate without Basic");
}

fn token_endpoint(s: &Server) -> String {
    s.url("/oauth2/token")
}

// ---------------------------------------------------------------------------------------------
// Registration

/// A temporary directory for key files.
pub(crate) fn key_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `client create --name pk --token-endpoint-auth-method private_key_jwt ARGS --json`.
async fn create_output(s: &Server, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "client",
        "create",
        "--name",
        "pk",
        "--token-endpoint-auth-method",
        "private_key_jwt",
    ];
    all.extend_from_slice(args);
    all.push("--json");
    s.cli_output(&all).await
}

/// Registers a `private_key_jwt` client with `args` (its keys), checks the CLI's answer, and
/// waits until the server accepts an assertion signed by `key` (header `kid`: `kid`).
async fn register(s: &Server, args: &[&str], key: &Key, kid: Option<&str>) -> String {
    let out = create_output(s, args).await;
    assert!(
        out.status.success(),
        "client create {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["client_secret"], Value::Null, "no secret is made: {v}");
    let id = v["client_id"].as_str().unwrap().to_owned();
    wait_accepted(s, &id, key, kid, Duration::from_secs(2)).await;
    id
}

/// Waits until an assertion of `id` signed by `key` gets a token.
async fn wait_accepted(s: &Server, id: &str, key: &Key, kid: Option<&str>, deadline: Duration) {
    let aud = token_endpoint(s);
    let aud = aud.as_str();
    wait_until(
        deadline,
        "the server accepts the client's assertion",
        move || async move {
            let a = sign(key, kid, &claims(id, aud));
            with_assertion(s, Endpoint::Token, &a, &[]).await.status == StatusCode::OK
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn clients_with_jwks_or_pem_keys_authenticate_with_signed_assertions() {
    let s = Server::start().await;
    let dir = key_dir();
    let token_ep = token_endpoint(&s);
    let issuer = s.issuer().to_owned();

    // ES256 from a JWKS; aud is the token endpoint.
    let es = p256("k1");
    let jwks = write(dir.path(), "es.jwks", &es.jwks());
    let es_id = register(&s, &["--jwks-file", arg(&jwks)], &es, Some("k1")).await;
    let shown = s.cli_json(&["client", "show", &es_id, "--json"]).await;
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    let at = token_ok(&s, &sign(&es, Some("k1"), &claims(&es_id, &*token_ep)), &[]).await;
    // Introspection authenticated by a fresh assertion of the same client.
    let info = introspect(&s, &sign(&es, Some("k1"), &claims(&es_id, &*token_ep)), &at).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], es_id.as_str());

    // Ed25519 from a PEM; aud is the issuer; client_id in the body equal to sub.
    let ed = ed25519("unused");
    let pem = write(dir.path(), "ed.pem", &ed.pem);
    let ed_id = register(&s, &["--public-key", arg(&pem)], &ed, None).await;
    let ed_at = token_ok(
        &s,
        &sign(&ed, None, &claims(&ed_id, &*issuer)),
        &[("client_id", &ed_id)],
    )
    .await;
    // One client may introspect another's token; the Ed25519 client looks at the ES256 one's.
    let info = introspect(&s, &sign(&ed, None, &claims(&ed_id, &*issuer)), &at).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], es_id.as_str());

    // Revocation authenticated by an assertion; then the token introspects inactive.
    let r = post(
        &s,
        "/oauth2/revoke",
        &[
            ("token", ed_at.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            (
                "client_assertion",
                &sign(&ed, None, &claims(&ed_id, &*token_ep)),
            ),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "revocation: {}", r.body);
    let info = introspect(
        &s,
        &sign(&es, Some("k1"), &claims(&es_id, &*token_ep)),
        &ed_at,
    )
    .await;
    assert_eq!(info, json!({"active": false}));

    // Other key types and registrations, and assertions that are valid at the edges.
    let p384_jwk = p384("p384");
    let p384_pem = p384("unused");
    let ed_jwk = ed25519("ed");
    let es_pem = p256("unused");
    // (label, [flag, contents of the key file], key, kid in the assertion's header)
    let mut kinds: Vec<(&str, Vec<String>, Key, Option<&str>)> = vec![
        (
            "ES384 JWKS",
            vec!["--jwks-file".into(), p384_jwk.jwks()],
            p384_jwk,
            Some("p384"),
        ),
        (
            "ES384 PEM",
            vec!["--public-key".into(), p384_pem.pem.clone()],
            p384_pem,
            None,
        ),
        (
            "EdDSA JWKS",
            vec!["--jwks-file".into(), ed_jwk.jwks()],
            ed_jwk,
            Some("ed"),
        ),
        (
            "ES256 PEM",
            vec!["--public-key".into(), es_pem.pem.clone()],
            es_pem,
            None,
        ),
    ];
    // RSA needs openssl to make the key; without it this part is skipped (the message is
    // printed by `openssl_rsa`).
    if let Some(rs) = openssl_rsa(dir.path(), "rs", Algorithm::RS256) {
        kinds.push((
            "RS256 JWKS",
            vec!["--jwks-file".into(), rs.jwks()],
            rs,
            Some("rs"),
        ));
    }
    if let Some(ps) = openssl_rsa(dir.path(), "ps", Algorithm::PS256) {
        kinds.push((
            "PS256 PEM",
            vec!["--public-key".into(), ps.pem.clone()],
            ps,
            None,
        ));
    }
    for (i, (label, args, key, kid)) in kinds.iter().enumerate() {
        let file = write(dir.path(), &format!("key-{i}"), &args[1]);
        let id = register(&s, &[args[0].as_str(), arg(&file)], key, *kid).await;
        let at = token_ok(&s, &sign(key, *kid, &claims(&id, &*issuer)), &[]).await;
        let info = introspect(&s, &sign(key, *kid, &claims(&id, &*token_ep)), &at).await;
        assert_eq!(info["active"], true, "{label}: {info}");
        assert_eq!(info["client_id"], id.as_str(), "{label}");
    }

    let t = now();
    let edges: Vec<(&str, Option<&str>, Value)> = vec![
        (
            "aud an array naming the token endpoint",
            Some("k1"),
            claims(&es_id, json!(["https://elsewhere.example", token_ep])),
        ),
        (
            "aud an array naming the issuer",
            Some("k1"),
            claims(&es_id, json!([issuer, "https://elsewhere.example"])),
        ),
        ("no kid in the header", None, claims(&es_id, &*token_ep)),
        (
            "expired 30 s ago (within the leeway)",
            Some("k1"),
            claims_with(&es_id, &token_ep, |c| c["exp"] = json!(t - 30)),
        ),
        (
            "exp an hour ahead",
            Some("k1"),
            claims_with(&es_id, &token_ep, |c| c["exp"] = json!(t + 3600)),
        ),
        (
            "nbf 30 s ahead (within the leeway)",
            Some("k1"),
            claims_with(&es_id, &token_ep, |c| c["nbf"] = json!(t + 30)),
        ),
        (
            "iat 30 s ahead (within the leeway)",
            Some("k1"),
            claims_with(&es_id, &token_ep, |c| c["iat"] = json!(t + 30)),
        ),
        (
            "no iat",
            Some("k1"),
            claims_with(&es_id, &token_ep, |c| remove(c, "iat")),
        ),
    ];
    for (label, kid, c) in edges {
        let r = with_assertion(&s, Endpoint::Token, &sign(&es, kid, &c), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{label}: {}", r.body);
    }
}

#[tokio::test]
async fn an_assertion_is_accepted_once() {
    let s = Server::start().await;
    let dir = key_dir();
    let key = p256("k1");
    let jwks = write(dir.path(), "k.jwks", &key.jwks());
    let id = register(&s, &["--jwks-file", arg(&jwks)], &key, Some("k1")).await;
    let aud = token_endpoint(&s);

    let a = sign(&key, Some("k1"), &claims(&id, &*aud));
    token_ok(&s, &a, &[]).await;
    for ep in Endpoint::ALL {
        let r = with_assertion(&s, ep, &a, &[]).await;
        assert_invalid_client(&r, &format!("replay at {ep:?}"));
    }
    // A fresh assertion still works.
    token_ok(&s, &sign(&key, Some("k1"), &claims(&id, &*aud)), &[]).await;

    // Sent concurrently, one assertion still gets exactly one token.
    let a = sign(&key, Some("k1"), &claims(&id, &*aud));
    let replies = futures_util::future::join_all(
        (0..10).map(|_| with_assertion(&s, Endpoint::Token, &a, &[])),
    )
    .await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "{replies:?}");
    for r in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_invalid_client(r, "concurrent replay");
    }

    // Another client's assertion with the same jti is not a replay of this one's.
    let other = ed25519("e");
    let pem = write(dir.path(), "o.pem", &other.pem);
    let other_id = register(&s, &["--public-key", arg(&pem)], &other, None).await;
    let shared = jti();
    let mine = claims_with(&id, &aud, |c| c["jti"] = json!(shared));
    let theirs = claims_with(&other_id, &aud, |c| c["jti"] = json!(shared));
    token_ok(&s, &sign(&key, Some("k1"), &mine), &[]).await;
    token_ok(&s, &sign(&other, None, &theirs), &[]).await;
}

/// A token request of an unusual shape and the error it must get.
struct Shape<'a> {
    label: &'static str,
    form: Vec<(&'static str, String)>,
    basic: Option<(&'a str, &'a str)>,
    status: u16,
    error: &'static str,
}

#[tokio::test]
async fn every_rule_of_an_assertion_is_enforced_at_every_endpoint() {
    let s = Server::start().await;
    let dir = key_dir();
    let token_ep = token_endpoint(&s);
    let aud = token_ep.as_str();
    let issuer = s.issuer().to_owned();

    let key = p256("k1");
    let jwks_text = key.jwks();
    let jwks = write(dir.path(), "k.jwks", &jwks_text);
    let id = register(&s, &["--jwks-file", arg(&jwks)], &key, Some("k1")).await;
    let id = id.as_str();
    let ed = ed25519("unused");
    let ed_pem = write(dir.path(), "ed.pem", &ed.pem);
    let ed_id = register(&s, &["--public-key", arg(&ed_pem)], &ed, None).await;
    let ed_id = ed_id.as_str();
    let secret_client: Creds = s.create_client(&[]).await;
    let stranger = p256("k1");

    // Each call makes the cases afresh (new jtis, current times).
    let cases = || -> Vec<(&'static str, String)> {
        let t = now();
        let base = || claims(id, aud);
        let good = |c: &Value| sign(&key, Some("k1"), c);
        // Valid claims but for one edit, signed with the registered key.
        let edit = |f: &dyn Fn(&mut Value)| good(&claims_with(id, aud, f));
        let valid = good(&base());
        let (valid_header, valid_rest) = valid.split_once('.').unwrap();
        let valid_signature = valid_rest.split_once('.').unwrap().1;
        let mut embedded = Header::new(Algorithm::ES256);
        embedded.kid = Some("k1".into());
        embedded.jwk = Some(serde_json::from_value(stranger.jwk.clone()).unwrap());
        vec![
            // The signature.
            (
                "signed by an unregistered key",
                sign(&stranger, Some("k1"), &base()),
            ),
            (
                "signed by another client's registered key",
                sign(&ed, None, &base()),
            ),
            (
                "the unregistered signing key embedded in the header (jwk)",
                jsonwebtoken::encode(&embedded, &base(), &stranger.signing).unwrap(),
            ),
            (
                "kid that names no registered key",
                sign(&key, Some("k2"), &base()),
            ),
            (
                "payload changed after signing",
                format!(
                    "{valid_header}.{}.{valid_signature}",
                    b64(base().to_string().as_bytes())
                ),
            ),
            (
                "signature of another token",
                format!(
                    "{}.{}",
                    valid.rsplit_once('.').unwrap().0,
                    good(&base()).rsplit_once('.').unwrap().1
                ),
            ),
            (
                "no signature",
                format!("{}.", valid.rsplit_once('.').unwrap().0),
            ),
            // The algorithm.
            (
                "alg none",
                unsigned(&json!({"alg": "none", "typ": "JWT"}), &base()),
            ),
            (
                "alg none with the registered kid",
                unsigned(&json!({"alg": "none", "kid": "k1"}), &base()),
            ),
            (
                "alg none with a valid signature attached",
                format!(
                    "{}.{}.{valid_signature}",
                    b64(json!({"alg": "none", "kid": "k1"}).to_string().as_bytes()),
                    valid_rest.split_once('.').unwrap().0
                ),
            ),
            (
                "HS256 keyed with the registered JWK",
                hs256(key.jwk.to_string().as_bytes(), Some("k1"), &base()),
            ),
            (
                "HS256 keyed with the JWKS file",
                hs256(jwks_text.as_bytes(), Some("k1"), &base()),
            ),
            (
                "HS256 keyed with the JWK's x",
                hs256(
                    key.jwk["x"].as_str().unwrap().as_bytes(),
                    Some("k1"),
                    &base(),
                ),
            ),
            (
                "HS256 keyed with the registered PEM text",
                hs256(ed.pem.as_bytes(), None, &claims(ed_id, aud)),
            ),
            (
                "ES384 in the header over a P-256 signature",
                sign_raw(&key, &json!({"alg": "ES384", "kid": "k1"}), &base()),
            ),
            (
                "ES256 in the header over an Ed25519 signature",
                sign_raw(&ed, &json!({"alg": "ES256"}), &claims(ed_id, aud)),
            ),
            // iss and sub.
            ("iss another client", edit(&|c| c["iss"] = json!(ed_id))),
            ("sub another client", edit(&|c| c["sub"] = json!(ed_id))),
            ("no iss", edit(&|c| remove(c, "iss"))),
            ("no sub", edit(&|c| remove(c, "sub"))),
            (
                "iss and sub another client, signed with this client's key",
                good(&claims(ed_id, aud)),
            ),
            (
                "iss and sub an unknown client",
                good(&claims("no-such-client", aud)),
            ),
            (
                "iss and sub a client_secret_basic client",
                good(&claims(&secret_client.id, aud)),
            ),
            // aud.
            (
                "aud another server's token endpoint",
                edit(&|c| c["aud"] = json!("http://127.0.0.1:1/oauth2/token")),
            ),
            (
                "aud the introspection endpoint",
                edit(&|c| c["aud"] = json!(format!("{issuer}/oauth2/introspect"))),
            ),
            (
                "aud an array without this server",
                edit(&|c| c["aud"] = json!(["https://a.example", "https://b.example"])),
            ),
            ("no aud", edit(&|c| remove(c, "aud"))),
            // Time.
            ("no exp", edit(&|c| remove(c, "exp"))),
            (
                "expired (exp now - 120)",
                edit(&|c| c["exp"] = json!(t - 120)),
            ),
            (
                "valid for too long (exp now + 7200)",
                edit(&|c| c["exp"] = json!(t + 7200)),
            ),
            (
                "exp a string",
                edit(&|c| c["exp"] = json!((t + 300).to_string())),
            ),
            (
                "nbf in the future (now + 600)",
                edit(&|c| c["nbf"] = json!(t + 600)),
            ),
            (
                "iat far in the past (now - 7200)",
                edit(&|c| c["iat"] = json!(t - 7200)),
            ),
            (
                "iat in the future (now + 600)",
                edit(&|c| c["iat"] = json!(t + 600)),
            ),
            // jti.
            ("no jti", edit(&|c| remove(c, "jti"))),
            ("empty jti", edit(&|c| c["jti"] = json!(""))),
            // Not a JWT.
            ("not a JWT", "garbage".to_owned()),
            ("two parts", valid.rsplit_once('.').unwrap().0.to_owned()),
        ]
    };

    let mut failures = Vec::new();
    for ep in Endpoint::ALL {
        // The control: a valid assertion made the same way passes.
        let control = sign(&key, Some("k1"), &claims(id, aud));
        let r = with_assertion(&s, ep, &control, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "control at {ep:?}: {}", r.body);
        for (label, assertion) in cases() {
            let r = with_assertion(&s, ep, &assertion, &[]).await;
            if r.status != StatusCode::UNAUTHORIZED
                || r.body["error"] != "invalid_client"
                || r.challenge
            {
                failures.push(format!("{ep:?}: {label}: {r:?}"));
            }
        }
    }

    // The shape of the request.
    let fresh = || sign(&key, Some("k1"), &claims(id, aud));
    let grant = || ("grant_type", "client_credentials".to_owned());
    let type_ = || ("client_assertion_type", ASSERTION_TYPE.to_owned());
    let a = fresh();
    let shape = vec![
        Shape {
            label: "client_id in the body differs from sub",
            form: vec![
                grant(),
                type_(),
                ("client_id", ed_id.to_owned()),
                ("client_assertion", fresh()),
            ],
            basic: None,
            status: 401,
            error: "invalid_client",
        },
        Shape {
            label: "assertion and HTTP Basic",
            form: vec![grant(), type_(), ("client_assertion", fresh())],
            basic: Some((id, "x")),
            status: 400,
            error: "invalid_request",
        },
        Shape {
            label: "assertion and HTTP Basic of a secret client",
            form: vec![grant(), type_(), ("client_assertion", fresh())],
            basic: Some((secret_client.id.as_str(), secret_client.secret.as_str())),
            status: 400,
            error: "invalid_request",
        },
        Shape {
            label: "assertion and client_secret in the body",
            form: vec![
                grant(),
                type_(),
                ("client_assertion", fresh()),
                ("client_secret", "x".into()),
            ],
            basic: None,
            status: 400,
            error: "invalid_request",
        },
        Shape {
            label: "client_assertion repeated",
            form: vec![
                grant(),
                type_(),
                ("client_assertion", fresh()),
                ("client_assertion", fresh()),
            ],
            basic: None,
            status: 400,
            error: "invalid_request",
        },
        Shape {
            label: "client_assertion without client_assertion_type",
            form: vec![grant(), ("client_assertion", a.clone())],
            basic: None,
            status: 400,
            error: "invalid_request",
        },
        Shape {
            label: "client_assertion_type without client_assertion",
            form: vec![grant(), type_(), ("client_id", id.to_owned())],
            basic: None,
            status: 400,
            error: "invalid_request",
        },
        Shape {
            label: "an unknown client_assertion_type",
            form: vec![
                grant(),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into(),
                ),
                ("client_assertion", a.clone()),
            ],
            basic: None,
            status: 401,
            error: "invalid_client",
        },
        Shape {
            label: "only the client_id of a private_key_jwt client",
            form: vec![grant(), ("client_id", id.to_owned())],
            basic: None,
            status: 401,
            error: "invalid_client",
        },
    ];
    for case in shape {
        let form: Vec<(&str, &str)> = case.form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post(&s, "/oauth2/token", &form, case.basic).await;
        // A Basic challenge belongs only to a 401 after failed Basic; none of these is one.
        if r.status.as_u16() != case.status || r.body["error"] != case.error || r.challenge {
            failures.push(format!("{}: {r:?}", case.label));
        }
    }
    // HTTP Basic with an empty secret does not authenticate a client that has none.
    let r = post(
        &s,
        "/oauth2/token",
        &[("grant_type", "client_credentials")],
        Some((id, "")),
    )
    .await;
    if r.status != StatusCode::UNAUTHORIZED || r.body["error"] != "invalid_client" {
        failures.push(format!("Basic with an empty secret: {r:?}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn set_keys_replaces_the_keys_within_a_second() {
    let s = Server::start().await;
    let dir = key_dir();
    let aud = token_endpoint(&s);
    let old = p256("k1");
    let jwks = write(dir.path(), "old.jwks", &old.jwks());
    let id = register(&s, &["--jwks-file", arg(&jwks)], &old, Some("k1")).await;

    // Each replacement: the old key's assertions stop and the new key's start within the
    // change-feed deadline. First to a JWKS with a new kid, then to a PEM of another type.
    let jwk_key = p256("k2");
    let pem_key = ed25519("unused");
    type Signer<'k> = (&'k Key, Option<&'k str>);
    let steps: [(&str, Signer, Signer); 2] = [
        ("--jwks-file", (&old, Some("k1")), (&jwk_key, Some("k2"))),
        ("--public-key", (&jwk_key, Some("k2")), (&pem_key, None)),
    ];
    for (i, (flag, (before, before_kid), (after, after_kid))) in steps.into_iter().enumerate() {
        let text = if flag == "--jwks-file" {
            after.jwks()
        } else {
            after.pem.clone()
        };
        let file = write(dir.path(), &format!("new-{i}"), &text);
        let out = s
            .cli_json(&["client", "set-keys", &id, flag, arg(&file), "--json"])
            .await;
        assert_eq!(out["client_id"], id.as_str(), "{out}");
        let started = Instant::now();
        let (s, id, aud) = (&s, id.as_str(), aud.as_str());
        wait_until(
            FEED_DEADLINE,
            &format!("step {i}: the new key is accepted and the old one refused"),
            move || async move {
                let new = sign(after, after_kid, &claims(id, aud));
                let old = sign(before, before_kid, &claims(id, aud));
                with_assertion(s, Endpoint::Token, &new, &[]).await.status == StatusCode::OK
                    && with_assertion(s, Endpoint::Token, &old, &[]).await.status
                        == StatusCode::UNAUTHORIZED
            },
        )
        .await;
        eprintln!("step {i}: keys replaced after {:?}", started.elapsed());
        for ep in Endpoint::ALL {
            let old = sign(before, before_kid, &claims(id, aud));
            assert_invalid_client(
                &with_assertion(s, ep, &old, &[]).await,
                &format!("step {i}: the old key at {ep:?}"),
            );
            let new = sign(after, after_kid, &claims(id, aud));
            let r = with_assertion(s, ep, &new, &[]).await;
            assert_eq!(r.status, StatusCode::OK, "step {i}: the new key at {ep:?}");
        }
    }

    // A JWKS of two keys: both are accepted (an overlap while a client rotates), each by
    // its kid; an assertion naming no key is refused (RFC 7515 §4.1.4).
    let (a, b) = (p256("a"), ed25519("b"));
    let both = json!({"keys": [a.jwk, b.jwk]}).to_string();
    let file = write(dir.path(), "both.jwks", &both);
    s.cli_json(&[
        "client",
        "set-keys",
        &id,
        "--jwks-file",
        arg(&file),
        "--json",
    ])
    .await;
    wait_accepted(&s, &id, &a, Some("a"), FEED_DEADLINE).await;
    token_ok(&s, &sign(&b, Some("b"), &claims(&id, &*aud)), &[]).await;
    let r = with_assertion(
        &s,
        Endpoint::Token,
        &sign(&a, None, &claims(&id, &*aud)),
        &[],
    )
    .await;
    assert_invalid_client(&r, "two keys and no kid");
    let description = r.body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains("must name its key with kid"),
        "{description}"
    );
}

#[tokio::test]
async fn registration_refuses_bad_keys_and_secret_operations() {
    let s = Server::start().await;
    let dir = key_dir();
    let d = dir.path();
    let good = p256("k1");
    let good_jwks = write(d, "good.jwks", &good.jwks());
    let id = register(&s, &["--jwks-file", arg(&good_jwks)], &good, Some("k1")).await;

    let oct = write(
        d,
        "oct.jwks",
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0","kid":"h","alg":"HS256"}]}"#,
    );
    let mixed = write(
        d,
        "mixed.jwks",
        &json!({"keys": [good.jwk, {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}).to_string(),
    );
    let empty = write(d, "empty.jwks", r#"{"keys":[]}"#);
    let not_json = write(d, "not.jwks", "this is not a JWKS");
    let garbage_pem = write(
        d,
        "garbage.pem",
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----\n",
    );
    let text = write(d, "text.pem", "hello\n");
    let ec_private = {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        write(d, "ec-private.pem", &pem("PRIVATE KEY", pkcs8.as_ref()))
    };
    let ed_private = {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        write(d, "ed-private.pem", &pem("PRIVATE KEY", pkcs8.as_ref()))
    };
    let missing = d.join("no-such-file.pem");
    let good_pem = write(d, "good.pem", &good.pem);
    let mut bad: Vec<(&str, Vec<&str>)> = vec![
        ("an oct (symmetric) JWKS", vec!["--jwks-file", arg(&oct)]),
        (
            "a JWKS with an oct key among others",
            vec!["--jwks-file", arg(&mixed)],
        ),
        ("no key", vec![]),
        ("an empty JWKS", vec!["--jwks-file", arg(&empty)]),
        (
            "a file that is not JSON",
            vec!["--jwks-file", arg(&not_json)],
        ),
        ("a garbage PEM", vec!["--public-key", arg(&garbage_pem)]),
        ("a text file as PEM", vec!["--public-key", arg(&text)]),
        (
            "an EC private key as public key",
            vec!["--public-key", arg(&ec_private)],
        ),
        (
            "an Ed25519 private key as public key",
            vec!["--public-key", arg(&ed_private)],
        ),
        ("a missing PEM file", vec!["--public-key", arg(&missing)]),
        (
            "a good PEM with a garbage one",
            vec![
                "--public-key",
                arg(&good_pem),
                "--public-key",
                arg(&garbage_pem),
            ],
        ),
    ];
    // With openssl (else skipped): an RSA private key given as the public key. It is not a
    // SubjectPublicKeyInfo, no assertion could ever verify with it, and it must not end up
    // stored in the database; the EC and Ed25519 private keys above are refused already.
    let rsa_private = openssl_rsa(d, "rsa", Algorithm::RS256).map(|_| d.join("rsa-private.pem"));
    if let Some(p) = &rsa_private {
        bad.push((
            "an RSA private key as public key",
            vec!["--public-key", arg(p)],
        ));
    }
    let mut failures = Vec::new();
    for (label, args) in &bad {
        let out = create_output(&s, args).await;
        if out.status.success() {
            failures.push(format!(
                "client create with {label} succeeded: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let out = s
            .cli_output(
                &[
                    &["client", "set-keys", id.as_str()][..],
                    &args[..],
                    &["--json"][..],
                ]
                .concat(),
            )
            .await;
        if out.status.success() {
            failures.push(format!("client set-keys with {label} succeeded"));
        }
    }
    // Keys only go with private_key_jwt, which is never public; client_secret_jwt is not
    // offered.
    let others: [Vec<&str>; 4] = [
        vec![
            "--token-endpoint-auth-method",
            "client_secret_basic",
            "--jwks-file",
            arg(&good_jwks),
        ],
        vec!["--public-key", arg(&good_pem)],
        vec![
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://app.example/cb",
            "--jwks-file",
            arg(&good_jwks),
        ],
        vec!["--token-endpoint-auth-method", "client_secret_jwt"],
    ];
    for args in others {
        let mut all = vec!["client", "create", "--name", "x"];
        all.extend_from_slice(&args);
        all.push("--json");
        if s.cli_output(&all).await.status.success() {
            failures.push(format!("client create {args:?} succeeded"));
        }
    }
    // No secret to rotate.
    let out = s
        .cli_output(&["client", "rotate-secret", &id, "--json"])
        .await;
    if out.status.success() {
        failures.push("rotate-secret of a private_key_jwt client succeeded".into());
    }
    // set-keys is for private_key_jwt clients only.
    let secret_client = s.create_client(&[]).await;
    let out = s
        .cli_output(&[
            "client",
            "set-keys",
            &secret_client.id,
            "--jwks-file",
            arg(&good_jwks),
        ])
        .await;
    if out.status.success() {
        failures.push("set-keys of a client_secret_basic client succeeded".into());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing was registered by the failures, and the client still works with its key.
    let list = s.cli_json(&["client", "list", "--json"]).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids.contains(&id.as_str()) && ids.contains(&secret_client.id.as_str()));
    let shown = s.cli_json(&["client", "show", &id, "--json"]).await;
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    let aud = token_endpoint(&s);
    token_ok(&s, &sign(&good, Some("k1"), &claims(&id, &*aud)), &[]).await;
    // The secret client is unaffected too.
    assert_eq!(s.token_status(&secret_client).await, StatusCode::OK);
}

#[tokio::test]
async fn discovery_lists_private_key_jwt_and_its_algorithms() {
    let s = Server::start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let meta = s.get_json(path).await;
        let list = |key: &str| -> Vec<String> {
            meta[key]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: {key} is not an array: {meta}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        for endpoint in ["token", "introspection", "revocation"] {
            let methods = list(&format!("{endpoint}_endpoint_auth_methods_supported"));
            assert!(
                methods.iter().any(|m| m == "private_key_jwt"),
                "{path}: {endpoint}: {methods:?}"
            );
            assert!(
                !methods.iter().any(|m| m == "client_secret_jwt"),
                "{path}: {endpoint}: {methods:?}"
            );
            let algs = list(&format!(
                "{endpoint}_endpoint_auth_signing_alg_values_supported"
            ));
            for alg in ["ES256", "ES384", "RS256", "PS256", "EdDSA"] {
                assert!(
                    algs.iter().any(|a| a == alg),
                    "{path}: {endpoint}: {algs:?}"
                );
            }
            for alg in ["none", "HS256", "HS384", "HS512"] {
                assert!(
                    !algs.iter().any(|a| a == alg),
                    "{path}: {endpoint}: {algs:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unknown clients and several PEM keys

#[tokio::test]
async fn an_unknown_client_is_refused_as_a_known_one_with_a_forged_signature() {
    let s = Server::start().await;
    let dir = key_dir();
    let token_ep = token_endpoint(&s);
    let secret_client = s.create_client(&[]).await;
    let mut keys = vec![p256("k1"), p384("k1"), ed25519("k1")];
    keys.extend(openssl_rsa(dir.path(), "k1", Algorithm::RS256));
    for key in &keys {
        let jwks = write(dir.path(), "client.jwks", &key.jwks());
        let id = register(&s, &["--jwks-file", arg(&jwks)], key, Some("k1")).await;
        // The same kind of key, not the client's: a forged signature.
        let forger = match key.alg {
            Algorithm::ES256 => p256("k1"),
            Algorithm::ES384 => p384("k1"),
            Algorithm::EdDSA => ed25519("k1"),
            _ => openssl_rsa(dir.path(), "k1", key.alg).unwrap(),
        };
        let known = with_assertion(
            &s,
            Endpoint::Token,
            &sign(&forger, Some("k1"), &claims(&id, &*token_ep)),
            &[],
        )
        .await;
        assert_invalid_client(&known, "a forged signature of a known client");
        for other in ["no-such-client", secret_client.id.as_str()] {
            let unknown = with_assertion(
                &s,
                Endpoint::Token,
                &sign(&forger, Some("k1"), &claims(other, &*token_ep)),
                &[],
            )
            .await;
            assert_invalid_client(&unknown, other);
            assert_eq!(
                unknown.body, known.body,
                "{:?}: the refusal of {other} tells it from a known client's",
                key.alg
            );
        }
    }
}

/// `jwt keygen --alg ALG` into `dir`; returns the private and public key paths.
async fn keygen(s: &Server, dir: &Path, alg: &str) -> (PathBuf, PathBuf) {
    s.cli(&["jwt", "keygen", "--out", arg(dir), "--alg", alg])
        .await;
    (dir.join("private.pem"), dir.join("public.pem"))
}

#[tokio::test]
async fn several_pem_keys_get_their_thumbprint_as_kid_and_jwt_sign_names_it() {
    let s = Server::start().await;
    let dir = key_dir();
    let (old_dir, new_dir) = (dir.path().join("old"), dir.path().join("new"));
    let (old_private, old_public) = keygen(&s, &old_dir, "ES256").await;
    let (new_private, new_public) = keygen(&s, &new_dir, "EdDSA").await;

    // A trusted issuer: the old PEM alone, then the rotation's old and new PEMs together.
    let added = s
        .cli_json(&[
            "trust",
            "add",
            "--issuer",
            "vendor",
            "--public-key",
            arg(&old_public),
            "--scope",
            "sdk",
            "--json",
        ])
        .await;
    let old_kid = added["kids"][0].as_str().unwrap().to_owned();
    assert_eq!(old_kid.len(), 43, "a base64url SHA-256 thumbprint: {added}");
    let id = added["id"].as_str().unwrap().to_owned();
    let both = s
        .cli_json(&[
            "trust",
            "set-keys",
            &id,
            "--public-key",
            arg(&old_public),
            "--public-key",
            arg(&new_public),
            "--json",
        ])
        .await;
    let new_kid = both["kids"][1].as_str().unwrap().to_owned();
    assert_eq!(both["kids"][0], old_kid.as_str(), "{both}");
    assert_ne!(old_kid, new_kid);

    // `jwt sign` names the key's thumbprint; both keys' JWTs are accepted meanwhile.
    for (private, kid) in [(&old_private, &old_kid), (&new_private, &new_kid)] {
        let jwt = s
            .cli(&[
                "jwt",
                "sign",
                "--key",
                arg(private),
                "--iss",
                "vendor",
                "--sub",
                "u1",
            ])
            .await
            .trim()
            .to_owned();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["kid"], kid.as_str(), "{header}");
        let named = s
            .cli(&[
                "jwt",
                "sign",
                "--key",
                arg(private),
                "--iss",
                "vendor",
                "--sub",
                "u1",
                "--kid",
                "from-a-jwks",
            ])
            .await;
        let named: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(named.trim().split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(named["kid"], "from-a-jwks");
        let s = &s;
        wait_until(FEED_DEADLINE, "the JWT of each key is accepted", || {
            let body = json!({"jwt": jwt});
            async move {
                let res = s
                    .http
                    .post(s.url("/sdk/token"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                res.status() == StatusCode::OK
            }
        })
        .await;
    }

    // A private_key_jwt client with two PEM keys: an assertion names its key by thumbprint.
    let old = p256("unused");
    let new = ed25519("unused");
    let old_pem = write(dir.path(), "client-old.pem", &old.pem);
    let new_pem = write(dir.path(), "client-new.pem", &new.pem);
    let out = create_output(
        &s,
        &["--public-key", arg(&old_pem), "--public-key", arg(&new_pem)],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let client = created["client_id"].as_str().unwrap().to_owned();
    let kids: Vec<String> = created["kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 2, "{created}");
    let shown = s.cli_json(&["client", "show", &client, "--json"]).await;
    assert_eq!(shown["kids"], created["kids"]);
    for (key, kid) in [(&new, &kids[1]), (&old, &kids[0])] {
        wait_accepted(&s, &client, key, Some(kid.as_str()), Duration::from_secs(2)).await;
    }
    // The same PEM given twice is refused: two keys with one kid.
    let out = create_output(
        &s,
        &["--public-key", arg(&old_pem), "--public-key", arg(&old_pem)],
    )
    .await;
    assert!(!out.status.success());
}
