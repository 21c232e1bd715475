//! The device authorization grant (RFC 8628) against a real server: the `oauth2` crate's
//! device flow client gets a device authorization (§3.1, §3.2) from the endpoint discovery
//! names, and polls at the token endpoint answer `authorization_pending`, then `slow_down`
//! (HTTP 400) to a poll sooner than the interval, and `invalid_grant` to a code that is not
//! the client's (§3.5).

use oauth2::basic::BasicClient;
use oauth2::{ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Creds, Server};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_client(s: &Server) -> Creds {
    s.create_client(&[
        "--public",
        "--grant-type",
        DEVICE_GRANT,
        "--scope",
        "openid read",
    ])
    .await
}

async fn poll(s: &Server, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ])
        .send()
        .await
        .expect("poll");
    let status = res.status();
    (status, res.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_oauth2_crate_gets_a_device_authorization_and_polls_are_answered_by_the_rfc() {
    let s = Server::start().await;
    let meta = s.get_json("/.well-known/oauth-authorization-server").await;
    let endpoint = meta["device_authorization_endpoint"]
        .as_str()
        .expect("discovery names the device authorization endpoint");
    assert_eq!(endpoint, s.url("/oauth2/device_authorization"));
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == DEVICE_GRANT));

    let c = device_client(&s).await;
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let client = BasicClient::new(ClientId::new(c.id.clone()))
        .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint.to_owned()).unwrap());
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("the oauth2 crate gets a device authorization");
    let user_code = details.user_code().secret();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .bytes()
        .all(|b| b == b'-' || b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
    assert_eq!(details.verification_uri().as_str(), s.url("/device"));
    assert_eq!(
        details.verification_uri_complete().unwrap().secret(),
        &format!("{}?user_code={user_code}", s.url("/device"))
    );
    assert_eq!(details.expires_in().as_secs(), 600);
    assert_eq!(details.interval().as_secs(), 5);

    let device_code = details.device_code().secret();
    let (status, body) = poll(&s, &c.id, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    // At once again: sooner than the 5 s interval.
    let (status, body) = poll(&s, &c.id, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("slow_down"))
    );
    assert!(body["error_description"].is_string());

    // Another client holding the code gets nothing.
    let other = device_client(&s).await;
    let (status, body) = poll(&s, &other.id, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn device_authorization_is_refused_to_clients_not_registered_for_it() {
    let s = Server::start().await;
    let cc = s.create_client(&["--scope", "read"]).await;
    let res = s
        .http
        .post(s.url("/oauth2/device_authorization"))
        .basic_auth(&cc.id, Some(&cc.secret))
        .form(&[("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    let c = device_client(&s).await;
    let res = s
        .http
        .post(s.url("/oauth2/device_authorization"))
        .form(&[("client_id", c.id.as_str()), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(res_cache_control(&s, &c).await.as_deref(), Some("no-store"));
}

async fn res_cache_control(s: &Server, c: &Creds) -> Option<String> {
    let res = s
        .http
        .post(s.url("/oauth2/device_authorization"))
        .form(&[("client_id", c.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
