//! Deployment environments and trusted issuers in SQLite.

use async_trait::async_trait;

use tessera_core::environment::sdk_client_id;
use tessera_core::environment::DEFAULT_ENV;
use tessera_core::model::{ChangeKind, EnvDeletion, EnvRecord, TrustRecord};
use tessera_core::store::{StoreError, TrustStore};

use crate::{backend, log_change, rows, SqliteStore};

#[async_trait]
impl TrustStore for SqliteStore {
    async fn ensure_env(&self, name: &str, now: i64) -> Result<EnvRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let created = sqlx::query(
            "INSERT INTO envs (name, single_use_tokens, created_at) VALUES (?, 0, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if created > 0 {
            log_change(&mut tx, ChangeKind::Env, name, now).await?;
        }
        let row = sqlx::query("SELECT * FROM envs WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        rows::env(&row)
    }

    async fn get_env(&self, name: &str) -> Result<Option<EnvRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM envs WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::env(&r)).transpose()
    }

    async fn list_envs(&self) -> Result<Vec<EnvRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM envs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::env).collect()
    }

    async fn set_env_single_use(
        &self,
        name: &str,
        single_use: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = sqlx::query("UPDATE envs SET single_use_tokens = ? WHERE name = ?")
            .bind(single_use)
            .bind(name);
        Ok(self.logged(update, ChangeKind::Env, name, now).await? > 0)
    }

    async fn delete_env(&self, name: &str, now: i64) -> Result<EnvDeletion, StoreError> {
        if name == DEFAULT_ENV {
            return Err(StoreError::Conflict);
        }
        let sdk_client = sdk_client_id(name);
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // A write first, so that this transaction holds SQLite's write lock before it reads:
        // a concurrent `client create` then waits for it (and its client is refused if the
        // environment went) rather than this deletion failing on a stale read. Rolled back with
        // the rest when nothing is deleted.
        log_change(&mut tx, ChangeKind::Env, name, now).await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM envs WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if exists == 0 {
            return Ok(EnvDeletion::NotFound);
        }
        let in_use: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE env = ? AND client_id <> ?")
                .bind(name)
                .bind(&sdk_client)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if in_use > 0 {
            return Ok(EnvDeletion::InUse(u64::try_from(in_use).unwrap_or(0)));
        }
        for (sql, key) in [
            ("DELETE FROM trusted_issuers WHERE env = ?", name),
            (
                "DELETE FROM clients WHERE client_id = ?",
                sdk_client.as_str(),
            ),
            ("DELETE FROM envs WHERE name = ?", name),
        ] {
            sqlx::query(sql)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        log_change(&mut tx, ChangeKind::Trust, name, now).await?;
        log_change(&mut tx, ChangeKind::Client, &sdk_client, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(EnvDeletion::Deleted)
    }

    async fn insert_trust(&self, t: &TrustRecord) -> Result<(), StoreError> {
        tessera_core::store::check_keys(&t.keys)?;
        let claims = serde_json::to_string(&t.claims)
            .map_err(|e| StoreError::Corrupt(format!("claims: {e}")))?;
        let insert = sqlx::query(
            "INSERT INTO trusted_issuers (id, env, issuer, keys, jwks_uri, subject_claim, claims, \
             scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.env)
        .bind(&t.issuer)
        .bind(&t.keys)
        .bind(t.jwks_uri.as_deref())
        .bind(&t.subject_claim)
        .bind(claims)
        .bind(t.scopes.to_string())
        .bind(t.created_at);
        self.logged(insert, ChangeKind::Trust, &t.env, t.created_at)
            .await
            .map(|_| ())
    }

    async fn find_trust(&self, env: &str, issuer: &str) -> Result<Option<TrustRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM trusted_issuers WHERE env = ? AND issuer = ?")
            .bind(env)
            .bind(issuer)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::trust(&r)).transpose()
    }

    async fn list_trust(&self, env: Option<&str>) -> Result<Vec<TrustRecord>, StoreError> {
        let rows = match env {
            Some(env) => {
                sqlx::query("SELECT * FROM trusted_issuers WHERE env = ? ORDER BY created_at, id")
                    .bind(env)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT * FROM trusted_issuers ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(backend)?;
        rows.iter().map(rows::trust).collect()
    }

    async fn set_trust_keys(&self, id: &str, keys: &str, now: i64) -> Result<bool, StoreError> {
        tessera_core::store::check_keys(keys)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let env: Option<String> =
            sqlx::query_scalar("UPDATE trusted_issuers SET keys = ? WHERE id = ? RETURNING env")
                .bind(keys)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if let Some(env) = &env {
            log_change(&mut tx, ChangeKind::Trust, env, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(env.is_some())
    }

    async fn delete_trust(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let env: Option<String> =
            sqlx::query_scalar("DELETE FROM trusted_issuers WHERE id = ? RETURNING env")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if let Some(env) = &env {
            log_change(&mut tx, ChangeKind::Trust, env, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(env.is_some())
    }
}
