//! Error responses of the token endpoint: status, RFC 6749 §5.2 code and headers.

use reqwest::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::support::{basic, raw_exchange, raw_status, Creds, Server};

/// One expected error.
struct Case {
    label: &'static str,
    req: RequestBuilder,
    status: u16,
    error: &'static str,
    /// Whether `WWW-Authenticate: Basic ...` must be present (else it must be absent).
    www_authenticate: bool,
}

/// Sends every case and returns one line per mismatch.
async fn check(cases: Vec<Case>) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let label = case.label;
        let res = case.req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut wrong = Vec::new();
        if status != case.status {
            wrong.push(format!("status {status}, expected {}", case.status));
        }
        if body["error"] != case.error {
            wrong.push(format!("error {}, expected {}", body["error"], case.error));
        }
        if !body["error_description"].is_string() {
            wrong.push("no error_description string".to_owned());
        }
        if !headers.get(CONTENT_TYPE).is_some_and(|v| {
            v.to_str()
                .unwrap_or_default()
                .starts_with("application/json")
        }) {
            wrong.push(format!("Content-Type {:?}", headers.get(CONTENT_TYPE)));
        }
        if headers.get(CACHE_CONTROL).is_none_or(|v| v != "no-store") {
            wrong.push(format!("Cache-Control {:?}", headers.get(CACHE_CONTROL)));
        }
        if headers.get(PRAGMA).is_none_or(|v| v != "no-cache") {
            wrong.push(format!("Pragma {:?}", headers.get(PRAGMA)));
        }
        let www = headers.get(WWW_AUTHENTICATE);
        match (case.www_authenticate, www) {
            (true, Some(v)) if v.to_str().unwrap_or_default().starts_with("Basic ") => {}
            (false, None) => {}
            (_, other) => wrong.push(format!("WWW-Authenticate {other:?}")),
        }
        if !wrong.is_empty() {
            failures.push(format!("{label}: {} (body: {text})", wrong.join("; ")));
        }
    }
    failures
}

