//! Owns the set-up of the scenarios that need more than one client-credentials client:
//! token exchange (RFC 8693) of users' JWT access tokens, pushed authorization requests
//! (RFC 9126), and pending device codes (RFC 8628) to poll. Everything is done as a deployment would: clients and trust through
//! the CLI, tokens and pushes over HTTP.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use crate::conn::{one_shot, Conn, RequestTemplate};
use crate::tessera::{ClientCredentials, TesseraServer};

/// RFC 8693 §2.1: the token exchange grant.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: an access token of this server.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 7523 §2.1: the JWT-bearer grant (how the users' tokens are obtained).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The vendor whose users' tokens are exchanged.
const VENDOR: &str = "bench-vendor";
/// The APIs of the users' tokens; the exchange narrows to the first.
const API_A: &str = "https://api-a.bench.example";
const API_B: &str = "https://api-b.bench.example";
/// The redirect URI of the PAR client (never visited).
pub const PAR_REDIRECT: &str = "http://127.0.0.1:9/callback";
/// RFC 8628 §3.4: the device code grant.
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a new client or trust registration may take to reach the running server.
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// RFC 8628 §3.2: the fields of a device authorization response the bench uses.
#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    interval: Option<u64>,
}

/// Pending device codes of one public client: the poll request (one body per code) and
/// the interval the server asked for.
pub struct DeviceCodes {
    pub poll: RequestTemplate,
    pub interval: Duration,
}

impl DeviceCodes {
    /// Registers a public client for the device grant (as the README's device flow example
    /// does) and asks `/oauth2/device_authorization` for `count` device codes, which stay
    /// pending: nobody enters their user codes.
    pub async fn set_up(server: &TesseraServer, count: usize) -> Result<Self> {
        let client = server
            .create_client_with(
                "bench-device",
                &[
                    "--public",
                    "--grant-type",
                    DEVICE_CODE,
                    "--scope",
                    "openid read",
                ],
            )
            .await?;
        eprintln!(
            "created client bench-device ({}); asking for {count} device codes ...",
            client.client_id
        );
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client.client_id)
            .append_pair("scope", "read")
            .finish();
        let ask = RequestTemplate::form_post(
            server.addr,
            "/oauth2/device_authorization",
            vec![Bytes::from(body)],
        )?;
        let mut conn = Conn::connect(server.addr).await?;
        let mut bodies = Vec::with_capacity(count);
        let mut interval = 5;
        let deadline = Instant::now() + VISIBLE_TIMEOUT;
        while bodies.len() < count.max(1) {
            if conn.is_closed() {
                conn = Conn::connect(server.addr).await?;
            }
            let (status, body) = conn.send(ask.build(0)).await?;
            if status.is_success() {
                let answer: DeviceAuthorization =
                    serde_json::from_slice(&body).context("parsing device authorization")?;
                interval = answer.interval.unwrap_or(interval);
                let poll: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", DEVICE_CODE)
                    .append_pair("client_id", &client.client_id)
                    .append_pair("device_code", &answer.device_code)
                    .finish();
                bodies.push(Bytes::from(poll));
            } else if bodies.is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                bail!(
                    "device authorization request failed: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        Ok(Self {
            poll: RequestTemplate::form_post(server.addr, "/oauth2/token", bodies)?,
            interval: Duration::from_secs(interval),
        })
    }
}

/// A client registered for the token exchange, and the users' access tokens (JWTs of this
/// server, audience A and B) it exchanges.
pub struct Exchange {
    pub client: ClientCredentials,
    pub subject_tokens: Vec<String>,
}

