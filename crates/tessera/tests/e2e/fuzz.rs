//! Random bodies at the router: every answer is a 4xx with a JSON `error`, never a 5xx.
//! (The parsers have their own property tests; this checks the whole stack in the binary.)

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{basic, Rng, Server};

const SEED: u64 = 0x7e55_e4a0_2024_0001;
const REQUESTS: usize = 400;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("multipart/form-data; boundary=XyZ"),
    Some("multipart/form-data"),
    Some("multipart/form-data; boundary="),
    Some("multipart/form-data; boundary=\"quoted\""),
    Some("text/plain"),
    Some("application/octet-stream"),
    Some("garbage"),
    Some(";;;"),
    Some("application/json; boundary=XyZ"),
    Some("x/y; a=\"unterminated"),
];

/// A body that is random bytes, or something that looks almost right.
fn body(rng: &mut Rng, client_id: &str) -> Vec<u8> {
    let len = rng.below(600);
    let noise = rng.bytes(len);
    let noise_text = String::from_utf8_lossy(&noise).into_owned();
    match rng.below(8) {
        0 | 1 => noise,
        2 => {
            format!("grant_type=client_credentials&client_id={client_id}&{noise_text}").into_bytes()
        }
        3 => format!(r#"{{"grant_type":"client_credentials","token":{noise_text}}}"#).into_bytes(),
        4 => format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{noise_text}\r\n--XyZ{}",
            rng.pick(&["grant_type", "token", "", "client_id"]),
            rng.pick(&["--\r\n", "\r\n", "", "--"])
        )
        .into_bytes(),
        5 => {
            // Repeated, empty and odd parameters.
            let names = [
                "grant_type",
                "token",
                "client_id",
                "client_secret",
                "scope",
                "",
                "%zz",
            ];
            let n = rng.below(12);
            (0..n)
                .map(|_| format!("{}={}", rng.pick(&names), rng.pick(&names)))
                .collect::<Vec<_>>()
                .join(if rng.below(2) == 0 { "&" } else { ";" })
                .into_bytes()
        }
        6 => {
            let depth = rng.below(200);
            format!("{}{}", "[".repeat(depth), "{\"a\":".repeat(depth)).into_bytes()
        }
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn random_bodies_never_cause_a_server_error() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    let mut rng = Rng::new(SEED);
    let endpoints = [
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/sdk/token",
    ];
    let mut failures = Vec::new();
    for i in 0..REQUESTS {
        let path = *rng.pick(&endpoints);
        let mut req = s.http.post(s.url(path));
        let ct = *rng.pick(CONTENT_TYPES);
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        match rng.below(5) {
            0 => req = req.header(AUTHORIZATION, basic(&c.id, "tcs_wrong")),
            1 => {
                let len = rng.below(40);
                let junk = rng.bytes(len);
                let b64 = {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(junk)
                };
                req = req.header(AUTHORIZATION, format!("Basic {b64}"));
            }
            2 => req = req.header(AUTHORIZATION, "Basic"),
            _ => {}
        }
        let b = body(&mut rng, &c.id);
        let res = req.body(b.clone()).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_client_error() || !json["error"].is_string() {
            failures.push(format!(
                "#{i} POST {path} Content-Type {ct:?} body {:?}: {status} {text}",
                String::from_utf8_lossy(&b[..b.len().min(120)])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} bad answers (seed {SEED:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // And the server is still fine.
    assert_eq!(s.token_status(&c).await, StatusCode::OK);
}