#[tokio::test]
async fn every_token_endpoint_error_has_its_status_code_and_headers() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read"]).await;
    let code_client = s
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://a.example/cb",
        ])
        .await;
    let public = s
        .create_client(&[
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://a.example/cb",
        ])
        .await;
    let url = s.url("/oauth2/token");
    let post = || s.http.post(&url);
    let cc = [("grant_type", "client_credentials")];
    let wrong = c.with_secret("tcs_not-the-secret-not-the-secret-not-the-sec");
    let cases = vec![
        Case {
            label: "wrong secret by HTTP Basic",
            req: post().basic_auth(&wrong.id, Some(&wrong.secret)).form(&cc),
            status: 401,
            error: "invalid_client",
            www_authenticate: true,
        },
        Case {
            label: "unknown client by HTTP Basic",
            req: post().basic_auth("no-such-client", Some(&c.secret)).form(&cc),
            status: 401,
            error: "invalid_client",
            www_authenticate: true,
        },
        Case {
            label: "malformed HTTP Basic header",
            req: post().header(AUTHORIZATION, "Basic !!!not-base64!!!").form(&cc),
            status: 401,
            error: "invalid_client",
            www_authenticate: true,
        },
        Case {
            label: "wrong secret in the form body",
            req: post().form(&[
                ("grant_type", "client_credentials"),
                ("client_id", wrong.id.as_str()),
                ("client_secret", wrong.secret.as_str()),
            ]),
            status: 401,
            error: "invalid_client",
            www_authenticate: false,
        },
        Case {
            label: "wrong secret in a JSON body",
            req: post().json(&json!({
                "grant_type": "client_credentials",
                "client_id": wrong.id,
                "client_secret": wrong.secret,
            })),
            status: 401,
            error: "invalid_client",
            www_authenticate: false,
        },
        Case {
            label: "no client authentication at all",
            req: post().form(&cc),
            status: 401,
            error: "invalid_client",
            www_authenticate: false,
        },
        Case {
            label: "confidential client sends only its client_id",
            req: post().form(&[("grant_type", "client_credentials"), ("client_id", c.id.as_str())]),
            status: 401,
            error: "invalid_client",
            www_authenticate: false,
        },
        Case {
            label: "public client presents a secret",
            req: post().form(&[
                ("grant_type", "client_credentials"),
                ("client_id", public.id.as_str()),
                ("client_secret", "tcs_anything"),
            ]),
            status: 401,
            error: "invalid_client",
            www_authenticate: false,
        },
        Case {
            label: "made-up grant type",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[("grant_type", "urn:example:made-up")]),
            status: 400,
            error: "unsupported_grant_type",
            www_authenticate: false,
        },
        Case {
            label: "password grant (RFC 9700 §2.4)",
            req: post().basic_auth(&c.id, Some(&c.secret)).form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wonderland"),
            ]),
            status: 400,
            error: "unsupported_grant_type",
            www_authenticate: false,
        },
        Case {
            label: "client registered for authorization_code only asks client_credentials",
            req: post()
                .basic_auth(&code_client.id, Some(&code_client.secret))
                .form(&cc),
            status: 400,
            error: "unauthorized_client",
            www_authenticate: false,
        },
        Case {
            label: "public client asks client_credentials",
            req: post().form(&[
                ("grant_type", "client_credentials"),
                ("client_id", public.id.as_str()),
            ]),
            status: 400,
            error: "unauthorized_client",
            www_authenticate: false,
        },
        Case {
            label: "scope outside the registration",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "read admin")]),
            status: 400,
            error: "invalid_scope",
            www_authenticate: false,
        },
        Case {
            label: "missing Content-Type",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .body("grant_type=client_credentials"),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "JSON body labelled as a form",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(r#"{"grant_type":"client_credentials"}"#),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "form body labelled as JSON",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "application/json")
                .body("grant_type=client_credentials"),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "form body labelled as multipart",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "multipart/form-data; boundary=XYZ")
                .body("grant_type=client_credentials"),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "multipart without a boundary",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "multipart/form-data")
                .body("--XYZ\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--XYZ--\r\n"),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "text/plain body",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "text/plain")
                .body("grant_type=client_credentials"),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "JSON array body",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .json(&json!(["grant_type", "client_credentials"])),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "grant_type repeated in a form",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&grant_type=client_credentials"),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "client_secret repeated in a multipart body",
            req: post().multipart(
                reqwest::multipart::Form::new()
                    .text("grant_type", "client_credentials")
                    .text("client_id", c.id.clone())
                    .text("client_secret", c.secret.clone())
                    .text("client_secret", c.secret.clone()),
            ),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "HTTP Basic and client_secret in the body together",
            req: post().basic_auth(&c.id, Some(&c.secret)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.id.as_str()),
                ("client_secret", c.secret.as_str()),
            ]),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "client_id in the body differs from HTTP Basic",
            req: post().basic_auth(&c.id, Some(&c.secret)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", code_client.id.as_str()),
            ]),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "client_secret without client_id",
            req: post().form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", c.secret.as_str()),
            ]),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "credentials in the URL query string",
            req: s
                .http
                .post(format!(
                    "{url}?client_id={}&client_secret={}",
                    c.id, c.secret
                ))
                .form(&cc),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "grant_type in the URL query string with valid Basic",
            req: s
                .http
                .post(format!("{url}?grant_type=client_credentials"))
                .basic_auth(&c.id, Some(&c.secret))
                .form(&cc),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "missing grant_type",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[("scope", "read")]),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "body over the 64 KiB limit",
            req: post()
                .basic_auth(&c.id, Some(&c.secret))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&pad={}",
                    "a".repeat(64 * 1024)
                )),
            status: 400,
            error: "invalid_request",
            www_authenticate: false,
        },
        Case {
            label: "GET on the token endpoint",
            req: s.http.get(&url).basic_auth(&c.id, Some(&c.secret)),
            status: 405,
            error: "invalid_request",
            www_authenticate: false,
        },
    ];
    let failures = check(cases).await;
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));

    // 405 names the allowed method; the client still works after all that.
    let res = s.http.get(&url).send().await.unwrap();
    assert_eq!(res.headers().get(ALLOW).unwrap(), "POST");
    assert_eq!(s.token_status(&c).await, StatusCode::OK);
}

