//! Serving HTTPS (rustls): the token endpoint and a real OAuth client over TLS, HSTS behind an
//! https issuer, plain HTTP refused on the TLS port, and a graceful stop.

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, TokenResponse, TokenUrl};
use reqwest::StatusCode;

use crate::support::{decode_jwt, Server};

#[tokio::test]
async fn tokens_are_issued_and_introspected_over_https() {
    let mut s = Server::start_tls().await;
    assert!(s.issuer().starts_with("https://"));
    let c = s.create_client(&["--scope", "read"]).await;
    let res = s.token(&c, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS behind an https issuer"
    );
    let token = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(decode_jwt(&token).claims["iss"], s.issuer());
    assert!(s.is_active(&c, &token).await);

    // A real OAuth client over TLS, trusting only the test certificate.
    let cert = std::fs::read(s.dir_path().join("cert.pem")).unwrap();
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .no_proxy()
        .add_root_certificate(oauth2::reqwest::Certificate::from_pem(&cert).unwrap())
        .build()
        .unwrap();
    let client = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap());
    let tok = client
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .expect("the oauth2 crate gets a token over https");
    assert!(s.is_active(&c, tok.access_token().secret()).await);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = format!("http://{}/health/alive", s.addr());
    let answered = crate::support::http_client().get(&plain).send().await;
    assert!(
        answered
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true),
        "plain http must not be served on the TLS port"
    );

    let (status, _) = s.stop().await;
    assert!(status.success(), "graceful stop over TLS: {status}");
}

#[tokio::test]
async fn a_certificate_without_its_key_is_refused_at_start() {
    let s = Server::start().await;
    let out = s
        .cli_output(&[
            "serve",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--listen",
            "127.0.0.1:0",
        ])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("go together"));
}
