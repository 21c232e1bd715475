//! Opaque tokens, revocations and the replay store in PostgreSQL.

use async_trait::async_trait;
use tokio::sync::oneshot;

use tessera_core::model::{ChangeKind, TokenRecord};
use tessera_core::store::{ReplayStore, StoreError, TokenStore};

use crate::writer::{InsertJob, UseOnceJob};
use crate::{backend, log_change, rows, PgStore};

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.outage.check()?;
        let (done, wait) = oneshot::channel();
        self.writer
            .send(InsertJob {
                token: token.clone(),
                done,
            })
            .await
            .map_err(|_| StoreError::Backend("token writer stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((e, true))) => Err(StoreError::Unavailable(e.into())),
            Ok(Err((e, false))) => Err(StoreError::Backend(e.into())),
            Err(_) => Err(StoreError::Backend("token writer stopped".into())),
        }
    }

    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_id = $1")
            .bind(token_id)
            .fetch_optional(self.live()?)
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
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        let n = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 \
             WHERE token_id = $2 AND client_id = $3 AND revoked_at IS NULL",
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
            "INSERT INTO revoked_jtis (jti, client_id, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
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
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_jtis WHERE jti = $1)")
            .bind(jti)
            .fetch_one(self.live()?)
            .await
            .map_err(backend)
    }

    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT jti FROM revoked_jtis WHERE expires_at > $1")
            .bind(now)
            .fetch_all(self.live()?)
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
            "SELECT jti FROM revoked_jtis WHERE jti > $1 AND expires_at > $2 \
             ORDER BY jti LIMIT $3",
        )
        .bind(after)
        .bind(now)
        .bind(limit)
        .fetch_all(self.live()?)
        .await
        .map_err(backend)
    }
}

#[async_trait]
impl ReplayStore for PgStore {
    async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        // Through the single-use writers: one per token request with a client assertion or a
        // DPoP proof, so concurrent requests share a statement and a commit. Of several nodes
        // inserting the same key at once, the unique index lets exactly one row in; the
        // others wait for it to commit and then insert nothing.
        self.outage.check()?;
        let (done, wait) = oneshot::channel();
        self.once
            .send(UseOnceJob {
                key: key.to_owned(),
                expires_at,
                done,
            })
            .await
            .map_err(|_| StoreError::Backend("single-use writer stopped".into()))?;
        match wait.await {
            Ok(Ok(first)) => Ok(first),
            Ok(Err((e, true))) => Err(StoreError::Unavailable(e.into())),
            Ok(Err((e, false))) => Err(StoreError::Backend(e.into())),
            Err(_) => Err(StoreError::Backend("single-use writer stopped".into())),
        }
    }

    async fn was_used(&self, key: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM used_jtis WHERE key = $1)")
            .bind(key)
            .fetch_one(self.live()?)
            .await
            .map_err(backend)
    }
}
