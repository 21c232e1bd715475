//! The group-commit writer: concurrent opaque-token inserts and device-code polls gathered
//! into one transaction, on a connection of its own, each caller answered once its write is
//! durable. Polls go through it because each one writes (RFC 8628 §3.5: its time, and a
//! raised interval on `slow_down`): as transactions of their own, hundreds of pending devices
//! polling would each take SQLite's write lock and an fsync, and the token inserts would wait
//! behind them.

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
    Poll(PollJob),
}

pub(crate) struct InsertJob {
    pub(crate) token: TokenRecord,
    pub(crate) done: oneshot::Sender<Result<(), String>>,
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
/// mode (one atomic, durable transaction); with polls, one transaction holds the INSERT and
/// every poll's UPDATE, and its callers hear only once it committed.
pub(crate) async fn group_commit(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut inserts = Vec::new();
        let mut polls = Vec::new();
        let mut add = |job| match job {
            Job::Insert(job) => inserts.push(job),
            Job::Poll(job) => polls.push(job),
        };
        add(first);
        let mut count = 1;
        while count < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    add(job);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        if polls.is_empty() {
            let result = insert_tokens(&mut conn, &inserts)
                .await
                .map_err(|e| e.to_string());
            for job in inserts {
                let _ = job.done.send(result.clone());
            }
            continue;
        }
        match write_batch(&mut conn, &inserts, &polls).await {
            Ok(rows) => {
                for job in inserts {
                    let _ = job.done.send(Ok(()));
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
                for job in polls {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The inserts and the polls in one transaction; the polls' rows, in order, once committed.
async fn write_batch(
    conn: &mut SqliteConnection,
    inserts: &[InsertJob],
    polls: &[PollJob],
) -> Result<Vec<Option<SqliteRow>>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    if !inserts.is_empty() {
        insert_tokens(&mut tx, inserts).await?;
    }
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
    Ok(rows)
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
