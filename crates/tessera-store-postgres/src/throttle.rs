//! Throttle budgets in PostgreSQL: one conditional UPSERT takes an attempt.

use async_trait::async_trait;
use sqlx::Row;

use tessera_core::store::{Attempt, StoreError, ThrottleStore};

use crate::{backend, PgStore};

#[async_trait]
impl ThrottleStore for PgStore {
    async fn take_attempt(
        &self,
        key: &str,
        limit: u32,
        window: i64,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        // One statement: concurrent calls on one key (from any node) queue on its row lock
        // and each sees the count the previous one left. A fresh or ended window starts over
        // at 1, a window with attempts left counts one more, a spent one is left alone and
        // returns no row.
        let row = sqlx::query(
            "INSERT INTO throttle (key, count, expires_at) VALUES ($1, 1, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN throttle.expires_at <= $2 THEN 1 ELSE throttle.count + 1 END, \
               expires_at = CASE WHEN throttle.expires_at <= $2 THEN $2 + $3 \
                                 ELSE throttle.expires_at END \
             WHERE throttle.expires_at <= $2 OR throttle.count < $4 \
             RETURNING count",
        )
        .bind(key)
        .bind(now)
        .bind(window)
        .bind(i64::from(limit))
        .fetch_optional(self.live()?)
        .await
        .map_err(backend)?;
        if let Some(row) = row {
            let n: i64 = row.try_get(0).map_err(backend)?;
            return Ok(Attempt::Taken(u32::try_from(n).unwrap_or(u32::MAX)));
        }
        let until: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(self.live()?)
                .await
                .map_err(backend)?;
        Ok(Attempt::Refused {
            until: until.unwrap_or(now + window),
        })
    }

    async fn return_attempt(&self, key: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE throttle SET count = count - 1 WHERE key = $1 AND count > 0 AND expires_at > $2",
        )
        .bind(key)
        .bind(now)
        .execute(self.live()?)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
