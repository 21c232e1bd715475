//! Single sign-on through an upstream OpenID provider, with a real second Tessera as the
//! upstream: the upstream has the user and a client whose redirect URI is the downstream's
//! callback; the downstream has that client registered as a provider (`tessera idp add`) and
//! a client of its own. The upstream's issuer is `http://localhost:PORT` and the
//! downstream's `http://127.0.0.1:PORT`: browsers keep cookies per host, not per port, so the
//! two servers' cookies stay apart as they would on two domains.
//!
//! In Chromium: the "Sign in with" button and the e-mail domain routing, through the
//! upstream's sign-in and consent pages, back to the downstream's consent page, a code and
//! tokens; the same user on a second sign-in. With the scripted browser: the upstream's
//! refusal reaches the client as `access_denied`; a changed `state` and a replayed answer
//! are refused; a rotation of the upstream's signing key needs no restart downstream; and a
//! small hostile upstream (discovery, token endpoint and JWKS imitated) whose ID token has
//! another `nonce`, or whose answer names another `iss`, signs nobody in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::browser::{browser_available, landing, Driver};
use crate::browser_support::{
    authorize_path, exchange, Browser, Page, CHALLENGE, PASSWORD, REDIRECT, VERIFIER,
};
use crate::oidc_client::{finish, start};
use crate::support::{decode_jwt, unix_now, wait_until, Creds, Server};

/// The provider's name at the downstream.
const IDP: &str = "upstream";
/// What its button says.
const BUTTON: &str = "Sign in with Upstream Corp";
/// The session cookie of an http server.
const SESSION: &str = "tessera_session";

/// An upstream Tessera, a downstream Tessera that signs in through it, and a client of the
/// downstream.
struct Federation {
    upstream: Server,
    downstream: Server,
    client: Creds,
    /// The downstream's client secret at the upstream.
    secret: String,
}

/// A Tessera whose issuer is `http://localhost:PORT`, with the user `alice`
/// (`alice@example.com`); its key rotation lead time allows a new key to sign at once.
pub(crate) async fn upstream_server() -> Server {
    let mut up = Server::start_with(&[("TESSERA_KEY_ROTATION_LEAD_TIME", "1")]).await;
    let issuer = format!("http://localhost:{}", up.port());
    up.stop().await;
    up.cli(&["migrate", "--set-issuer", &issuer]).await;
    up.restart_with(&[("TESSERA_ISSUER", &issuer)])
        .await
        .expect("the upstream restarts as localhost");
    up.base = issuer;
    up.create_user("alice", PASSWORD).await;
    up
}

/// Registers the provider at `downstream` (`tessera idp add`, the secret on stdin).
pub(crate) async fn add_idp(downstream: &Server, name: &str, issuer: &str, id: &str, secret: &str) {
    let out = downstream
        .cli_with_stdin(
            &[
                "idp",
                "add",
                "--name",
                name,
                "--display-name",
                "Upstream Corp",
                "--issuer",
                issuer,
                "--client-id",
                id,
                "--client-secret-stdin",
                "--email-domain",
                "example.com",
            ],
            &format!("{secret}\n"),
        )
        .await;
    assert!(
        out.status.success(),
        "idp add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The federation, the downstream client redirecting to `redirect`.
async fn federation(redirect: &str) -> Federation {
    let upstream = upstream_server().await;
    let downstream = Server::start().await;
    let callback = downstream.url("/oauth2/sso/callback");
    let at_upstream = upstream
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            &callback,
            "--scope",
            "openid profile email",
            "--name",
            "Downstream Portal",
        ])
        .await;
    add_idp(
        &downstream,
        IDP,
        upstream.issuer(),
        &at_upstream.id,
        &at_upstream.secret,
    )
    .await;
    let client = downstream
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            redirect,
            "--scope",
            "openid profile email",
            "--name",
            "Acme Reports",
        ])
        .await;
    Federation {
        upstream,
        downstream,
        client,
        secret: at_upstream.secret,
    }
}

