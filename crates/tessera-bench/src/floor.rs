//! Owns the "floor" server: a minimal axum handler for `POST /oauth2/token`
//! that parses the urlencoded form and returns a constant token response. It
//! runs in a child process (this binary re-executed with `floor --listen`)
//! and measures what plain HTTP costs on this machine.
//!
//! With `--sign-es256` the same handler also issues one ES256-signed RFC 9068
//! access token per request (the "signing ceiling", scenario `floor-es256`):
//! what a bare handler that only signs can reach, the bound for Tessera's JWT
//! issuance on this machine.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::Serialize;

use crate::conn::{one_shot, RequestTemplate};
use crate::process::{free_local_addr, ChildGuard};

/// The constant body the floor answers with.
const FLOOR_RESPONSE: &str = r#"{"access_token":"x","token_type":"bearer","expires_in":3600}"#;

/// Claim values of the signing floor's tokens (shaped like Tessera's).
const ISSUER: &str = "http://127.0.0.1:8080";
const CLIENT_ID: &str = "floor-client";
const SCOPE: &str = "invoices:read invoices:write";
const EXPIRES_IN: i64 = 3600;

/// Serves the floor on `listen` until the process is terminated. Uses a
/// default multi-thread tokio runtime. With `sign_es256`, every response
/// carries a freshly signed ES256 JWT.
pub fn serve(listen: SocketAddr, sign_es256: bool) -> Result<()> {
    // Key generation happens once, before serving, never per request.
    let signer = if sign_es256 {
        Some(Arc::new(Es256Signer::generate()?))
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?
            .tap_io(|tcp| {
                // Best effort: a socket that refuses NODELAY still works.
                let _ = tcp.set_nodelay(true);
            });
        let app = match signer {
            Some(signer) => Router::new()
                .route("/oauth2/token", post(token_es256))
                .with_state(signer),
            None => Router::new().route("/oauth2/token", post(token)),
        };
        axum::serve(listener, app).await.context("floor server")
    })
}

async fn token(body: Bytes) -> impl IntoResponse {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    std::hint::black_box(form);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        FLOOR_RESPONSE,
    )
}

/// The signing floor's handler: parses the form like [`token`], then signs
/// one ES256 access token and returns it in a token response.
async fn token_es256(State(signer): State<Arc<Es256Signer>>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    std::hint::black_box(form);
    match signer.issue() {
        Ok(jwt) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            format!(
                r#"{{"access_token":"{jwt}","token_type":"bearer","expires_in":{EXPIRES_IN}}}"#
            ),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// RFC 9068 access-token claims, as a server would serialize them.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: &'a str,
    jti: String,
    iat: i64,
    exp: i64,
}

/// An ES256 key generated at start-up, with its JWS header encoded once.
struct Es256Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64url of `{"alg":"ES256","kid":"...","typ":"at+jwt"}`.
    header_b64: String,
}

impl Es256Signer {
    /// Generates a P-256 key and checks that a token it signs verifies.
    fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("generating an ES256 key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("loading the generated ES256 key"))?;
        let mut kid = [0u8; 16];
        rng.fill(&mut kid)
            .map_err(|_| anyhow!("system random generator failed"))?;
        let kid: String = kid.iter().map(|b| format!("{b:02x}")).collect();
        let header = serde_json::json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        let signer = Self {
            key,
            rng,
            header_b64,
        };
        signer.self_check()?;
        Ok(signer)
    }

    /// Builds, serializes and signs one access token.
    fn issue(&self) -> Result<String> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| anyhow!("system random generator failed"))?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let claims = Claims {
            iss: ISSUER,
            sub: CLIENT_ID,
            aud: ISSUER,
            client_id: CLIENT_ID,
            scope: SCOPE,
            jti: URL_SAFE_NO_PAD.encode(jti),
            iat,
            exp: iat.saturating_add(EXPIRES_IN),
        };
        let payload = serde_json::to_vec(&claims).context("serializing claims")?;
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        out.push_str(&self.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let signature = self
            .key
            .sign(&self.rng, out.as_bytes())
            .map_err(|_| anyhow!("ES256 signing failed"))?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut out);
        Ok(out)
    }

    /// Signs one token and verifies it with the public key, so a broken
    /// signer fails at start-up instead of being measured.
    fn self_check(&self) -> Result<()> {
        let jwt = self.issue()?;
        let (signed, signature) = jwt
            .rsplit_once('.')
            .context("signed token has no signature part")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .context("decoding the signature")?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| anyhow!("ES256 self-check: signature does not verify"))
    }
}

/// A floor server running in a child process.
pub struct FloorProcess {
    pub addr: SocketAddr,
    pub guard: ChildGuard,
}

impl FloorProcess {
    /// Re-executes this binary as `floor --listen 127.0.0.1:PORT` (plus
    /// `--sign-es256` for the signing floor) and waits until it answers the
    /// token endpoint.
    pub async fn start(sign_es256: bool) -> Result<Self> {
        let exe = std::env::current_exe().context("locating current executable")?;
        let addr = free_local_addr()?;
        let mut command = Command::new(&exe);
        command.arg("floor").arg("--listen").arg(addr.to_string());
        if sign_es256 {
            command.arg("--sign-es256");
        }
        let name = if sign_es256 {
            "floor-es256 server"
        } else {
            "floor server"
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", exe.display()))?;
        let mut floor = Self {
            addr,
            guard: ChildGuard::new(name, child),
        };
        floor.wait_ready(Duration::from_secs(10)).await?;
        if sign_es256 {
            floor.check_es256_response().await?;
        }
        Ok(floor)
    }

    fn probe_template(&self) -> Result<RequestTemplate> {
        RequestTemplate::form_post(
            self.addr,
            "/oauth2/token",
            vec![Bytes::from_static(b"grant_type=client_credentials")],
        )
    }

    /// Checks that the signing floor answers with an ES256 `at+jwt`.
    async fn check_es256_response(&self) -> Result<()> {
        let (status, body) = one_shot(self.addr, self.probe_template()?.build(0)).await?;
        if !status.is_success() {
            bail!("floor-es256 answered {status}");
        }
        let response: serde_json::Value =
            serde_json::from_slice(&body).context("floor-es256 response is not JSON")?;
        let token = response["access_token"]
            .as_str()
            .context("floor-es256 response has no access_token")?;
        let header = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
            .context("floor-es256 token has no JWS header")?;
        if token.split('.').count() != 3 || header["alg"] != "ES256" || header["typ"] != "at+jwt" {
            bail!("floor-es256 token is not an ES256 at+jwt: {token}");
        }
        Ok(())
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let template = self.probe_template()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.guard.exited() {
                bail!("floor server exited during start-up: {status}");
            }
            if let Ok((status, _)) = one_shot(self.addr, template.build(0)).await {
                if status.is_success() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!("floor server not ready on {} after {timeout:?}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
