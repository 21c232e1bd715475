//! Tessera driven by a third-party OAuth client library: `requests-oauth2client` (Python),
//! pinned with hashes in `tests/python/requirements.txt`, running the scripts of
//! `tests/python/` against a real server.
//!
//! The harness makes one virtual environment per requirements file (named by its SHA-256,
//! under the cargo target directory's temporary folder), once, and reuses it across tests and
//! runs: it is built in a folder of its own and renamed into place when complete, so two test
//! processes racing to make it both end up with a whole one. Python 3 with its `venv` module is
//! required: without it these tests fail, they never skip.
//!
//! A script takes its settings as one JSON argument and prints JSON lines; the tests assert on
//! those, and check what the server holds (introspection) themselves. The sign-in pages are
//! driven by the scripted browser of the other tests, between the library's authorization
//! request and its code exchange.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::browser_support::*;
use crate::device_page;
use crate::support::{decode_jwt, Creds, Server};

/// The folder of the scripts and the requirements file.
fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// The interpreter of the virtual environment, made on first use.
fn python() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(make_venv).as_path()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a setup command; panics with its output if it cannot run or fails.
fn setup_step(what: &str, cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot run {cmd:?}: {e}\nThe Python client tests need python3 with its \
                 venv module (Debian: python3-venv) and pip access to PyPI."
        )
    });
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed with {}\n{}\n{}\nThe Python client tests need python3 with its \
         venv module (Debian: python3-venv) and pip access to PyPI.",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes (or finds) the virtual environment for the current requirements file; returns its
/// interpreter.
fn make_venv() -> PathBuf {
    let requirements = scripts_dir().join("requirements.txt");
    let pinned = std::fs::read(&requirements).expect("read tests/python/requirements.txt");
    let digest = ring::digest::digest(&ring::digest::SHA256, &pinned);
    let name = format!(
        "python-client-venv-{}",
        hex(digest.as_ref().get(..8).unwrap_or_default())
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(&name);
    let interpreter = venv.join("bin").join("python");
    if interpreter.exists() {
        return interpreter;
    }
    std::fs::create_dir_all(root).expect("create the target's tmp folder");
    // What an interrupted run left half-built (its process is gone) goes.
    let prefix = format!("{name}.building-");
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = file_name.strip_prefix(&prefix) {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let building = root.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    setup_step(
        "make the venv",
        Command::new("python3").args(["-m", "venv"]).arg(&building),
    );
    setup_step(
        "install the pinned client library",
        Command::new(building.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "-r",
            ])
            .arg(&requirements),
    );
    // Whole or absent: another test process may have won the race; then use its venv.
    if std::fs::rename(&building, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&building);
        assert!(
            interpreter.exists(),
            "could not move the new venv to {}",
            venv.display()
        );
    }
    interpreter
}

/// A running script: its JSON lines out, lines in.
pub struct Script {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: tempfile::NamedTempFile,
}

impl Script {
    /// Starts `tests/python/NAME.py` with `settings` as its argument.
    pub fn start(name: &str, settings: &Value) -> Script {
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = tokio::process::Command::new(python())
            .arg(scripts_dir().join(format!("{name}.py")))
            .arg(settings.to_string())
            // The server is on loopback: no proxy; no bytecode written into the repository.
            .env("NO_PROXY", "*")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr file"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}.py: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Script {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// The next JSON line; panics (with the script's stderr) on a failure line or the end.
    pub async fn line(&mut self) -> Value {
        let line = self.stdout.next_line().await.expect("read the script");
        let Some(line) = line else {
            let status = self.child.wait().await.expect("script status");
            panic!(
                "{}.py ended ({status}) without output:\n{}",
                self.name,
                self.stderr()
            );
        };
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}.py printed {line:?}: {e}", self.name));
        assert!(
            v.get("exception").is_none(),
            "{}.py failed: {v}\n{}",
            self.name,
            self.stderr()
        );
        v
    }