fn query_of(url: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The first value of each hidden field of a page (the sign-in page has two forms).
fn field(page: &Page, name: &str) -> String {
    page.hidden()
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {}", page.body))
        .1
}

/// Where the callback's page takes the browser on (its `<meta http-equiv="refresh">`, the
/// same URL as its link).
fn onward(page: &Page) -> String {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let from = "content=\"0;url=";
    let start = page
        .body
        .find(from)
        .expect("a page that takes the browser on")
        + from.len();
    let end = start + page.body[start..].find('"').unwrap();
    let url = page.body[start..end]
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert!(page.body.contains("<a href="), "and a link for people");
    url
}

/// At the downstream (`d`): the authorization request, then the provider's button; returns
/// the upstream authorization URL the browser is sent to.
async fn press_button(d: &mut Browser, path: &str, idp: &str) -> String {
    let login = d.get(path).await;
    assert!(login.is_login(), "{}", login.body);
    // The page's forms may lead to the provider (a browser checks the redirect that answers
    // the button's form against the page's form-action).
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    let form_action = csp.split(';').find(|d| d.contains("form-action")).unwrap();
    assert!(
        form_action.split(' ').count() > 2,
        "the client's and the provider's origins: {form_action}"
    );
    let fields = vec![
        ("_request".to_owned(), field(&login, "_request")),
        ("_csrf".to_owned(), field(&login, "_csrf")),
        ("_action".to_owned(), "sso".to_owned()),
        ("idp".to_owned(), idp.to_owned()),
    ];
    let sent = d.post("/oauth2/authorize", &fields).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    sent.location().expect("sent to the provider")
}

/// At the upstream (`u`): sign in as alice and answer its consent page; returns the
/// upstream's redirect (to the downstream's callback).
async fn at_upstream(u: &mut Browser, url: &str, allow: bool) -> String {
    let mut page = u.get(url).await;
    if page.is_login() {
        page = u.sign_in(&page, "alice", PASSWORD).await;
    }
    if page.is_consent() {
        page = u.consent(&page, allow).await;
    }
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page.location().expect("back to the downstream")
}

/// A whole scripted sign-in at the downstream through the upstream; returns the `sub` of
/// the downstream's ID token.
async fn scripted_sign_in(f: &Federation) -> String {
    let mut d = Browser::new(&f.downstream);
    let mut u = Browser::new(&f.upstream);
    let path = authorize_path(&f.client, "openid profile email", "");
    let to_upstream = press_button(&mut d, &path, IDP).await;
    let back = at_upstream(&mut u, &to_upstream, true).await;
    let upstream_code = query_of(&back)["code"].clone();
    let page = d.get(&back).await;
    assert!(d.cookies.contains_key(SESSION), "signed in downstream");
    // Neither the upstream's code nor the client secret sent with it reaches the logs.
    let logs = f.downstream.logs();
    assert!(!logs.contains(&upstream_code) && !logs.contains(&f.secret));
    let code = if page.is_consent() {
        d.consent(&page, true).await.redirect_params()["code"].clone()
    } else {
        // Consent given before: on to the client at once.
        query_of(&onward(&page))["code"].clone()
    };
    let res = exchange(&f.downstream, &f.client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let id = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id.claims["iss"], f.downstream.issuer());
    id.claims["sub"].as_str().unwrap().to_owned()
}

async fn click(c: &Client, xpath: &str) {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{xpath}: {e}"))
        .click()
        .await
        .unwrap();
}

/// In Chromium, from the downstream's authorization request to the client's redirect URI,
/// through the upstream (signing in there with the password unless `signed_in_upstream`);
/// `by_email` types the address instead of pressing the button. Returns the downstream's
/// `sub`.
async fn chromium_sign_in(
    f: &Federation,
    driver: &Driver,
    redirect: &str,
    landed: tokio::sync::oneshot::Receiver<String>,
    by_email: bool,
) -> String {
    let started = start(&f.downstream, &f.client, redirect, &[]).await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.session(profile.path(), "en").await;
    c.goto(&started.url).await.unwrap();
    let user = c
        .wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    if !by_email {
        crate::browser::save(&c, "login-sso-en.png").await;
    }
    if by_email {
        user.send_keys("alice@example.com").await.unwrap();
        click(&c, "//button[@class='primary']").await;
    } else {
        click(&c, &format!("//button[normalize-space()='{BUTTON}']")).await;
    }
    // The upstream's sign-in page. The downstream's own page has a username field too: wait
    // for the browser to be at the upstream before looking for it.
    browser_at(&c, f.upstream.issuer()).await;
    let upstream_user = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    let here = c.current_url().await.unwrap();
    assert!(
        here.as_str().starts_with(f.upstream.issuer()),
        "at the upstream: {here}"
    );
    if by_email {
        // The address typed downstream is the upstream's login hint.
        assert_eq!(
            query_of(here.as_str())
                .get("login_hint")
                .map(String::as_str),
            Some("alice@example.com")
        );
        // It fills in the upstream's username field.
        assert_eq!(
            upstream_user.prop("value").await.unwrap().as_deref(),
            Some("alice@example.com")
        );
    }
    upstream_user.clear().await.unwrap();
    upstream_user.send_keys("alice").await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click(&c, "//button[@class='primary']").await;
    // The upstream asks consent for the downstream (first time only), then the downstream
    // asks consent for its client (first time only).
    let target = loop {
        let allow = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(
                "//button[normalize-space()='Allow'] | //p[normalize-space()='back at the client']",
            ))
            .await
            .unwrap();
        if allow.tag_name().await.unwrap() == "p" {
            break c.current_url().await.unwrap();
        }
        let page = c.source().await.unwrap();
        let url = c.current_url().await.unwrap();
        if url.as_str().starts_with(f.downstream.issuer()) {
            assert!(page.contains("Acme Reports"), "the downstream's consent");
        } else {
            assert!(page.contains("Downstream Portal"), "the upstream's consent");
        }
        allow.click().await.unwrap();
        // Wait for the page to change before looking again.
        wait_until(Duration::from_secs(20), "the next page", || {
            let c = c.clone();
            let before = url.clone();
            async move { c.current_url().await.is_ok_and(|now| now != before) }
        })
        .await;
    };
    let first = tokio::time::timeout(Duration::from_secs(20), landed)
        .await
        .expect("the browser lands on the client's redirect URI")
        .unwrap();
    assert!(target.as_str().starts_with(redirect), "{target}");
    let query = query_of(&format!("http://x{first}"));
    assert_eq!(query["iss"], f.downstream.issuer());
    let done = finish(
        &f.downstream,
        &f.client,
        redirect,
        started,
        &query["code"],
        &query["state"],
    )
    .await;
    c.close().await.unwrap();
    done.subject
}

