//! PostgreSQL storage: several stateless Tessera nodes over one database.
//!
//! Owns [`PgStore`], the implementation of every storage trait of `tessera-core` over a
//! PostgreSQL connection pool, and its schema (`migrations/`, the same files as the SQLite
//! crate's, in PostgreSQL types). What differs from SQLite, and why:
//!
//! - **Migrations** run on connect under the advisory lock of sqlx's migrator, so nodes that
//!   start at once apply each migration exactly once.
//! - **The change feed** cannot number entries with a sequence: transactions commit in another
//!   order than they drew their numbers, and a reader that moved past 11 would skip a 10 that
//!   commits later. Entries are written without a position and are given one after they
//!   committed, by `publish_changes()` (see the migration), which every feed read runs first.
//! - **Opaque tokens** are written by a few group-commit writer tasks: each gathers the inserts
//!   waiting at that moment into one multi-row INSERT (one transaction, one WAL flush), and
//!   answers each caller once it committed (`synchronous_commit` stays on).
//! - **Single use** (`use_once`) is an `INSERT ... ON CONFLICT DO NOTHING`: atomic across
//!   every node. Concurrent records share one statement and one commit (`writer.rs`).
//! - **Purges** delete in batches of keys taken with `FOR UPDATE SKIP LOCKED`, so nodes that
//!   purge at once never wait on each other and no statement holds many locks for long.
//! - **Outages** are noticed by a watcher task (see `outage.rs`): while the database cannot
//!   be reached every call fails at once with [`StoreError::Unavailable`] instead of waiting
//!   for a connection, and the outage and the recovery are logged once each.

mod admin_tokens;
mod audit;
mod clients;
mod devices;
mod feed;
mod grants;
mod idps;
mod maintenance;
mod outage;
mod rows;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod tokens;
mod trust;
mod users;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, Mutex};

use tessera_core::model::ChangeKind;
use tessera_core::store::StoreError;

use writer::InsertJob;

/// Most rows a purge deletes per statement, so that no lock is held long.
const PURGE_BATCH: i64 = 1000;
/// Most tokens one group commit writes.
const MAX_GROUP: usize = 512;
/// How long change-feed entries are kept unless configured otherwise
/// ([`PgStore::with_change_retention`]): far longer than any node's poll interval.
pub const CHANGE_RETENTION_SECS: i64 = 3600;

/// Whether a database URL names PostgreSQL (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn backend(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict;
        }
        // A row naming one that is not there (a client in an environment deleted meanwhile;
        // on SQLite the triggers of migration 0006 raise these): the caller's record is
        // invalid, not the database broken.
        if d.is_foreign_key_violation() || d.message().starts_with("FOREIGN KEY constraint failed")
        {
            return StoreError::Invalid(d.message().to_owned());
        }
    }
    if outage::is_unavailable(&e) {
        return StoreError::Unavailable(Box::new(e));
    }
    StoreError::Backend(Box::new(e))
}

/// Longest a statement waits for a pooled connection. Past it the database counts as
/// unavailable for that request (503): a wait this long means it is down or overwhelmed.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest the first connection may take before the database counts as not answering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to connect.
#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Most connections this process holds (the token writers' included).
    pub max_connections: u32,
    /// Group-commit writer tasks for opaque tokens. While one waits for its commit, the next
    /// gathers the inserts that arrived meanwhile.
    pub token_writers: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            token_writers: 2,
        }
    }
}

/// Storage over one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    writer: mpsc::Sender<InsertJob>,
    /// The single-use writers' queue.
    once: mpsc::Sender<writer::UseOnceJob>,
    /// Seconds a change-feed entry is kept before the purge may delete it.
    change_retention: i64,
    outage: Arc<outage::Outage>,
    migrations: MigrationReport,
}

/// What opening a database did to its schema. With several nodes starting at once, the
/// migrations one node counts as applied may have been applied by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations the database had before (0: it had no schema).
    pub before: usize,
    /// Migrations applied on opening it.
    pub applied: usize,
}

impl MigrationReport {
    fn log(self) {
        if self.applied > 0 {
            tracing::info!(
                applied = self.applied,
                before = self.before,
                "applied database migrations"
            );
        }
    }
}

/// `host:port` (or the socket) of a connection, for messages.
fn server(o: &PgConnectOptions) -> String {
    format!("{}:{}", o.get_host(), o.get_port())
}

