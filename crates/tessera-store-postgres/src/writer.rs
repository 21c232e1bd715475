//! The group-commit writers of opaque tokens and of single-use records: the inserts waiting
//! at one moment gathered into one multi-row INSERT (one transaction, one WAL flush), each
//! caller answered once its row has committed.
//!
//! Single-use records ([`tessera_core::store::ReplayStore::use_once`]: a client assertion's
//! or a DPoP proof's `jti`, RFC 7523 §3, RFC 9449 §11.1) come one per token request; as
//! statements of their own each would cost a round trip, a transaction and a WAL flush. A
//! batch of them is one `INSERT … ON CONFLICT DO NOTHING RETURNING key` with its keys in
//! sorted order: a key already recorded, or named earlier in the same batch, is not
//! inserted, so of callers with one key exactly one hears `true`, on one node or across
//! nodes; and two nodes' batches take their keys' index entries in the same order, so they
//! never deadlock waiting on each other.

use std::collections::HashSet;
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

/// A single-use key to record until `expires_at`: answered `true` only if this job's insert
/// recorded it.
pub(crate) struct UseOnceJob {
    pub(crate) key: String,
    pub(crate) expires_at: i64,
    pub(crate) done: oneshot::Sender<Result<bool, WriteFailure>>,
}

/// Takes what is waiting in a shared queue (at least one job, at most `MAX_GROUP`), then
/// releases the queue, so that the next writer gathers what arrives meanwhile.
async fn take<J>(rx: &Mutex<mpsc::Receiver<J>>) -> Option<Vec<J>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// One single-use writer; several share the queue, as the token writers do.
pub(crate) async fn record_once(pool: PgPool, rx: Arc<Mutex<mpsc::Receiver<UseOnceJob>>>) {
    while let Some(batch) = take(&rx).await {
        match insert_keys(&pool, &batch).await {
            Ok(mut recorded) => {
                for job in batch {
                    // `remove`: a key named twice in the batch is the first caller's.
                    let first = recorded.remove(job.key.as_str());
                    let _ = job.done.send(Ok(first));
                }
            }
            Err(e) => {
                let failure = (e.to_string(), crate::outage::is_unavailable(&e));
                for job in batch {
                    let _ = job.done.send(Err(failure.clone()));
                }
            }
        }
    }
}

/// One INSERT of the batch's keys, sorted; the keys it recorded. In autocommit mode it is
/// one atomic transaction, durable when it returns.
async fn insert_keys(pool: &PgPool, batch: &[UseOnceJob]) -> Result<HashSet<String>, sqlx::Error> {
    let mut rows: Vec<(&str, i64)> = batch
        .iter()
        .map(|j| (j.key.as_str(), j.expires_at))
        .collect();
    rows.sort_unstable();
    let keys: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let until: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let recorded: Vec<String> = sqlx::query_scalar(
        "INSERT INTO used_jtis (key, expires_at) \
         SELECT k, e FROM UNNEST($1::text[], $2::int8[]) WITH ORDINALITY AS t(k, e, n) \
         ORDER BY n \
         ON CONFLICT (key) DO NOTHING RETURNING key",
    )
    .bind(keys)
    .bind(until)
    .fetch_all(pool)
    .await?;
    Ok(recorded.into_iter().collect())
}

/// One writer. Several share the queue: a writer takes what is waiting, releases the queue and
/// commits, so the next writer gathers the inserts that arrive during that commit.
pub(crate) async fn group_commit(pool: PgPool, rx: Arc<Mutex<mpsc::Receiver<InsertJob>>>) {
    while let Some(batch) = take(&rx).await {
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
