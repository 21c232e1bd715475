//! Authorization requests the server must not approve or keep blindly: silent approval of
//! public native clients on another loopback port (RFC 8252 §8.6), and the bounds on the
//! parameters Tessera does not know, which are kept with each code.

use reqwest::StatusCode;

use crate::browser_support::*;
use crate::support::Server;

/// An authorization request path for `client_id` at `redirect_uri` with S256 PKCE.
fn path_at(client_id: &str, redirect_uri: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "st-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    format!("/oauth2/authorize?{}", url_encode(&pairs))
}

async fn native_client(server: &Server) -> String {
    server
        .create_client(&[
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--scope",
            "openid offline_access",
            "--refresh-tokens",
            "offline_access",
        ])
        .await
        .id
}

#[tokio::test]
async fn a_public_native_client_is_never_approved_without_the_user() {
    let (server, _) = setup(&[]).await;
    let native = native_client(&server).await;
    let mut b = Browser::new(&server);
    let scope = "openid offline_access";
    let first = "http://127.0.0.1:5555/cb";
    let login = b.get(&path_at(&native, first, scope, &[])).await;
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent(), "{}", consent.body);
    let done = b.consent(&consent, true).await;
    assert!(
        done.redirect_params().contains_key("code"),
        "{:?}",
        done.location()
    );
    // Another app on the same device, on another port, with its own PKCE: no silent code.
    let other = "http://127.0.0.1:6666/cb";
    let silent = b
        .get(&path_at(&native, other, scope, &[("prompt", "none")]))
        .await;
    assert_eq!(silent.status, StatusCode::SEE_OTHER);
    assert!(silent.location().unwrap().starts_with(other));
    let p = silent.redirect_params();
    assert_eq!(p["error"], "consent_required", "{p:?}");
    assert!(!p.contains_key("code"));
    // Without prompt=none the user is asked again, on either port.
    for uri in [other, first] {
        let page = b.get(&path_at(&native, uri, scope, &[])).await;
        assert!(page.is_consent(), "{uri}: {} {}", page.status, page.body);
    }
    // A first-party (skip-consent) native client is asked too.
    let first_party = server
        .create_client(&[
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--scope",
            "openid",
            "--skip-consent",
        ])
        .await
        .id;
    let page = b.get(&path_at(&first_party, other, "openid", &[])).await;
    assert!(page.is_consent(), "{} {}", page.status, page.body);
    // A public client answered at an https redirect URI is identified by it: its consent is
    // remembered.
    let spa = server
        .create_client(&[
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
        ])
        .await
        .id;
    let consent = b.get(&path_at(&spa, REDIRECT, "openid", &[])).await;
    b.consent(&consent, true).await;
    let silent = b
        .get(&path_at(&spa, REDIRECT, "openid", &[("prompt", "none")]))
        .await;
    assert!(
        silent.redirect_params().contains_key("code"),
        "{:?}",
        silent.location()
    );
}

#[tokio::test]
async fn unknown_parameters_are_bounded_in_number_and_size() {
    let (server, client) = setup(&[]).await;
    let mut b = Browser::new(&server);
    let id = client.id.clone();
    let refused = |extra: Vec<(String, String)>| {
        let path = path_at(
            &id,
            REDIRECT,
            "openid",
            &extra
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let server = &server;
        async move {
            let mut b = Browser::new(server);
            let page = b.get(&path).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
            let p = page.redirect_params();
            assert_eq!(p["error"], "invalid_request", "{p:?}");
            assert_eq!(p["state"], "st-1");
            assert!(!p.contains_key("code"));
        }
    };
    // Far over the bounds, yet within the request-head limit (a 60 KB query is refused
    // before it reaches the endpoint, with 431).
    let long = "x".repeat(8 * 1024);
    refused(vec![("productId".into(), long)]).await;
    let many: Vec<(String, String)> = (0..17).map(|i| (format!("p{i}"), "v".into())).collect();
    refused(many).await;
    let big: Vec<(String, String)> = (0..5)
        .map(|i| (format!("p{i}"), "v".repeat(1000)))
        .collect();
    refused(big).await;
    // At the limits (16 parameters, 4 KiB in all, none over 1 KiB) the request goes on.
    let ok: Vec<(String, String)> = (0..16)
        .map(|i| (format!("p{i:02}"), "v".repeat(252)))
        .collect();
    let pairs: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = b.get(&path_at(&id, REDIRECT, "openid", &pairs)).await;
    assert!(page.is_login(), "{} {:?}", page.status, page.location());
    let code = b
        .code(&path_at(&id, REDIRECT, "openid", &pairs), "alice")
        .await;
    let res = exchange(&server, &client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
}