#[tokio::test]
async fn chromium_signs_in_through_an_upstream_tessera_and_keeps_the_same_user() {
    if !browser_available() {
        return;
    }
    let (redirect, landed) = landing().await;
    let f = federation(&redirect).await;
    let driver = Driver::start().await;
    let first = chromium_sign_in(&f, &driver, &redirect, landed, false).await;
    // A second sign-in, in a new browser: the same downstream user.
    let (redirect2, landed2) = landing().await;
    let f2 = Federation {
        client: f
            .downstream
            .create_client(&[
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                &redirect2,
                "--scope",
                "openid profile email",
                "--name",
                "Acme Reports",
            ])
            .await,
        ..f
    };
    let second = chromium_sign_in(&f2, &driver, &redirect2, landed2, false).await;
    assert_eq!(first, second, "one downstream user per upstream identity");
    // One user was made downstream, with no password of its own.
    let users = f2.downstream.cli_json(&["user", "list", "--json"]).await;
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
}

#[tokio::test]
async fn chromium_sends_an_address_of_a_configured_domain_straight_to_the_upstream() {
    if !browser_available() {
        return;
    }
    let (redirect, landed) = landing().await;
    let f = federation(&redirect).await;
    let driver = Driver::start().await;
    let sub = chromium_sign_in(&f, &driver, &redirect, landed, true).await;
    assert!(!sub.is_empty());
    // The password form never ran: no failed attempt was counted against anyone.
    assert!(!f.downstream.logs().contains("login_failed"));
}

