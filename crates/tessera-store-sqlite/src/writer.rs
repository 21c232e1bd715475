//! The group-commit writer of opaque tokens: concurrent inserts gathered into one statement,
//! on a connection of its own, each caller answered once its row is durable.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use tessera_core::model::TokenRecord;

use crate::MAX_GROUP;

pub(crate) struct InsertJob {
    pub(crate) token: TokenRecord,
    pub(crate) done: oneshot::Sender<Result<(), String>>,
}

/// Gathers concurrent token inserts into one statement each: a multi-row INSERT in autocommit
/// mode is one atomic, durable transaction.
pub(crate) async fn group_commit(mut conn: SqliteConnection, mut rx: mpsc::Receiver<InsertJob>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = insert_tokens(&mut conn, &batch)
            .await
            .map_err(|e| e.to_string());
        for job in batch {
            let _ = job.done.send(result.clone());
        }
    }
}

async fn insert_tokens(
    conn: &mut SqliteConnection,
    batch: &[InsertJob],
) -> Result<(), sqlx::Error> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO access_tokens (token_id, token_hash, jti, client_id, subject, scope, audience, \
         issued_at, expires_at, token_epoch, revoked_at, grant_id, env, claims, single_use) ",
    );
    qb.push_values(batch, |mut b, job| {
        let t = &job.token;
        b.push_bind(&t.token_id)
            .push_bind(t.token_hash.as_str())
            .push_bind(&t.jti)
            .push_bind(&t.client_id)
            .push_bind(&t.subject)
            .push_bind(&t.scope)
            .push_bind(t.audience.to_stored())
            .push_bind(t.issued_at)
            .push_bind(t.expires_at)
            .push_bind(t.token_epoch)
            .push_bind(t.revoked_at)
            .push_bind(t.grant_id.as_deref())
            .push_bind(&t.env)
            .push_bind(t.claims.as_deref())
            .push_bind(t.single_use);
    });
    qb.build().execute(&mut *conn).await.map(|_| ())
}
