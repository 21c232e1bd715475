//! The group-commit writers of opaque tokens: the inserts waiting at one moment gathered into
//! one multi-row INSERT (one transaction, one WAL flush), each caller answered once its row
//! has committed.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use tessera_core::model::TokenRecord;

use crate::MAX_GROUP;

/// Why a batch failed: the error's text, and whether it means the database was unreachable.
pub(crate) type WriteFailure = (String, bool);

pub(crate) struct InsertJob {
    pub(crate) token: TokenRecord,
    pub(crate) done: oneshot::Sender<Result<(), WriteFailure>>,
}

/// One writer. Several share the queue: a writer takes what is waiting, releases the queue and
/// commits, so the next writer gathers the inserts that arrive during that commit.
pub(crate) async fn group_commit(pool: PgPool, rx: Arc<Mutex<mpsc::Receiver<InsertJob>>>) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let result = insert_tokens(&pool, &batch)
            .await
            .map_err(|e| (e.to_string(), crate::outage::is_unavailable(&e)));
        for job in batch {
            let _ = job.done.send(result.clone());
        }
    }
}

/// One INSERT of every row of the batch, its columns bound as arrays (one statement text
/// whatever the batch size, so it is prepared once per connection). In autocommit mode it is
/// one atomic transaction, durable when it returns.
async fn insert_tokens(pool: &PgPool, batch: &[InsertJob]) -> Result<(), sqlx::Error> {
    let tokens: Vec<&TokenRecord> = batch.iter().map(|j| &j.token).collect();
    let text = |f: fn(&TokenRecord) -> String| tokens.iter().map(|t| f(t)).collect::<Vec<_>>();
    let int = |f: fn(&TokenRecord) -> i64| tokens.iter().map(|t| f(t)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO access_tokens (token_id, token_hash, jti, client_id, subject, scope, \
         audience, issued_at, expires_at, token_epoch, revoked_at, grant_id, env, claims, \
         single_use) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[], \
         $13::text[], $14::text[], $15::bool[])",
    )
    .bind(text(|t| t.token_id.clone()))
    .bind(text(|t| t.token_hash.as_str().to_owned()))
    .bind(text(|t| t.jti.clone()))
    .bind(text(|t| t.client_id.clone()))
    .bind(text(|t| t.subject.clone()))
    .bind(text(|t| t.scope.clone()))
    .bind(text(|t| t.audience.to_stored()))
    .bind(int(|t| t.issued_at))
    .bind(int(|t| t.expires_at))
    .bind(int(|t| t.token_epoch))
    .bind(
        tokens
            .iter()
            .map(|t| t.revoked_at)
            .collect::<Vec<Option<i64>>>(),
    )
    .bind(
        tokens
            .iter()
            .map(|t| t.grant_id.clone())
            .collect::<Vec<Option<String>>>(),
    )
    .bind(text(|t| t.env.clone()))
    .bind(
        tokens
            .iter()
            .map(|t| t.claims.clone())
            .collect::<Vec<Option<String>>>(),
    )
    .bind(tokens.iter().map(|t| t.single_use).collect::<Vec<bool>>())
    .execute(pool)
    .await
    .map(|_| ())
}
