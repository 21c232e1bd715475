//! Opaque tokens, revocations and the replay store in SQLite. Token inserts and single-use
//! records are written by the group-commit writer ([`crate::writer`]).

use async_trait::async_trait;
use tokio::sync::oneshot;

use tessera_core::model::{ChangeKind, TokenRecord};
use tessera_core::store::{ReplayStore, StoreError, TokenStore};

use crate::writer::{InsertJob, Job, UseOnceJob};
use crate::{backend, log_change, rows, SqliteStore};

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job::Insert(InsertJob {
                token: token.clone(),
                done,
            }))
            .await
            .map_err(|_| StoreError::Backend("token writer stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Backend(e.into())),
            Err(_) => Err(StoreError::Backend("token writer stopped".into())),
        }
    }

    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_id = ?")
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::token(&r)).transpose()
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = sqlx::query(
            "UPDATE access_tokens SET revoked_at = ? \
             WHERE token_id = ? AND client_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n > 0 {
            log_change(&mut tx, ChangeKind::Token, token_id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let insert = sqlx::query(
            "INSERT INTO revoked_jtis (jti, client_id, expires_at, revoked_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .bind(now);
        self.logged(insert, ChangeKind::Jti, jti, now)
            .await
            .map(|_| ())
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM revoked_jtis WHERE jti = ?")
            .bind(jti)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT jti FROM revoked_jtis WHERE expires_at > ?")
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    async fn revoked_jtis_after(
        &self,
        now: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        // A range of the primary key: each page costs what it returns.
        sqlx::query_scalar(
            "SELECT jti FROM revoked_jtis WHERE jti > ? AND expires_at > ? \
             ORDER BY jti LIMIT ?",
        )
        .bind(after)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        // Through the group-commit writer: one per token request with a client assertion or
        // a DPoP proof, so concurrent requests share a transaction and an fsync.
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job::UseOnce(UseOnceJob {
                key: key.to_owned(),
                expires_at,
                done,
            }))
            .await
            .map_err(|_| StoreError::Backend("writer stopped".into()))?;
        match wait.await {
            Ok(Ok(first)) => Ok(first),
            Ok(Err(e)) => Err(StoreError::Backend(e.into())),
            Err(_) => Err(StoreError::Backend("writer stopped".into())),
        }
    }

    async fn was_used(&self, key: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM used_jtis WHERE key = ?)")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }
}
