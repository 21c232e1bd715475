//! The device verification page, `/device` (RFC 8628 §3.3), against a real server: in
//! headless Chromium (the `oauth2` crate asks for a device authorization, the browser opens
//! `verification_uri`, types the code, signs in and consents, and the crate's poll gets the
//! tokens; `verification_uri_complete` in Japanese, denied, and the poll answers
//! `access_denied`), and as a browser submits its forms (every field, in document order) for
//! the attacker's cases: forged and missing CSRF tokens, smuggled fields, a code approved for
//! one client that another client's device cannot use, guessing codes throttled per address
//! (§5.1) while another address still works, the per-client cap on device authorizations, and
//! the page of a code already used.

use fantoccini::Locator;
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    ClientId, DeviceAuthorizationUrl, DeviceCodeErrorResponseType, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{browser_available, Driver};
use crate::browser_support::{Browser, Page, PASSWORD};
use crate::page_forms::{controls, submission};
use crate::support::{decode_jwt, Creds, Server};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn server(env: &[(&str, &str)]) -> Server {
    let s = Server::start_with(env).await;
    s.create_user("alice", PASSWORD).await;
    s
}

async fn device_client(s: &Server, name: &str) -> Creds {
    s.create_client(&[
        "--public",
        "--grant-type",
        DEVICE_GRANT,
        "--scope",
        "openid read",
        "--name",
        name,
    ])
    .await
}

fn http() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn oauth_client(
    s: &Server,
    c: &Creds,
) -> BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(c.id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(s.url("/oauth2/device_authorization")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap())
}

/// The `oauth2` crate's device authorization request.
async fn authorize_device(s: &Server, c: &Creds) -> StandardDeviceAuthorizationResponse {
    oauth_client(s, c)
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("read".into()))
        .request_async(&http())
        .await
        .expect("a device authorization")
}

/// The `oauth2` crate's poll, after the user decided: the first poll must answer (the crate
/// would otherwise wait, which fails the test instead).
async fn poll_once(
    s: &Server,
    c: &Creds,
    details: &StandardDeviceAuthorizationResponse,
) -> Result<
    BasicTokenResponse,
    RequestTokenError<
        oauth2::HttpClientError<oauth2::reqwest::Error>,
        oauth2::DeviceCodeErrorResponse,
    >,
> {
    let http = http();
    oauth_client(s, c)
        .exchange_device_access_token(details)
        .request_async(
            &http,
            |d| async move { panic!("the crate would wait {d:?}: the poll did not answer") },
            None,
        )
        .await
}

/// A raw poll at the token endpoint.
pub async fn poll(s: &Server, client_id: &str, device_code: &str) -> (StatusCode, Value) {
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
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

/// Types `code` into the entry form of `page` and submits it as a browser does.
pub async fn enter(b: &mut Browser, page: &Page, code: &str) -> Page {
    let fields = submission(page, &[("user_code", code)], None);
    b.post("/device", &fields).await
}

pub async fn sign_in(b: &mut Browser, page: &Page) -> Page {
    assert!(page.is_login(), "{} {}", page.status, page.body);
    let fields = submission(page, &[("username", "alice"), ("password", PASSWORD)], None);
    b.post("/device", &fields).await
}

pub async fn decide(b: &mut Browser, page: &Page, decision: &str) -> Page {
    assert!(page.is_consent(), "{} {}", page.status, page.body);
    let fields = submission(page, &[], Some(("decision", decision)));
    b.post("/device", &fields).await
}

/// Through the entry form, the sign-in page and the consent page, to the consent page.
async fn to_consent(b: &mut Browser, code: &str) -> Page {
    let entry = b.get("/device").await;
    let page = enter(b, &entry, code).await;
    if page.is_login() {
        sign_in(b, &page).await
    } else {
        page
    }
}

#[tokio::test]
async fn chromium_enters_the_code_signs_in_consents_and_the_oauth2_crate_gets_tokens() {
    if !browser_available() {
        return;
    }
    let s = server(&[]).await;
    let c = device_client(&s, "Living Room TV").await;
    let details = authorize_device(&s, &c).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let b = driver.session(profile.path(), "en").await;
    b.goto(details.verification_uri().as_str()).await.unwrap();
    // Typed as people do: lower case, a space instead of the dash.
    let typed = details
        .user_code()
        .secret()
        .to_lowercase()
        .replace('-', " ");
    b.wait()
        .for_element(Locator::Css("input[name=user_code]"))
        .await
        .unwrap()
        .send_keys(&typed)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .expect("the sign-in page")
        .send_keys("alice")
        .await
        .unwrap();
    b.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let allow = b
        .wait()
        .for_element(Locator::XPath("//button[normalize-space()='Allow']"))
        .await
        .expect("the consent page");
    let source = b.source().await.unwrap();
    assert!(source.contains("Living Room TV"), "the client's name");
    assert!(
        source.contains(details.user_code().secret()),
        "the code to check"
    );
    assert!(
        source.contains("your device shows this code"),
        "the warning"
    );
    assert!(source.contains("<code>read</code>"), "the scopes");
    allow.click().await.unwrap();
    let done = b
        .wait()
        .for_element(Locator::Css("p[role=status]"))
        .await
        .expect("the approved page");
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("Your device is connected"));
    b.close().await.unwrap();

    let tokens = poll_once(&s, &c, &details)
        .await
        .expect("the crate's poll gets the tokens");
    let access = decode_jwt(tokens.access_token().secret());
    assert_eq!(access.claims["client_id"], c.id.as_str());
    assert!(access.claims["sub"].is_string());
    assert!(access.claims["scope"].as_str().unwrap().contains("read"));
    // Once: the next poll gets no tokens (it comes sooner than the interval, too).
    let (status, body) = poll(&s, &c.id, details.device_code().secret()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.get("access_token").is_none(), "{body}");
}