#[tokio::test]
async fn the_body_limit_is_64_kib_exactly() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let prefix = "grant_type=client_credentials&pad=";
    let limit = 64 * 1024;
    for (len, status) in [
        (limit, StatusCode::OK),
        (limit + 1, StatusCode::BAD_REQUEST),
    ] {
        let body = format!("{prefix}{}", "a".repeat(len - prefix.len()));
        assert_eq!(body.len(), len);
        let res = s
            .http
            .post(s.url("/oauth2/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{len} bytes");
        let json: Value = res.json().await.unwrap();
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(json["error"], "invalid_request", "{len} bytes");
        }
    }
    // Also when the size is not announced up front (chunked).
    let pad = "a".repeat(limit);
    let request = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{l1:x}\r\n{prefix}\r\n{l2:x}\r\n{pad}\r\n0\r\n\r\n",
        addr = s.addr(),
        auth = basic(&c.id, &c.secret),
        l1 = prefix.len(),
        l2 = pad.len(),
    );
    let response = raw_exchange(&s.addr(), request.as_bytes()).await;
    assert_eq!(raw_status(&response), 400, "{response:.300}");
    assert!(
        response.contains(r#""error":"invalid_request""#),
        "{response:.300}"
    );
}

/// RFC 6749 §3.1 and §3.2 for the JSON extension: the same rules as for forms, so a repeated
/// JSON member (which a JSON parser would silently collapse to its last value) is refused.
#[tokio::test]
async fn a_member_repeated_in_a_json_body_is_an_invalid_request() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let url = s.url("/oauth2/token");
    let bodies = [
        (
            "grant_type twice",
            format!(
                r#"{{"grant_type":"client_credentials","grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}"}}"#,
                id = c.id,
                secret = c.secret
            ),
        ),
        (
            "client_secret twice, the wrong one first",
            format!(
                r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"tcs_wrong","client_secret":"{secret}"}}"#,
                id = c.id,
                secret = c.secret
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (label, body) in bodies {
        let res = s
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        if status != StatusCode::BAD_REQUEST || body["error"] != "invalid_request" {
            failures.push(format!("{label}: {status} {body}"));
        }
    }
    assert!(failures.is_empty(), "accepted:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_get_identical_answers() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let url = s.url("/oauth2/token");
    let wrong_secret = c.with_secret("tcs_wrong-wrong-wrong-wrong-wrong-wrong-wrong-w");
    let unknown = Creds {
        id: "0000000000000000000000".to_owned(),
        secret: c.secret.clone(),
    };
    // As (status, WWW-Authenticate, body) per style.
    let answer = |res: reqwest::Response| async move {
        let status = res.status();
        let www = res.headers().get(WWW_AUTHENTICATE).cloned();
        (status, www, res.text().await.unwrap())
    };
    for (style, basic_auth) in [("HTTP Basic", true), ("form body", false)] {
        let send = |who: &Creds| {
            let req = s.http.post(&url);
            if basic_auth {
                req.header(AUTHORIZATION, basic(&who.id, &who.secret))
                    .form(&[("grant_type", "client_credentials")])
            } else {
                req.form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", who.id.as_str()),
                    ("client_secret", who.secret.as_str()),
                ])
            }
        };
        let a = answer(send(&wrong_secret).send().await.unwrap()).await;
        let b = answer(send(&unknown).send().await.unwrap()).await;
        assert_eq!(a.0, StatusCode::UNAUTHORIZED, "{style}");
        assert_eq!(a, b, "{style}: wrong secret vs unknown client");
    }
}

