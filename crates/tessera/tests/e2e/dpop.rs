//! DPoP (RFC 9449) against a real server: tokens bound to the proof's key at the token
//! endpoint (`token_type: DPoP`, `cnf.jkt` in a JWT and in introspection), every check of a
//! proof (§4.3) with its attacker's case, single use of a proof, server nonces (§8), a client
//! whose tokens must be bound, `dpop_jkt` at the authorization endpoint and through PAR
//! (§10), a public client's refresh tokens bound to its key (§5), and `/userinfo` taking a
//! bound token only with the `DPoP` scheme and a proof by its key (§7), and a bound token
//! taken as a token exchange's subject only with a proof by its key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{header, StatusCode};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Map, Value};

use crate::browser_support::*;
use crate::support::{decode_jwt, unix_now, Creds, Server};

/// A client's DPoP key (ES256).
pub struct DpopKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl DpopKey {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        DpopKey { pair, rng }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// The RFC 7638 thumbprint, computed here independently of the server.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// Signs `header` and `claims` as a compact JWS.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// The usual header.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()})
    }

    /// The usual claims for `method` `url` now, with a fresh `jti`.
    pub fn claims(&self, method: &str, url: &str) -> Value {
        let jti = URL_SAFE_NO_PAD.encode(
            ring::rand::generate::<[u8; 16]>(&self.rng)
                .unwrap()
                .expose(),
        );
        json!({"jti": jti, "htm": method, "htu": url, "iat": unix_now() as i64})
    }

    /// A proof for `method` `url`.
    pub fn proof(&self, method: &str, url: &str) -> String {
        self.sign(&self.header(), &self.claims(method, url))
    }

    /// A proof for `method` `url` that carries the access token's hash (and `extra`).
    pub fn proof_for_token(
        &self,
        method: &str,
        url: &str,
        token: &str,
        extra: &[(&str, Value)],
    ) -> String {
        let mut claims = self.claims(method, url);
        claims["ath"] = json!(URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            token.as_bytes()
        )));
        for (k, v) in extra {
            claims[*k] = v.clone();
        }
        self.sign(&self.header(), &claims)
    }
}

/// A client-credentials request with the given `DPoP` headers.
async fn cc(server: &Server, c: &Creds, proofs: &[&str]) -> reqwest::Response {
    token_with(server, c, &[("grant_type", "client_credentials")], proofs).await
}

async fn error_of(res: reqwest::Response) -> (StatusCode, String, Value) {
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body,
    )
}

async fn cc_server() -> (Server, Creds) {
    let server = Server::start().await;
    let c = server
        .create_client(&["--grant-type", "client_credentials", "--scope", "read"])
        .await;
    (server, c)
}

