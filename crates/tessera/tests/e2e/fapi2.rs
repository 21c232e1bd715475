//! The FAPI 2.0 Security Profile as a per-client profile, against a real server: a client
//! registered with `--profile fapi2` and `private_key_jwt` (ES256) goes through a push, the
//! sign-in and consent pages and the token endpoint; and what an attacker or a careless client
//! would try is refused, each with the section of the profile it breaks: a request not
//! pushed, plain PKCE, no `redirect_uri`, an HS256 or RS256 assertion, an assertion for the
//! token endpoint's URL, a token request without a sender constraint, and registering the
//! profile for a client with a secret; with a DPoP proof (RFC 9449) it gets DPoP-bound tokens
//! and a refresh token that is not rotated. The lifetimes (a code after 60 s, the
//! `request_uri`) are moved under a fixed clock in the handler tests.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::browser_support::*;
use crate::private_key_jwt::{arg, hs256, jti, key_dir, openssl_rsa, p256, sign, write, Key};
use crate::support::{unix_now, wait_until, Server};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Valid claims of an assertion by client `id` for audience `aud`.
fn claims(id: &str, aud: &str) -> Value {
    let t = unix_now() as i64;
    json!({"iss": id, "sub": id, "aud": aud, "iat": t, "exp": t + 60, "jti": jti()})
}

/// A fapi2 client with `key` (its JWKS in a file), for the code flow.
async fn fapi2_client(s: &Server, key: &Key) -> String {
    fapi2_client_with(s, key, &[]).await
}

/// [`fapi2_client`] with more `client create` arguments.
async fn fapi2_client_with(s: &Server, key: &Key, more: &[&str]) -> String {
    let dir = key_dir();
    let jwks = write(dir.path(), "client.jwks", &key.jwks());
    let v = s
        .cli_json(
            &[
                "client",
                "create",
                "--name",
                "fapi",
                "--token-endpoint-auth-method",
                "private_key_jwt",
                "--jwks-file",
                arg(&jwks),
                "--profile",
                "fapi2",
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                REDIRECT,
                "--scope",
                "openid read offline_access",
                "--json",
            ]
            .into_iter()
            .chain(more.iter().copied())
            .collect::<Vec<_>>(),
        )
        .await;
    v["client_id"].as_str().expect("client_id").to_owned()
}

