//! What one JWT assertion may cost and carry, at `/sdk/token`, the JWT-bearer grant and
//! `private_key_jwt`: one JWKS fetch in flight per URL however many assertions arrive at
//! once, `crit` headers refused (RFC 7515 §4.1.11), carried claims bounded in size, numeric
//! subjects in one canonical form, and keys bounded in number and size at registration,
//! with a `kid` required of an assertion when several keys could verify it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::jwt_bearer::{
    claims, exchange, grant_client, jti, sign, trust, vendor_key, VendorKey, ISSUER,
};
use crate::support::{decode_jwt, unix_now, wait_until, Server};

/// Posts a JSON body to `/sdk/token`; returns the status and the JSON answer.
async fn sdk_token(server: &Server, jwt: &str) -> (StatusCode, Value) {
    let res = server
        .http
        .post(server.url("/sdk/token"))
        .json(&json!({ "jwt": jwt }))
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

/// A JWS with exactly this header and payload text, signed by `key` with ES256.
fn sign_raw(key: &VendorKey, header: &Value, payload: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key.signing, Algorithm::ES256).unwrap();
    format!("{message}.{sig}")
}

fn sign_with_kid(key: &VendorKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.signing).unwrap()
}

/// Asserts a 400 with `error` whose description mentions `why`.
fn assert_refused(reply: &(StatusCode, Value), error: &str, why: &str, what: &str) {
    let (status, body) = reply;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], error, "{what}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(why), "{what}: {description}");
}

/// The public JWK of a vendor key, with a `kid`.
fn jwk(key: &VendorKey, kid: &str) -> Value {
    use base64::engine::general_purpose::STANDARD;
    let body: String = key
        .public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).unwrap();
    // The uncompressed point closes a P-256 SubjectPublicKeyInfo.
    let point = &der[der.len() - 65..];
    json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    })
}

/// A vendor's JWKS endpoint that answers after 300 ms (so that fetches would overlap) and
/// counts the fetches.
async fn slow_jwks_server(
    document: Value,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let fetches = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let body = document.to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (counted, body) = (counted.clone(), body.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                // A slow issuer on purpose: the concurrent assertions must arrive while the
                // fetch is in flight, for single flight to be what keeps the count at one;
                // the server shows no event for "every assertion is waiting on the fetch".
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, fetches)
}

