//! Signing keys and the change feed in PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;

use tessera_core::model::{Change, ChangeKind, KeyRecord};
use tessera_core::store::{ChangeFeed, KeyStore, StoreError};

use crate::{backend, log_change, rows, PgStore};

#[async_trait]
impl KeyStore for PgStore {
    async fn insert_key(&self, k: &KeyRecord) -> Result<bool, StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        // The lock `reseal_keys` also takes (it conflicts with itself, not with readers), so
        // no re-sealing commits between the check and the insert.
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let n = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at, \
             activates_at, retires_at, sealed_by) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys \
                               WHERE sealed_by IS NOT NULL AND sealed_by IS DISTINCT FROM $8)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_sealed)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.activates_at)
        .bind(k.retires_at)
        .bind(&k.sealed_by)
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
            .fetch_all(self.live()?)
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
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let mut updated = 0;
        for (kid, private_sealed) in sealed {
            updated += sqlx::query(
                "UPDATE signing_keys SET private_sealed = $1, sealed_by = $2 WHERE kid = $3",
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
        log_change(&mut tx, ChangeKind::Keys, "", now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError> {
        let update = sqlx::query("UPDATE signing_keys SET retires_at = $1 WHERE kid = $2")
            .bind(retires_at)
            .bind(kid);
        self.logged(update, ChangeKind::Keys, "", retires_at)
            .await
            .map(|_| ())
    }
}

impl PgStore {
    /// Gives feed positions to the entries that committed since the last call (by any node);
    /// see `publish_changes()` in the migration. Returns how many it published.
    pub async fn publish_changes(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT publish_changes()")
            .fetch_one(self.live()?)
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl ChangeFeed for PgStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        self.publish_changes().await?;
        sqlx::query_scalar("SELECT seq FROM change_feed_head")
            .fetch_one(self.live()?)
            .await
            .map_err(backend)
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        self.publish_changes().await?;
        let rows =
            sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(seq)
                .bind(limit)
                .fetch_all(self.live()?)
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
            .fetch_one(self.live()?)
            .await
            .map_err(backend)
    }
}