#[tokio::test]
async fn chromium_opens_the_complete_uri_in_japanese_confirms_the_code_and_denies() {
    if !browser_available() {
        return;
    }
    let s = server(&[]).await;
    let c = device_client(&s, "Living Room TV").await;
    let details = authorize_device(&s, &c).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let b = driver.session(profile.path(), "ja").await;
    let complete = details
        .verification_uri_complete()
        .unwrap()
        .secret()
        .clone();
    b.goto(&complete).await.unwrap();
    let input = b
        .wait()
        .for_element(Locator::Css("input[name=user_code]"))
        .await
        .unwrap();
    // Filled in, and the page asks to check it against the device before going on.
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some(details.user_code().secret().as_str())
    );
    let html_lang = b
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await;
    assert_eq!(html_lang.unwrap().as_deref(), Some("ja"));
    assert!(b
        .source()
        .await
        .unwrap()
        .contains("デバイスに表示されているものと同じか確認"));
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    b.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deny = b
        .wait()
        .for_element(Locator::XPath("//button[normalize-space()='拒否する']"))
        .await
        .expect("the consent page in Japanese");
    assert!(b
        .source()
        .await
        .unwrap()
        .contains("このコードが表示されている場合"));
    deny.click().await.unwrap();
    let done = b
        .wait()
        .for_element(Locator::Css("p[role=status]"))
        .await
        .unwrap();
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("アクセスを拒否しました"));
    b.close().await.unwrap();

    match poll_once(&s, &c, &details).await {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), DeviceCodeErrorResponseType::AccessDenied);
        }
        other => panic!("expected access_denied, got {other:?}"),
    }
}