#[tokio::test]
async fn chromium_denying_at_the_upstream_lands_at_the_client_with_access_denied() {
    if !browser_available() {
        return;
    }
    let (redirect, landed) = landing().await;
    let f = federation(&redirect).await;
    let driver = Driver::start().await;
    let started = start(&f.downstream, &f.client, &redirect, &[]).await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.session(profile.path(), "en").await;
    c.goto(&started.url).await.unwrap();
    click(&c, &format!("//button[normalize-space()='{BUTTON}']")).await;
    browser_at(&c, f.upstream.issuer()).await;
    let user = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    user.send_keys("alice").await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click(&c, "//button[@class='primary']").await;
    click(&c, "//button[normalize-space()='Deny']").await;
    // The denial goes from the upstream's form through the downstream's callback to the
    // client: the callback's page takes the browser on, past the upstream's form-action.
    let target = tokio::time::timeout(Duration::from_secs(20), landed)
        .await
        .expect("the browser lands on the client's redirect URI")
        .unwrap();
    let query = query_of(&format!("http://x{target}"));
    assert_eq!(query["error"], "access_denied", "{query:?}");
    assert_eq!(query["state"], started.state.secret().as_str());
    assert!(!query.contains_key("code"));
    // Nobody was signed in downstream, and no user was made there.
    let users = f.downstream.cli_json(&["user", "list", "--json"]).await;
    assert_eq!(users.as_array().map(Vec::len), Some(0), "{users}");
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_upstreams_refusal_reaches_the_client_as_access_denied() {
    let f = federation(REDIRECT).await;
    let mut d = Browser::new(&f.downstream);
    let mut u = Browser::new(&f.upstream);
    let path = authorize_path(&f.client, "openid profile email", "");
    let to_upstream = press_button(&mut d, &path, IDP).await;
    let back = at_upstream(&mut u, &to_upstream, false).await;
    assert!(back.starts_with(&f.downstream.url("/oauth2/sso/callback")));
    assert_eq!(query_of(&back)["error"], "access_denied");
    let page = d.get(&back).await;
    let to = onward(&page);
    assert!(to.starts_with(REDIRECT), "{to}");
    let p = query_of(&to);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["iss"], f.downstream.issuer());
    assert_eq!(p["state"], "st-123", "the client's own state");
    assert!(!p.contains_key("code"));
    assert!(!d.cookies.contains_key(SESSION), "nobody signed in");
}

#[tokio::test]
async fn a_changed_state_and_a_replayed_answer_are_refused() {
    let f = federation(REDIRECT).await;
    let mut d = Browser::new(&f.downstream);
    let mut u = Browser::new(&f.upstream);
    let path = authorize_path(&f.client, "openid profile email", "");
    // The authorization request sent upstream: code flow, S256, fresh state and nonce.
    let to_upstream = press_button(&mut d, &path, IDP).await;
    let login = d.get(&path).await;
    assert!(login.body.contains(BUTTON), "{}", login.body);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains(f.upstream.issuer()), "{csp}");
    let q = query_of(&to_upstream);
    assert!(to_upstream.starts_with(&f.upstream.url("/oauth2/authorize")));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_ne!(q["code_challenge"], CHALLENGE, "not the client's own");
    assert_ne!(q["state"], "st-123", "not the client's own");
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    let back = at_upstream(&mut u, &to_upstream, true).await;
    let state = query_of(&back)["state"].clone();
    // A changed state: refused, nobody signed in, no redirect to the client.
    let mut changed = state.clone();
    changed.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
    let tampered = back.replace(&format!("state={state}"), &format!("state={changed}"));
    assert_ne!(tampered, back);
    let page = d.get(&tampered).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.location().is_none());
    assert!(!d.cookies.contains_key(SESSION));
    assert!(f
        .downstream
        .logs()
        .contains("does not belong to a sign-in of this browser"));
    // The genuine answer, in another browser (an attacker's, without the sign-in in
    // progress): refused.
    let mut other = Browser::new(&f.downstream);
    let page = other.get(&back).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(!other.cookies.contains_key(SESSION));
    // A genuine sign-in works once; its answer replayed with the same cookies does not.
    let to_upstream = press_button(&mut d, &path, IDP).await;
    let back = at_upstream(&mut u, &to_upstream, true).await;
    let cookies = d.cookies.clone();
    let page = d.get(&back).await;
    assert!(page.is_consent(), "{}", page.body);
    let mut replay = Browser::new(&f.downstream);
    replay.cookies = cookies;
    replay.cookies.remove(SESSION);
    let page = replay.get(&back).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(!replay.cookies.contains_key(SESSION));
}