impl Exchange {
    /// Registers a vendor's key as trusted (`jwt keygen`, `trust add`), a client for the
    /// JWT-bearer grant and the token exchange (`--token-exchange-audience` A), and gets
    /// `count` users' access tokens with the JWT-bearer grant (one signed assertion each, as
    /// the README's token exchange example does).
    pub async fn set_up(server: &TesseraServer, count: usize) -> Result<Self> {
        let keys = server.dir().join("vendor-keys");
        let keys_arg = keys.to_str().context("temp dir path is not UTF-8")?;
        server
            .cli(&["jwt", "keygen", "--out", keys_arg, "--json"])
            .await?;
        let public = format!("{keys_arg}/public.pem");
        server
            .cli(&[
                "trust",
                "add",
                "--issuer",
                VENDOR,
                "--public-key",
                &public,
                "--scope",
                "read write",
                "--env",
                "default",
                "--json",
            ])
            .await?;
        let client = server
            .create_client_with(
                "bench-token-exchange",
                &[
                    "--grant-type",
                    JWT_BEARER,
                    "--grant-type",
                    TOKEN_EXCHANGE,
                    "--scope",
                    "read write",
                    "--audience",
                    API_A,
                    "--audience",
                    API_B,
                    "--token-exchange-audience",
                    API_A,
                ],
            )
            .await?;
        eprintln!("created client bench-token-exchange ({})", client.client_id);
        let private = format!("{keys_arg}/private.pem");
        let mut conn = Conn::connect(server.addr).await?;
        let mut subject_tokens = Vec::with_capacity(count);
        let deadline = Instant::now() + VISIBLE_TIMEOUT;
        let mut user = 0;
        while subject_tokens.len() < count {
            let sub = format!("user-{user}");
            user += 1;
            let aud = format!("{}/oauth2/token", server.issuer());
            let assertion = server
                .cli(&[
                    "jwt", "sign", "--key", &private, "--iss", VENDOR, "--sub", &sub, "--aud", &aud,
                ])
                .await?;
            let body: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", JWT_BEARER)
                .append_pair("assertion", assertion.trim())
                .finish();
            let template =
                RequestTemplate::form_post(server.addr, "/oauth2/token", vec![Bytes::from(body)])?
                    .with_basic_auth(&client.client_id, &client.client_secret)?;
            if conn.is_closed() {
                conn = Conn::connect(server.addr).await?;
            }
            let (status, body) = conn.send(template.build(0)).await?;
            if status.is_success() {
                let token: TokenResponse =
                    serde_json::from_slice(&body).context("parsing token response")?;
                subject_tokens.push(token.access_token);
            } else if subject_tokens.is_empty() && Instant::now() < deadline {
                // The client and the trusted key reach the server through its change feed.
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                bail!(
                    "JWT-bearer token request failed: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        Ok(Self {
            client,
            subject_tokens,
        })
    }

    /// The exchange request, cycling through the subject tokens: each user's token (audience
    /// A and B) for a token for API A only.
    pub fn template(&self, server: &TesseraServer) -> Result<RequestTemplate> {
        let bodies = self
            .subject_tokens
            .iter()
            .map(|t| {
                let body: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", TOKEN_EXCHANGE)
                    .append_pair("subject_token", t)
                    .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
                    .append_pair("audience", API_A)
                    .finish();
                Bytes::from(body)
            })
            .collect();
        RequestTemplate::form_post(server.addr, "/oauth2/token", bodies)?
            .with_basic_auth(&self.client.client_id, &self.client.client_secret)
    }
}

/// Registers a confidential client for the authorization code flow and returns the push
/// request: `count` different authorization requests (state, nonce and PKCE challenge
/// each), as the README's PAR example sends them, cycled through. Waits until a push is
/// answered `201`.
pub async fn par_template(server: &TesseraServer, count: usize) -> Result<RequestTemplate> {
    let client = server
        .create_client_with(
            "bench-par",
            &[
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                PAR_REDIRECT,
                "--scope",
                "openid read",
            ],
        )
        .await?;
    eprintln!("created client bench-par ({})", client.client_id);
    let bodies = (0..count.max(1))
        .map(|i| {
            let verifier = format!("bench-code-verifier-{i:08}-0123456789abcdefghijklmnop");
            let challenge = URL_SAFE_NO_PAD
                .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
            let body: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", PAR_REDIRECT)
                .append_pair("scope", "openid read")
                .append_pair("state", &format!("state-{i}"))
                .append_pair("nonce", &format!("nonce-{i}"))
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .finish();
            Bytes::from(body)
        })
        .collect();
    let template = RequestTemplate::form_post(server.addr, "/oauth2/par", bodies)?
        .with_basic_auth(&client.client_id, &client.client_secret)?;
    let deadline = Instant::now() + VISIBLE_TIMEOUT;
    loop {
        let (status, body) = one_shot(server.addr, template.build(0)).await?;
        if status == StatusCode::CREATED {
            return Ok(template);
        }
        if Instant::now() >= deadline {
            bail!(
                "pushed authorization request refused: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
