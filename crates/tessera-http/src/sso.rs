//! The network side of signing in through an upstream OpenID provider.
//!
//! Owns what [`tessera_core::signin::upstream`] leaves to I/O: the provider's metadata,
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

use axum::http::header;
use tessera_core::admin::idps::open_secret;
use tessera_core::cx::RemoteKeys;
use tessera_core::model::IdpRecord;
use tessera_core::signin::upstream::{
    id_token_of, parse_discovery, token_request, PendingSignIn, ProviderMetadata, UpstreamError,
};

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
