//! Signing keys and the change feed in SQLite.

use async_trait::async_trait;
use sqlx::Row;

use tessera_core::model::{Change, ChangeKind, KeyRecord};
use tessera_core::store::{ChangeFeed, KeyStore, StoreError};

use crate::{backend, log_change, rows, SqliteStore};

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, k: &KeyRecord) -> Result<bool, StoreError> {
        // One statement that writes: SQLite takes the write lock before it reads, so no
        // `reseal_keys` can slip between the check and the insert.
        let insert = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at, \
             activates_at, retires_at, sealed_by) SELECT ?, ?, ?, ?, ?, ?, ?, ? \
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys \
                               WHERE sealed_by IS NOT NULL AND sealed_by IS NOT ?)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_sealed)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.activates_at)
        .bind(k.retires_at)
        .bind(&k.sealed_by)
        .bind(&k.sealed_by);
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = insert
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        log_change(&mut tx, ChangeKind::Keys, "", k.created_at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::key).collect()
    }

    async fn reseal_keys(
        &self,
        sealed: &[(String, Vec<u8>)],
        sealed_by: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The change-feed entry first: a write, so this transaction holds SQLite's write lock
        // from here on and no key can be inserted until it ends.
        log_change(&mut tx, ChangeKind::Keys, "", now).await?;
        let mut updated = 0;
        for (kid, private_sealed) in sealed {
            updated += sqlx::query(
                "UPDATE signing_keys SET private_sealed = ?, sealed_by = ? WHERE kid = ?",
            )
            .bind(private_sealed)
            .bind(sealed_by)
            .bind(kid)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        }
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if u64::try_from(stored).unwrap_or(u64::MAX) != updated {
            // A key was added since the caller read them: it would stay under the old secret.
            return Ok(false);
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError> {
        let update = sqlx::query("UPDATE signing_keys SET retires_at = ? WHERE kid = ?")
            .bind(retires_at)
            .bind(kid);
        self.logged(update, ChangeKind::Keys, "", retires_at)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        // The feed may have been purged whole: the horizon keeps the last position given.
        sqlx::query_scalar(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM changes), 0), \
             (SELECT seq FROM change_feed_horizon))",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind").map_err(backend)?;
                Ok(Change {
                    seq: r.try_get("seq").map_err(backend)?,
                    kind: ChangeKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("change kind {kind}")))?,
                    key: r.try_get("key").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn feed_horizon(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT seq FROM change_feed_horizon")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }
}
