//! Mutual TLS (RFC 8705) against the real server, with certificates made here and real TLS
//! connections from reqwest with a client identity: `tls_client_auth` (a certificate from
//! the configured authority with the registered subject DN or SAN) and
//! `self_signed_tls_client_auth` (a certificate holding a registered key), each refused with
//! a certificate of another authority, another subject, an unregistered key or none;
//! certificate-bound access tokens whose `cnf.x5t#S256` is the SHA-256 of the certificate,
//! in the JWT and in introspection; `/userinfo` refusing a bound token over a connection with
//! another certificate; the certificate forwarded by a TLS-terminating proxy in a header,
//! believed from a trusted proxy only; dynamic registration; the metadata; and failed
//! certificate authentications counted by the failure budget of every client
//! authentication; and the settings checked at start.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{decode_jwt, Server};

/// A certificate authority made for a test.
struct Ca {
    pem: String,
    issuer: rcgen::Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A client certificate and its key.
struct ClientCert {
    der: Vec<u8>,
    pem: String,
    key: KeyPair,
}

impl ClientCert {
    /// A reqwest identity: the certificate and its PKCS#8 key.
    fn identity_pem(&self) -> String {
        format!("{}{}", self.pem, self.key.serialize_pem())
    }

    /// The base64url SHA-256 of the DER (RFC 8705 §3.1).
    fn thumbprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.der);
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }
}

fn client_params(cn: &str, san_dns: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = vec![SanType::DnsName(san_dns.try_into().unwrap())];
    params
}

/// A certificate for `cn` (and the DNS SAN `san_dns`) issued by `ca`.
fn issued(ca: &Ca, cn: &str, san_dns: &str) -> ClientCert {
    issued_numbered(ca, cn, san_dns, None)
}

/// [`issued`] with the given serial number (rcgen picks one at random otherwise).
fn issued_numbered(ca: &Ca, cn: &str, san_dns: &str, serial: Option<u64>) -> ClientCert {
    let key = KeyPair::generate().unwrap();
    let mut params = client_params(cn, san_dns);
    params.serial_number = serial.map(rcgen::SerialNumber::from);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    ClientCert {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
    }
}

/// A self-signed certificate.
fn self_signed(cn: &str) -> ClientCert {
    let key = KeyPair::generate().unwrap();
    let cert = client_params(cn, "client.example.com")
        .self_signed(&key)
        .unwrap();
    ClientCert {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
    }
}

