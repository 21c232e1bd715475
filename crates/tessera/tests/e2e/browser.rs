//! The authorization code flow in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): sign in, consent, land on the client's redirect
//! URI; the `openidconnect` crate then exchanges the code and validates the ID token. Saves
//! screenshots of the sign-in and consent pages, in English and Japanese, to
//! `docs/screenshots/` (linked from the README).
//!
//! Without Chromium the tests pass without running and say so on the test run's own output
//! (`SKIPPED (browser): ...`, once per test binary, as the PostgreSQL tests do), except under
//! CI (`CI` set), where a missing browser is a failure. `TESSERA_TEST_CHROMIUM` and
//! `TESSERA_TEST_CHROMEDRIVER` name other binaries than Debian's.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::browser_support::{setup, PASSWORD};
use crate::oidc_client::{finish, start};
use crate::support::{free_port, wait_until};

/// The browser: `TESSERA_TEST_CHROMIUM`, else Debian's.
fn chromium() -> String {
    std::env::var("TESSERA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Its WebDriver: `TESSERA_TEST_CHROMEDRIVER`, else Debian's.
fn chromedriver() -> String {
    std::env::var("TESSERA_TEST_CHROMEDRIVER")
        .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned())
}

/// Whether the browser tests can run; when not, says so where a developer sees it.
///
/// # Panics
/// When the browser is missing and `CI` is set.
pub fn browser_available() -> bool {
    let (chromium, chromedriver) = (chromium(), chromedriver());
    let ok =
        std::path::Path::new(&chromium).exists() && std::path::Path::new(&chromedriver).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver"
        );
        // Straight to stderr, not through `eprintln!`, which the test harness captures (and
        // shows only for failing tests); once per test binary. The harness names each test's
        // thread after the test.
        static NOTE: std::sync::Once = std::sync::Once::new();
        NOTE.call_once(|| {
            use std::io::Write as _;
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (browser): {chromium} or {chromedriver} is missing, so the browser \
                 tests of this binary pass without running (first: {test}). Install them with \
                 `apt-get install chromium chromium-driver`."
            );
        });
    }
    ok
}

/// A chromedriver process, killed on drop.
pub struct Driver {
    child: tokio::process::Child,
    port: u16,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = free_port();
        let child = tokio::process::Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        wait_until(
            Duration::from_secs(20),
            "chromedriver listens",
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
        Driver { child, port }
    }

    pub async fn session(&self, profile: &std::path::Path, lang: &str) -> Client {
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=720,860",
                    format!("--user-data-dir={}", profile.display()), format!("--lang={lang}"),
                ],
                "prefs": { "intl.accept_languages": lang },
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The client's redirect endpoint: answers every request with a small page and reports the
/// query of the first one.
pub async fn landing() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = head.split(' ').nth(1).unwrap_or("").to_owned();
            let body = "<!doctype html><title>client</title><p>back at the client</p>";
            let _ = conn
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            if target.starts_with("/cb") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(target);
                }
            }
        }
    });
    (format!("http://{addr}/cb"), rx)
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    dir
}

pub async fn save(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshot_dir().join(name), png).expect("write screenshot");
}

async fn run_flow(lang: &str, allow: &str) {
    let (redirect, landed) = landing().await;
    let (server, client) = setup(&["--redirect-uri", &redirect, "--name", "Acme Reports"]).await;
    let started = start(&server, &client, &redirect, &[]).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.session(profile.path(), lang).await;
    c.goto(&started.url).await.unwrap();
    let user = c
        .wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    let html_lang = c
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap();
    assert_eq!(
        html_lang.as_deref(),
        Some(lang),
        "the page follows the browser's language"
    );
    save(&c, &format!("login-{lang}.png")).await;
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
    let allow_button = c
        .wait()
        .for_element(Locator::XPath(&format!(
            "//button[normalize-space()='{allow}']"
        )))
        .await
        .expect("the consent page with its Allow button");
    assert!(c.source().await.unwrap().contains("Acme Reports"));
    save(&c, &format!("consent-{lang}.png")).await;
    allow_button.click().await.unwrap();
    let target = tokio::time::timeout(Duration::from_secs(20), landed)
        .await
        .expect("the browser lands on the redirect URI")
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&redirect), "{url}");
    let query: std::collections::BTreeMap<String, String> =
        reqwest::Url::parse(&format!("http://x{target}"))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    assert_eq!(query["iss"], server.issuer());
    let done = finish(
        &server,
        &client,
        &redirect,
        started,
        &query["code"],
        &query["state"],
    )
    .await;
    assert_eq!(done.email.as_deref(), Some("alice@example.com"));
    c.close().await.unwrap();
}

#[tokio::test]
async fn chromium_signs_in_consents_and_lands_on_the_redirect_uri_in_english() {
    if browser_available() {
        run_flow("en", "Allow").await;
    }
}

#[tokio::test]
async fn chromium_signs_in_consents_and_lands_on_the_redirect_uri_in_japanese() {
    if browser_available() {
        run_flow("ja", "許可する").await;
    }
}

#[tokio::test]
async fn chromium_refuses_a_crafted_link_and_deny_lands_with_access_denied() {
    if !browser_available() {
        return;
    }
    let (redirect, landed) = landing().await;
    let (server, client) = setup(&["--redirect-uri", &redirect, "--name", "Acme Reports"]).await;
    let started = start(&server, &client, &redirect, &[]).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.session(profile.path(), "en").await;
    // A link that names the consent form's field: an error page, no form, no redirect.
    let crafted = format!("{}&prompt=consent&decision=allow", started.url);
    c.goto(&crafted).await.unwrap();
    let error = c
        .wait()
        .for_element(Locator::Css("p.error"))
        .await
        .expect("the error page");
    assert!(error.text().await.unwrap().contains("decision"));
    assert!(c.find(Locator::Css("form")).await.is_err(), "no form");
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(server.issuer()));
    // The genuine request: sign in, then click Deny.
    c.goto(&started.url).await.unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap()
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
    c.wait()
        .for_element(Locator::XPath("//button[normalize-space()='Deny']"))
        .await
        .expect("the consent page with its Deny button")
        .click()
        .await
        .unwrap();
    let target = tokio::time::timeout(Duration::from_secs(20), landed)
        .await
        .expect("the browser lands on the redirect URI")
        .unwrap();
    let query: std::collections::BTreeMap<String, String> =
        reqwest::Url::parse(&format!("http://x{target}"))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    assert_eq!(query["error"], "access_denied", "{query:?}");
    assert!(!query.contains_key("code"));
    c.close().await.unwrap();
}

/// Without a browser the skip shows in the normal output of `cargo test` (no `--nocapture`):
/// this test binary, run again for one browser test with a browser that is not there.
#[test]
fn a_missing_browser_is_reported_as_skipped_in_the_normal_output() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "browser::chromium_signs_in_consents_and_lands_on_the_redirect_uri_in_english",
        ])
        .env_remove("CI")
        .env("TESSERA_TEST_CHROMIUM", "/nonexistent/chromium")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the test did not run: {stdout}"
    );
    assert_eq!(
        stderr
            .matches("SKIPPED (browser): /nonexistent/chromium")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "(first: browser::chromium_signs_in_consents_and_lands_on_the_redirect_uri_in_english)"
        ),
        "{stderr}"
    );
}
