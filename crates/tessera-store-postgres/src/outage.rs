//! Knowing when the database is down, so that requests fail at once instead of waiting.
//!
//! Owns [`Outage`], the state one [`crate::PgStore`] shares with its watcher task, and
//! [`is_unavailable`], which tells a failure of the connection from a failure of a statement.
//! Without it, every request made while PostgreSQL is down waits the pool's whole acquire
//! timeout (sqlx keeps retrying a refused connection until then) and the readiness probe
//! hangs with them.
//!
//! The watcher holds one connection of its own and runs `SELECT 1` on it every
//! [`PROBE_INTERVAL`]. When that fails and a new connection cannot be made either, the store
//! is marked down, once, with one log line: from then on every statement is refused at once
//! with [`StoreError::Unavailable`] (the HTTP layer answers 503 with `Retry-After`). The
//! watcher keeps trying to connect every [`PROBE_INTERVAL`]; when it can, the store is marked
//! up again, with one log line. Pooled connections opened before the outage was noticed are
//! dead after a restart: they are dropped when next taken from the pool rather than failing a
//! request each.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use tessera_core::store::StoreError;

/// How often the watcher checks the database, up or down.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Longest one check may take before the database counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the database is reachable, shared by a store and its watcher.
#[derive(Debug)]
pub(crate) struct Outage {
    down: AtomicBool,
    /// When the last outage was noticed, in milliseconds after `origin` (0: never).
    noticed_at_ms: AtomicU64,
    origin: Instant,
}

impl Outage {
    pub(crate) fn new() -> Self {
        Self {
            down: AtomicBool::new(false),
            noticed_at_ms: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// `Unavailable` while the database is known to be down.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Acquire) {
            Err(StoreError::Unavailable("the database is down".into()))
        } else {
            Ok(())
        }
    }

    /// Whether a pooled connection this old was opened before the last outage was noticed
    /// (and so is most likely dead).
    pub(crate) fn predates_outage(&self, age: Duration) -> bool {
        let noticed = self.noticed_at_ms.load(Ordering::Acquire);
        if noticed == 0 {
            return false;
        }
        let now = self.origin.elapsed();
        let opened_ms = now.saturating_sub(age).as_millis();
        opened_ms <= u128::from(noticed)
    }

    fn mark_down(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.noticed_at_ms.store(ms, Ordering::Release);
        self.down.store(true, Ordering::Release);
    }

    fn mark_up(&self) {
        self.down.store(false, Ordering::Release);
    }
}

/// Whether a failure means the database cannot be reached (rather than that a statement
/// failed): the connection broke or was refused, no connection could be had in time, or the
/// server is shutting down, starting up, or out of connections (SQLSTATE class 08, 57P01–03,
/// 53300).
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Opens the watcher's connection and checks it answers.
async fn probe(opts: &PgConnectOptions, conn: &mut Option<PgConnection>) -> Result<(), String> {
    if let Some(c) = conn.as_mut() {
        match tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&mut *c)).await {
            Ok(Ok(_)) => return Ok(()),
            // A broken connection: try a new one before deciding.
            _ => *conn = None,
        }
    }
    let fresh = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut c = PgConnection::connect_with(opts).await?;
        sqlx::query("SELECT 1").execute(&mut c).await?;
        Ok::<_, sqlx::Error>(c)
    })
    .await;
    match fresh {
        Ok(Ok(c)) => {
            *conn = Some(c);
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// Watches the database until the store is dropped, logging once when it becomes
/// unreachable and once when it is back.
pub(crate) async fn watch(outage: Weak<Outage>, opts: PgConnectOptions) {
    let mut conn: Option<PgConnection> = None;
    let mut down_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(outage) = outage.upgrade() else {
            return;
        };
        let result = probe(&opts, &mut conn).await;
        match (result, down_since) {
            (Err(cause), None) => {
                outage.mark_down();
                down_since = Some(Instant::now());
                tracing::error!(
                    error = %cause,
                    "database unreachable: requests that need it are refused (503) until it \
                     is back"
                );
            }
            (Ok(()), Some(since)) => {
                outage.mark_up();
                down_since = None;
                tracing::info!(
                    down_for_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "database reachable again"
                );
            }
            _ => {}
        }
        drop::<Arc<Outage>>(outage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_an_outage_and_a_bad_statement_is_not() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_unavailable(&refused));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn connections_opened_before_an_outage_was_noticed_are_dropped() {
        let outage = Outage::new();
        assert!(outage.check().is_ok());
        assert!(!outage.predates_outage(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(20));
        outage.mark_down();
        assert!(matches!(outage.check(), Err(StoreError::Unavailable(_))));
        outage.mark_up();
        assert!(outage.check().is_ok());
        // Opened long before: dropped. Opened after the outage was noticed: kept.
        assert!(outage.predates_outage(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!outage.predates_outage(Duration::from_millis(5)));
    }
}