#[tokio::test]
async fn forged_assertions_at_once_make_one_jwks_fetch_and_one_refresh() {
    use std::sync::atomic::Ordering;
    let server = Server::start().await;
    let vendor = vendor_key();
    let (url, fetches) = slow_jwks_server(json!({"keys": [jwk(&vendor, "k1")]})).await;
    server
        .cli_json(&[
            "trust",
            "add",
            "--issuer",
            ISSUER,
            "--jwks-url",
            &url,
            "--scope",
            "sdk",
            "--json",
        ])
        .await;
    // Forged: a kid the vendor publishes, a key it never had. Each fails with the cached
    // keys and asks for a refresh.
    let forge = || {
        let mut c = claims(&server);
        c.as_object_mut().unwrap().remove("aud");
        sign_with_kid(&vendor_key(), "k1", &c)
    };
    for round in 0..2 {
        let forged: Vec<String> = (0..40).map(|_| forge()).collect();
        let replies = join_all(forged.iter().map(|jwt| sdk_token(&server, jwt))).await;
        for r in &replies {
            assert_refused(r, "invalid_grant", "signature does not verify", "forged");
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "round {round}: one fetch and one refresh for 40 concurrent assertions"
        );
    }
    // The vendor's own assertions still pass, from the cache.
    let mut c = claims(&server);
    c.as_object_mut().unwrap().remove("aud");
    let (status, body) = sdk_token(&server, &sign_with_kid(&vendor, "k1", &c)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_crit_header_is_refused_by_every_assertion_check() {
    let server = Server::start().await;
    let vendor = vendor_key();
    trust(&server, &vendor, "default", &[]).await;
    let client = grant_client(&server, "default", &[]).await;
    // A private_key_jwt client with the same key.
    let pem = server.dir_path().join("pk.pem");
    std::fs::write(&pem, &vendor.public_pem).unwrap();
    let pk = server
        .cli_json(&[
            "client",
            "create",
            "--name",
            "pk",
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--public-key",
            pem.to_str().unwrap(),
            "--json",
        ])
        .await;
    let pk_id = pk["client_id"].as_str().unwrap().to_owned();
    let client_assertion = |header: &Value| {
        let now = unix_now() as i64;
        let c = json!({
            "iss": pk_id, "sub": pk_id, "aud": server.url("/oauth2/token"),
            "iat": now, "exp": now + 60, "jti": jti(),
        });
        sign_raw(&vendor, header, &c.to_string())
    };
    let authenticate = |assertion: String| {
        let server = &server;
        async move {
            let res = server
                .http
                .post(server.url("/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    // Control: the same header without crit passes everywhere (once the server knows the
    // new client, within a second).
    let plain = json!({"alg": "ES256", "typ": "JWT"});
    wait_until(
        std::time::Duration::from_secs(2),
        "the server knows the private_key_jwt client",
        || async { authenticate(client_assertion(&plain)).await.0 == StatusCode::OK },
    )
    .await;
    let (status, body) = exchange(
        &server,
        &client,
        &sign_raw(&vendor, &plain, &claims(&server).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for (case, header, why) in [
        (
            "an extension",
            json!({"alg": "ES256", "crit": ["exp"], "exp": 1}),
            "does not understand",
        ),
        (
            "an empty list",
            json!({"alg": "ES256", "crit": []}),
            "malformed",
        ),
        (
            "not a list",
            json!({"alg": "ES256", "crit": "exp", "exp": 1}),
            "malformed",
        ),
        (
            "a name absent from the header",
            json!({"alg": "ES256", "crit": ["exp"]}),
            "malformed",
        ),
        (
            "a name RFC 7515 defines",
            json!({"alg": "ES256", "crit": ["alg"]}),
            "malformed",
        ),
    ] {
        let mut seed = claims(&server);
        seed.as_object_mut().unwrap().remove("aud");
        let r = sdk_token(&server, &sign_raw(&vendor, &header, &seed.to_string())).await;
        assert_refused(&r, "invalid_grant", why, &format!("/sdk/token, {case}"));
        let r = exchange(
            &server,
            &client,
            &sign_raw(&vendor, &header, &claims(&server).to_string()),
        )
        .await;
        assert_refused(&r, "invalid_grant", why, &format!("jwt-bearer, {case}"));
        let (status, body) = authenticate(client_assertion(&header)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "private_key_jwt, {case}: {body}"
        );
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(why),
            "private_key_jwt, {case}: {description}"
        );
    }
}

#[tokio::test]
async fn carried_claims_are_bounded_each_and_together() {
    let server = Server::start().await;
    let vendor = vendor_key();
    trust(
        &server,
        &vendor,
        "default",
        &[
            "--claim", "c1", "--claim", "c2", "--claim", "c3", "--claim", "c4", "--claim", "c5",
        ],
    )
    .await;
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = claims(&server);
        c.as_object_mut().unwrap().remove("aud");
        edit(c.as_object_mut().unwrap());
        sign(&vendor, &c)
    };
    // 1 KiB of JSON fits (a string of n characters is n + 2 bytes of JSON).
    let fits = "x".repeat(1022);
    let (status, body) = sdk_token(
        &server,
        &with(&|m| {
            m.insert("anyflow_team_id".into(), fits.clone().into());
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(decode_jwt(token).claims["anyflow_team_id"], fits.as_str());
    for size in [1023, 40 * 1024] {
        let big = "x".repeat(size);
        let r = sdk_token(
            &server,
            &with(&|m| {
                m.insert("anyflow_team_id".into(), big.clone().into());
            }),
        )
        .await;
        assert_refused(
            &r,
            "invalid_grant",
            "a carried claim of the assertion is larger than 1024 bytes",
            &format!("{size} characters"),
        );
    }
    let r = sdk_token(
        &server,
        &with(&|m| {
            m.insert("c1".into(), json!({"nested": vec!["y"; 400]}));
        }),
    )
    .await;
    assert_refused(&r, "invalid_grant", "larger than 1024 bytes", "an object");
    // Five claims of 1000 bytes each fit one by one, not together.
    let r = sdk_token(
        &server,
        &with(&|m| {
            for name in ["c1", "c2", "c3", "c4", "c5"] {
                m.insert(name.into(), "z".repeat(998).into());
            }
        }),
    )
    .await;
    assert_refused(
        &r,
        "invalid_grant",
        "carried claims of the assertion are larger than 4096 bytes together",
        "five claims",
    );
}

#[tokio::test]
async fn numeric_subjects_have_one_canonical_form_and_other_numbers_are_refused() {
    let server = Server::start().await;
    let vendor = vendor_key();
    trust(&server, &vendor, "default", &["--subject-claim", "uid"]).await;
    let with_uid = |uid: &str| {
        let now = unix_now() as i64;
        // The payload as text: the number exactly as a vendor's library might write it.
        let payload = format!(
            r#"{{"iss":"{ISSUER}","iat":{now},"exp":{},"jti":"{}","uid":{uid}}}"#,
            now + 300,
            jti()
        );
        sign_raw(&vendor, &json!({"alg": "ES256", "typ": "JWT"}), &payload)
    };
    for (uid, sub) in [
        ("42", "42"),
        ("-7", "-7"),
        ("18446744073709551615", "18446744073709551615"),
        ("\"1.5\"", "1.5"),
    ] {
        let (status, body) = sdk_token(&server, &with_uid(uid)).await;
        assert_eq!(status, StatusCode::OK, "{uid}: {body}");
        let at = decode_jwt(body["access_token"].as_str().unwrap()).claims;
        assert_eq!(at["sub"], sub, "{uid}");
    }
    for uid in [
        "1.5",
        "-0.0",
        "1e+300",
        "1.0",
        "4.2e1",
        "18446744073709551616",
    ] {
        let r = sdk_token(&server, &with_uid(uid)).await;
        assert_refused(&r, "invalid_grant", "not an integer", uid);
    }
}

/// Runs `tessera ARGS` expecting failure; returns its stderr.
async fn cli_refused(server: &Server, args: &[&str]) -> String {
    let out = server.cli_output(args).await;
    assert!(
        !out.status.success(),
        "tessera {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// An RSA JWK whose modulus has `bits` bits (not a real key: registration checks its size).
fn rsa_jwk(bits: usize, kid: &str) -> Value {
    let mut n = vec![0xc5u8];
    n.resize(bits / 8, 0x35);
    json!({"kty": "RSA", "kid": kid, "e": "AQAB", "n": URL_SAFE_NO_PAD.encode(n)})
}

#[tokio::test]
async fn key_registration_is_bounded_in_number_and_size_and_several_keys_need_kids() {
    let server = Server::start().await;
    let dir = server.dir_path().to_owned();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let keys: Vec<VendorKey> = (0..11).map(|_| vendor_key()).collect();
    let jwks = |n: usize| {
        json!({"keys": keys[..n].iter().enumerate().map(|(i, k)| jwk(k, &format!("k{i}"))).collect::<Vec<_>>()})
            .to_string()
    };
    let ten = write("ten.jwks", &jwks(10));
    let eleven = write("eleven.jwks", &jwks(11));
    let rsa_8192 = write(
        "rsa8192.jwks",
        &json!({"keys": [rsa_jwk(8192, "big")]}).to_string(),
    );
    let rsa_4096 = write(
        "rsa4096.jwks",
        &json!({"keys": [rsa_jwk(4096, "ok")]}).to_string(),
    );
    let mut no_kid = jwk(&keys[1], "x");
    no_kid.as_object_mut().unwrap().remove("kid");
    let missing_kid = write(
        "missing-kid.jwks",
        &json!({"keys": [jwk(&keys[0], "a"), no_kid]}).to_string(),
    );
    let same_kid = write(
        "same-kid.jwks",
        &json!({"keys": [jwk(&keys[0], "a"), jwk(&keys[1], "a")]}).to_string(),
    );
    let pem_a = write("a.pem", &keys[0].public_pem);
    let pem_b = write("b.pem", &keys[1].public_pem);

    let client = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "create",
            "--name",
            "pk",
            "--token-endpoint-auth-method",
            "private_key_jwt",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let issuer = |extra: &[&str]| {
        let mut args = vec![
            "trust",
            "add",
            "--issuer",
            "https://other.example",
            "--scope",
            "sdk",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let refused: [(&[&str], &str); 5] = [
        (&["--jwks-file", &eleven], "more than 10 keys"),
        (&["--jwks-file", &rsa_8192], "8192 bits: 2048 to 4096"),
        (&["--jwks-file", &missing_kid], "each needs a kid"),
        (&["--jwks-file", &same_kid], "two keys have the kid 'a'"),
        (
            &["--public-key", &pem_a, "--public-key", &pem_a],
            "the same PEM key given twice",
        ),
    ];
    for (args, why) in refused {
        for command in [client(args), issuer(args)] {
            let command = strs(&command);
            let stderr = cli_refused(&server, &command).await;
            assert!(stderr.contains(why), "{command:?}: {stderr}");
        }
    }
    // Two PEM keys each get their thumbprint as kid, so they go together.
    for command in [
        client(&["--public-key", &pem_a, "--public-key", &pem_b, "--json"]),
        issuer(&["--public-key", &pem_a, "--public-key", &pem_b, "--json"]),
    ] {
        let v = server.cli_json(&strs(&command)).await;
        assert_eq!(v["kids"].as_array().map(Vec::len), Some(2), "{v}");
    }
    // Ten keys, and an RSA key of 4096 bits, are accepted; so is set-keys within the limit
    // and not beyond it.
    let mut args = client(&["--jwks-file", &ten, "--json"]);
    let c = server.cli_json(&strs(&args)).await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    args = client(&["--jwks-file", &rsa_4096, "--json"]);
    server.cli_json(&strs(&args)).await;
    let t = server
        .cli_json(&[
            "trust",
            "add",
            "--issuer",
            ISSUER,
            "--jwks-file",
            &ten,
            "--scope",
            "sdk",
            "--json",
        ])
        .await;
    assert_eq!(t["keys"], 10);
    let stderr = cli_refused(
        &server,
        &["client", "set-keys", &id, "--jwks-file", &eleven],
    )
    .await;
    assert!(stderr.contains("more than 10 keys"), "{stderr}");
    let trust_id = t["id"].as_str().unwrap();
    let stderr = cli_refused(
        &server,
        &["trust", "set-keys", trust_id, "--jwks-file", &eleven],
    )
    .await;
    assert!(stderr.contains("more than 10 keys"), "{stderr}");

    // With several keys an assertion must name its key; the named key is the one tried.
    let mut seed = claims(&server);
    seed.as_object_mut().unwrap().remove("aud");
    let r = sdk_token(&server, &sign(&keys[3], &seed)).await;
    assert_refused(&r, "invalid_grant", "must name its key with kid", "no kid");
    seed["jti"] = jti().into();
    let r = sdk_token(&server, &sign_with_kid(&keys[3], "k4", &seed)).await;
    assert_refused(
        &r,
        "invalid_grant",
        "signature does not verify",
        "another key's kid",
    );
    seed["jti"] = jti().into();
    let (status, body) = sdk_token(&server, &sign_with_kid(&keys[3], "k3", &seed)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