#[tokio::test]
async fn the_forms_carry_their_own_fields_and_refuse_forged_csrf_tokens_and_smuggled_fields() {
    let s = server(&[]).await;
    let c = device_client(&s, "Living Room TV").await;
    let details = authorize_device(&s, &c).await;
    let code = details.user_code().secret().clone();
    let mut b = Browser::new(&s);

    let entry = b.get("/device").await;
    assert_eq!(entry.status, StatusCode::OK);
    let h = &entry.headers;
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    let names: Vec<String> = controls(&entry).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["_csrf", "_action", "ui_locales", "user_code"]);

    // A forged token, or none, is refused before the code is even looked up.
    let mut forged = submission(&entry, &[("user_code", &code)], None);
    forged[0].1 = "AAAA".into();
    assert_eq!(
        b.post("/device", &forged).await.status,
        StatusCode::FORBIDDEN
    );
    let missing: Vec<_> = submission(&entry, &[("user_code", &code)], None)
        .into_iter()
        .filter(|(k, _)| k != "_csrf")
        .collect();
    assert_eq!(
        b.post("/device", &missing).await.status,
        StatusCode::FORBIDDEN
    );
    // Another browser's token (another cookie) is forged too.
    let mut other = Browser::new(&s);
    let theirs = other.get("/device").await;
    let mut swapped = submission(&entry, &[("user_code", &code)], None);
    swapped[0].1 = submission(&theirs, &[], None)[0].1.clone();
    assert_eq!(
        b.post("/device", &swapped).await.status,
        StatusCode::FORBIDDEN
    );

    let login = enter(&mut b, &entry, &code).await;
    assert_eq!(login.status, StatusCode::OK);
    let names: Vec<String> = controls(&login).into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["_request", "_csrf", "_action", "username", "password"]
    );
    assert!(login.body.contains("Living Room TV"));
    let consent = sign_in(&mut b, &login).await;
    let names: Vec<String> = controls(&consent).into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["_request", "_csrf", "_action", "decision", "decision"]
    );
    // The code travels sealed: a field naming another code is not a field of the form.
    let mut smuggled = submission(&consent, &[], Some(("decision", "allow")));
    smuggled.push(("user_code".into(), "BBBB-BBBB".into()));
    assert_eq!(
        b.post("/device", &smuggled).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut twice = submission(&consent, &[], Some(("decision", "allow")));
    twice.push(("decision".into(), "deny".into()));
    assert_eq!(
        b.post("/device", &twice).await.status,
        StatusCode::BAD_REQUEST
    );
    // A consent posted with a forged CSRF token decides nothing.
    let mut forged = submission(&consent, &[], Some(("decision", "allow")));
    let at = forged.iter().position(|(k, _)| k == "_csrf").unwrap();
    forged[at].1 = "AAAA".into();
    assert_eq!(
        b.post("/device", &forged).await.status,
        StatusCode::FORBIDDEN
    );
    // Nor does the handle in another browser (bound to this one's cookie).
    let stolen = submission(&consent, &[], Some(("decision", "allow")));
    let mut other_fields = stolen.clone();
    let their_csrf = submission(&theirs, &[], None)[0].1.clone();
    other_fields[at].1 = their_csrf;
    assert_eq!(
        other.post("/device", &other_fields).await.status,
        StatusCode::FORBIDDEN
    );
    // Nothing was decided: the code still leads another browser to the sign-in page.
    let mut third = Browser::new(&s);
    let entry = third.get("/device").await;
    assert!(enter(&mut third, &entry, &code).await.is_login());

    let done = decide(&mut b, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Your device is connected"));
    assert!(poll_once(&s, &c, &details).await.is_ok());

    // The used code gets a page saying so, signed in or not, never a 500.
    let again = b.get("/device").await;
    let used = enter(&mut b, &again, &code).await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST);
    assert!(used.body.contains("already been used"), "{}", used.body);
    let mut fresh = Browser::new(&s);
    let entry = fresh.get(&format!("/device?user_code={code}")).await;
    assert!(entry.body.contains("Check that this is the code"));
    let used = enter(&mut fresh, &entry, &code).await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST);
    assert!(used.body.contains("already been used"));
    // A form of the sign-in page for that code, submitted late, gets the same page.
    let late = sign_in(&mut b, &login).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("already been used"));
    // An unknown code: a clear page with the form again.
    let entry = fresh.get("/device").await;
    let unknown = enter(&mut fresh, &entry, "ZZZZ-ZZZZ").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("This code is not valid"));
    let junk = enter(&mut fresh, &entry, "<script>").await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
    assert!(!junk.body.contains("<script>"), "escaped");
}

