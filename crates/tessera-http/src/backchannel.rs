//! Delivering logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.5).
//!
//! Owns the outbox worker: a background task that claims the due rows of the store's outbox
//! ([`tessera_core::store::GrantStore::claim_logouts`]), signs a fresh logout token for each
//! ([`backchannel_logout::logout_token`]) and POSTs it as `logout_token`, form-encoded, to the
//! client's `backchannel_logout_uri`, the rows of one claim at once.
//!
//! - A 200 or 204 answer ends the row.
//! - Anything else (another status, a refused connection, a timeout) schedules a retry after
//!   [`backchannel_logout::backoff`], until `backchannel_logout_retry_window` seconds (600 by
//!   default) have passed since the row was queued, when it is given up and logged.
//! - Past `backchannel_logout_max_queued` waiting deliveries (10 000 by default), each pass
//!   drops the oldest, logged and counted.
//! - A target whose address is refused ([`crate::backchannel_target`]: link-local, metadata,
//!   unspecified, multicast, broadcast always; loopback and private unless allowed) ends the
//!   row at once, with a warning and an audit event (`logout_delivery_refused`), no retry.
//!
//! Several nodes share one database: a claim leases its rows (their next attempt moves to the
//! end of the lease, in the same atomic statement; `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
//! no two nodes send one delivery at once, and a node that dies holding a lease only delays
//! its rows until the lease ends. The lease is twice the request timeout plus
//! [`LEASE_MARGIN`]:
//! every row of a claim is sent concurrently, and the address check before a send and the
//! send itself are each bounded by that timeout, so each row is done (ended or rescheduled)
//! before its lease passes unless the database itself stalls. Rows live in the database, so a restart resumes where the last
//! process stopped. The client follows no redirects, uses no proxy and waits at most
//! `backchannel_logout_timeout` (5 s by default); the token is never logged. Counted in
//! `tessera_logout_deliveries_total` (`docs/metrics.md`).

use std::time::Duration;

use tessera_core::audit::{self, Actor, AuditEvent, AuditKind};
use tessera_core::backchannel_logout::{self, Delivery};
use tessera_core::model::LogoutDeliveryRecord;
use tessera_core::store::{GrantStore, StoreError};

use crate::backchannel_target::{self as target, Refusal};
use crate::state::AppState;

/// How often the worker looks for due deliveries.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What a lease adds to the time an attempt may take, seconds: time to sign, and to record
/// the outcome.
pub const LEASE_MARGIN: i64 = 10;

/// How many deliveries one claim takes (and sends at once).
const BATCH: u64 = 32;

/// How one attempt ended.
enum Attempt {
    /// The client took it (200 or 204).
    Sent,
    /// Failed; try again later.
    Failed,
    /// The target's address is refused: never try again.
    Refused(Refusal),
}

/// Starts the worker; it runs until the handle is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = match target::client(
            state.http().backchannel_logout_timeout,
            state.http().backchannel_logout_private_addresses,
        ) {
            Ok(http) => http,
            Err(e) => {
                // Without the guarded client nothing is sent; the outbox keeps its rows.
                tracing::error!(error = %e, "the logout token sender could not start");
                return;
            }
        };
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = pass(&state, &http).await {
                tracing::warn!(error = %e, "logout token delivery pass failed");
            }
        }
    })
}

