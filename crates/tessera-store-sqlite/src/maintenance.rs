//! Housekeeping in SQLite: readiness and the batched purge of expired rows.

use async_trait::async_trait;

use tessera_core::model::PurgeReport;
use tessera_core::opaque;
use tessera_core::store::{Maintenance, StoreError};

use crate::{backend, SqliteStore, PURGE_BATCH};

#[async_trait]
impl Maintenance for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn recorded_issuer(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM metadata WHERE name = 'issuer'")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn record_issuer(
        &self,
        issuer: &str,
        replace: bool,
        now: i64,
    ) -> Result<String, StoreError> {
        let on_conflict = if replace {
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        sqlx::query(&format!(
            "INSERT INTO metadata (name, value, updated_at) VALUES ('issuer', ?, ?) \
             ON CONFLICT (name) {on_conflict}"
        ))
        .bind(issuer)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        self.recorded_issuer()
            .await?
            .ok_or_else(|| StoreError::Corrupt("the recorded issuer vanished".into()))
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
            changes: self.purge_changes(now - self.change_retention).await?,
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
            device_codes: self
                .purge(
                    "device_codes",
                    "device_code_hash",
                    int("expires_at <=", now),
                )
                .await?,
        })
    }
}

/// The value a purge compares with.
enum Cutoff {
    Int(i64),
    Text(String),
}

impl SqliteStore {
    /// Purges the change-feed entries created at or before `cutoff`, as a prefix of the feed:
    /// first raises the feed's horizon to the newest of them (so a reader that checks the
    /// horizon after polling knows whether it may have missed something), then deletes every
    /// entry at or below it.
    async fn purge_changes(&self, cutoff: i64) -> Result<u64, StoreError> {
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM changes WHERE created_at <= ?")
                .bind(cutoff)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        let Some(newest) = newest else {
            return Ok(0);
        };
        sqlx::query("UPDATE change_feed_horizon SET seq = MAX(seq, ?)")
            .bind(newest)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        self.purge("changes", "seq", ("seq <=", Cutoff::Int(newest)))
            .await
    }

    /// Deletes the rows of `table` for which `condition ?` holds with the cutoff, a batch at
    /// a time (so no lock is held long), until a batch comes back short. The names are this
    /// module's constants, never input.
    async fn purge(
        &self,
        table: &str,
        key_col: &str,
        (condition, cutoff): (&str, Cutoff),
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE {key_col} IN \
             (SELECT {key_col} FROM {table} WHERE {condition} ? LIMIT ?)"
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
                return Ok(total);
            }
        }
    }
}
