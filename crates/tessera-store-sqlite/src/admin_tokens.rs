//! Credentials of the admin API, in SQLite: one row per token, its value stored only as
//! its hash.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use tessera_core::model::AdminTokenRecord;
use tessera_core::secret::SecretHash;
use tessera_core::store::{AdminTokenStore, StoreError};

use crate::{backend, SqliteStore};

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn admin_token(row: &SqliteRow) -> Result<AdminTokenRecord, StoreError> {
    let scopes: String = get(row, "scopes")?;
    Ok(AdminTokenRecord {
        id: get(row, "id")?,
        token_hash: SecretHash::from_stored(get::<String>(row, "token_hash")?),
        name: get(row, "name")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        expires_at: get(row, "expires_at")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn insert_admin_token(&self, t: &AdminTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_tokens (id, token_hash, name, scopes, expires_at, created_at, \
             revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(t.token_hash.as_str())
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(t.expires_at)
        .bind(t.created_at)
        .bind(t.revoked_at)
        .bind(t.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_admin_token(&self, id: &str) -> Result<Option<AdminTokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM admin_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| admin_token(&r)).transpose()
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM admin_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(admin_token).collect()
    }

    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn touch_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE admin_tokens SET last_used_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(n > 0)
    }
}