#[tokio::test]
async fn sign_in_continues_after_the_upstream_rotates_its_signing_key() {
    let f = federation(REDIRECT).await;
    let first = scripted_sign_in(&f).await;
    let before = f.upstream.get_json("/.well-known/jwks.json").await;
    let rotated = f
        .upstream
        .cli_json(&["keys", "rotate", "--lead-time", "0", "--json"])
        .await;
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    assert!(!before.to_string().contains(&kid));
    let up = &f.upstream;
    wait_until(
        Duration::from_secs(5),
        "the upstream publishes its new key",
        || {
            let kid = kid.clone();
            async move {
                up.get_json("/.well-known/jwks.json")
                    .await
                    .to_string()
                    .contains(&kid)
            }
        },
    )
    .await;
    // The downstream still holds the old key set; the new key's kid makes it fetch again.
    let second = scripted_sign_in(&f).await;
    assert_eq!(first, second);
    assert!(
        !f.downstream
            .logs()
            .contains("a sign-in through an upstream provider was refused"),
        "{}",
        f.downstream.logs()
    );
}

/// A hostile upstream: a discovery document, a token endpoint whose ID token carries the
/// `nonce` set in it, and a JWKS.
struct Hostile {
    base: String,
    nonce: Arc<Mutex<String>>,
}

async fn hostile(iss_parameter: bool) -> Hostile {
    use tessera_core::config::SigningAlg;
    use tessera_core::keys::{generate_key, KeySet, Sealer};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let nonce = Arc::new(Mutex::new("not the one sent".to_owned()));
    let now = unix_now() as i64;
    let sealer = Sealer::from_secret(b"hostile upstream sealing secret!").unwrap();
    let keys = KeySet::load(
        &[generate_key(SigningAlg::Es256, &sealer, now, now).unwrap()],
        &sealer,
    )
    .unwrap();
    let jwks = keys.jwks(now).to_string();
    let discovery = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "authorization_response_iss_parameter_supported": iss_parameter,
    })
    .to_string();
    let (issuer, shared) = (base.clone(), nonce.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 16384];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = head.split(' ').nth(1).unwrap_or("").to_owned();
            let body = match target.as_str() {
                "/.well-known/openid-configuration" => discovery.clone(),
                "/jwks" => jwks.clone(),
                "/token" => {
                    let now = unix_now() as i64;
                    let claims = json!({
                        "iss": issuer, "sub": "h-1", "aud": "hostile-client", "iat": now,
                        "exp": now + 300, "nonce": shared.lock().unwrap().clone(),
                    });
                    let key = keys.signing_key(now).unwrap();
                    let id_token = tessera_core::jwt::encode_json(key, &claims).unwrap();
                    json!({"access_token": "x", "token_type": "Bearer", "id_token": id_token})
                        .to_string()
                }
                _ => "{}".to_owned(),
            };
            let _ = conn
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    Hostile { base, nonce }
}