    /// Writes one line to the script's standard input.
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the script");
        stdin.flush().await.expect("flush");
    }

    /// Waits for the script to exit; asserts it succeeded.
    pub async fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().await.expect("script status");
        assert!(
            status.success(),
            "{}.py exited with {status}:\n{}",
            self.name,
            self.stderr()
        );
    }
}

/// Runs a one-line script to its end: its line.
pub async fn run(name: &str, settings: &Value) -> Value {
    let mut script = Script::start(name, settings);
    let out = script.line().await;
    script.finish().await;
    out
}

/// Whether a `token_type` is `scheme` (case-insensitive: RFC 6749 §5.1).
fn is(token_type: &Value, scheme: &str) -> bool {
    token_type
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case(scheme))
}

/// Runs a script that must fail: its failure line (the exception, and the OAuth error if an
/// endpoint answered with one).
pub async fn run_failing(name: &str, settings: &Value) -> Value {
    let mut script = Script::start(name, settings);
    let line = script.stdout.next_line().await.expect("read the script");
    let status = script.child.wait().await.expect("script status");
    let stderr = script.stderr();
    let line =
        line.unwrap_or_else(|| panic!("{name}.py ended ({status}) without output:\n{stderr}"));
    let v: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{name}.py printed {line:?}: {e}"));
    assert!(v.get("exception").is_some(), "{name}.py did not fail: {v}");
    assert!(!status.success(), "{name}.py failed but exited 0: {v}");
    v
}

