//! Housekeeping in PostgreSQL: readiness and the batched purge of expired rows.

use async_trait::async_trait;

use tessera_core::model::PurgeReport;
use tessera_core::opaque;
use tessera_core::store::{Maintenance, StoreError};

use crate::{backend, PgStore, CHANGE_RETENTION_SECS, PURGE_BATCH};

#[async_trait]
impl Maintenance for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn purge_expired(&self, now: i64) -> Result<PurgeReport, StoreError> {
        let int = |col: &'static str, v: i64| (col, Cutoff::Int(v));
        Ok(PurgeReport {
            // Token ids start with their expiry second: the expired ones are a key range.
            tokens: self
                .purge(
                    "access_tokens",
                    "token_id",
                    ("token_id <", Cutoff::Text(opaque::expiry_cutoff(now))),
                )
                .await?,
            revoked_jtis: self
                .purge("revoked_jtis", "jti", int("expires_at <=", now))
                .await?,
            used_jtis: self
                .purge("used_jtis", "key", int("expires_at <=", now))
                .await?,
            changes: self
                .purge(
                    "changes",
                    "id",
                    int("created_at <=", now - CHANGE_RETENTION_SECS),
                )
                .await?,
            // A retired key's `retires_at` is set; a NULL never compares <= cutoff.
            keys: self
                .purge("signing_keys", "kid", int("retires_at <=", now))
                .await?,
            codes: self
                .purge(
                    "authorization_codes",
                    "code_hash",
                    int("expires_at <=", now),
                )
                .await?,
            sessions: self
                .purge("sessions", "session_hash", int("expires_at <=", now))
                .await?,
            refresh_tokens: self
                .purge("refresh_tokens", "token_id", int("expires_at <=", now))
                .await?,
            grants: self
                .purge("grants", "grant_id", int("expires_at <=", now))
                .await?,
            throttle: self
                .purge("throttle", "key", int("expires_at <=", now))
                .await?,
        })
    }
}

/// The value a purge compares with.
enum Cutoff {
    Int(i64),
    Text(String),
}

impl PgStore {
    /// Deletes the rows of `table` for which `condition $1` holds, a batch at a time (so no
    /// statement holds many locks for long), until a batch comes back short; then vacuums
    /// the table. Rows another node
    /// is deleting at the same moment are skipped, not waited for. The names are this
    /// module's constants, never input.
    async fn purge(
        &self,
        table: &str,
        key_col: &str,
        (condition, cutoff): (&str, Cutoff),
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE {key_col} IN \
             (SELECT {key_col} FROM {table} WHERE {condition} $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
        );
        let mut total = 0;
        loop {
            let query = sqlx::query(&sql);
            let query = match &cutoff {
                Cutoff::Int(v) => query.bind(*v),
                Cutoff::Text(v) => query.bind(v.as_str()),
            };
            let n = query
                .bind(PURGE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
            total += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        if total > 0 {
            // Makes the deleted rows' space reusable now rather than at autovacuum's next
            // visit (up to a minute away, longer on a busy server), so a table that loses as
            // many rows as it gains keeps its size. VACUUM takes no lock that blocks reads or
            // writes; a table another node is vacuuming is skipped.
            let vacuum = format!("VACUUM (SKIP_LOCKED) {table}");
            if let Err(e) = sqlx::raw_sql(&vacuum).execute(&self.pool).await {
                tracing::warn!(error = %e, table, "vacuum after purge failed");
            }
        }
        Ok(total)
    }
}