/// The lease of a claim, seconds: the address check and the request, each bounded by the
/// request timeout, and [`LEASE_MARGIN`].
fn lease(state: &AppState) -> i64 {
    i64::try_from(state.http().backchannel_logout_timeout.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_mul(2)
        .saturating_add(LEASE_MARGIN)
}

/// One pass: claim the due deliveries and attempt each, at once.
async fn pass(state: &AppState, http: &reqwest::Client) -> Result<(), StoreError> {
    // The outbox's bound: past it, the oldest waiting deliveries go.
    let dropped = state
        .store()
        .queue_logouts(&[], state.http().backchannel_logout_max_queued)
        .await?;
    if dropped > 0 {
        state.metrics().logout_deliveries("dropped", dropped);
        tracing::warn!(
            dropped,
            "the logout token outbox is full: the oldest waiting deliveries were dropped"
        );
    }
    let now = state.now();
    let claimed = state
        .store()
        .claim_logouts(now, now.saturating_add(lease(state)), BATCH)
        .await?;
    if claimed.is_empty() {
        return Ok(());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for row in claimed {
        let (state, http) = (state.clone(), http.clone());
        tasks.spawn(async move { attempt(&state, &http, row).await });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Err(e)) => tracing::warn!(error = %e, "recording a logout delivery failed"),
            Err(e) => tracing::warn!(error = %e, "a logout delivery task failed"),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// Attempts one claimed delivery and records how it ended.
async fn attempt(
    state: &AppState,
    http: &reqwest::Client,
    row: LogoutDeliveryRecord,
) -> Result<(), StoreError> {
    let store = state.store();
    let outcome = send(state, http, &row).await;
    let now = state.now();
    match outcome {
        Attempt::Sent => {
            store.end_logout(&row.id).await?;
            state.metrics().logout_delivery("sent");
            tracing::info!(client_id = %row.client_id, "logout token delivered");
        }
        Attempt::Refused(refusal) => {
            store.end_logout(&row.id).await?;
            state.metrics().logout_delivery("dropped");
            tracing::warn!(
                client_id = %row.client_id,
                reason = refusal.as_str(),
                "logout token not sent: the client's back-channel logout URI resolves to a \
                 refused address; given up"
            );
            let event = AuditEvent::new(now, AuditKind::LogoutDeliveryRefused, Actor::Anonymous)
                .target(row.client_id.clone())
                .failed()
                .detail(serde_json::json!({ "reason": refusal.as_str() }));
            audit::record(store, event).await;
        }
        Attempt::Failed => {
            state.metrics().logout_delivery("failed");
            let attempts = row.attempts.saturating_add(1);
            let next = now.saturating_add(backchannel_logout::backoff(row.attempts));
            let window = state.http().backchannel_logout_retry_window;
            if next > row.created_at.saturating_add(window) {
                store.end_logout(&row.id).await?;
                state.metrics().logout_delivery("dropped");
                tracing::warn!(
                    client_id = %row.client_id,
                    attempts,
                    "logout token not delivered in time; given up"
                );
            } else {
                store.retry_logout(&row.id, attempts, next).await?;
            }
        }
    }
    Ok(())
}

/// Checks the target, signs and sends one logout token.
async fn send(state: &AppState, http: &reqwest::Client, row: &LogoutDeliveryRecord) -> Attempt {
    let allow_private = state.http().backchannel_logout_private_addresses;
    // The look-up is bounded as the request is, so an attempt ends well within its lease.
    let timeout = state.http().backchannel_logout_timeout;
    match tokio::time::timeout(timeout, target::check(&row.uri, allow_private)).await {
        Ok(Err(refusal)) => return Attempt::Refused(refusal),
        Ok(Ok(())) => {}
        Err(_) => {
            tracing::info!(client_id = %row.client_id, "logout token target not resolved in time; will retry");
            return Attempt::Failed;
        }
    }
    let delivery = Delivery {
        client_id: row.client_id.clone(),
        uri: row.uri.clone(),
        sub: row.sub.clone(),
        sid: row.sid.clone(),
    };
    let now = state.now();
    let token = match backchannel_logout::logout_token(
        &state.keys(),
        &state.config().issuer,
        &delivery,
        now,
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not sign a logout token");
            return Attempt::Failed;
        }
    };
    // The resolver of `http` applies the same address rule to the address it connects to
    // (a name resolving elsewhere since the check fails here, and is retried).
    let sent = http
        .post(&row.uri)
        .header(reqwest::header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match sent {
        Ok(res) if matches!(res.status().as_u16(), 200 | 204) => Attempt::Sent,
        Ok(res) => {
            tracing::info!(client_id = %row.client_id, status = res.status().as_u16(), "logout token refused; will retry");
            Attempt::Failed
        }
        Err(e) => {
            tracing::info!(client_id = %row.client_id, error = %e.without_url(), "logout token not sent; will retry");
            Attempt::Failed
        }
    }
}
