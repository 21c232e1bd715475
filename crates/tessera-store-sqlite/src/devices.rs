//! Device authorizations (RFC 8628) in SQLite.
//!
//! A poll is one `UPDATE … RETURNING`: SQLite runs it atomically, so the statement that
//! records a poll also decides its answer (`poll_outcome`), from the row as it was; of
//! concurrent polls of an approved device code exactly one sees `issued`. It runs in the
//! group-commit writer's transactions ([`crate::writer`]), so polls share an fsync with each
//! other and with token inserts instead of each taking the write lock on its own.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use tokio::sync::oneshot;

use tessera_core::model::{DeviceApproval, DeviceCodeRecord, DevicePoll, DeviceStatus};
use tessera_core::secret::SecretHash;
use tessera_core::store::{DeviceStore, StoreError};

use crate::writer::{Job, PollJob};
use crate::{backend, SqliteStore};

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn device(row: &SqliteRow) -> Result<DeviceCodeRecord, StoreError> {
    let status: String = get(row, "status")?;
    Ok(DeviceCodeRecord {
        device_code_hash: SecretHash::from_stored(get::<String>(row, "device_code_hash")?),
        user_code: get(row, "user_code")?,
        client_id: get(row, "client_id")?,
        scope: get(row, "scope")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        interval: get(row, "poll_interval")?,
        last_poll_at: get(row, "last_poll_at")?,
        status: DeviceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("device status {status}")))?,
        user_id: get(row, "user_id")?,
        auth_time: get(row, "auth_time")?,
    })
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn insert_device_code(&self, d: &DeviceCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, issued_at, \
             expires_at, poll_interval, last_poll_at, status, user_id, auth_time) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.device_code_hash.as_str())
        .bind(&d.user_code)
        .bind(&d.client_id)
        .bind(&d.scope)
        .bind(d.issued_at)
        .bind(d.expires_at)
        .bind(d.interval)
        .bind(d.last_poll_at)
        .bind(d.status.as_str())
        .bind(d.user_id.as_deref())
        .bind(d.auth_time)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_device_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        sqlx::query("SELECT * FROM device_codes WHERE user_code = ?")
            .bind(user_code)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(device)
            .transpose()
    }

    async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let status = match approval {
            Some(_) => DeviceStatus::Approved,
            None => DeviceStatus::Denied,
        };
        let n = sqlx::query(
            "UPDATE device_codes SET status = ?, user_id = ?, auth_time = ?, \
             scope = COALESCE(?, scope) \
             WHERE user_code = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(status.as_str())
        .bind(approval.map(|a| a.user_id.as_str()))
        .bind(approval.map(|a| a.auth_time))
        .bind(approval.map(|a| a.scope.as_str()))
        .bind(user_code)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn poll_device_code(
        &self,
        device_code_hash: &SecretHash,
        client_id: &str,
        now: i64,
        slow_down_step: i64,
    ) -> Result<DevicePoll, StoreError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job::Poll(PollJob {
                device_code_hash: device_code_hash.as_str().to_owned(),
                client_id: client_id.to_owned(),
                now,
                slow_down_step,
                done,
            }))
            .await
            .map_err(|_| StoreError::Backend("writer stopped".into()))?;
        let polled = match wait.await {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => return Err(StoreError::Backend(e.into())),
            Err(_) => return Err(StoreError::Backend("writer stopped".into())),
        };
        let Some(row) = polled else {
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM device_codes WHERE device_code_hash = ? AND client_id = ?",
            )
            .bind(device_code_hash.as_str())
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            return Ok(match known {
                Some(_) => DevicePoll::Expired,
                None => DevicePoll::Unknown,
            });
        };
        let record = device(&row)?;
        let outcome: String = get(&row, "poll_outcome")?;
        Ok(match outcome.as_str() {
            "slow_down" => DevicePoll::SlowDown {
                interval: record.interval,
            },
            "issued" => DevicePoll::Issued(record),
            "pending" => DevicePoll::Pending,
            "denied" => DevicePoll::Denied,
            "used" => DevicePoll::Used,
            other => return Err(StoreError::Corrupt(format!("device poll outcome {other}"))),
        })
    }
}
