//! Trusted issuers' JWKS, fetched by URL (RFC 7517 §5) for the JWT-bearer checks of the core,
//! and upstream OpenID providers' key sets and metadata for signing in through them
//! ([`crate::sso`]).
//!
//! Owns [`JwksFetcher`], the server's [`RemoteKeys`]: a document is cached for
//! [`FRESH_FOR`]; a refresh (the core asks for one when no cached key verifies a signature,
//! as after the issuer rotated its key) fetches at once, but at most once every
//! [`MIN_REFRESH`] per URL, so forged assertions cannot make the server hammer the issuer. A fetch follows no
//! redirect, times out after [`FETCH_TIMEOUT`] and reads at most [`MAX_JWKS_BYTES`]. When a
//! fetch fails, the last good copy is used; failures are logged with the URL only. A fetch
//! never connects to an address of the class [`crate::backchannel_target`] always refuses
//! (unspecified, link-local and cloud metadata, multicast, broadcast, reserved), whether the
//! URL names it or its host name resolves to it at fetch time: a registered URL cannot make
//! the server read its cloud credentials. Loopback and private addresses stay allowed (an
//! operator's own issuer may serve its keys inside the network).
//!
//! It also runs the core's signature checks of other parties' assertions
//! ([`RemoteKeys::check_signature`]) on the blocking pool, at most [`signature_checks`] at
//! once: a flood of forged assertions then queues for those threads instead of occupying
//! the serving ones, and other clients' requests are answered meanwhile.
//!
//! One fetch per URL is in flight at a time (single flight): requests that need the
//! document while it is being fetched wait for that fetch and use what it brought, so any
//! number of concurrent assertions make one fetch, and one refresh per [`MIN_REFRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tessera_core::client_assertion::SignatureError;
use tessera_core::cx::{RemoteKeys, SignatureCheck};

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

