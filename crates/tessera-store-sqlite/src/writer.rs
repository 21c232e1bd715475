//! The group-commit writer: concurrent opaque-token inserts, single-use records and
//! device-code polls gathered into one transaction, on a connection of its own, each caller
//! answered once its write is durable. Polls go through it because each one writes (RFC 8628
//! §3.5: its time, and a raised interval on `slow_down`), and so do single-use records
//! ([`tessera_core::store::ReplayStore::use_once`]: a client assertion's or a DPoP proof's
//! `jti`, RFC 7523 §3, RFC 9449 §11.1), one per token request: as transactions of their own,
//! each would take SQLite's write lock and an fsync, and every other write would wait behind
//! them.
//!
//! A batch's single-use keys are one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING
//! key`: a key already recorded, or named earlier in the same batch, is not inserted, so of
//! callers with one key exactly one hears `true`, in batches or across them.

use std::collections::HashSet;

use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use tessera_core::model::TokenRecord;

use crate::MAX_GROUP;

/// The device-code poll statement (RFC 8628 §3.5), run for each [`PollJob`] the device store
/// sends. Every `SET` expression reads the row as it was before the statement.
const POLL: &str = "UPDATE device_codes SET \
     poll_outcome = CASE WHEN last_poll_at IS NOT NULL AND ?1 < last_poll_at + poll_interval \
         THEN 'slow_down' WHEN status = 'approved' THEN 'issued' ELSE status END, \
     poll_interval = CASE WHEN last_poll_at IS NOT NULL AND ?1 < last_poll_at + poll_interval \
         THEN poll_interval + ?2 ELSE poll_interval END, \
     status = CASE WHEN (last_poll_at IS NULL OR ?1 >= last_poll_at + poll_interval) \
         AND status = 'approved' THEN 'used' ELSE status END, \
     last_poll_at = ?1 \
     WHERE device_code_hash = ?3 AND client_id = ?4 AND expires_at > ?1 RETURNING *";

/// A write for the group-commit writer. Token inserts, the common job, stay unboxed (no
/// allocation per token); a poll merely takes as much room in the queue.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Job {
    Insert(InsertJob),
    UseOnce(UseOnceJob),
    Poll(PollJob),
}

pub(crate) struct InsertJob {
    pub(crate) token: TokenRecord,
    pub(crate) done: oneshot::Sender<Result<(), String>>,
}

/// A single-use key to record until `expires_at`: answered `true` only if this job's insert
/// recorded it.
pub(crate) struct UseOnceJob {
    pub(crate) key: String,
    pub(crate) expires_at: i64,
    pub(crate) done: oneshot::Sender<Result<bool, String>>,
}

/// One run of [`POLL`]: the row it returned (none: unknown, another client's or expired).
pub(crate) struct PollJob {
    pub(crate) device_code_hash: String,
    pub(crate) client_id: String,
    pub(crate) now: i64,
    pub(crate) slow_down_step: i64,
    pub(crate) done: oneshot::Sender<Result<Option<SqliteRow>, String>>,
}

