//! Upstream OpenID providers and the external identities linked to users, in PostgreSQL.
//!
//! A provider's e-mail domains are stored twice: as a JSON array on its row (what is read
//! back) and as rows of `idp_email_domains`, whose primary key lets a domain belong to one
//! provider only, even when two are added at once.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;

use tessera_core::model::{ExternalIdentityRecord, IdpRecord};
use tessera_core::store::{IdpStore, StoreError};

use crate::{backend, PgStore};

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn idp(row: &PgRow) -> Result<IdpRecord, StoreError> {
    let domains: String = get(row, "email_domains")?;
    Ok(IdpRecord {
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        issuer: get(row, "issuer")?,
        client_id: get(row, "client_id")?,
        client_secret_sealed: get(row, "client_secret_sealed")?,
        email_domains: serde_json::from_str(&domains)
            .map_err(|e| StoreError::Corrupt(format!("column email_domains: {e}")))?,
        link_by_email: get(row, "link_by_email")?,
        created_at: get(row, "created_at")?,
    })
}

fn external_identity(row: &PgRow) -> Result<ExternalIdentityRecord, StoreError> {
    Ok(ExternalIdentityRecord {
        issuer: get(row, "issuer")?,
        subject: get(row, "subject")?,
        idp: get(row, "idp")?,
        user_id: get(row, "user_id")?,
        created_at: get(row, "created_at")?,
    })
}

#[async_trait]
impl IdpStore for PgStore {
    async fn insert_idp(&self, p: &IdpRecord) -> Result<(), StoreError> {
        let domains = serde_json::to_string(&p.email_domains)
            .map_err(|e| StoreError::Invalid(format!("email domains: {e}")))?;
        let mut tx = self.live()?.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO identity_providers (name, display_name, issuer, client_id, \
             client_secret_sealed, email_domains, link_by_email, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.name)
        .bind(&p.display_name)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(&p.client_secret_sealed)
        .bind(&domains)
        .bind(p.link_by_email)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        for domain in &p.email_domains {
            sqlx::query("INSERT INTO idp_email_domains (domain, idp) VALUES ($1, $2)")
                .bind(domain)
                .bind(&p.name)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn get_idp(&self, name: &str) -> Result<Option<IdpRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM identity_providers WHERE name = $1")
            .bind(name)
            .fetch_optional(self.live()?)
            .await
            .map_err(backend)?;
        row.map(|r| idp(&r)).transpose()
    }

    async fn list_idps(&self) -> Result<Vec<IdpRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM identity_providers ORDER BY name")
            .fetch_all(self.live()?)
            .await
            .map_err(backend)?;
        rows.iter().map(idp).collect()
    }

    async fn delete_idp(&self, name: &str) -> Result<bool, StoreError> {
        // Its domains go with it (ON DELETE CASCADE); its users' links stay.
        let n = sqlx::query("DELETE FROM identity_providers WHERE name = $1")
            .bind(name)
            .execute(self.live()?)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn set_idp_secret(&self, name: &str, sealed: &[u8]) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE identity_providers SET client_secret_sealed = $1 WHERE name = $2")
                .bind(sealed)
                .bind(name)
                .execute(self.live()?)
                .await
                .map_err(backend)?
                .rows_affected();
        Ok(n > 0)
    }

    async fn find_external_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<ExternalIdentityRecord>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM external_identities WHERE issuer = $1 AND subject = $2")
                .bind(issuer)
                .bind(subject)
                .fetch_optional(self.live()?)
                .await
                .map_err(backend)?;
        row.map(|r| external_identity(&r)).transpose()
    }

    async fn insert_external_identity(
        &self,
        link: &ExternalIdentityRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO external_identities (issuer, subject, idp, user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&link.issuer)
        .bind(&link.subject)
        .bind(&link.idp)
        .bind(&link.user_id)
        .bind(link.created_at)
        .execute(self.live()?)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
