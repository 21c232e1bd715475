//! Clients in SQLite.

use async_trait::async_trait;

use tessera_core::model::{ChangeKind, ClientRecord};
use tessera_core::secret::SecretHash;
use tessera_core::store::{ClientStore, StoreError};

use crate::{backend, rows, SqliteStore};

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        if let Some(jwks) = &c.jwks {
            tessera_core::store::check_keys(jwks)?;
        }
        let insert = sqlx::query(
            "INSERT INTO clients (client_id, name, secret_hash, old_secret_hash, \
             old_secret_expires_at, grant_types, redirect_uris, scopes, audiences, public, \
             jwks, access_token_format, access_token_ttl, token_epoch, env, single_use_tokens, \
             created_at, updated_at, user_flow) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(c.secret_hash.as_ref().map(SecretHash::as_str))
        .bind(c.old_secret_hash.as_ref().map(SecretHash::as_str))
        .bind(c.old_secret_expires_at)
        .bind(c.grant_types.join(" "))
        .bind(c.redirect_uris.join(" "))
        .bind(c.scopes.to_string())
        .bind(c.audiences.join(" "))
        .bind(c.public)
        .bind(c.jwks.as_deref())
        .bind(c.access_token_format.as_str())
        .bind(c.access_token_ttl)
        .bind(c.token_epoch)
        .bind(&c.env)
        .bind(c.single_use_tokens)
        .bind(c.created_at)
        .bind(c.created_at)
        .bind(rows::user_flow_json(&c.user_flow));
        self.logged(insert, ChangeKind::Client, &c.client_id, c.created_at)
            .await
            .map(|_| ())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::client(&r)).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::client).collect()
    }

    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM clients WHERE client_id = ?").bind(client_id);
        Ok(self
            .logged(delete, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn update_client(&self, c: &ClientRecord, now: i64) -> Result<bool, StoreError> {
        let update = sqlx::query(
            "UPDATE clients SET name = ?, grant_types = ?, redirect_uris = ?, scopes = ?, \
             audiences = ?, access_token_format = ?, access_token_ttl = ?, user_flow = ?, \
             single_use_tokens = ?, updated_at = ? WHERE client_id = ?",
        )
        .bind(&c.name)
        .bind(c.grant_types.join(" "))
        .bind(c.redirect_uris.join(" "))
        .bind(c.scopes.to_string())
        .bind(c.audiences.join(" "))
        .bind(c.access_token_format.as_str())
        .bind(c.access_token_ttl)
        .bind(rows::user_flow_json(&c.user_flow))
        .bind(c.single_use_tokens)
        .bind(now)
        .bind(&c.client_id);
        Ok(self
            .logged(update, ChangeKind::Client, &c.client_id, now)
            .await?
            > 0)
    }

    async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let update = sqlx::query(
            "UPDATE clients SET token_epoch = token_epoch + 1, updated_at = ? WHERE client_id = ?",
        )
        .bind(now)
        .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn set_client_keys(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        tessera_core::store::check_keys(jwks)?;
        let update = sqlx::query("UPDATE clients SET jwks = ?, updated_at = ? WHERE client_id = ?")
            .bind(jwks)
            .bind(now)
            .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &SecretHash,
        keep_old_until: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = match keep_old_until {
            Some(until) => sqlx::query(
                "UPDATE clients SET old_secret_hash = secret_hash, old_secret_expires_at = ?, \
                 secret_hash = ?, updated_at = ? WHERE client_id = ?",
            )
            .bind(until),
            None => sqlx::query(
                "UPDATE clients SET old_secret_hash = NULL, old_secret_expires_at = NULL, \
                 secret_hash = ?, token_epoch = token_epoch + 1, updated_at = ? \
                 WHERE client_id = ?",
            ),
        }
        .bind(new_hash.as_str())
        .bind(now)
        .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn set_registration_token(
        &self,
        client_id: &str,
        hash: Option<&SecretHash>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = sqlx::query(
            "UPDATE clients SET registration_token_hash = ?, updated_at = ? \
             WHERE client_id = ?",
        )
        .bind(hash.map(SecretHash::as_str))
        .bind(now)
        .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn registration_token(&self, client_id: &str) -> Result<Option<SecretHash>, StoreError> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT registration_token_hash FROM clients WHERE client_id = ?")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(hash.flatten().map(SecretHash::from_stored))
    }
}