/// Gathers concurrent writes: token inserts alone are one multi-row INSERT in autocommit
/// mode (one atomic, durable transaction); with single-use records or polls, one
/// transaction holds the INSERT, the single-use INSERT and every poll's UPDATE, and its
/// callers hear only once it committed.
pub(crate) async fn group_commit(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Batch::default();
        batch.add(first);
        let mut count = 1;
        while count < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    batch.add(job);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        let Batch {
            inserts,
            uses,
            polls,
        } = batch;
        if uses.is_empty() && polls.is_empty() {
            let result = insert_tokens(&mut conn, &inserts)
                .await
                .map_err(|e| e.to_string());
            for job in inserts {
                let _ = job.done.send(result.clone());
            }
            continue;
        }
        match write_batch(&mut conn, &inserts, &uses, &polls).await {
            Ok((firsts, rows)) => {
                for job in inserts {
                    let _ = job.done.send(Ok(()));
                }
                for (job, first) in uses.into_iter().zip(firsts) {
                    let _ = job.done.send(Ok(first));
                }
                for (job, row) in polls.into_iter().zip(rows) {
                    let _ = job.done.send(Ok(row));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for job in inserts {
                    let _ = job.done.send(Err(e.clone()));
                }
                for job in uses {
                    let _ = job.done.send(Err(e.clone()));
                }
                for job in polls {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The jobs of one group commit, by kind, each kind in the order received.
#[derive(Default)]
struct Batch {
    inserts: Vec<InsertJob>,
    uses: Vec<UseOnceJob>,
    polls: Vec<PollJob>,
}

impl Batch {
    fn add(&mut self, job: Job) {
        match job {
            Job::Insert(job) => self.inserts.push(job),
            Job::UseOnce(job) => self.uses.push(job),
            Job::Poll(job) => self.polls.push(job),
        }
    }
}

/// The inserts, the single-use records and the polls in one transaction; once committed,
/// whether each single-use job was the one to record its key, and the polls' rows, in order.
async fn write_batch(
    conn: &mut SqliteConnection,
    inserts: &[InsertJob],
    uses: &[UseOnceJob],
    polls: &[PollJob],
) -> Result<(Vec<bool>, Vec<Option<SqliteRow>>), sqlx::Error> {
    let mut tx = conn.begin().await?;
    if !inserts.is_empty() {
        insert_tokens(&mut tx, inserts).await?;
    }
    let firsts = if uses.is_empty() {
        Vec::new()
    } else {
        use_keys(&mut tx, uses).await?
    };
    let mut rows = Vec::with_capacity(polls.len());
    for poll in polls {
        rows.push(
            sqlx::query(POLL)
                .bind(poll.now)
                .bind(poll.slow_down_step)
                .bind(&poll.device_code_hash)
                .bind(&poll.client_id)
                .fetch_optional(&mut *tx)
                .await?,
        );
    }
    tx.commit().await?;
    Ok((firsts, rows))
}

/// Records the jobs' keys in one statement and tells, per job, whether it recorded its key.
/// The statement returns the keys it inserted; a key named by several jobs of the batch is
/// inserted once (the later rows conflict with the first), and only the first job naming it
/// is told `true`.
async fn use_keys(
    conn: &mut SqliteConnection,
    uses: &[UseOnceJob],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new("INSERT INTO used_jtis (key, expires_at) ");
    qb.push_values(uses, |mut b, job| {
        b.push_bind(&job.key).push_bind(job.expires_at);
    });
    qb.push(" ON CONFLICT (key) DO NOTHING RETURNING key");
    let mut recorded: HashSet<String> = qb
        .build_query_scalar::<String>()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    Ok(uses.iter().map(|job| recorded.remove(&job.key)).collect())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{opts_for_writer, SqliteStore};
    use sqlx::ConnectOptions;
    use tessera_core::store::ReplayStore;

    fn use_job(key: &str) -> (Job, oneshot::Receiver<Result<bool, String>>) {
        let (done, wait) = oneshot::channel();
        let job = Job::UseOnce(UseOnceJob {
            key: key.to_owned(),
            expires_at: 9_000,
            done,
        });
        (job, wait)
    }

    /// Every job is queued before the writer starts, so they are one batch: of the callers
    /// naming one key, exactly the first is told `true`; a key recorded before is refused;
    /// a token insert in the same batch is stored; and every answer comes after the commit,
    /// as another connection sees each recorded key.
    #[tokio::test]
    async fn one_batchs_single_use_keys_have_one_winner_each() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        assert!(store.use_once("c1:old", 9_000).await.unwrap());

        let (tx, rx) = mpsc::channel(64);
        let keys = ["c1:a", "c1:b", "c1:a", "c1:old", "c1:c", "c1:a", "c1:b"];
        let mut waits = Vec::new();
        for key in keys {
            let (job, wait) = use_job(key);
            tx.send(job).await.unwrap();
            waits.push(wait);
        }
        let (_, record) = tessera_core::store::testsuite::token("c1", 9_000);
        let (done, inserted) = oneshot::channel();
        tx.send(Job::Insert(InsertJob {
            token: record.clone(),
            done,
        }))
        .await
        .unwrap();
        drop(tx);
        let conn = opts_for_writer(&url).unwrap().connect().await.unwrap();
        let writer = tokio::spawn(group_commit(conn, rx));

        let mut answers = Vec::new();
        for wait in waits {
            answers.push(wait.await.unwrap().unwrap());
        }
        assert_eq!(answers, [true, true, false, false, true, false, false]);
        inserted.await.unwrap().unwrap();
        writer.await.unwrap();
        for key in ["c1:a", "c1:b", "c1:c"] {
            assert!(store.was_used(key).await.unwrap(), "{key}");
            assert!(!store.use_once(key, 9_000).await.unwrap(), "{key}");
        }
        use tessera_core::store::TokenStore;
        assert!(store.get_token(&record.token_id).await.unwrap().is_some());
    }
}