/// A downstream with the hostile upstream as its provider, and a client.
async fn downstream_of(h: &Hostile) -> (Server, Creds) {
    let downstream = Server::start().await;
    add_idp(&downstream, "hostile", &h.base, "hostile-client", "s3cret").await;
    let client = downstream
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid profile email",
        ])
        .await;
    (downstream, client)
}

#[tokio::test]
async fn an_id_token_with_another_nonce_signs_nobody_in() {
    let h = hostile(false).await;
    let (downstream, client) = downstream_of(&h).await;
    let path = authorize_path(&client, "openid profile email", "");
    let mut d = Browser::new(&downstream);
    let sent = press_button(&mut d, &path, "hostile").await;
    let state = query_of(&sent)["state"].clone();
    let page = d
        .get(&format!("/oauth2/sso/callback?code=c&state={state}"))
        .await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
    assert!(page.location().is_none());
    assert!(!d.cookies.contains_key(SESSION));
    assert!(downstream.logs().contains("its nonce is not the one sent"));
    // The same upstream with the nonce that was sent: the control case signs in.
    let sent = press_button(&mut d, &path, "hostile").await;
    let q = query_of(&sent);
    *h.nonce.lock().unwrap() = q["nonce"].clone();
    let page = d
        .get(&format!("/oauth2/sso/callback?code=c&state={}", q["state"]))
        .await;
    assert!(page.is_consent(), "{} {}", page.status, page.body);
    assert!(d.cookies.contains_key(SESSION));
}

#[tokio::test]
async fn an_answer_without_the_announced_iss_or_with_another_is_refused() {
    let h = hostile(true).await;
    let (downstream, client) = downstream_of(&h).await;
    let path = authorize_path(&client, "openid profile email", "");
    let mut d = Browser::new(&downstream);
    for iss in [None, Some("http://127.0.0.1:9/evil")] {
        let sent = press_button(&mut d, &path, "hostile").await;
        let q = query_of(&sent);
        *h.nonce.lock().unwrap() = q["nonce"].clone();
        let mut cb = format!("/oauth2/sso/callback?code=c&state={}", q["state"]);
        if let Some(iss) = iss {
            cb.push_str(&format!("&iss={iss}"));
        }
        let page = d.get(&cb).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{iss:?}: {}",
            page.body
        );
        assert!(!d.cookies.contains_key(SESSION), "{iss:?}");
    }
    assert!(downstream.logs().contains("missing or wrong iss"));
    // With the right iss (and nonce), it signs in.
    let sent = press_button(&mut d, &path, "hostile").await;
    let q = query_of(&sent);
    *h.nonce.lock().unwrap() = q["nonce"].clone();
    let page = d
        .get(&format!(
            "/oauth2/sso/callback?code=c&state={}&iss={}",
            q["state"],
            crate::browser_support::url_encode(&[("x", &h.base)]).trim_start_matches("x=")
        ))
        .await;
    assert!(page.is_consent(), "{} {}", page.status, page.body);
}