/// How many signature checks run at once: half the machine's cores (at least one), so that
/// the other half serves everything else however many assertions arrive.
pub fn signature_checks() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

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
    /// Per URL, the turn to fetch: held for the whole fetch.
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Permits to run a signature check on the blocking pool.
    checks: Arc<tokio::sync::Semaphore>,
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
            .dns_resolver(Arc::new(crate::backchannel_target::Guard {
                allow_private: true,
            }))
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            checks: Arc::new(tokio::sync::Semaphore::new(signature_checks())),
        }
    }

    /// The cached answer for `uri`, if the cache may answer: while the document is fresh,
    /// for a refresh while the last refresh is recent, and in any case when a fetch started
    /// after `waited_since` (the caller waited for it: that fetch is its refresh).
    fn cached(
        &self,
        uri: &str,
        refresh: bool,
        waited_since: Option<Instant>,
    ) -> Option<Result<String, String>> {
        let now = Instant::now();
        let guard = self.cache.lock().ok()?;
        let e = guard.get(uri)?;
        let use_cached = waited_since.is_some_and(|t| e.fetched >= t)
            || if refresh {
                e.refreshed
                    .is_some_and(|r| now.saturating_duration_since(r) < MIN_REFRESH)
            } else {
                now.saturating_duration_since(e.fetched) < FRESH_FOR
            };
        use_cached.then(|| {
            e.text
                .as_deref()
                .map(str::to_owned)
                .ok_or_else(|| "the last fetch failed".to_owned())
        })
    }

    /// The lock that makes fetches of `uri` one at a time.
    fn flight(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut flights) = self.flights.lock() else {
            return Arc::default();
        };
        if flights.len() >= MAX_ENTRIES && !flights.contains_key(uri) {
            flights.clear();
        }
        flights.entry(uri.to_owned()).or_default().clone()
    }

    async fn fetch(&self, uri: &str) -> Result<String, String> {
        // The resolver judges the addresses of a host name; an address in the URL is judged
        // here, as the resolver is not asked for it.
        if let Err(refusal) = crate::backchannel_target::check_literal(uri, true) {
            return Err(format!("address refused ({})", refusal.as_str()));
        }
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
    async fn check_signature(&self, check: SignatureCheck) -> Result<(), SignatureError> {
        // The semaphore is never closed; a failed task (it cannot panic) verifies nothing.
        let Ok(permit) = self.checks.clone().acquire_owned().await else {
            return Err(SignatureError::Signature);
        };
        // The permit goes with the check: a caller that gives up waiting (its client went
        // away) does not free it while the check still runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check()
        })
        .await
        .unwrap_or(Err(SignatureError::Signature))
    }

    async fn jwks(&self, uri: &str, refresh: bool) -> Result<String, String> {
        if let Some(hit) = self.cached(uri, refresh, None) {
            return hit;
        }
        // Single flight: wait for a fetch in progress, then see whether it answered.
        let asked = Instant::now();
        let flight = self.flight(uri);
        let _turn = flight.lock().await;
        if let Some(hit) = self.cached(uri, refresh, Some(asked)) {
            return hit;
        }
        let now = Instant::now();
        let cached = self.cache.lock().ok().and_then(|c| c.get(uri).cloned());
        let result = self.fetch(uri).await;
        let last_refresh = cached.as_ref().and_then(|e| e.refreshed);
        let stale = cached.and_then(|e| e.text);
        let text = match &result {
            Ok(t) => Some(Arc::from(t.as_str())),
            Err(e) => {
                tracing::warn!(uri, error = %e, "fetching a remote key set or provider metadata failed");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A JWKS endpoint that answers slowly (so that requests overlap) and counts fetches.
    async fn jwks_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let body = format!(r#"{{"keys":[],"n":{n}}}"#);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, fetches)
    }

    async fn all_at_once(fetcher: &Arc<JwksFetcher>, url: &str, refresh: bool) -> Vec<String> {
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (fetcher, url) = (fetcher.clone(), url.to_owned());
                tokio::spawn(async move { fetcher.jwks(&url, refresh).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signature_checks_run_off_the_serving_threads_a_few_at_a_time() {
        let fetcher = Arc::new(JwksFetcher::new());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let checks: Vec<_> = (0..16)
            .map(|_| {
                let (fetcher, running, most) = (fetcher.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    let worker = std::thread::current().id();
                    fetcher
                        .check_signature(Box::new(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            let elsewhere = std::thread::current().id() != worker;
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                            if elsewhere {
                                Ok(())
                            } else {
                                Err(SignatureError::Signature)
                            }
                        }))
                        .await
                })
            })
            .collect();
        for c in checks {
            assert_eq!(c.await.unwrap(), Ok(()), "run on another thread");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=signature_checks()).contains(&most), "{most} at once");
    }

    #[tokio::test]
    async fn metadata_and_link_local_addresses_are_never_fetched() {
        let fetcher = JwksFetcher::new();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/jwks",
            "http://[fd00:ec2::254]/jwks",
            "http://0.0.0.0:8080/jwks",
        ] {
            let err = fetcher.fetch(url).await.unwrap_err();
            assert!(err.contains("address refused"), "{url}: {err}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_make_one_fetch_and_one_refresh_per_window() {
        let (url, fetches) = jwks_server().await;
        let fetcher = Arc::new(JwksFetcher::new());
        // 40 assertions arrive at once with nothing cached: one fetch, which all of them use.
        let docs = all_at_once(&fetcher, &url, false).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(docs.iter().all(|d| d.contains(r#""n":1"#)), "{docs:?}");
        // None of their signatures verified, so each asks for a refresh: one more fetch.
        let docs = all_at_once(&fetcher, &url, true).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert!(docs.iter().all(|d| d.contains(r#""n":2"#)), "{docs:?}");
        // Within the window, no more refreshes however many ask.
        all_at_once(&fetcher, &url, true).await;
        all_at_once(&fetcher, &url, false).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
