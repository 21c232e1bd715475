//! Trusted issuers' JWKS, fetched by URL (RFC 7517 §5) for the JWT-bearer checks of the core.
//!
//! Owns [`JwksFetcher`], the server's [`RemoteKeys`]: a document is cached for
//! [`FRESH_FOR`]; a refresh (the core asks for one when no cached key verifies a signature,
//! as after the issuer rotated its key) fetches at once, but at most once every
//! [`MIN_REFRESH`] per URL, so forged assertions cannot make the server hammer the issuer. A fetch follows no
//! redirect, times out after [`FETCH_TIMEOUT`] and reads at most [`MAX_JWKS_BYTES`]. When a
//! fetch fails, the last good copy is used; failures are logged with the URL only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tessera_core::cx::RemoteKeys;

/// How long a fetched document is used without asking again.
pub const FRESH_FOR: Duration = Duration::from_secs(300);
/// Shortest time between two fetches of one URL.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);
/// Longest a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most URLs remembered (registrations are few; this only bounds memory).
const MAX_ENTRIES: usize = 1_000;

#[derive(Clone)]
struct Entry {
    /// The last good document, if any fetch succeeded.
    text: Option<Arc<str>>,
    /// When the last fetch (good or not) happened.
    fetched: Instant,
    /// When the last fetch asked for by a refresh happened.
    refreshed: Option<Instant>,
}

/// Fetches and caches JWKS documents.
pub struct JwksFetcher {
    client: reqwest::Client,
    cache: Mutex<HashMap<String, Entry>>,
}

impl Default for JwksFetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl JwksFetcher {
    /// A fetcher with an empty cache.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch(&self, uri: &str) -> Result<String, String> {
        let mut res = self
            .client
            .get(uri)
            .header("accept", "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("status {}", res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| format!("read failed: {e}"))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "not UTF-8".to_owned())
    }
}

#[async_trait]
impl RemoteKeys for JwksFetcher {
    async fn jwks(&self, uri: &str, refresh: bool) -> Result<String, String> {
        let now = Instant::now();
        let cached = self.cache.lock().ok().and_then(|c| c.get(uri).cloned());
        if let Some(e) = &cached {
            let use_cached = if refresh {
                e.refreshed
                    .is_some_and(|r| now.saturating_duration_since(r) < MIN_REFRESH)
            } else {
                now.saturating_duration_since(e.fetched) < FRESH_FOR
            };
            if use_cached {
                return e
                    .text
                    .as_deref()
                    .map(str::to_owned)
                    .ok_or_else(|| "the last fetch failed".to_owned());
            }
        }
        let result = self.fetch(uri).await;
        let last_refresh = cached.as_ref().and_then(|e| e.refreshed);
        let stale = cached.and_then(|e| e.text);
        let text = match &result {
            Ok(t) => Some(Arc::from(t.as_str())),
            Err(e) => {
                tracing::warn!(uri, error = %e, "fetching a trusted issuer's JWKS failed");
                stale
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= MAX_ENTRIES && !c.contains_key(uri) {
                c.clear();
            }
            c.insert(
                uri.to_owned(),
                Entry {
                    text: text.clone(),
                    fetched: now,
                    refreshed: if refresh { Some(now) } else { last_refresh },
                },
            );
        }
        match (result, text) {
            (Ok(t), _) => Ok(t),
            (Err(_), Some(old)) => Ok(old.to_string()),
            (Err(e), None) => Err(e),
        }
    }
}
