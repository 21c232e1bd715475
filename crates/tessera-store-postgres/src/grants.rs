//! Authorization codes, user grants and refresh tokens in PostgreSQL.

use async_trait::async_trait;

use tessera_core::model::{
    ChangeKind, CodeRecord, CodeUse, GrantRecord, LogoutDeliveryRecord, RefreshRecord,
};
use tessera_core::secret::SecretHash;
use tessera_core::store::{GrantStore, StoreError};

use crate::{backend, log_change, rows, PgStore};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// Revokes the live grants of `user_id` (to `client_id` only, if given) inside `tx`, logging a
/// `Grant` change for each; returns how many.
pub(crate) async fn revoke_user_grants_in(
    tx: &mut Tx<'_>,
    user_id: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<u64, StoreError> {
    let grants: Vec<String> = sqlx::query_scalar(
        "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
         AND ($3::text IS NULL OR client_id = $4) RETURNING grant_id",
    )
    .bind(now)
    .bind(user_id)
    .bind(client_id)
    .bind(client_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
    for grant_id in &grants {
        log_change(tx, ChangeKind::Grant, grant_id, now).await?;
    }
    Ok(u64::try_from(grants.len()).unwrap_or(u64::MAX))
}

async fn insert_refresh(tx: &mut Tx<'_>, r: &RefreshRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_id, token_hash, grant_id, client_id, scope, \
         issued_at, expires_at, used_at, successor_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.token_id)
    .bind(r.token_hash.as_str())
    .bind(&r.grant_id)
    .bind(&r.client_id)
    .bind(&r.scope)
    .bind(r.issued_at)
    .bind(r.expires_at)
    .bind(r.used_at)
    .bind(r.successor_sealed.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl GrantStore for PgStore {
    async fn insert_code(&self, c: &CodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, \
             nonce, code_challenge, code_challenge_method, auth_time, grant_id, extra, issued_at, \
             expires_at, sid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.code_hash.as_str())
        .bind(&c.client_id)
        .bind(&c.user_id)
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(c.nonce.as_deref())
        .bind(c.code_challenge.as_deref())
        .bind(c.code_challenge_method.as_deref())
        .bind(c.auth_time)
        .bind(&c.grant_id)
        .bind(&c.extra)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .bind(c.sid.as_deref())
        .execute(self.live()?)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn use_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeUse, StoreError> {
        // One statement: SQLite runs it atomically, so exactly one caller sees the row change.
        let spent = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 \
             WHERE code_hash = $2 AND used_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(code_hash.as_str())
        .fetch_optional(self.live()?)
        .await
        .map_err(backend)?;
        if let Some(row) = spent {
            return Ok(CodeUse::Fresh(rows::code(&row)?));
        }
        let row = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1")
            .bind(code_hash.as_str())
            .fetch_optional(self.live()?)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(r) => CodeUse::Replayed(rows::code(&r)?),
            None => CodeUse::Unknown,
        })
    }

    async fn insert_grant(
        &self,
        g: &GrantRecord,
        refresh: Option<&RefreshRecord>,
    ) -> Result<(), StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO grants (grant_id, client_id, user_id, scope, auth_time, nonce, \
             token_epoch, created_at, refresh_expires_at, expires_at, revoked_at, claims, sid, dpop_jkt, \
             x5t_s256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&g.grant_id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(&g.scope)
        .bind(g.auth_time)
        .bind(g.nonce.as_deref())
        .bind(g.token_epoch)
        .bind(g.created_at)
        .bind(g.refresh_expires_at)
        .bind(g.expires_at)
        .bind(g.revoked_at)
        .bind(g.claims.as_deref())
        .bind(g.sid.as_deref())
        .bind(g.dpop_jkt.as_deref())
        .bind(g.x5t_s256.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(r) = refresh {
            insert_refresh(&mut tx, r).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM grants WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(self.live()?)
            .await
            .map_err(backend)?;
        row.map(|r| rows::grant(&r)).transpose()
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        let n = sqlx::query(
            "UPDATE grants SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n > 0 {
            log_change(&mut tx, ChangeKind::Grant, grant_id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn list_user_grants(&self, user_id: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM grants WHERE user_id = $1 ORDER BY created_at, grant_id")
                .bind(user_id)
                .fetch_all(self.live()?)
                .await
                .map_err(backend)?;
        rows.iter().map(rows::grant).collect()
    }

    async fn queue_logouts(
        &self,
        rows: &[LogoutDeliveryRecord],
        max_queued: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        for r in rows {
            sqlx::query(
                "INSERT INTO logout_deliveries (id, client_id, uri, sub, sid, attempts, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&r.id)
            .bind(&r.client_id)
            .bind(&r.uri)
            .bind(&r.sub)
            .bind(r.sid.as_deref())
            .bind(r.attempts)
            .bind(r.next_attempt_at)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        let keep = i64::try_from(max_queued).unwrap_or(i64::MAX);
        let dropped = sqlx::query(
            "DELETE FROM logout_deliveries WHERE id NOT IN (SELECT id FROM logout_deliveries \
             ORDER BY created_at DESC, id DESC LIMIT $1)",
        )
        .bind(keep)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        tx.commit().await.map_err(backend)?;
        Ok(dropped)
    }

    async fn claim_logouts(
        &self,
        now: i64,
        lease_until: i64,
        limit: u64,
    ) -> Result<Vec<LogoutDeliveryRecord>, StoreError> {
        // `FOR UPDATE SKIP LOCKED`: a concurrent claim on another node passes over the rows
        // this one is taking instead of waiting for them, and once this commits they are no
        // longer due, so each due row goes to exactly one claimer.
        let rows = sqlx::query(
            "WITH due AS (SELECT id FROM logout_deliveries WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE logout_deliveries d SET next_attempt_at = $3 FROM due WHERE d.id = due.id \
             RETURNING d.*",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(lease_until)
        .fetch_all(self.live()?)
        .await
        .map_err(backend)?;
        let mut claimed = rows
            .iter()
            .map(rows::logout_delivery)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    async fn end_logout(&self, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM logout_deliveries WHERE id = $1")
            .bind(id)
            .execute(self.live()?)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn retry_logout(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE logout_deliveries SET attempts = $1, next_attempt_at = $2 WHERE id = $3",
        )
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(id)
        .execute(self.live()?)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn session_grants(&self, sid: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM grants WHERE sid = $1 ORDER BY created_at, grant_id")
            .bind(sid)
            .fetch_all(self.live()?)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::grant).collect()
    }

    async fn revoke_user_grants(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        let n = revoke_user_grants_in(&mut tx, user_id, client_id, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }

    async fn get_refresh_token(&self, token_id: &str) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_id = $1")
            .bind(token_id)
            .fetch_optional(self.live()?)
            .await
            .map_err(backend)?;
        row.map(|r| rows::refresh(&r)).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        token_id: &str,
        successor: &RefreshRecord,
        successor_sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        let n = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1, successor_sealed = $2 \
             WHERE token_id = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(successor_sealed)
        .bind(token_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, successor).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn extend_refresh_token(
        &self,
        token_id: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE refresh_tokens SET expires_at = $1 WHERE token_id = $2 AND used_at IS NULL",
        )
        .bind(expires_at)
        .bind(token_id)
        .execute(self.live()?)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n == 1)
    }
}