/// The authorization parameters of a push by `id`, with `extra` replacing or adding (an
/// empty value drops one).
fn authorization(id: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid read offline_access"),
        ("state", "fapi-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A client's DPoP key (ES256), as a client library holds one (RFC 9449 §4.2).
struct Dpop {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl Dpop {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        // The members RFC 7638 §3.2 hashes, in its order (serde_json keeps keys sorted).
        let jwk = json!({
            "crv": "P-256", "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Self { pair, jwk }
    }

    /// The RFC 7638 thumbprint of the key.
    fn jkt(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.jwk.to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// A fresh proof for `POST url`.
    fn proof(&self, url: &str) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let t = unix_now() as i64;
        let claims = json!({"jti": jti(), "htm": "POST", "htu": url, "iat": t});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// POSTs `form` plus the client assertion `assertion` to `path`; the status and JSON body.
async fn post(
    s: &Server,
    path: &str,
    form: &[(String, String)],
    assertion: &str,
) -> (StatusCode, Value) {
    post_with(s, path, form, assertion, None).await
}

/// [`post`], with a DPoP proof by `dpop` when given.
async fn post_with(
    s: &Server,
    path: &str,
    form: &[(String, String)],
    assertion: &str,
    dpop: Option<&Dpop>,
) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    form.push(("client_assertion_type".into(), ASSERTION_TYPE.into()));
    form.push(("client_assertion".into(), assertion.into()));
    let mut req = s.http.post(s.url(path)).form(&form);
    if let Some(d) = dpop {
        req = req.header("DPoP", d.proof(&s.url(path)));
    }
    let res = req.send().await.expect("POST");
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Pushes `id`'s request with `extra`, authenticated by `key`'s assertion for the issuer.
async fn push(s: &Server, id: &str, key: &Key, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let a = sign(key, Some("k1"), &claims(id, s.issuer()));
    post(s, "/oauth2/par", &authorization(id, extra), &a).await
}

/// Waits until the server (told of a new client by the change feed) takes a push of `id`
/// signed by `key`.
async fn wait_pushed(s: &Server, id: &str, key: &Key) {
    wait_until(
        Duration::from_secs(2),
        "the server takes the fapi2 client's push",
        move || async move { push(s, id, key, &[]).await.0 == StatusCode::CREATED },
    )
    .await;
}

fn assert_refused(case: &str, got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{case}: {}", got.1);
    assert_eq!(got.1["error"], code, "{case}: {}", got.1);
    assert!(got.1["error_description"].is_string(), "{case}: {}", got.1);
}

#[tokio::test]
async fn a_fapi2_client_pushes_signs_in_and_needs_a_sender_constraint() {
    let (s, _) = setup(&[]).await;
    let key = p256("k1");
    // Refresh tokens expire after 4 s unused (the idle lifetime).
    let id = fapi2_client_with(&s, &key, &["--refresh-token-idle-ttl", "4"]).await;
    let shown = s.cli_json(&["client", "show", &id, "--json"]).await;
    assert_eq!(shown["profile"], "fapi2", "{shown}");
    // What the profile imposes is shown as it applies, not as it was stored.
    assert_eq!(
        shown["require_pushed_authorization_requests"], true,
        "{shown}"
    );
    assert_eq!(shown["require_pkce"], true, "{shown}");
    assert_eq!(shown["allow_plain_pkce"], false, "{shown}");
    assert!(shown["code_ttl"].as_i64().unwrap() <= 60, "{shown}");
    // The server learns the client through the change feed: wait until a push is taken.
    wait_pushed(&s, &id, &key).await;
    let (status, pushed) = push(&s, &id, &key, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{pushed}");
    assert!(pushed["expires_in"].as_i64().unwrap() < 600, "{pushed}");
    let uri = pushed["request_uri"].as_str().unwrap();
    let mut b = Browser::new(&s);
    let front = format!(
        "/oauth2/authorize?{}",
        url_encode(&[("client_id", &id), ("request_uri", uri)])
    );
    let login = b.get(&front).await;
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    let done = b.consent(&consent, true).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let p = done.redirect_params();
    // RFC 9207, FAPI 2.0 §5.3.2.2 item 7.
    assert_eq!(p["iss"], s.issuer());
    assert_eq!(p["state"], "fapi-state");
    // §5.3.2.1 item 4: a token request with neither a DPoP proof nor a client certificate.
    let form: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("code", p["code"].as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let a = sign(&key, Some("k1"), &claims(&id, s.issuer()));
    let got = post(&s, "/oauth2/token", &form, &a).await;
    assert_refused(
        "no sender constraint",
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("sender-constrained"),
        "{}",
        got.1
    );
    // With a DPoP proof (RFC 9449 §5): a DPoP-bound token; the refused request spent nothing.
    let dpop = Dpop::new();
    let a = sign(&key, Some("k1"), &claims(&id, s.issuer()));
    let (status, tokens) = post_with(&s, "/oauth2/token", &form, &a, Some(&dpop)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let access = crate::support::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        access.claims["cnf"]["jkt"],
        dpop.jkt(),
        "{:?}",
        access.claims
    );
    // §5.3.2.1 item 9: the refresh token is not rotated; it works again and again.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let again: Vec<(String, String)> = vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), refresh.into()),
    ];
    for _ in 0..2 {
        let a = sign(&key, Some("k1"), &claims(&id, s.issuer()));
        let (status, next) = post_with(&s, "/oauth2/token", &again, &a, Some(&dpop)).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        assert!(next.get("refresh_token").is_none(), "rotated: {next}");
        assert_eq!(next["token_type"], "DPoP", "{next}");
    }
    // The token that is not rotated still has an idle lifetime, counted from its last use:
    // used every 2.5 s it outlives its first 4 s; left unused for 5 s it expires.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        let a = sign(&key, Some("k1"), &claims(&id, s.issuer()));
        let (status, next) = post_with(&s, "/oauth2/token", &again, &a, Some(&dpop)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "used within its idle lifetime: {next}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let a = sign(&key, Some("k1"), &claims(&id, s.issuer()));
    let idle = post_with(&s, "/oauth2/token", &again, &a, Some(&dpop)).await;
    assert_refused(
        "refresh after its idle lifetime",
        &idle,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    // Without a proof, the refresh is refused like the code exchange.
    let a = sign(&key, Some("k1"), &claims(&id, s.issuer()));
    let got = post(&s, "/oauth2/token", &again, &a).await;
    assert_refused(
        "refresh without a proof",
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn what_the_profile_forbids_is_refused() {
    let (s, _) = setup(&[]).await;
    let key = p256("k1");
    let id = fapi2_client(&s, &key).await;
    wait_pushed(&s, &id, &key).await;
    // §5.3.2.2 item 3: a request not pushed goes back to the client, refused, with iss.
    let mut b = Browser::new(&s);
    let plain = format!(
        "/oauth2/authorize?{}",
        url_encode(
            &authorization(&id, &[])
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>()
        )
    );
    let page = b.get(&plain).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let p = page.redirect_params();
    assert_eq!(p["error"], "invalid_request");
    assert_eq!(p["iss"], s.issuer());
    // §5.3.2.2 items 5 and 6, at the push.
    for (case, extra) in [
        ("plain PKCE", vec![("code_challenge_method", "plain")]),
        (
            "no code_challenge_method",
            vec![("code_challenge_method", "")],
        ),
        ("no redirect_uri", vec![("redirect_uri", "")]),
    ] {
        let got = push(&s, &id, &key, &extra).await;
        assert_refused(case, &got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // §5.4.1 and §5.3.2.1 item 8: the assertion's algorithm and audience.
    let form = authorization(&id, &[]);
    let hs = hs256(
        b"a-shared-secret-of-32-bytes-long!",
        Some("k1"),
        &claims(&id, s.issuer()),
    );
    let got = post(&s, "/oauth2/par", &form, &hs).await;
    assert_refused("HS256", &got, StatusCode::UNAUTHORIZED, "invalid_client");
    let token_ep = s.url("/oauth2/token");
    let to_endpoint = sign(&key, Some("k1"), &claims(&id, &token_ep));
    let got = post(&s, "/oauth2/par", &form, &to_endpoint).await;
    assert_refused(
        "aud: token endpoint",
        &got,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    let cc = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
    let to_endpoint = sign(&key, Some("k1"), &claims(&id, &token_ep));
    let got = post(&s, "/oauth2/token", &cc, &to_endpoint).await;
    assert_refused(
        "aud at the token endpoint",
        &got,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    // §5.3.2.1 items 3 and 6: the profile is refused to a client with a secret or a public one.
    for how in [vec!["--grant-type", "authorization_code"], vec!["--public"]] {
        let mut args = vec![
            "client",
            "create",
            "--name",
            "no",
            "--profile",
            "fapi2",
            "--redirect-uri",
            REDIRECT,
        ];
        args.extend(how.iter().copied());
        let out = s.cli_output(&args).await;
        assert!(!out.status.success(), "{how:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("fapi2"), "{how:?}: {err}");
    }
}

#[tokio::test]
async fn an_rs256_assertion_is_refused_and_ps256_taken() {
    let s = Server::start().await;
    let dir = key_dir();
    let Some(rs) = openssl_rsa(dir.path(), "k1", Algorithm::RS256) else {
        return;
    };
    let id = fapi2_client(&s, &rs).await;
    let ps = Key {
        alg: Algorithm::PS256,
        ..rs
    };
    let form = authorization(&id, &[]);
    wait_pushed(&s, &id, &ps).await;
    let rs = Key {
        alg: Algorithm::RS256,
        ..ps
    };
    let a = sign(&rs, Some("k1"), &claims(&id, s.issuer()));
    let got = post(&s, "/oauth2/par", &form, &a).await;
    assert_refused("RS256", &got, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        got.1["error_description"]
            .as_str()
            .unwrap()
            .contains("PS256"),
        "{}",
        got.1
    );
}