/// The cause of a failed first connection, named once, with what to check.
fn connect_error(o: &PgConnectOptions, e: sqlx::Error) -> StoreError {
    let at = server(o);
    match &e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            StoreError::Unavailable(
                format!("connection refused by {at}: is PostgreSQL running and listening there?")
                    .into(),
            )
        }
        sqlx::Error::Io(io) => {
            StoreError::Unavailable(format!("cannot connect to {at}: {io}").into())
        }
        sqlx::Error::Database(d) => {
            let hint = match d.code().as_deref() {
                // invalid_password, invalid_authorization_specification
                Some("28P01") | Some("28000") => {
                    " (check the user and password in the database URL)"
                }
                // invalid_catalog_name
                Some("3D000") => " (create it first, or check the database URL)",
                _ => "",
            };
            StoreError::Backend(format!("{at}: {}{hint}", d.message()).into())
        }
        sqlx::Error::Tls(t) => StoreError::Backend(format!("TLS to {at}: {t}").into()),
        _ => StoreError::Backend(e.to_string().into()),
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at a `postgres://` URL and applies the migrations (safe when
    /// several nodes start at once). Must be called inside a Tokio runtime (it starts the
    /// token writers).
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        Self::open(url, options, true).await
    }

    /// Like [`PgStore::connect`], but refuses a database that has no Tessera schema yet
    /// (for the management commands: only `serve` and `migrate` start a new database).
    pub async fn connect_existing(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        Self::open(url, options, false).await
    }

    async fn open(url: &str, options: PgOptions, create: bool) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(backend)?
            .application_name("tessera")
            // The server sends no NOTICE (such as "relation _sqlx_migrations already
            // exists, skipping" from the migrator's CREATE TABLE IF NOT EXISTS on every
            // start), which sqlx would log at info; warnings and errors still come.
            .options([("client_min_messages", "warning")]);
        // One connection first, so that a database that cannot be had is reported at once
        // with its cause (refused, authentication failed, no such database), not as a pool
        // that timed out after retrying it.
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&connect)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(connect_error(&connect, e)),
            Err(_) => {
                return Err(StoreError::Unavailable(
                    format!(
                        "no answer from {} within {} s",
                        server(&connect),
                        CONNECT_TIMEOUT.as_secs()
                    )
                    .into(),
                ))
            }
        }
        let outage = Arc::new(outage::Outage::new());
        let seen = outage.clone();
        let pool = PgPoolOptions::new()
            .min_connections(1)
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A broken connection fails its one statement and is dropped; a check before
            // every checkout would cost every statement a second round trip. Connections
            // opened before an outage was noticed are dropped instead of tried.
            .test_before_acquire(false)
            .before_acquire(move |_conn, meta| {
                let keep = !seen.predates_outage(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .connect_with(connect.clone())
            .await
            .map_err(backend)?;
        if !create && !Self::has_schema(&pool).await? {
            pool.close().await;
            return Err(StoreError::Backend(
                "the database has no Tessera schema yet: run `tessera migrate` (or `tessera \
                 serve`) against it first, or check the database URL"
                    .into(),
            ));
        }
        let before = Self::applied_migrations(&pool).await?;
        Self::migrate(&pool).await?;
        let after = Self::applied_migrations(&pool).await?;
        let migrations = MigrationReport {
            before,
            applied: after.saturating_sub(before),
        };
        migrations.log();
        let (tx, rx) = mpsc::channel(4096);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..options.token_writers.max(1) {
            tokio::spawn(writer::group_commit(pool.clone(), rx.clone()));
        }
        // As many single-use writers: one per token request with a DPoP proof or a client
        // assertion, gathered as the token inserts are.
        let (once, once_rx) = mpsc::channel(4096);
        let once_rx = Arc::new(Mutex::new(once_rx));
        for _ in 0..options.token_writers.max(1) {
            tokio::spawn(writer::record_once(pool.clone(), once_rx.clone()));
        }
        tokio::spawn(outage::watch(Arc::downgrade(&outage), connect));
        Ok(Self {
            pool,
            writer: tx,
            once,
            outage,
            change_retention: CHANGE_RETENTION_SECS,
            migrations,
        })
    }

    /// What opening the database did to its schema.
    pub fn migrations(&self) -> MigrationReport {
        self.migrations
    }

    /// How many migrations the database has applied (0 without a schema).
    async fn applied_migrations(pool: &PgPool) -> Result<usize, StoreError> {
        if !Self::has_schema(pool).await? {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .map_err(backend)?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    /// Whether the database has been migrated at least once.
    async fn has_schema(pool: &PgPool) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .map_err(backend)
    }

    /// The pool, or `Unavailable` at once while the database is known to be down.
    fn live(&self) -> Result<&PgPool, StoreError> {
        self.outage.check()?;
        Ok(&self.pool)
    }

    /// Applies the migrations that have not run yet. sqlx's migrator holds a PostgreSQL
    /// advisory lock meanwhile: of several nodes starting at once, one migrates and the
    /// others wait, then find nothing to do.
    async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations")
            .run(pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// Sets how long change-feed entries are kept (at least one second). A node that stops
    /// polling for longer than this finds the feed's horizon past its position and reloads its
    /// caches ([`tessera_core::store::ChangeFeed::feed_horizon`]).
    pub fn with_change_retention(mut self, secs: i64) -> Self {
        self.change_retention = secs.max(1);
        self
    }

    /// Closes the pool, waiting for in-flight statements.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool (for tests and tools that look at the database itself).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

async fn log_change(
    tx: &mut Transaction<'_, Postgres>,
    kind: ChangeKind,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (kind, key, created_at) VALUES ($1, $2, $3)")
        .bind(kind.as_str())
        .bind(key)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// A query with its arguments bound.
type BoundQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

impl PgStore {
    /// Runs one write and its change-feed entry in one transaction; returns how many rows the
    /// write changed. Every write other nodes may have cached goes through here.
    async fn logged(
        &self,
        query: BoundQuery<'_>,
        kind: ChangeKind,
        key: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.live()?.begin().await.map_err(backend)?;
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