/// An HTTPS client trusting the server's test certificate, presenting `cert` if given.
fn https(s: &Server, cert: Option<&ClientCert>) -> reqwest::Client {
    let root = std::fs::read(s.dir_path().join("cert.pem")).unwrap();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap());
    if let Some(c) = cert {
        b = b.identity(reqwest::Identity::from_pem(c.identity_pem().as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// A server over TLS with mutual TLS on and `ca` as the authority of `tls_client_auth`.
async fn server(ca: &Ca, extra: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client-ca.pem");
    std::fs::write(&path, &ca.pem).unwrap();
    let path = path.display().to_string();
    let mut env = vec![
        ("TESSERA_MTLS_ENABLED", "true"),
        ("TESSERA_MTLS_CA_FILE", path.as_str()),
    ];
    env.extend_from_slice(extra);
    (Server::start_tls_with(&env).await, dir)
}

/// A client credentials request naming `client_id`, over `http`.
async fn token(s: &Server, http: &reqwest::Client, client_id: &str) -> (StatusCode, Value) {
    let res = http
        .post(s.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Registers a client with the CLI; returns its id.
async fn create(s: &Server, args: &[&str]) -> String {
    let mut all = vec!["client", "create", "--name", "mtls", "--scope", "read"];
    all.extend_from_slice(args);
    all.push("--json");
    let made = s.cli_json(&all).await;
    made["client_id"].as_str().unwrap().to_owned()
}

/// Registers a `tls_client_auth` client whose certificate subject is `CN=client one,O=Example`
/// (the certificates [`issued`] for "client one"), with `more` arguments; returns its id.
async fn client_one(s: &Server, more: &[&str]) -> String {
    let mut args = vec![
        "--token-endpoint-auth-method",
        "tls_client_auth",
        "--tls-client-auth-subject-dn",
        "CN=client one,O=Example",
    ];
    args.extend_from_slice(more);
    create(s, &args).await
}

/// Asks until the answer is not `401` (a new client reaches the server through the change
/// feed), at most 120 times, 25 ms apart; returns the last answer.
async fn past_401<F, Fut>(mut ask: F) -> (StatusCode, Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)>,
{
    for _ in 0..120 {
        let answer = ask().await;
        if answer.0 != StatusCode::UNAUTHORIZED {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    ask().await
}

/// Waits until `http` gets an answer other than 401 for `client_id`; asserts it is a token.
async fn first_token(s: &Server, http: &reqwest::Client, client_id: &str) -> Value {
    let (status, body) = past_401(|| token(s, http, client_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn assert_invalid_client((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{what}: {body}");
}

#[tokio::test]
async fn tls_client_auth_takes_the_authoritys_certificate_with_the_registered_subject_only() {
    let good = ca("Good CA");
    let (s, _dir) = server(&good, &[]).await;
    let id = client_one(&s, &[]).await;
    let cert = issued(&good, "client one", "one.example.com");
    let body = first_token(&s, &https(&s, Some(&cert)), &id).await;
    // Still a bearer token (RFC 8705 §3: presented over the same mutual TLS connection).
    assert!(
        body["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("bearer"),
        "{body}"
    );

    // The token is bound to the certificate (RFC 8705 §3.1): cnf.x5t#S256 is its SHA-256.
    let access = body["access_token"].as_str().unwrap();
    let claims = decode_jwt(access).claims;
    assert_eq!(claims["cnf"]["x5t#S256"], cert.thumbprint(), "{claims}");

    // Introspection returns the binding (RFC 8705 §3.2), to the client authenticating with
    // its certificate there too.
    let res = https(&s, Some(&cert))
        .post(s.url("/oauth2/introspect"))
        .form(&[("token", access), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let look: Value = res.json().await.unwrap();
    assert_eq!(look["active"], true, "{look}");
    assert_eq!(look["cnf"]["x5t#S256"], cert.thumbprint(), "{look}");
    assert_eq!(look["token_type"], "Bearer", "{look}");

    // Revocation authenticates it the same way.
    let res = https(&s, Some(&cert))
        .post(s.url("/oauth2/revoke"))
        .form(&[("token", access), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // No certificate.
    assert_invalid_client(token(&s, &https(&s, None), &id).await, "no certificate");
    // The same subject from another authority.
    let forged = issued(&ca("Other CA"), "client one", "one.example.com");
    assert_invalid_client(
        token(&s, &https(&s, Some(&forged)), &id).await,
        "another authority",
    );
    // The right authority, another subject.
    let other = issued(&good, "client two", "one.example.com");
    assert_invalid_client(
        token(&s, &https(&s, Some(&other)), &id).await,
        "another subject",
    );
    // A secret is no way in for a certificate client.
    let res = https(&s, Some(&cert))
        .post(s.url("/oauth2/token"))
        .basic_auth(&id, Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tls_client_auth_by_a_san_matches_that_san_only() {
    let good = ca("Good CA");
    let (s, _dir) = server(&good, &[]).await;
    let id = create(
        &s,
        &[
            "--token-endpoint-auth-method",
            "tls_client_auth",
            "--tls-client-auth-san-dns",
            "one.example.com",
        ],
    )
    .await;
    let cert = issued(&good, "anything", "one.example.com");
    first_token(&s, &https(&s, Some(&cert)), &id).await;
    let other = issued(&good, "anything", "two.example.com");
    assert_invalid_client(
        token(&s, &https(&s, Some(&other)), &id).await,
        "another SAN",
    );
    // Two subjects, or none, are refused at registration (RFC 8705 §2.1.2: exactly one).
    let out = s
        .cli_output(&[
            "client",
            "create",
            "--name",
            "x",
            "--token-endpoint-auth-method",
            "tls_client_auth",
            "--tls-client-auth-san-dns",
            "a.example.com",
            "--tls-client-auth-san-uri",
            "https://a.example.com",
        ])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly one"));
}

#[tokio::test]
async fn self_signed_tls_client_auth_takes_a_registered_certificate_only() {
    let (s, dir) = server(&ca("CA"), &[]).await;
    let cert = self_signed("self");
    let key_file = dir.path().join("client-key.pub.pem");
    std::fs::write(&key_file, cert.key.public_key_pem()).unwrap();
    let id = create(
        &s,
        &[
            "--token-endpoint-auth-method",
            "self_signed_tls_client_auth",
            "--public-key",
            key_file.to_str().unwrap(),
        ],
    )
    .await;
    let body = first_token(&s, &https(&s, Some(&cert)), &id).await;
    let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["cnf"]["x5t#S256"], cert.thumbprint());

    // A certificate of the same name with another key.
    let stranger = self_signed("self");
    assert_invalid_client(
        token(&s, &https(&s, Some(&stranger)), &id).await,
        "an unregistered certificate",
    );
    assert_invalid_client(token(&s, &https(&s, None), &id).await, "no certificate");
    // Its keys sign no client assertion: the registered method decides.
    let res = https(&s, Some(&cert))
        .post(s.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", "e30.e30.sig"),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bound_token_is_refused_at_userinfo_over_another_certificate() {
    let good = ca("Good CA");
    let (s, _dir) = server(&good, &[]).await;
    let id = client_one(&s, &[]).await;
    let cert = issued(&good, "client one", "one.example.com");
    let body = first_token(&s, &https(&s, Some(&cert)), &id).await;
    let access = body["access_token"].as_str().unwrap();
    let userinfo = |http: reqwest::Client| {
        let url = s.url("/userinfo");
        async move {
            let res = http.get(url).bearer_auth(access).send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    // Another certificate, or none: the binding fails first (RFC 8705 §3).
    let thief = issued(&good, "client one", "one.example.com");
    for http in [https(&s, Some(&thief)), https(&s, None)] {
        let (status, body) = userinfo(http).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_token");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("bound to a client certificate"),
            "{body}"
        );
    }
    // With its own certificate the binding holds; this token is a client's, not a user's,
    // and is refused for that reason only.
    let (status, body) = userinfo(https(&s, Some(&cert))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not issued for a user"),
        "{body}"
    );
}

/// A token exchange (RFC 8693) of a certificate-bound token: taken over the connection with
/// its certificate only. Another certificate the client could authenticate with (here one
/// with the same subject from the same authority) would otherwise re-bind a stolen token.
#[tokio::test]
async fn a_bound_token_is_exchanged_only_over_its_certificate() {
    const API: &str = "https://api.example";
    let good = ca("Good CA");
    let (s, _dir) = server(&good, &[]).await;
    let id = client_one(
        &s,
        &[
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--audience",
            API,
            "--token-exchange-audience",
            API,
        ],
    )
    .await;
    let cert = issued(&good, "client one", "one.example.com");
    let body = first_token(&s, &https(&s, Some(&cert)), &id).await;
    let subject = body["access_token"].as_str().unwrap().to_owned();
    let exchange = |http: reqwest::Client| {
        let (url, id, subject) = (s.url("/oauth2/token"), id.clone(), subject.clone());
        async move {
            let res = http
                .post(url)
                .form(
                    &[
                        &crate::token_exchange::exchange_form(&subject, API)[..],
                        &[("client_id", id.as_str())],
                    ]
                    .concat(),
                )
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let other = issued(&good, "client one", "one.example.com");
    let (status, body) = exchange(https(&s, Some(&other))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client certificate"),
        "{body}"
    );
    let (status, body) = exchange(https(&s, Some(&cert))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = crate::support::decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["cnf"]["x5t#S256"], cert.thumbprint(), "{claims}");
}

/// A revocation list of `ca` naming `serials` (PEM).
fn crl_pem(ca: &Ca, serials: &[u64], number: u64) -> String {
    rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2026, 1, 1),
        crl_number: rcgen::SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(*s),
                revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .pem()
    .unwrap()
}

/// With `mtls_crl_file`, a certificate its authority revoked is refused (RFC 5280 §6.3);
/// another certificate of the same authority and subject is taken, until a new list, written
/// over the file while the server runs, revokes it too. A file that does not parse leaves the
/// lists in use.
#[tokio::test]
async fn a_revoked_certificate_is_refused_and_a_new_list_is_read_while_serving() {
    let good = ca("Good CA");
    let dir = tempfile::tempdir().unwrap();
    let crl_path = dir.path().join("clients.crl.pem");
    std::fs::write(&crl_path, crl_pem(&good, &[41], 1)).unwrap();
    let crl_file = crl_path.display().to_string();
    let (s, _dir) = server(&good, &[("TESSERA_MTLS_CRL_FILE", crl_file.as_str())]).await;
    let id = client_one(&s, &[]).await;
    let revoked = issued_numbered(&good, "client one", "one.example.com", Some(41));
    let successor = issued_numbered(&good, "client one", "one.example.com", Some(42));
    first_token(&s, &https(&s, Some(&successor)), &id).await;
    assert_invalid_client(
        token(&s, &https(&s, Some(&revoked)), &id).await,
        "a revoked certificate",
    );
    // A broken file: the list in use stays (the successor is still taken meanwhile).
    std::fs::write(
        &crl_path,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let (status, body) = token(&s, &https(&s, Some(&successor)), &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_invalid_client(
        token(&s, &https(&s, Some(&revoked)), &id).await,
        "still revoked under the list in use",
    );
    // The authority's next list revokes the successor too: read within a few seconds.
    std::fs::write(&crl_path, crl_pem(&good, &[41, 42], 2)).unwrap();
    let mut answer = token(&s, &https(&s, Some(&successor)), &id).await;
    for _ in 0..60 {
        if answer.0 != StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        answer = token(&s, &https(&s, Some(&successor)), &id).await;
    }
    assert_invalid_client(answer, "revoked by the new list");
}

/// A certificate as nginx's `$ssl_client_escaped_cert` gives it: URL-escaped PEM.
fn nginx_escaped(pem: &str) -> String {
    pem.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_proxy_header_is_believed_from_a_trusted_proxy_only() {
    let good = ca("Good CA");
    for (proxies, trusted) in [("127.0.0.1", true), ("192.0.2.1", false)] {
        let (s, _dir) = server(
            &good,
            &[
                ("TESSERA_MTLS_CLIENT_CERT_HEADER", "X-Client-Cert"),
                ("TESSERA_TRUSTED_PROXIES", proxies),
            ],
        )
        .await;
        let id = create(
            &s,
            &[
                "--token-endpoint-auth-method",
                "tls_client_auth",
                "--tls-client-auth-subject-dn",
                "CN=client one,O=Example",
            ],
        )
        .await;
        let cert = issued(&good, "client one", "one.example.com");
        if !trusted {
            // The server knows the client: its own TLS connection authenticates it.
            first_token(&s, &https(&s, Some(&cert)), &id).await;
        }
        let plain = base64::engine::general_purpose::STANDARD.encode(&cert.der);
        for header in [nginx_escaped(&cert.pem), plain] {
            let ask = || async {
                let res = https(&s, None)
                    .post(s.url("/oauth2/token"))
                    .header("x-client-cert", &header)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", id.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap())
            };
            if trusted {
                let (status, body) = past_401(ask).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
                assert_eq!(claims["cnf"]["x5t#S256"], cert.thumbprint());
            } else {
                // From anyone else the header is nothing: no authentication, no binding.
                assert_invalid_client(ask().await, "the header from an untrusted peer");
            }
        }
        if trusted {
            // From a trusted proxy, its header is the only certificate: none means none.
            let res = https(&s, Some(&cert))
                .post(s.url("/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
}

#[tokio::test]
async fn the_metadata_names_the_methods_the_binding_and_the_aliases() {
    let (s, _dir) = server(
        &ca("CA"),
        &[("TESSERA_MTLS_BASE_URL", "https://mtls.auth.example.com/")],
    )
    .await;
    let doc = s.get_json("/.well-known/openid-configuration").await;
    for key in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = doc[key].as_array().unwrap();
        assert!(methods.contains(&json!("tls_client_auth")), "{key}: {doc}");
        assert!(
            methods.contains(&json!("self_signed_tls_client_auth")),
            "{key}"
        );
    }
    assert_eq!(doc["tls_client_certificate_bound_access_tokens"], true);
    let aliases = &doc["mtls_endpoint_aliases"];
    assert_eq!(
        aliases["token_endpoint"],
        "https://mtls.auth.example.com/oauth2/token"
    );
    for key in [
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "pushed_authorization_request_endpoint",
        "device_authorization_endpoint",
    ] {
        let url = aliases[key].as_str().unwrap_or_default();
        assert!(
            url.starts_with("https://mtls.auth.example.com/"),
            "{key}: {aliases}"
        );
    }
    assert!(aliases.get("authorization_endpoint").is_none());
    // The alias host answers as the same issuer (RFC 8705 §5: one authorization server).
    let res = https(&s, None)
        .get(s.url("/.well-known/openid-configuration"))
        .header("host", "mtls.auth.example.com")
        .send()
        .await
        .unwrap();
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["issuer"], doc["issuer"]);

    // Without mutual TLS, none of it.
    let plain = Server::start().await;
    let doc = plain.get_json("/.well-known/openid-configuration").await;
    assert!(!doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("tls_client_auth")));
    assert!(doc.get("mtls_endpoint_aliases").is_none());
    assert!(doc
        .get("tls_client_certificate_bound_access_tokens")
        .is_none());
}

#[tokio::test]
async fn dynamic_registration_takes_a_tls_client_auth_client() {
    let good = ca("Good CA");
    let (s, _dir) = server(&good, &[("TESSERA_DYNAMIC_REGISTRATION", "open")]).await;
    let register = |body: Value| {
        let http = https(&s, None);
        let url = s.url("/oauth2/register");
        async move {
            let res = http.post(url).json(&body).send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, made) = register(json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": "CN=client one,O=Example",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(
        made["tls_client_auth_subject_dn"],
        "CN=client one,O=Example"
    );
    assert_eq!(made["tls_client_certificate_bound_access_tokens"], true);
    assert!(made.get("client_secret").is_none(), "{made}");
    // The certificate authenticates it: past authentication, the grant is what is refused.
    let id = made["client_id"].as_str().unwrap();
    let cert = issued(&good, "client one", "one.example.com");
    let http = https(&s, Some(&cert));
    let answer = past_401(|| token(&s, &http, id)).await;
    assert_eq!(answer.1["error"], "unauthorized_client", "{}", answer.1);
    assert_invalid_client(token(&s, &https(&s, None), id).await, "no certificate");

    // A tls_client_auth registration without a subject, or with two.
    for body in [
        json!({"redirect_uris": ["https://app.example.com/cb"],
               "token_endpoint_auth_method": "tls_client_auth"}),
        json!({"redirect_uris": ["https://app.example.com/cb"],
               "token_endpoint_auth_method": "tls_client_auth",
               "tls_client_auth_san_dns": "a.example.com",
               "tls_client_auth_san_ip": "192.0.2.1"}),
    ] {
        let (status, answer) = register(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"], "invalid_client_metadata");
    }
}

#[tokio::test]
async fn failed_certificate_authentications_count_against_the_same_budget() {
    let good = ca("Good CA");
    let (s, _dir) = server(&good, &[("TESSERA_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let id = client_one(&s, &[]).await;
    let cert = issued(&good, "client one", "one.example.com");
    let own = https(&s, Some(&cert));
    let wrong = https(&s, Some(&issued(&good, "client two", "one.example.com")));
    for _ in 0..3 {
        assert_invalid_client(token(&s, &wrong, &id).await, "a wrong certificate");
    }
    let (status, body) = token(&s, &wrong, &id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "slow_down");
    // Its own certificate is never refused for the failures of others.
    first_token(&s, &own, &id).await;
}

#[tokio::test]
async fn mutual_tls_settings_are_checked_at_start() {
    let s = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let empty = empty.display().to_string();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca("Good CA").pem).unwrap();
    let ca_file = ca_file.display().to_string();
    let bad_crl = dir.path().join("bad.crl.pem");
    std::fs::write(
        &bad_crl,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    let bad_crl = bad_crl.display().to_string();
    for (env, says) in [
        (
            vec![("TESSERA_MTLS_CLIENT_CERT_HEADER", "X-Client-Cert")],
            "go with mtls_enabled",
        ),
        (
            vec![
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "mtls_ca_file",
        ),
        (
            vec![
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_CA_FILE", empty.as_str()),
            ],
            "no certificate",
        ),
        (
            vec![
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_CLIENT_CERT_HEADER", "bad header"),
            ],
            "not a header name",
        ),
        (
            vec![
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_CRL_FILE", bad_crl.as_str()),
            ],
            "goes with mtls_ca_file",
        ),
        (
            vec![
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_CA_FILE", ca_file.as_str()),
                ("TESSERA_MTLS_CRL_FILE", bad_crl.as_str()),
            ],
            "mtls_crl_file",
        ),
        (
            vec![
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_CA_FILE", ca_file.as_str()),
                ("TESSERA_MTLS_CRL_FILE", empty.as_str()),
            ],
            "no X509 CRL",
        ),
    ] {
        let out = s.cli_output_with(&["config", "check"], &env).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?}");
        assert!(err.contains(says), "{env:?}: {err}");
    }
    let out = s
        .cli_output_with(
            &["config", "check", "--json"],
            &[
                ("TESSERA_MTLS_ENABLED", "true"),
                ("TESSERA_MTLS_BASE_URL", "https://mtls.example.com/"),
            ],
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("https://mtls.example.com"), "{text}");
}
