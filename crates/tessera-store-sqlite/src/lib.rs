//! SQLite storage: Tessera's embedded default.
//!
//! Owns [`SqliteStore`], the implementation of every storage trait of `tessera-core` over one
//! SQLite file in WAL mode with `synchronous = FULL` (a row is on disk before a write returns).
//! Opaque tokens are written through a group-commit writer: concurrent inserts are gathered
//! into one transaction, so one fsync covers many tokens while each caller still waits for its
//! own row to be durable. Several processes (the server and the management CLI) may open the
//! same file; they meet through SQLite's locking and a busy timeout.

mod clients;
mod grants;
mod keys;
mod maintenance;
mod rows;
mod throttle;
mod tokens;
mod trust;
mod users;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool, Transaction};
use tokio::sync::mpsc;

use tessera_core::model::ChangeKind;
use tessera_core::store::StoreError;

use writer::{group_commit, InsertJob};

/// Most rows a purge deletes per statement, so that no lock is held long.
const PURGE_BATCH: i64 = 1000;
/// Most tokens one group commit writes.
const MAX_GROUP: usize = 512;
/// How long change-feed entries are kept: far longer than any node's poll interval.
const CHANGE_RETENTION_SECS: i64 = 3600;

fn backend(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict;
        }
    }
    StoreError::Backend(Box::new(e))
}

/// Storage over one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<InsertJob>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and applies the
    /// migrations. Must be called inside a Tokio runtime (it starts the group-commit writer).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = opts_for_writer(url)?;
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        // The writer holds a connection of its own, so a batch costs one round trip to the
        // SQLite thread and no pool checkout.
        let writer_conn = opts_for_writer(url)?.connect().await.map_err(backend)?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(group_commit(writer_conn, rx));
        Ok(Self { pool, writer: tx })
    }

    /// Closes the pool, waiting for in-flight statements.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn opts_for_writer(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(backend)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Reads from the OS page cache without a copy; grows only as the file does.
        .pragma("mmap_size", "268435456"))
}

async fn log_change(
    tx: &mut Transaction<'_, Sqlite>,
    kind: ChangeKind,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (kind, key, created_at) VALUES (?, ?, ?)")
        .bind(kind.as_str())
        .bind(key)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// A query with its arguments bound.
type BoundQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl SqliteStore {
    /// Runs one write and its change-feed entry in one transaction; returns how many rows the
    /// write changed. Every write other nodes may have cached goes through here.
    async fn logged(
        &self,
        query: BoundQuery<'_>,
        kind: ChangeKind,
        key: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = query
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        log_change(&mut tx, kind, key, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }
}
