//! Device authorizations (RFC 8628) in PostgreSQL.
//!
//! A poll is one `UPDATE … RETURNING`: the row lock makes it atomic (a concurrent poll waits and
//! then reads the row as this one left it), so the statement that
//! records a poll also decides its answer (`poll_outcome`), from the row as it was; of
//! concurrent polls of an approved device code exactly one sees `issued`.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;

use tessera_core::model::{DeviceApproval, DeviceCodeRecord, DevicePoll, DeviceStatus};
use tessera_core::secret::SecretHash;
use tessera_core::store::{DeviceStore, StoreError};

use crate::{backend, PgStore};

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn device(row: &PgRow) -> Result<DeviceCodeRecord, StoreError> {
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

/// The poll statement. Every `SET` expression reads the row as it was before the statement.
const POLL: &str = "UPDATE device_codes SET \
     poll_outcome = CASE WHEN last_poll_at IS NOT NULL AND $1 < last_poll_at + poll_interval \
         THEN 'slow_down' WHEN status = 'approved' THEN 'issued' ELSE status END, \
     poll_interval = CASE WHEN last_poll_at IS NOT NULL AND $1 < last_poll_at + poll_interval \
         THEN poll_interval + $2 ELSE poll_interval END, \
     status = CASE WHEN (last_poll_at IS NULL OR $1 >= last_poll_at + poll_interval) \
         AND status = 'approved' THEN 'used' ELSE status END, \
     last_poll_at = $1 \
     WHERE device_code_hash = $3 AND client_id = $4 AND expires_at > $1 RETURNING *";

#[async_trait]
impl DeviceStore for PgStore {
    async fn insert_device_code(&self, d: &DeviceCodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, issued_at, \
             expires_at, poll_interval, last_poll_at, status, user_id, auth_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .execute(self.live()?)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_device_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        sqlx::query("SELECT * FROM device_codes WHERE user_code = $1")
            .bind(user_code)
            .fetch_optional(self.live()?)
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
            "UPDATE device_codes SET status = $1, user_id = $2, auth_time = $3, \
             scope = COALESCE($4, scope) \
             WHERE user_code = $5 AND status = 'pending' AND expires_at > $6",
        )
        .bind(status.as_str())
        .bind(approval.map(|a| a.user_id.as_str()))
        .bind(approval.map(|a| a.auth_time))
        .bind(approval.map(|a| a.scope.as_str()))
        .bind(user_code)
        .bind(now)
        .execute(self.live()?)
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
        let polled = sqlx::query(POLL)
            .bind(now)
            .bind(slow_down_step)
            .bind(device_code_hash.as_str())
            .bind(client_id)
            .fetch_optional(self.live()?)
            .await
            .map_err(backend)?;
        let Some(row) = polled else {
            let known: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM device_codes WHERE device_code_hash = $1 AND client_id = $2",
            )
            .bind(device_code_hash.as_str())
            .bind(client_id)
            .fetch_optional(self.live()?)
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
