//! The audit trail in SQLite: an append-only table listed newest first by id.

use async_trait::async_trait;
use sqlx::Row;

use tessera_core::model::{AuditFilter, AuditRecord, AUDIT_PAGE_MAX};
use tessera_core::store::{AuditStore, StoreError};

use crate::{backend, SqliteStore, PURGE_BATCH};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn insert_audit(&self, r: &AuditRecord) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO audit_events \
             (at, kind, actor, target, outcome, request_id, source, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(r.at)
        .bind(&r.kind)
        .bind(&r.actor)
        .bind(&r.target)
        .bind(&r.outcome)
        .bind(&r.request_id)
        .bind(&r.source)
        .bind(&r.detail)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, kind, actor, target, outcome, request_id, source, detail \
             FROM audit_events \
             WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at <= ?2) \
               AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR target = ?4) \
               AND (?5 IS NULL OR kind = ?5) AND (?6 IS NULL OR id < ?6) \
               AND (?7 IS NULL OR outcome = ?7) \
             ORDER BY id DESC LIMIT ?8",
        )
        .bind(f.from)
        .bind(f.to)
        .bind(&f.actor)
        .bind(&f.target)
        .bind(&f.kind)
        .bind(f.before_id)
        .bind(&f.outcome)
        .bind(f.limit.clamp(1, AUDIT_PAGE_MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get("id").map_err(backend)?,
                    at: row.try_get("at").map_err(backend)?,
                    kind: row.try_get("kind").map_err(backend)?,
                    actor: row.try_get("actor").map_err(backend)?,
                    target: row.try_get("target").map_err(backend)?,
                    outcome: row.try_get("outcome").map_err(backend)?,
                    request_id: row.try_get("request_id").map_err(backend)?,
                    source: row.try_get("source").map_err(backend)?,
                    detail: row.try_get("detail").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn purge_audit(&self, before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM audit_events WHERE id IN \
                 (SELECT id FROM audit_events WHERE at < ? LIMIT ?)",
            )
            .bind(before)
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
