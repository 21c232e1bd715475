//! Correctness under concurrency: many simultaneous token requests all succeed, every token
//! is distinct, and the tokens are honoured afterwards.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};
use reqwest::StatusCode;

use crate::support::{Creds, Server};

const CONCURRENCY: usize = 64;

/// Issues `n` tokens to `c` with `CONCURRENCY` requests in flight; returns them in order of
/// completion.
async fn issue_concurrently(s: &Server, c: &Creds, n: usize) -> Vec<String> {
    let url = s.url("/oauth2/token");
    let results: Vec<Result<String, String>> = stream::iter(0..n)
        .map(|i| {
            let req = s
                .http
                .post(&url)
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[("grant_type", "client_credentials")]);
            async move {
                let res = req.send().await.map_err(|e| format!("request {i}: {e}"))?;
                let status = res.status();
                let body: serde_json::Value =
                    res.json().await.map_err(|e| format!("request {i}: {e}"))?;
                if status != StatusCode::OK {
                    return Err(format!("request {i}: {status} {body}"));
                }
                body["access_token"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("request {i}: no access_token in {body}"))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    results.into_iter().map(Result::unwrap).collect()
}

async fn check_load(format: &str, n: usize) {
    let s = Server::start().await;
    let c = s
        .create_client(&["--scope", "read", "--access-token-format", format])
        .await;
    let observer = s.create_client(&[]).await;
    let tokens = issue_concurrently(&s, &c, n).await;
    assert_eq!(tokens.len(), n);
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), n, "every access token is distinct");
    // A sample spread over the run, introspected concurrently too.
    let sample: Vec<&String> = tokens.iter().step_by(n / 50).take(50).collect();
    assert_eq!(sample.len(), 50);
    let (sr, obs) = (&s, &observer);
    let inactive: Vec<String> = stream::iter(sample)
        .map(|t| async move { (t, sr.is_active(obs, t).await) })
        .buffer_unordered(16)
        .filter_map(|(t, active)| async move { (!active).then(|| t.chars().take(24).collect()) })
        .collect()
        .await;
    assert!(
        inactive.is_empty(),
        "inactive tokens from the sample: {inactive:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_jwt_requests_all_succeed_with_distinct_active_tokens() {
    check_load("jwt", 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_opaque_requests_all_succeed_with_distinct_stored_tokens() {
    check_load("opaque", 500).await;
}
