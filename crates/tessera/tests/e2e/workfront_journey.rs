//! The whole journey of a Workfront custom OAuth2 app, in a real headless Chromium, against a
//! server started with `docs/dialects/workfront.toml`: the user follows the app's link to
//! `/integrations/oauth2/authorize`, signs in, consents, and the browser lands on the app's
//! redirect URL with `code`, `domain`, `lane` and `state`; the app exchanges the code with
//! HTTP Basic and a JSON body, refreshes in both body styles, and calls the API with the
//! access token in a `sessionID` header (`/userinfo` stands in for Workfront's API). The same
//! journey with the sign-in at the organization's identity provider (an upstream Tessera,
//! `tessera idp add`) checks that the flow keeps its dialect across that sign-in.
//!
//! Without Chromium the test says so and passes, except under CI (`CI` set).

use std::collections::BTreeMap;
use std::time::Duration;

use fantoccini::Locator;
use reqwest::StatusCode;

use crate::browser::{browser_available, landing, Driver};
use crate::browser_support::PASSWORD;
use crate::product_examples::{
    assert_workfront_tokens, start_product, userinfo_with_session_id, workfront_app,
    workfront_authorize, workfront_exchange_json, workfront_refresh_form, workfront_refresh_json,
    WF_AUTHORIZE,
};

#[tokio::test]
async fn chromium_workfront_journey_from_the_link_to_a_session_id() {
    if !browser_available() {
        return;
    }
    let (redirect, landed) = landing().await;
    let server = start_product("workfront").await;
    let sub = server.create_user("alice", PASSWORD).await;
    let app = workfront_app(&server, &redirect).await;
    let link = server.url(&format!(
        "{}&state=wf-state-1",
        workfront_authorize(&app, &redirect)
    ));
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.session(profile.path(), "en").await;
    c.goto(&link).await.unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .expect("the sign-in page")
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let allow = c
        .wait()
        .for_element(Locator::XPath("//button[normalize-space()='Allow']"))
        .await
        .expect("the consent page");
    // The sign-in form posted back to Workfront's path, and the consent page names the app.
    let here = c.current_url().await.unwrap();
    assert_eq!(here.path(), WF_AUTHORIZE, "{here}");
    assert!(c.source().await.unwrap().contains("My Workfront app"));
    allow.click().await.unwrap();
    let target = tokio::time::timeout(Duration::from_secs(20), landed)
        .await
        .expect("the browser lands on the redirect URL")
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&redirect), "{url}");
    c.close().await.unwrap();
    let query: BTreeMap<String, String> = reqwest::Url::parse(&format!("http://x{target}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["domain"], "myorganization", "{query:?}");
    assert_eq!(query["lane"], "my", "{query:?}");
    assert_eq!(query["state"], "wf-state-1", "{query:?}");
    let code = &query["code"];
    assert!(code.len() >= 43, "{code}");

    let (status, tokens) = workfront_exchange_json(&server, &app, code, &redirect).await;
    assert_workfront_tokens(status, &tokens);
    let (status, me) =
        userinfo_with_session_id(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], sub);

    let (status, renewed) =
        workfront_refresh_json(&server, &app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_workfront_tokens(status, &renewed);
    let (status, again) = workfront_refresh_form(
        &server,
        &app,
        renewed["refresh_token"].as_str().unwrap(),
        &redirect,
    )
    .await;
    assert_workfront_tokens(status, &again);
    let (status, me) =
        userinfo_with_session_id(&server, again["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], sub);
    // Hostile: a refresh token already used is refused (and revokes the family).
    let (status, _) =
        workfront_refresh_json(&server, &app, renewed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Waits for a button or the client's landing page; clicks the button. Returns whether the
/// browser is back at the client.
async fn next_allow(c: &fantoccini::Client) -> bool {
    let found = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(
            "//button[normalize-space()='Allow'] | //p[normalize-space()='back at the client']",
        ))
        .await
        .expect("a consent page or the client");
    found.tag_name().await.unwrap() == "p"
}

/// The same journey, the user signing in through the organization's identity provider ("if
/// the user has SSO, the identity provider's login page opens"): an upstream Tessera, its
/// button on Workfront's sign-in page, its sign-in and consent, back to Workfront's consent
/// page, whose form still posts to `/integrations/oauth2/authorize`, and a redirect with
/// `domain` and `lane`.
#[tokio::test]
async fn chromium_workfront_journey_signing_in_through_the_identity_provider() {
    if !browser_available() {
        return;
    }
    let (redirect, landed) = landing().await;
    let upstream = crate::sso::upstream_server().await;
    let server = start_product("workfront").await;
    let at_upstream = upstream
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            &server.url("/oauth2/sso/callback"),
            "--scope",
            "openid profile email",
            "--name",
            "Workfront",
        ])
        .await;
    crate::sso::add_idp(
        &server,
        "corp",
        upstream.issuer(),
        &at_upstream.id,
        &at_upstream.secret,
    )
    .await;
    let app = workfront_app(&server, &redirect).await;
    let link = server.url(&format!(
        "{}&state=wf-sso-1",
        workfront_authorize(&app, &redirect)
    ));
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.session(profile.path(), "en").await;
    c.goto(&link).await.unwrap();
    c.wait()
        .for_element(Locator::XPath(
            "//button[normalize-space()='Sign in with Upstream Corp']",
        ))
        .await
        .expect("the identity provider's button on the sign-in page")
        .click()
        .await
        .unwrap();
    // The identity provider's sign-in page. Tessera's own sign-in page has a username field
    // too: wait for the browser to be at the upstream before looking for it.
    crate::sso::browser_at(&c, upstream.issuer()).await;
    let user = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    let here = c.current_url().await.unwrap();
    assert!(here.as_str().starts_with(upstream.issuer()), "{here}");
    user.clear().await.unwrap();
    user.send_keys("alice").await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The provider's consent (for Workfront), then Workfront's (for the app).
    let mut workfront_consent_seen = false;
    while !next_allow(&c).await {
        let url = c.current_url().await.unwrap();
        if url.as_str().starts_with(server.issuer()) {
            assert!(c.source().await.unwrap().contains("My Workfront app"));
            let action = c
                .find(Locator::Css("form"))
                .await
                .unwrap()
                .attr("action")
                .await
                .unwrap();
            assert_eq!(
                action.as_deref(),
                Some(WF_AUTHORIZE),
                "the consent form keeps the dialect's path"
            );
            workfront_consent_seen = true;
        }
        c.find(Locator::XPath("//button[normalize-space()='Allow']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        crate::support::wait_until(Duration::from_secs(20), "the next page", || {
            let c = c.clone();
            let before = url.clone();
            async move { c.current_url().await.is_ok_and(|now| now != before) }
        })
        .await;
    }
    assert!(
        workfront_consent_seen,
        "Workfront asked consent for the app"
    );
    let target = tokio::time::timeout(Duration::from_secs(20), landed)
        .await
        .expect("the browser lands on the redirect URL")
        .unwrap();
    c.close().await.unwrap();
    let query: BTreeMap<String, String> = reqwest::Url::parse(&format!("http://x{target}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["domain"], "myorganization", "{query:?}");
    assert_eq!(query["lane"], "my", "{query:?}");
    assert_eq!(query["state"], "wf-sso-1", "{query:?}");
    let (status, tokens) = workfront_exchange_json(&server, &app, &query["code"], &redirect).await;
    assert_workfront_tokens(status, &tokens);
    let (status, me) =
        userinfo_with_session_id(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert!(me["sub"].as_str().is_some_and(|s| !s.is_empty()), "{me}");
}