#[tokio::test]
async fn the_provider_button_form_is_checked_like_the_sign_in_form() {
    let f = federation(REDIRECT).await;
    let path = authorize_path(&f.client, "openid profile email", "");
    let mut d = Browser::new(&f.downstream);
    let login = d.get(&path).await;
    let fields = |idp: &str, csrf: &str, extra: Option<(&str, &str)>| {
        let mut v = vec![
            ("_request".to_owned(), field(&login, "_request")),
            ("_csrf".to_owned(), csrf.to_owned()),
            ("_action".to_owned(), "sso".to_owned()),
            ("idp".to_owned(), idp.to_owned()),
        ];
        if let Some((k, val)) = extra {
            v.push((k.to_owned(), val.to_owned()));
        }
        v
    };
    let csrf = field(&login, "_csrf");
    // An unknown provider, a field of another form, a repeated idp, a missing CSRF token:
    // refused, and nobody is sent anywhere.
    for (case, form, status) in [
        (
            "unknown provider",
            fields("nope", &csrf, None),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a password smuggled along",
            fields(IDP, &csrf, Some(("password", "x"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "two providers",
            fields(IDP, &csrf, Some(("idp", "other"))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "another browser's CSRF token",
            fields(IDP, "AAAA", None),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let page = d.post("/oauth2/authorize", &form).await;
        assert_eq!(page.status, status, "{case}: {}", page.body);
        assert!(page.location().is_none(), "{case}");
        assert!(!d.cookies.contains_key("tessera_sso"), "{case}");
    }
    // A request naming the form's own field is refused before any page.
    let page = d.get(&format!("{path}&idp={IDP}")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // A login_hint fills in the username, as text, never as markup.
    let page = d.get(&format!("{path}&login_hint=%22%3E%3Cb%3Ex")).await;
    assert!(page.is_login());
    assert!(!page.body.contains("\"><b>x"), "{}", page.body);
    assert!(
        page.body.contains("value=\"&quot;&gt;&lt;b&gt;x\""),
        "{}",
        page.body
    );
    // The genuine form sends the browser to the provider.
    let page = d.post("/oauth2/authorize", &fields(IDP, &csrf, None)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(d.cookies.contains_key("tessera_sso"));
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_leaves_the_sign_in_page_with_a_message() {
    let downstream = Server::start().await;
    // Nothing listens there.
    let closed = format!("http://127.0.0.1:{}", crate::support::free_port());
    add_idp(&downstream, "down", &closed, "c", "s").await;
    let client = downstream
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
        ])
        .await;
    let path = authorize_path(&client, "openid", "");
    let mut d = Browser::new(&downstream);
    // The button is offered all the same (its metadata is fetched when it is pressed).
    let login = d.get(&path).await;
    assert!(login.body.contains(BUTTON), "{}", login.body);
    let fields = vec![
        ("_request".to_owned(), field(&login, "_request")),
        ("_csrf".to_owned(), field(&login, "_csrf")),
        ("_action".to_owned(), "sso".to_owned()),
        ("idp".to_owned(), "down".to_owned()),
    ];
    let page = d.post("/oauth2/authorize", &fields).await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(page.is_login(), "the sign-in page again");
    assert!(page.body.contains("cannot be reached"), "{}", page.body);
    assert!(!d.cookies.contains_key("tessera_sso"));
    // Typing an address of its domain says the same.
    let page = d.sign_in(&login, "bob@example.com", "").await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(page.body.contains("cannot be reached"));
}

/// Two downstream nodes over one PostgreSQL database (skipped without
/// `TESSERA_TEST_POSTGRES_URL`, as the multi-node tests are): a sign-in started on one node
/// finishes on the other (the pending sign-in is sealed with the secret they share), and its
/// answer is taken once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_on_one_node_finishes_on_another_and_only_once() {
    use tessera_store_postgres::testing::TestDatabase;
    let Some(db) = TestDatabase::create("sso_two_nodes").await else {
        return;
    };
    let upstream = upstream_server().await;
    let env = [
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
    ];
    let a = Server::start_with(&env).await;
    let issuer = a.issuer().to_owned();
    let mut env_b = env.to_vec();
    env_b.push(("TESSERA_ISSUER", &issuer));
    let b = Server::start_with(&env_b).await;
    let at_upstream_client = upstream
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            &a.url("/oauth2/sso/callback"),
            "--scope",
            "openid profile email",
        ])
        .await;
    add_idp(
        &a,
        IDP,
        upstream.issuer(),
        &at_upstream_client.id,
        &at_upstream_client.secret,
    )
    .await;
    let client = a
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid profile email",
        ])
        .await;
    b.wait_known(&client).await;
    let mut on_a = Browser::new(&a);
    let mut u = Browser::new(&upstream);
    let path = authorize_path(&client, "openid profile email", "");
    let to_upstream = press_button(&mut on_a, &path, IDP).await;
    let back = at_upstream(&mut u, &to_upstream, true).await;
    let back_path = back.trim_start_matches(issuer.as_str()).to_owned();
    assert!(back_path.starts_with("/oauth2/sso/callback?"), "{back}");
    // The answer reaches node B.
    let mut on_b = Browser::new(&b);
    on_b.cookies = on_a.cookies.clone();
    let page = on_b.get(&back_path).await;
    assert!(page.is_consent(), "{} {}", page.status, page.body);
    assert!(on_b.cookies.contains_key(SESSION));
    // The same answer, with the cookies as they were, replayed to node A: refused.
    let mut replay = Browser::new(&a);
    replay.cookies = on_a.cookies.clone();
    let page = replay.get(&back_path).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(!replay.cookies.contains_key(SESSION));
}

/// Waits until the browser is at a page of `issuer` (the downstream's sign-in page has a
/// username field too: a field looked for before the navigation ends would be the old page's).
pub async fn browser_at(c: &fantoccini::Client, issuer: &str) {
    let issuer = issuer.to_owned();
    wait_until(Duration::from_secs(20), "the upstream's page", || {
        let c = c.clone();
        let issuer = issuer.clone();
        async move {
            c.current_url()
                .await
                .is_ok_and(|now| now.as_str().starts_with(&issuer))
        }
    })
    .await;
}

/// The device verification page offers the providers too: the code entered downstream, the
/// provider's button, the upstream's sign-in and consent, back to the downstream's consent
/// page for the device, and the device's poll gets tokens for the user. A refusal at the
/// upstream signs nobody in and decides nothing.
#[tokio::test]
async fn the_device_page_signs_in_through_the_upstream_and_the_device_gets_tokens() {
    use crate::device_page::{decide, enter, poll};
    let f = federation(REDIRECT).await;
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let tv = f
        .downstream
        .create_client(&["--public", "--grant-type", grant, "--scope", "openid read"])
        .await;
    let authorize_device = || async {
        let res = f
            .downstream
            .http
            .post(f.downstream.url("/oauth2/device_authorization"))
            .form(&[("client_id", tv.id.as_str()), ("scope", "openid read")])
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()
    };
    // The provider's button on the sign-in page, as a browser submits it.
    let button = |login: &Page| {
        vec![
            ("_request".to_owned(), field(login, "_request")),
            ("_csrf".to_owned(), field(login, "_csrf")),
            ("_action".to_owned(), "sso".to_owned()),
            ("idp".to_owned(), IDP.to_owned()),
        ]
    };

    // Refused at the upstream: nothing is decided.
    let refused = authorize_device().await;
    let mut d = Browser::new(&f.downstream);
    let mut u = Browser::new(&f.upstream);
    let entry = d.get("/device").await;
    let login = enter(&mut d, &entry, refused["user_code"].as_str().unwrap()).await;
    assert!(login.body.contains(BUTTON), "{}", login.body);
    let sent = d.post("/device", &button(&login)).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let back = at_upstream(&mut u, &sent.location().unwrap(), false).await;
    let page = d.get(&back).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(!d.cookies.contains_key(SESSION));
    let (_, body) = poll(
        &f.downstream,
        &tv.id,
        refused["device_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(body["error"], "authorization_pending");

    // Allowed at the upstream: the device's consent page, then tokens.
    let details = authorize_device().await;
    let mut d = Browser::new(&f.downstream);
    let entry = d.get("/device").await;
    let code = details["user_code"].as_str().unwrap();
    let login = enter(&mut d, &entry, code).await;
    let sent = d.post("/device", &button(&login)).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let back = at_upstream(&mut u, &sent.location().unwrap(), true).await;
    let consent = d.get(&back).await;
    assert!(d.cookies.contains_key(SESSION), "signed in downstream");
    assert!(consent.is_consent(), "{} {}", consent.status, consent.body);
    assert!(consent.body.contains(code), "the code to check");
    let done = decide(&mut d, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let (status, body) = poll(
        &f.downstream,
        &tv.id,
        details["device_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = decode_jwt(body["id_token"].as_str().unwrap());
    assert_eq!(id.claims["iss"], f.downstream.issuer());
}