/// The default limit (RFC 6819 §4.3.2): 30 failed authentications a minute per client per
/// address, then `429 slow_down` for that client's further failures from that address; its
/// valid credentials are still served, and other clients behind the same address are not
/// touched (one client retrying with a stale secret cannot take its neighbours down).
#[tokio::test]
async fn repeated_failed_authentication_from_one_address_is_slowed_down_with_429() {
    // An empty value: the server's own default limit.
    let s = Server::start_with(&[("TESSERA_AUTH_FAILURES_PER_MINUTE", "")]).await;
    let c = s.create_client(&[]).await;
    let neighbour = s.create_client(&[]).await;
    // The failing caller comes from another loopback address than the harness (127.0.0.1).
    let from_nat = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 7]))
        .build()
        .unwrap();
    let token_url = s.url("/oauth2/token");
    let attempt = |id: &str, secret: &str| {
        from_nat
            .post(&token_url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for i in 0..30 {
        let res = attempt(&c.id, "tcs_wrong").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let res = attempt(&c.id, "tcs_wrong").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Until the one-minute window that began with the first failure ends.
    let wait: i64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    // The right secret is served from that very address: valid credentials are never refused.
    assert_eq!(
        attempt(&c.id, &c.secret).await.unwrap().status(),
        StatusCode::OK
    );
    // A neighbour behind the same address is untouched: its own failure is a plain 401, and
    // its valid credentials work, on every endpoint.
    assert_eq!(
        attempt(&neighbour.id, "tcs_wrong").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt(&neighbour.id, &neighbour.secret)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let res = from_nat
            .post(s.url(path))
            .basic_auth(&neighbour.id, Some(&neighbour.secret))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_json_errors() {
    let s = Server::start().await;
    let res = s.http.get(s.url("/no/such/path")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    for path in ["/oauth2/introspect", "/oauth2/revoke", "/oauth2/token"] {
        let res = s.http.put(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(res.headers().get(ALLOW).unwrap(), "POST", "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
}

/// Behind a trusted reverse proxy, throttling counts the address the proxy forwarded, so one
/// client's failures do not slow down the same client elsewhere behind the proxy; from an
/// untrusted peer the header is ignored, so a client cannot dodge the limit by writing it.
/// Valid credentials are served whatever failed before.
#[tokio::test]
async fn throttling_behind_a_trusted_proxy_counts_the_forwarded_address() {
    let s = Server::start_with(&[
        ("TESSERA_AUTH_FAILURES_PER_MINUTE", "3"),
        ("TESSERA_TRUSTED_PROXIES", "127.0.0.9"),
    ])
    .await;
    let c = s.create_client(&[]).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let proxy = from([127, 0, 0, 9]);
    let send = |client: &reqwest::Client, forwarded: &str, secret: &str| {
        client
            .post(s.url("/oauth2/token"))
            .header("x-forwarded-for", forwarded)
            .basic_auth(&c.id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..3 {
        let res = send(&proxy, "10.0.0.1", "tcs_wrong").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = send(&proxy, "10.0.0.1", "tcs_wrong").await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the client at 10.0.0.1 is throttled"
    );
    // A spoofed earlier entry does not help: the proxy's own (last) entry counts.
    let res = send(&proxy, "10.0.0.2, 10.0.0.1", "tcs_wrong")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = send(&proxy, "10.0.0.2", "tcs_wrong").await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the same client at another address behind the proxy is not"
    );
    let res = send(&proxy, "10.0.0.1", &c.secret).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "valid credentials are served");
    // An untrusted peer's header is ignored: its own address is what gets throttled.
    let direct = from([127, 0, 0, 10]);
    for i in 0..3 {
        let forwarded = format!("10.1.0.{i}");
        let res = send(&direct, &forwarded, "tcs_wrong").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = send(&direct, "10.1.0.99", "tcs_wrong").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}
