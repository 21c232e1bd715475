//! The network and browser side of signing in through an upstream OpenID provider.
//!
//! Owns what [`tessera_core::signin::upstream`] leaves to I/O and to the browser: the
//! sign-in page's provider buttons ([`providers`]); [`begin`], which makes the authorization
//! request to the provider and the short-lived cookie holding the sign-in in progress (sealed
//! and bound to the browser's CSRF cookie, [`upstream::seal`]); the provider's metadata,
//! fetched from `ISSUER/.well-known/openid-configuration` (OpenID Connect Discovery §4)
//! through the server's cache of remote documents ([`crate::remote_keys::JwksFetcher`]:
//! kept [`crate::remote_keys::FRESH_FOR`], one fetch at a time per URL, no redirect
//! followed, a size limit and a timeout), and the code's redemption at the provider's token
//! endpoint ([`redeem`]: `client_secret_basic`, no redirect followed, [`TOKEN_TIMEOUT`],
//! at most [`MAX_TOKEN_RESPONSE_BYTES`] read). The provider's key set is fetched by the core
//! through the same cache, fetched again on an unknown `kid`.
//!
//! Nothing logged here names a secret: the client secret, the code and the tokens stay out
//! of every message.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use serde::Serialize;
use tessera_core::admin::idps::open_secret;
use tessera_core::cx::RemoteKeys;
use tessera_core::endpoint::{self, EndpointId};
use tessera_core::model::IdpRecord;
use tessera_core::signin::upstream::{
    self, id_token_of, parse_discovery, token_request, PendingSignIn, ProviderMetadata,
    StartOptions, UpstreamError,
};
use tessera_core::store::IdpStore;

use crate::i18n::Lang;
use crate::state::AppState;

/// Longest a token request may take.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token response read.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The client of token requests: no redirects, a timeout.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TOKEN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// Where a provider's metadata is (OpenID Connect Discovery §4.1).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The metadata of `idp`, from the cache while fresh.
pub async fn metadata(
    state: &AppState,
    idp: &IdpRecord,
) -> Result<ProviderMetadata, UpstreamError> {
    let text = state
        .remote_keys()
        .jwks(&discovery_url(&idp.issuer), false)
        .await
        .map_err(|e| UpstreamError::Discovery(format!("fetching it failed: {e}")))?;
    parse_discovery(&idp.issuer, &text)
}

/// Redeems `code` at the provider's token endpoint and returns its ID token.
pub async fn redeem(
    state: &AppState,
    meta: &ProviderMetadata,
    idp: &IdpRecord,
    code: &str,
    redirect_uri: &str,
    pending: &PendingSignIn,
) -> Result<String, UpstreamError> {
    let secret = open_secret(state.sealer(), idp).map_err(|_| {
        UpstreamError::Token("the provider's client secret cannot be opened".into())
    })?;
    let req = token_request(meta, idp, &secret, code, redirect_uri, pending);
    let mut res = client()
        .post(&req.url)
        .header(header::AUTHORIZATION, req.authorization.expose())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(req.body)
        .send()
        .await
        .map_err(|e| UpstreamError::Token(format!("the request failed: {}", e.without_url())))?;
    let success = res.status().is_success();
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| UpstreamError::Token(format!("reading failed: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
            return Err(UpstreamError::Token(format!(
                "the answer is larger than {MAX_TOKEN_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !success {
        tracing::warn!(status = %res.status(), issuer = %idp.issuer, "the provider's token endpoint refused the code");
    }
    id_token_of(success, &body)
}

/// Largest sealed sign-in kept in the cookie: browsers keep cookies of up to 4096 bytes.
pub const MAX_COOKIE_VALUE: usize = 3_800;

/// The cookie holding the sign-in in progress at a provider.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.cookies().session().starts_with("__Host-") {
        "__Host-tessera_sso"
    } else {
        "tessera_sso"
    }
}

/// The value of the request cookie `name`, up to [`MAX_COOKIE_VALUE`] bytes (the sealed
/// sign-in is longer than the values [`crate::pages::cookie`] reads).
pub fn long_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
}

/// One "Sign in with NAME" button of the sign-in page.
#[derive(Debug, Clone, Serialize)]
pub struct Button {
    /// The provider's name (the posted `idp`).
    pub name: String,
    /// Its text.
    pub label: String,
}

/// The providers the sign-in page offers, and the origins the browser may be sent to from
/// its forms (the page's `form-action`: a form's answer redirects there).
#[derive(Debug, Clone, Default)]
pub struct Providers {
    /// One button per provider.
    pub buttons: Vec<Button>,
    /// The origins of their authorization endpoints.
    pub origins: Vec<String>,
}

/// The configured providers, for the sign-in page in `lang`. None when they cannot be read.
pub async fn providers(state: &AppState, lang: Lang) -> Providers {
    let idps = match state.store().list_idps().await {
        Ok(idps) => idps,
        Err(e) => {
            tracing::warn!(error = %e, "the upstream providers could not be read");
            return Providers::default();
        }
    };
    let mut out = Providers::default();
    let text = lang.text("sso_with");
    for idp in idps {
        // The authorization endpoint's origin when the metadata is at hand, else the
        // issuer's (its usual home).
        let at = match metadata(state, &idp).await {
            Ok(meta) => meta.authorization_endpoint,
            Err(_) => idp.issuer.clone(),
        };
        if let Some(origin) = crate::pages::origin_of(&at) {
            if !out.origins.contains(&origin) {
                out.origins.push(origin);
            }
        }
        let shown = if idp.display_name.is_empty() {
            &idp.name
        } else {
            &idp.display_name
        };
        out.buttons.push(Button {
            label: text.replacen("{idp}", shown, 1),
            name: idp.name,
        });
    }
    out
}

/// Starts a sign-in at `idp` for the authorization request `request` in progress in the
/// browser whose CSRF cookie is `csrf_cookie`, going through `dialect`: where to send the
/// browser, and the cookie to set.
pub async fn begin(
    state: &AppState,
    csrf_cookie: &str,
    idp: &IdpRecord,
    request: Vec<(String, String)>,
    dialect: Option<&str>,
    options: &StartOptions<'_>,
) -> Result<(String, HeaderValue), UpstreamError> {
    let meta = metadata(state, idp).await?;
    let redirect_uri = state
        .config()
        .endpoint(endpoint::path(EndpointId::SsoCallback));
    let mut started = upstream::start(&meta, idp, &redirect_uri, request, options, state.now());
    started.pending.dialect = dialect.map(str::to_owned);
    let too_large = || UpstreamError::Callback("the request in progress is too large".into());
    let sealed = upstream::seal(state.sealer(), csrf_cookie, &started.pending)
        .filter(|s| s.len() <= MAX_COOKIE_VALUE)
        .ok_or_else(too_large)?;
    let cookie = state
        .cookies()
        .set(cookie_name(state), &sealed, upstream::PENDING_TTL)
        .ok_or_else(too_large)?;
    Ok((started.authorization_url, cookie))
}