/// The settings naming `server` and `client`.
fn settings(server: &Server, client: &Creds, extra: Value) -> Value {
    let mut v = json!({
        "issuer": server.issuer(),
        "client_id": client.id,
        "client_secret": client.secret,
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

/// Runs `code_flow.py` for `client`: the library's authorization request is signed in to and
/// consented to by alice in the scripted browser, whose redirect goes back to the library.
/// Returns the script's first line (the request) and its last (what followed).
async fn code_flow(server: &Server, client: &Creds, extra: Value) -> (Value, Value) {
    let mut conf = json!({ "redirect_uri": REDIRECT, "scope": "openid profile offline_access" });
    if let (Some(obj), Value::Object(more)) = (conf.as_object_mut(), extra) {
        obj.extend(more);
    }
    let mut script = Script::start("code_flow", &settings(server, client, conf));
    let request = script.line().await;
    let url = request["authorize_url"].as_str().expect("authorize_url");
    assert!(url.starts_with(&server.url("/oauth2/authorize?")), "{url}");
    let mut browser = Browser::new(server);
    let mut page = browser.get(url).await;
    if page.is_login() {
        page = browser.sign_in(&page, "alice", PASSWORD).await;
    }
    if page.is_consent() {
        page = browser.consent(&page, true).await;
    }
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let callback = page.location().expect("redirect to the client");
    assert!(callback.starts_with(REDIRECT), "{callback}");
    script.send(&callback).await;
    let result = script.line().await;
    script.finish().await;
    (request, result)
}

#[tokio::test]
async fn the_library_gets_a_bearer_token_by_client_credentials() {
    let server = Server::start().await;
    let client = server.create_client(&["--scope", "read write"]).await;
    let out = run(
        "client_credentials",
        &settings(&server, &client, json!({ "scope": "read" })),
    )
    .await;
    assert_eq!(out["class"], "BearerToken", "{out}");
    assert!(is(&out["token_type"], "Bearer"), "{out}");
    assert_eq!(out["scope"], "read", "{out}");
    assert!(out["expires_in"].as_i64().unwrap_or_default() > 0, "{out}");
    let token = out["access_token"].as_str().expect("access_token");
    let facts = server.introspect(&client, token).await;
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["client_id"], client.id.as_str(), "{facts}");
    assert_eq!(facts["scope"], "read", "{facts}");
    assert!(
        facts.get("cnf").is_none(),
        "a bearer token is bound to nothing: {facts}"
    );
}

#[tokio::test]
async fn a_wrong_secret_reaches_the_library_as_invalid_client() {
    let server = Server::start().await;
    let client = server.create_client(&["--scope", "read"]).await;
    let wrong = client.with_secret("not-the-secret");
    let v = run_failing("client_credentials", &settings(&server, &wrong, json!({}))).await;
    assert_eq!(v["exception"], "InvalidClient", "{v}");
    assert_eq!(v["error"], "invalid_client", "{v}");
}

#[tokio::test]
async fn the_library_drives_the_code_flow_with_pkce_checks_the_id_token_and_refreshes() {
    let (server, client) = setup(&[]).await;
    let (request, out) = code_flow(&server, &client, json!({})).await;
    assert!(request["dpop_jkt"].is_null(), "{request}");
    let token = &out["token"];
    assert_eq!(token["class"], "BearerToken", "{out}");
    assert!(is(&token["token_type"], "Bearer"), "{out}");
    let sub = token["id_token_sub"]
        .as_str()
        .expect("the library read the ID token");
    assert_eq!(out["userinfo"]["ok"]["sub"], sub, "{out}");
    assert_eq!(out["userinfo"]["ok"]["name"], "User alice", "{out}");
    let refreshed = &out["refreshed"]["ok"];
    assert!(is(&refreshed["token_type"], "Bearer"), "{out}");
    assert_ne!(
        refreshed["refresh_token"], token["refresh_token"],
        "rotated: {out}"
    );
    let at = refreshed["access_token"].as_str().expect("access_token");
    let facts = server.introspect(&client, at).await;
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["sub"], sub, "{facts}");
}

#[tokio::test]
async fn the_library_pushes_its_authorization_request_first() {
    let (server, client) = setup(&["--public"]).await;
    let (request, out) = code_flow(&server, &client, json!({ "par": true })).await;
    let url = request["authorize_url"].as_str().expect("url");
    assert!(url.contains("request_uri=urn"), "{url}");
    assert!(
        !url.contains("code_challenge"),
        "pushed, not sent in the URL: {url}"
    );
    assert!(is(&out["token"]["token_type"], "Bearer"), "{out}");
    assert!(out["userinfo"]["ok"]["sub"].is_string(), "{out}");
    assert!(is(&out["refreshed"]["ok"]["token_type"], "Bearer"), "{out}");
}

/// The JWK SHA-256 thumbprint of an EC or RSA public key (RFC 7638 §3), computed here, not by
/// the library.
fn thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        other => panic!("unexpected key type {other:?}"),
    };
    let canonical = members
        .iter()
        .map(|m| {
            let v = jwk[*m].as_str().unwrap_or_else(|| panic!("{m} in {jwk}"));
            format!("\"{m}\":\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",");
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{{{canonical}}}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[test]
fn the_thumbprint_is_rfc_7638s_example() {
    // RFC 7638 §3.1.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(&jwk),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[tokio::test]
async fn the_library_binds_a_client_credentials_token_to_its_dpop_key() {
    let server = Server::start().await;
    let client = server.create_client(&["--scope", "read"]).await;
    let out = run(
        "client_credentials",
        &settings(&server, &client, json!({ "scope": "read", "dpop": true })),
    )
    .await;
    assert_eq!(out["class"], "DPoPToken", "{out}");
    assert!(is(&out["token_type"], "DPoP"), "{out}");
    let jkt = thumbprint(&out["jwk"]);
    assert_eq!(
        out["jkt"],
        jkt.as_str(),
        "the library's thumbprint is RFC 7638's"
    );
    assert!(out["as_nonce"].is_null(), "no nonce asked for: {out}");
    let token = out["access_token"].as_str().expect("access_token");
    assert_eq!(decode_jwt(token).claims["cnf"]["jkt"], jkt.as_str());
    let facts = server.introspect(&client, token).await;
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["token_type"], "DPoP", "{facts}");
    assert_eq!(facts["cnf"]["jkt"], jkt.as_str(), "{facts}");
}

/// Every algorithm discovery lists for DPoP proofs works with a key the library makes for it
/// (RSA, EC and Ed25519 keys: the thumbprint members differ, RFC 7638 §3.2); one it does not
/// list is refused with `invalid_dpop_proof`.
#[tokio::test]
async fn every_listed_proof_algorithm_binds_and_an_unlisted_one_is_refused() {
    let server = Server::start().await;
    let client = server.create_client(&["--scope", "read"]).await;
    let meta = server.get_json("/.well-known/openid-configuration").await;
    let algs: Vec<&str> = meta["dpop_signing_alg_values_supported"]
        .as_array()
        .expect("dpop_signing_alg_values_supported")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(algs.contains(&"ES256"), "{algs:?}");
    for alg in &algs {
        let out = run(
            "client_credentials",
            &settings(&server, &client, json!({ "dpop": true, "alg": alg })),
        )
        .await;
        assert!(is(&out["token_type"], "DPoP"), "{alg}: {out}");
        let jkt = thumbprint(&out["jwk"]);
        assert_eq!(out["jkt"], jkt.as_str(), "{alg}");
        let token = out["access_token"].as_str().expect("access_token");
        let facts = server.introspect(&client, token).await;
        assert_eq!(facts["cnf"]["jkt"], jkt.as_str(), "{alg}: {facts}");
    }
    assert!(!algs.contains(&"ES512"), "{algs:?}");
    let v = run_failing(
        "client_credentials",
        &settings(&server, &client, json!({ "dpop": true, "alg": "ES512" })),
    )
    .await;
    assert_eq!(v["error"], "invalid_dpop_proof", "{v}");
}

/// The user flow with a DPoP key through the library, for a public client (its refresh tokens
/// are bound to the key, RFC 9449 §5), with or without PAR, on a server started with `env`;
/// returns what the script printed last.
async fn dpop_code_flow(env: &[(&str, &str)], par: bool) -> Value {
    let (server, client) = setup_with(env, &["--public"]).await;
    let observer = server.create_client(&[]).await;
    let (request, out) = code_flow(&server, &client, json!({ "dpop": true, "par": par })).await;
    let jkt = thumbprint(&request["jwk"]);
    assert_eq!(request["dpop_jkt"], jkt.as_str(), "{request}");
    let url = request["authorize_url"].as_str().expect("url");
    assert_eq!(url.contains("dpop_jkt="), !par, "{url}");

    let token = &out["token"];
    assert_eq!(token["class"], "DPoPToken", "{out}");
    assert!(is(&token["token_type"], "DPoP"), "{out}");
    assert_eq!(token["jkt"], jkt.as_str(), "{out}");
    let at = token["access_token"].as_str().expect("access_token");
    let facts = server.introspect(&observer, at).await;
    assert_eq!(facts["active"], true, "{facts}");
    assert_eq!(facts["token_type"], "DPoP", "{facts}");
    assert_eq!(facts["cnf"]["jkt"], jkt.as_str(), "{facts}");

    // Through the library's auth handler (`Authorization: DPoP` and a proof with `ath`).
    let sub = token["id_token_sub"].as_str().expect("sub");
    assert_eq!(out["userinfo"]["ok"]["sub"], sub, "{out}");
    // The same token as a bearer token is refused, and the challenge names DPoP (§7.1).
    let res = server
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[reqwest::header::WWW_AUTHENTICATE]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("algs="), "{challenge}");

    // Refreshed with the same key: bound to it again.
    let refreshed = &out["refreshed"]["ok"];
    assert_eq!(refreshed["class"], "DPoPToken", "{out}");
    assert!(is(&refreshed["token_type"], "DPoP"), "{out}");
    let at = refreshed["access_token"].as_str().expect("access_token");
    assert_eq!(
        server.introspect(&observer, at).await["cnf"]["jkt"],
        jkt.as_str()
    );
    // Another key cannot use the public client's refresh token (§5).
    assert_ne!(out["other_key_jkt"], jkt.as_str());
    let refused = &out["other_key"]["failed"];
    assert_eq!(refused["error"], "invalid_grant", "{out}");
    out
}

#[tokio::test]
async fn the_library_drives_the_code_flow_with_dpop_and_a_bearer_use_is_refused() {
    let out = dpop_code_flow(&[], false).await;
    assert!(out["as_nonce"].is_null(), "no nonce asked for: {out}");
    assert!(out["rs_nonce"].is_null(), "no nonce asked for: {out}");
}

#[tokio::test]
async fn the_library_pushes_dpop_jkt_and_its_proof_with_par() {
    let out = dpop_code_flow(&[], true).await;
    assert!(out["as_nonce"].is_null(), "no nonce asked for: {out}");
}

/// With server nonces on, a first proof without one is refused with `use_dpop_nonce` and a
/// `DPoP-Nonce` (RFC 9449 §8, §9): the library takes the nonce and retries. Without PAR the
/// token endpoint asks at the code exchange, whose refused first try must not spend the code;
/// then userinfo asks (its own nonce, §9); the refresh reuses the token endpoint's nonce.
#[tokio::test]
async fn the_library_follows_server_nonces_through_the_code_flow_userinfo_and_refresh() {
    let out = dpop_code_flow(&[("TESSERA_DPOP_NONCE", "true")], false).await;
    assert!(
        out["as_nonce"].is_string(),
        "the token endpoint asked: {out}"
    );
    assert!(out["rs_nonce"].is_string(), "userinfo asked: {out}");
}

/// The same through PAR: the push is the first request to ask for a nonce.
#[tokio::test]
async fn the_library_follows_a_server_nonce_at_the_par_endpoint() {
    let out = dpop_code_flow(&[("TESSERA_DPOP_NONCE", "true")], true).await;
    assert!(out["as_nonce"].is_string(), "the PAR endpoint asked: {out}");
    assert!(out["rs_nonce"].is_string(), "userinfo asked: {out}");
}

#[tokio::test]
async fn the_library_follows_a_server_nonce_for_client_credentials() {
    let server = Server::start_with(&[("TESSERA_DPOP_NONCE", "true")]).await;
    let client = server.create_client(&["--scope", "read"]).await;
    let out = run(
        "client_credentials",
        &settings(&server, &client, json!({ "dpop": true })),
    )
    .await;
    assert!(is(&out["token_type"], "DPoP"), "{out}");
    assert!(
        out["as_nonce"].is_string(),
        "the server asked for a nonce: {out}"
    );
    let token = out["access_token"].as_str().expect("access_token");
    let facts = server.introspect(&client, token).await;
    assert_eq!(
        facts["cnf"]["jkt"],
        thumbprint(&out["jwk"]).as_str(),
        "{facts}"
    );
}

/// A code requested with `dpop_jkt` is worth nothing to someone who saw it, and the PKCE
/// verifier, but holds another key (RFC 9449 §10).
#[tokio::test]
async fn a_stolen_code_exchanged_under_another_key_gets_no_token() {
    let (server, client) = setup(&["--public"]).await;
    let (_, out) = code_flow(&server, &client, json!({ "dpop": true, "thief": true })).await;
    assert!(out["thief"].get("ok").is_none(), "{out}");
    assert_eq!(out["thief"]["failed"]["error"], "invalid_grant", "{out}");
}

/// Sends `GET /userinfo` with `Authorization: DPoP TOKEN` and `proof`.
async fn userinfo_with(server: &Server, token: &str, proof: &str) -> (StatusCode, String) {
    let res = server
        .http
        .get(server.url("/userinfo"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .send()
        .await
        .expect("userinfo");
    let challenge = res
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (res.status(), challenge)
}

/// Proofs the library made, as a network attacker who captured them would use them: the good
/// one works once and is refused when replayed (its `jti`, RFC 9449 §11.1); a proof by another
/// key, for another URL or method, or without the token's hash is refused (§4.3, §7.1). Each
/// refusal is a 401 with a `DPoP` challenge.
#[tokio::test]
async fn proofs_made_by_the_library_are_refused_when_replayed_or_misused() {
    let (server, client) = setup(&["--public"]).await;
    let (_, out) = code_flow(&server, &client, json!({ "dpop": true, "proofs": true })).await;
    let token = out["token"]["access_token"].as_str().expect("access_token");
    let proof = |name: &str| {
        out["proofs"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} proof: {out}"))
            .to_owned()
    };
    let (status, _) = userinfo_with(&server, token, &proof("good")).await;
    assert_eq!(status, StatusCode::OK, "the first use of a good proof");
    for name in ["good", "other_key", "other_url", "other_method", "no_ath"] {
        let (status, challenge) = userinfo_with(&server, token, &proof(name)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(challenge.starts_with("DPoP "), "{name}: {challenge}");
        assert!(challenge.contains("error="), "{name}: {challenge}");
    }
}

/// A client registered with `dpop_bound_access_tokens` gets no token from the library without
/// a proof (RFC 9449 §5.2), and a bound one with.
#[tokio::test]
async fn a_dpop_bound_client_gets_tokens_from_the_library_only_with_a_proof() {
    let server = Server::start().await;
    let client = server
        .create_client(&["--scope", "read", "--dpop-bound"])
        .await;
    let v = run_failing("client_credentials", &settings(&server, &client, json!({}))).await;
    assert!(v.get("access_token").is_none(), "{v}");
    assert_eq!(v["error"], "invalid_dpop_proof", "{v}");
    let out = run(
        "client_credentials",
        &settings(&server, &client, json!({ "dpop": true })),
    )
    .await;
    assert!(is(&out["token_type"], "DPoP"), "{out}");
}

/// A confidential client's refresh tokens are not bound to a key (its authentication binds
/// them, RFC 9449 §5): refreshed under a new key, the new access token is bound to that key.
#[tokio::test]
async fn a_confidential_client_may_move_to_a_new_key_at_a_refresh() {
    let (server, client) = setup(&[]).await;
    let (request, out) = code_flow(&server, &client, json!({ "dpop": true })).await;
    let first = thumbprint(&request["jwk"]);
    assert_eq!(out["token"]["jkt"], first.as_str(), "{out}");
    assert_eq!(out["refreshed"]["ok"]["jkt"], first.as_str(), "{out}");
    let moved = &out["other_key"]["ok"];
    assert!(is(&moved["token_type"], "DPoP"), "{out}");
    let at = moved["access_token"].as_str().expect("access_token");
    let facts = server.introspect(&client, at).await;
    assert_eq!(facts["cnf"]["jkt"], out["other_key_jkt"], "{facts}");
    assert_ne!(facts["cnf"]["jkt"], first.as_str(), "{facts}");
}

/// The device flow through the library with a DPoP key: alice approves on the verification
/// page, the library's single poll gets a token bound to its key, and its refresh (a public
/// client's, so bound to the key) works with the same key.
#[tokio::test]
async fn the_library_gets_a_dpop_bound_token_by_the_device_flow() {
    let server = Server::start().await;
    server.create_user("alice", PASSWORD).await;
    let client = server
        .create_client(&[
            "--public",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:device_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid read offline_access",
        ])
        .await;
    let observer = server.create_client(&[]).await;
    let mut script = Script::start(
        "device",
        &settings(&server, &client, json!({ "scope": "read offline_access" })),
    );
    let start = script.line().await;
    assert_eq!(start["verification_uri"], server.url("/device"), "{start}");
    let code = start["user_code"].as_str().expect("user_code");
    let mut browser = Browser::new(&server);
    let entry = browser.get("/device").await;
    let page = device_page::enter(&mut browser, &entry, code).await;
    let page = device_page::sign_in(&mut browser, &page).await;
    let done = device_page::decide(&mut browser, &page, "allow").await;
    assert!(done.status.is_success(), "{} {}", done.status, done.body);
    script.send("approved").await;
    let out = script.line().await;
    script.finish().await;
    let jkt = thumbprint(&out["jwk"]);
    assert_eq!(out["jkt"], jkt.as_str());
    for step in ["token", "refreshed"] {
        assert!(is(&out[step]["token_type"], "DPoP"), "{step}: {out}");
        let at = out[step]["access_token"].as_str().expect("access_token");
        let facts = server.introspect(&observer, at).await;
        assert_eq!(facts["active"], true, "{step}: {facts}");
        assert_eq!(facts["cnf"]["jkt"], jkt.as_str(), "{step}: {facts}");
    }
}
