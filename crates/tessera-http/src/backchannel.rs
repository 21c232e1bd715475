//! Delivering logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.5).
//!
//! Owns the outbox worker: a background task that takes the due rows of the store's outbox
//! ([`tessera_core::store::GrantStore::due_logouts`]), signs a fresh logout token for each
//! ([`backchannel_logout::logout_token`]) and POSTs it as `logout_token`, form-encoded, to the
//! client's `backchannel_logout_uri`. A 200 or 204 answer ends the row; anything else (another
//! status, a refused connection, a timeout) schedules a retry after
//! [`backchannel_logout::backoff`], until [`backchannel_logout::DELIVERY_WINDOW`] has passed
//! since the row was queued, when it is given up and logged. Rows live in the database, so a
//! restart resumes where the last process stopped. The client follows no redirects (a
//! registration cannot bounce the server's request elsewhere) and waits at most
//! [`SEND_TIMEOUT`]; the token is never logged.

use std::time::Duration;

use tessera_core::backchannel_logout::{self, Delivery};
use tessera_core::model::LogoutDeliveryRecord;
use tessera_core::store::GrantStore;

use crate::state::AppState;

/// How often the worker looks for due deliveries.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long one delivery may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How many deliveries one pass takes.
const BATCH: u64 = 50;

/// Starts the worker; it runs until the handle is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
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

/// One pass over the due deliveries.
async fn pass(
    state: &AppState,
    http: &reqwest::Client,
) -> Result<(), tessera_core::store::StoreError> {
    let store = state.store();
    let due = store.due_logouts(state.now(), BATCH).await?;
    for row in due {
        let now = state.now();
        if send(state, http, &row, now).await {
            store.end_logout(&row.id).await?;
            tracing::info!(client_id = %row.client_id, "logout token delivered");
            continue;
        }
        let attempts = row.attempts.saturating_add(1);
        let next = now.saturating_add(backchannel_logout::backoff(row.attempts));
        if next
            > row
                .created_at
                .saturating_add(backchannel_logout::DELIVERY_WINDOW)
        {
            store.end_logout(&row.id).await?;
            tracing::warn!(
                client_id = %row.client_id,
                attempts,
                "logout token not delivered in time; given up"
            );
        } else {
            store.retry_logout(&row.id, attempts, next).await?;
        }
    }
    Ok(())
}

/// Signs and sends one logout token; whether the client took it (200 or 204).
async fn send(
    state: &AppState,
    http: &reqwest::Client,
    row: &LogoutDeliveryRecord,
    now: i64,
) -> bool {
    let delivery = Delivery {
        client_id: row.client_id.clone(),
        uri: row.uri.clone(),
        sub: row.sub.clone(),
        sid: row.sid.clone(),
    };
    let keys = state.keys();
    let token =
        match backchannel_logout::logout_token(&keys, &state.config().issuer, &delivery, now) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "could not sign a logout token");
                return false;
            }
        };
    let sent = http
        .post(&row.uri)
        .header(reqwest::header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match sent {
        Ok(res) if matches!(res.status().as_u16(), 200 | 204) => true,
        Ok(res) => {
            tracing::info!(client_id = %row.client_id, status = res.status().as_u16(), "logout token refused; will retry");
            false
        }
        Err(e) => {
            tracing::info!(client_id = %row.client_id, error = %e.without_url(), "logout token not sent; will retry");
            false
        }
    }
}