#[tokio::test]
async fn a_proof_binds_the_token_to_its_key_in_the_jwt_and_in_introspection() {
    let (server, c) = cc_server().await;
    let key = DpopKey::new();
    let res = cc(
        &server,
        &c,
        &[&key.proof("POST", &server.url("/oauth2/token"))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap();
    let jwt = decode_jwt(token);
    assert_eq!(
        jwt.claims["cnf"]["jkt"],
        key.thumbprint(),
        "{:?}",
        jwt.claims
    );
    let intro = server.introspect(&c, token).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["token_type"], "DPoP", "{intro}");
    assert_eq!(intro["cnf"]["jkt"], key.thumbprint());
    // Without a proof: a bearer token, with no cnf.
    let plain = server.token_ok(&c).await;
    assert_eq!(plain["token_type"], "bearer");
    let jwt = decode_jwt(plain["access_token"].as_str().unwrap());
    assert!(jwt.claims.get("cnf").is_none());
    let intro = server
        .introspect(&c, plain["access_token"].as_str().unwrap())
        .await;
    assert_eq!(intro["token_type"], "Bearer");
    // An opaque token keeps its binding for introspection.
    let o = server
        .create_client(&[
            "--grant-type",
            "client_credentials",
            "--access-token-format",
            "opaque",
        ])
        .await;
    let res = cc(
        &server,
        &o,
        &[&key.proof("POST", &server.url("/oauth2/token"))],
    )
    .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let intro = server
        .introspect(&o, body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(intro["token_type"], "DPoP", "{intro}");
    assert_eq!(intro["cnf"]["jkt"], key.thumbprint());
}

#[tokio::test]
async fn every_check_of_a_proof_refuses_its_forgery() {
    let (server, c) = cc_server().await;
    let key = DpopKey::new();
    let url = server.url("/oauth2/token");
    let now = unix_now() as i64;
    let with = |f: &dyn Fn(&mut Value, &mut Value)| {
        let mut h = key.header();
        let mut cl = key.claims("POST", &url);
        f(&mut h, &mut cl);
        key.sign(&h, &cl)
    };
    let mut private = key.jwk();
    private["d"] = json!("AAAA");
    let other = DpopKey::new();
    let forged_sig = {
        // Claims changed after signing.
        let p = key.proof("POST", &url);
        let parts: Vec<&str> = p.split('.').collect();
        let mut cl = key.claims("POST", &url);
        cl["jti"] = json!("changed-after-signing");
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(cl.to_string()),
            parts[2]
        )
    };
    let other_signs = {
        // Signed by another key than the header's.
        let h = key.header();
        other.sign(&h, &key.claims("POST", &url))
    };
    let cases: Vec<(&str, String)> = vec![
        ("not a JWS", "abc.def".to_owned()),
        ("typ jwt", with(&|h, _| h["typ"] = json!("JWT"))),
        (
            "no typ",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("typ");
            }),
        ),
        ("alg none", with(&|h, _| h["alg"] = json!("none"))),
        ("alg HS256", with(&|h, _| h["alg"] = json!("HS256"))),
        (
            "alg of another key type",
            with(&|h, _| h["alg"] = json!("RS256")),
        ),
        (
            "no jwk",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
        ),
        ("private jwk", with(&|h, _| h["jwk"] = private.clone())),
        ("crit", with(&|h, _| h["crit"] = json!(["x"]))),
        ("bad signature", forged_sig),
        ("signed by another key", other_signs),
        (
            "no jti",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "no htm",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("htm");
            }),
        ),
        ("htm GET", with(&|_, c| c["htm"] = json!("GET"))),
        (
            "no htu",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("htu");
            }),
        ),
        (
            "htu other path",
            with(&|_, c| c["htu"] = json!(server.url("/oauth2/introspect"))),
        ),
        (
            "htu other host",
            with(&|_, c| c["htu"] = json!("https://evil.example/oauth2/token")),
        ),
        (
            "no iat",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        (
            "iat string",
            with(&|_, c| c["iat"] = json!(now.to_string())),
        ),
        ("iat too old", with(&|_, c| c["iat"] = json!(now - 600))),
        (
            "iat in the future",
            with(&|_, c| c["iat"] = json!(now + 600)),
        ),
    ];
    for (case, proof) in &cases {
        let (status, error, body) = error_of(cc(&server, &c, &[proof]).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        assert_eq!(error, "invalid_dpop_proof", "{case}: {body}");
        assert!(body["error_description"].is_string(), "{case}");
    }
    // Two DPoP headers.
    let (p1, p2) = (key.proof("POST", &url), key.proof("POST", &url));
    let (status, error, _) = error_of(cc(&server, &c, &[&p1, &p2]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    // Nothing of a proof is written to the logs.
    assert!(!server.logs().contains(&p1));
    // The htu is compared after normalisation (RFC 3986 §6.2.2, §6.2.3): case of the host,
    // a default port, a query.
    let loose = url.replace("http://", "HTTP://") + "?x=1#f";
    let res = cc(&server, &c, &[&key.proof("POST", &loose)]).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
}

#[tokio::test]
async fn a_proof_is_used_once() {
    let (server, c) = cc_server().await;
    let key = DpopKey::new();
    let proof = key.proof("POST", &server.url("/oauth2/token"));
    assert_eq!(cc(&server, &c, &[&proof]).await.status(), StatusCode::OK);
    let (status, error, body) = error_of(cc(&server, &c, &[&proof]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "invalid_dpop_proof");
    // The same jti under another key is another proof.
    let other = DpopKey::new();
    let mut claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(proof.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["iat"] = json!(unix_now() as i64);
    let theirs = other.sign(&other.header(), &claims);
    assert_eq!(cc(&server, &c, &[&theirs]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_dpop_bound_client_gets_no_bearer_token() {
    let server = Server::start().await;
    let c = server
        .create_client(&["--grant-type", "client_credentials", "--dpop-bound"])
        .await;
    let (status, error, body) = error_of(cc(&server, &c, &[]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "invalid_dpop_proof");
    let key = DpopKey::new();
    let res = cc(
        &server,
        &c,
        &[&key.proof("POST", &server.url("/oauth2/token"))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let shown = server.cli_json(&["client", "show", &c.id, "--json"]).await;
    assert_eq!(shown["dpop_bound_access_tokens"], true, "{shown}");
}

/// A token request by a confidential client with the given form and `DPoP` headers.
async fn token_with(
    server: &Server,
    c: &Creds,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> reqwest::Response {
    let mut req = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(form);
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    req.send().await.expect("token request")
}

/// The attacker holds a DPoP-bound token and the client's credentials, not its key: a token
/// exchange (RFC 8693) would mint an unbound token from it. The exchange takes a bound
/// subject token only with a proof by its key, and binds what it issues to that key.
#[tokio::test]
async fn a_bound_token_is_exchanged_only_with_a_proof_by_its_key() {
    const API: &str = "https://api.example";
    let server = Server::start().await;
    let c = server
        .create_client(&[
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--audience",
            API,
            "--token-exchange-audience",
            API,
        ])
        .await;
    let key = DpopKey::new();
    let url = server.url("/oauth2/token");
    let res = cc(&server, &c, &[&key.proof("POST", &url)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bound: Value = res.json().await.unwrap();
    let subject = bound["access_token"].as_str().unwrap().to_owned();
    let form = crate::token_exchange::exchange_form(&subject, API);
    // No proof: the bearer token the attacker wanted is refused.
    let (status, error, body) = error_of(token_with(&server, &c, &form, &[]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "invalid_dpop_proof", "{body}");
    // A proof by the attacker's own key.
    let theirs = DpopKey::new();
    let (status, error, body) =
        error_of(token_with(&server, &c, &form, &[&theirs.proof("POST", &url)]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "invalid_request", "{body}");
    // The key's holder: the exchanged token is bound to the same key.
    let res = token_with(&server, &c, &form, &[&key.proof("POST", &url)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let exchanged: Value = res.json().await.unwrap();
    assert_eq!(exchanged["token_type"], "DPoP", "{exchanged}");
    let claims = decode_jwt(exchanged["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint(), "{claims:?}");
    assert_eq!(claims["aud"], API);
    // A bearer subject token is exchanged as before.
    let plain = server.token_ok(&c).await;
    let plain = plain["access_token"].as_str().unwrap();
    let mut bearer_form = form;
    bearer_form[1].1 = plain;
    let res = token_with(&server, &c, &bearer_form, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// A trusted issuer's JWT bound to a DPoP key (`cnf.jkt`) as a token exchange's subject
/// (`urn:ietf:params:oauth:token-type:jwt`): taken only with a proof by that key, like a
/// bound token of this server.
#[tokio::test]
async fn a_trusted_issuers_bound_jwt_is_exchanged_only_with_a_proof_by_its_key() {
    const API: &str = "https://api.example";
    let server = Server::start().await;
    let vendor = crate::jwt_bearer::vendor_key();
    crate::jwt_bearer::trust(&server, &vendor, "default", &[]).await;
    let c = server
        .create_client(&[
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--scope",
            "sdk",
            "--audience",
            API,
            "--token-exchange-audience",
            API,
        ])
        .await;
    let key = DpopKey::new();
    let url = server.url("/oauth2/token");
    // Each attempt spends its JWT (RFC 7523 §3 item 7), so each gets a fresh one.
    let bound_jwt = || {
        let mut claims = crate::jwt_bearer::claims(&server);
        claims["cnf"] = json!({ "jkt": key.thumbprint() });
        crate::jwt_bearer::sign(&vendor, &claims)
    };
    let exchange = |jwt: String, proofs: Vec<String>| {
        let (server, c) = (&server, &c);
        async move {
            let mut form = crate::token_exchange::exchange_form(&jwt, API);
            form[2].1 = "urn:ietf:params:oauth:token-type:jwt";
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            token_with(server, c, &form, &proofs).await
        }
    };
    let (status, error, body) = error_of(exchange(bound_jwt(), vec![]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "invalid_dpop_proof", "{body}");
    let theirs = DpopKey::new().proof("POST", &url);
    let (status, error, body) = error_of(exchange(bound_jwt(), vec![theirs]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "invalid_request", "{body}");
    let res = exchange(bound_jwt(), vec![key.proof("POST", &url)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let exchanged: Value = res.json().await.unwrap();
    assert_eq!(exchanged["token_type"], "DPoP", "{exchanged}");
    let claims = decode_jwt(exchanged["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint(), "{claims:?}");
    assert_eq!(claims["sub"], "user-1");
}

#[tokio::test]
async fn with_server_nonces_a_proof_must_carry_a_current_one() {
    let server = Server::start_with(&[("TESSERA_DPOP_NONCE", "true")]).await;
    let c = server
        .create_client(&["--grant-type", "client_credentials"])
        .await;
    let key = DpopKey::new();
    let url = server.url("/oauth2/token");
    let res = cc(&server, &c, &[&key.proof("POST", &url)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce", "{body}");
    let mut claims = key.claims("POST", &url);
    claims["nonce"] = json!(nonce);
    let res = cc(&server, &c, &[&key.sign(&key.header(), &claims)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("dpop-nonce"));
    // A nonce this server did not make.
    let mut claims = key.claims("POST", &url);
    claims["nonce"] = json!(URL_SAFE_NO_PAD.encode([7u8; 24]));
    let (status, error, _) =
        error_of(cc(&server, &c, &[&key.sign(&key.header(), &claims)]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "use_dpop_nonce")
    );
    let disco = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        disco["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "PS256", "RS256", "EdDSA"])
    );
}

/// A public code-flow client and a code for alice, its authorization request with `extra`.
async fn public_code(server: &Server, c: &Creds, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid offline_access"),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    alice_code(server, &pairs).await
}

/// Alice's code from an authorization request with `pairs`: she signs in and consents.
async fn alice_code(server: &Server, pairs: &[(&str, &str)]) -> String {
    let mut b = Browser::new(server);
    let login = b
        .get(&format!("/oauth2/authorize?{}", url_encode(pairs)))
        .await;
    assert!(login.is_login(), "{}", login.body);
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    let done = if consent.is_consent() {
        b.consent(&consent, true).await
    } else {
        consent
    };
    let p = done.redirect_params();
    p.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("{:?} {}", p, done.body))
}

/// Exchanges a code with a `DPoP` proof if any: a public client names itself, a confidential
/// one authenticates with HTTP Basic.
async fn exchange_with(
    server: &Server,
    c: &Creds,
    code: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let mut req = server.http.post(server.url("/oauth2/token"));
    if c.secret.is_empty() {
        form.push(("client_id", &c.id));
    } else {
        req = req.basic_auth(&c.id, Some(&c.secret));
    }
    req = req.form(&form);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn refresh_with(
    server: &Server,
    c: &Creds,
    token: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let mut req = server.http.post(server.url("/oauth2/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", &c.id),
    ]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_and_a_public_clients_refresh_tokens_stay_with_the_key() {
    let (server, _) = setup(&[]).await;
    let c = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid offline_access",
            "--public",
        ])
        .await;
    let key = DpopKey::new();
    let other = DpopKey::new();
    let token_url = server.url("/oauth2/token");
    // A malformed dpop_jkt is refused at the authorization endpoint.
    let mut b = Browser::new(&server);
    let bad = b
        .get(&format!(
            "/oauth2/authorize?{}",
            url_encode(&[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("dpop_jkt", "not-a-thumbprint"),
            ])
        ))
        .await;
    assert!(
        bad.location()
            .unwrap_or_default()
            .contains("error=invalid_request"),
        "{bad:?}"
    );
    let jkt = key.thumbprint();
    // The code is exchanged only with a proof by the key dpop_jkt names.
    let code = public_code(&server, &c, &[("dpop_jkt", &jkt)]).await;
    let (status, error, _) = error_of(exchange_with(&server, &c, &code, None).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    let code = public_code(&server, &c, &[("dpop_jkt", &jkt)]).await;
    let (status, error, _) =
        error_of(exchange_with(&server, &c, &code, Some(&other.proof("POST", &token_url))).await)
            .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let code = public_code(&server, &c, &[("dpop_jkt", &jkt)]).await;
    let res = exchange_with(&server, &c, &code, Some(&key.proof("POST", &token_url))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // The refresh token is bound to the key: no proof, or another key's, is refused.
    let (status, error, _) = error_of(refresh_with(&server, &c, &refresh, None).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    let (status, error, _) = error_of(
        refresh_with(
            &server,
            &c,
            &refresh,
            Some(&other.proof("POST", &token_url)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let res = refresh_with(&server, &c, &refresh, Some(&key.proof("POST", &token_url))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let next: Value = res.json().await.unwrap();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(
        decode_jwt(next["access_token"].as_str().unwrap()).claims["cnf"]["jkt"],
        jkt
    );
    // A family started without a proof is not bound.
    let code = public_code(&server, &c, &[]).await;
    let res = exchange_with(&server, &c, &code, None).await;
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    let res = refresh_with(&server, &c, tokens["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_proof_with_the_push_binds_the_code_to_its_key() {
    let (server, c) = setup(&[]).await;
    let key = DpopKey::new();
    let other = DpopKey::new();
    let par_url = server.url("/oauth2/par");
    let form = [
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let push = |proof: String, jkt: Option<String>| {
        let mut f: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if let Some(j) = jkt {
            f.push(("dpop_jkt", j));
        }
        server
            .http
            .post(&par_url)
            .basic_auth(&c.id, Some(&c.secret))
            .header("DPoP", proof)
            .form(&f)
            .send()
    };
    // dpop_jkt naming another key than the proof's.
    let (status, error, _) = error_of(
        push(key.proof("POST", &par_url), Some(other.thumbprint()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    let res = push(key.proof("POST", &par_url), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = alice_code(&server, &[("client_id", &c.id), ("request_uri", &uri)]).await;
    let token_url = server.url("/oauth2/token");
    let res = exchange_with(&server, &c, &code, Some(&other.proof("POST", &token_url))).await;
    let (status, error, _) = error_of(res).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

/// A DPoP-bound user token for alice from a confidential client.
async fn bound_user_token(server: &Server, c: &Creds, key: &DpopKey) -> String {
    let code = alice_code(
        server,
        &[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let token_url = server.url("/oauth2/token");
    let res = exchange_with(server, c, &code, Some(&key.proof("POST", &token_url))).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_only_with_the_dpop_scheme_and_its_keys_proof() {
    let (server, c) = setup(&[]).await;
    let key = DpopKey::new();
    let token = bound_user_token(&server, &c, &key).await;
    let url = server.url("/userinfo");
    let ask = |auth: String, proof: Option<String>| {
        let mut req = server.http.get(&url).header(header::AUTHORIZATION, auth);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let challenge = |res: &reqwest::Response| -> String {
        res.headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    // As a bearer token: refused, and the challenge names DPoP and its algorithms.
    let res = ask(format!("Bearer {token}"), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let ch = challenge(&res);
    assert!(ch.starts_with("DPoP error=\"invalid_token\""), "{ch}");
    assert!(ch.contains("algs=\"ES256"), "{ch}");
    // With the DPoP scheme and a proof carrying ath: the claims.
    let ok = ask(
        format!("DPoP {token}"),
        Some(key.proof_for_token("GET", &url, &token, &[])),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let claims: Map<String, Value> = ok.json().await.unwrap();
    assert!(claims.contains_key("sub"));
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no proof", None, "invalid_dpop_proof"),
        ("no ath", Some(key.proof("GET", &url)), "invalid_dpop_proof"),
        (
            "ath of another token",
            Some(key.proof_for_token("GET", &url, "other-token", &[])),
            "invalid_dpop_proof",
        ),
        (
            "htm POST",
            Some(key.proof_for_token("POST", &url, &token, &[])),
            "invalid_dpop_proof",
        ),
        (
            "another key",
            Some(DpopKey::new().proof_for_token("GET", &url, &token, &[])),
            "invalid_token",
        ),
    ];
    for (case, proof, want) in cases {
        let res = ask(format!("DPoP {token}"), proof).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{case}");
        let ch = challenge(&res);
        assert!(
            ch.starts_with(&format!("DPoP error=\"{want}\"")),
            "{case}: {ch}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], want, "{case}: {body}");
    }
    // A replayed proof at the resource.
    let proof = key.proof_for_token("GET", &url, &token, &[]);
    assert_eq!(
        ask(format!("DPoP {token}"), Some(proof.clone()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let again = ask(format!("DPoP {token}"), Some(proof)).await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    // A token bound to no key is not taken with the DPoP scheme.
    let m = server
        .create_client(&["--grant-type", "client_credentials"])
        .await;
    let unbound = server.access_token(&m).await;
    let res = ask(
        format!("DPoP {unbound}"),
        Some(key.proof_for_token("GET", &url, &unbound, &[])),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).starts_with("DPoP error=\"invalid_token\""));
    // A bearer refusal also offers DPoP (RFC 9449 §7.2).
    let res = ask("Bearer not-a-token".to_owned(), None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let ch = challenge(&res);
    assert!(
        ch.contains("Bearer error=\"invalid_token\"") && ch.contains("DPoP algs="),
        "{ch}"
    );
}