#[tokio::test]
async fn a_code_approved_for_one_client_gives_another_clients_device_nothing() {
    let s = server(&[]).await;
    let tv = device_client(&s, "Living Room TV").await;
    let attacker = device_client(&s, "Free Movies").await;
    let victim_details = authorize_device(&s, &tv).await;
    let attacker_details = authorize_device(&s, &attacker).await;
    let mut b = Browser::new(&s);
    let consent = to_consent(&mut b, victim_details.user_code().secret()).await;
    assert!(consent.body.contains("Living Room TV"));
    assert!(!consent.body.contains("Free Movies"));
    let done = decide(&mut b, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK);
    // The attacker's own device code is still pending; the victim's code under the
    // attacker's client id is not theirs.
    let (status, body) = poll(&s, &attacker.id, attacker_details.device_code().secret()).await;
    assert_eq!(body["error"], "authorization_pending", "{status}");
    let (status, body) = poll(&s, &attacker.id, victim_details.device_code().secret()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The approving user's tokens go to the client they saw, once.
    let tokens = poll_once(&s, &tv, &victim_details).await.expect("tokens");
    let claims = decode_jwt(tokens.access_token().secret()).claims;
    assert_eq!(claims["client_id"], tv.id.as_str());
}

#[tokio::test]
async fn guessing_codes_from_one_address_is_throttled_and_another_address_still_works() {
    let s = server(&[("TESSERA_USER_CODE_FAILURES_PER_ADDRESS", "3")]).await;
    let c = device_client(&s, "Living Room TV").await;
    let details = authorize_device(&s, &c).await;
    let code = details.user_code().secret().clone();
    let mut guesser = Browser::from_address(&s, [127, 0, 0, 21]);
    let entry = guesser.get("/device").await;
    // The right code gives its attempt back: typing it does not use the budget.
    let right = enter(&mut guesser, &entry, &code).await;
    assert!(right.is_login(), "{}", right.body);
    for guess in ["BCDF-GHJK", "LMNP-QRST", "VWXZ-BCDF"] {
        let page = enter(&mut guesser, &entry, guess).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
    }
    let locked = enter(&mut guesser, &entry, "BBBB-CCCC").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers.contains_key("retry-after"));
    assert!(locked.body.contains("Too many wrong codes"));
    // Refused unchecked: even the right code, from that address.
    let refused = enter(&mut guesser, &entry, &code).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // Each refusal is in the audit trail, naming the guesser's address and the budget's end.
    let audit = s
        .cli_json(&["audit", "--json", "--kind", "user_code_locked_out"])
        .await;
    let events = audit["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{audit}");
    for e in events {
        assert_eq!(e["source"], "127.0.0.21", "{e}");
        assert_eq!(e["actor"], "anonymous", "{e}");
        assert_eq!(e["outcome"], "failure", "{e}");
        assert!(e["detail"]["until"].as_i64().is_some(), "{e}");
        // The codes typed are not recorded.
        assert!(!e.to_string().contains(code.as_str()), "{e}");
        assert!(!e.to_string().contains("BBBB"), "{e}");
    }
    // The user at another address is not locked out, and approves.
    let mut user = Browser::from_address(&s, [127, 0, 0, 22]);
    let consent = to_consent(&mut user, &code).await;
    let done = decide(&mut user, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    // The device's polls were never part of it.
    assert!(poll_once(&s, &c, &details).await.is_ok());
}

#[tokio::test]
async fn device_authorizations_are_capped_per_client_at_an_address() {
    let s = server(&[("TESSERA_DEVICE_CODES_PER_CLIENT_ADDRESS", "2")]).await;
    let c = device_client(&s, "Living Room TV").await;
    let other = device_client(&s, "Kitchen Radio").await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let ask = |http: reqwest::Client, id: String| {
        let url = s.url("/oauth2/device_authorization");
        async move {
            http.post(url)
                .form(&[("client_id", id.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let a = from([127, 0, 0, 31]);
    for _ in 0..2 {
        assert_eq!(ask(a.clone(), c.id.clone()).await.status(), StatusCode::OK);
    }
    let res = ask(a.clone(), c.id.clone()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());
    // Not a switch against others: the same client elsewhere, and another client here.
    let b = from([127, 0, 0, 32]);
    assert_eq!(ask(b, c.id.clone()).await.status(), StatusCode::OK);
    assert_eq!(
        ask(a.clone(), other.id.clone()).await.status(),
        StatusCode::OK
    );
    // A refused request (unknown scope) takes nothing from the budget.
    let res = a
        .post(s.url("/oauth2/device_authorization"))
        .form(&[("client_id", other.id.as_str()), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(ask(a, other.id.clone()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_page_speaks_japanese_from_ui_locales_and_the_browser() {
    let s = server(&[]).await;
    let mut b = Browser::new(&s);
    let page = b.get("/device?ui_locales=ja").await;
    assert!(page.body.contains("<html lang=\"ja\""));
    assert!(page
        .body
        .contains("デバイスに表示されているコードを入力してください"));
    // The next page keeps the language the page was shown in.
    let unknown = enter(&mut b, &page, "ZZZZ-ZZZZ").await;
    assert!(unknown.body.contains("<html lang=\"ja\""));
    assert!(unknown.body.contains("このコードは無効です"));
    b.accept_language = Some("ja".into());
    let page = b.get("/device").await;
    assert!(page.body.contains("<html lang=\"ja\""));
    let unknown = enter(&mut b, &page, "ZZZZ-ZZZZ").await;
    assert!(unknown.body.contains("このコードは無効です"));
}
