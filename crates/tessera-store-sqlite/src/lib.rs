//! SQLite storage: Tessera's embedded default.
//!
//! Owns [`SqliteStore`], the implementation of every storage trait of `tessera-core` over one
//! SQLite file in WAL mode with `synchronous = FULL` (a row is on disk before a write returns).
//! Opaque tokens are written through a group-commit writer: concurrent inserts are gathered
//! into one transaction, so one fsync covers many tokens while each caller still waits for its
//! own row to be durable. Device-code polls and single-use records (an assertion's or a DPoP
//! proof's `jti`), a write each, join the same transactions. Several processes (the server
//! and the management CLI) may open the same file; they meet through SQLite's locking and a
//! busy timeout.
//!
//! The database holds password hashes and e-mail addresses, so its file is created with mode
//! 0600 whatever the process umask, and an existing one readable by others is tightened on open
//! (SQLite gives the `-wal` and `-shm` files the mode of the database file). Only
//! [`SqliteStore::connect`] creates a missing file; [`SqliteStore::open_existing`], for the
//! management commands, refuses one, so a command run in the wrong directory cannot quietly
//! start an empty database.

mod admin_tokens;
mod audit;
mod clients;
mod devices;
mod grants;
mod idps;
mod keys;
mod maintenance;
mod rows;
mod throttle;
mod tokens;
mod trust;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool, Transaction};
use tokio::sync::mpsc;

use tessera_core::model::ChangeKind;
use tessera_core::store::StoreError;

use writer::{group_commit, Job};

/// Most rows a purge deletes per statement, so that no lock is held long.
const PURGE_BATCH: i64 = 1000;
/// Most writes (tokens, single-use records, polls) one group commit holds.
const MAX_GROUP: usize = 512;
/// How long change-feed entries are kept unless configured otherwise
/// ([`SqliteStore::with_change_retention`]): far longer than any node's poll interval.
pub const CHANGE_RETENTION_SECS: i64 = 3600;

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
    if is_unavailable(&e) {
        return StoreError::Unavailable(Box::new(e));
    }
    StoreError::Backend(Box::new(e))
}

/// Whether a failure means the database could not be had rather than that a statement was
/// wrong: still locked by another process after the busy timeout (`SQLITE_BUSY`,
/// `SQLITE_LOCKED` and their extended codes), or no connection in time. The request may
/// succeed if retried (503).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6)),
        _ => false,
    }
}

/// Storage over one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<Job>,
    /// Seconds a change-feed entry is kept before the purge may delete it.
    change_retention: i64,
    migrations: MigrationReport,
}

/// What opening a database did to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations the database had before (0: it had no schema).
    pub before: usize,
    /// Migrations applied on opening it.
    pub applied: usize,
}

/// How many migrations the database has applied (0 without a schema: no such table).
async fn applied_migrations(pool: &SqlitePool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_default()
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
        Self::open(url, true).await
    }

    /// Opens the database at a `sqlite://PATH` URL only if its file exists (an error naming
    /// the path otherwise), and applies the migrations.
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let file = database_file(url)?;
        if let Some(path) = &file {
            prepare_file(path, create)?;
        }
        let fail = |e| open_error(file.as_deref(), e);
        let opts = opts_for_writer(url)?.create_if_missing(create);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(fail)?;
        let before = applied_migrations(&pool).await;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| fail(e.into()))?;
        let migrations = MigrationReport {
            before,
            applied: applied_migrations(&pool).await.saturating_sub(before),
        };
        if migrations.applied > 0 {
            tracing::info!(
                applied = migrations.applied,
                before,
                "applied database migrations"
            );
        }
        // The writer holds a connection of its own, so a batch costs one round trip to the
        // SQLite thread and no pool checkout.
        let writer_conn = opts_for_writer(url)?
            .create_if_missing(create)
            .connect()
            .await
            .map_err(fail)?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(group_commit(writer_conn, rx));
        Ok(Self {
            pool,
            writer: tx,
            change_retention: CHANGE_RETENTION_SECS,
            migrations,
        })
    }

    /// What opening the database did to its schema.
    pub fn migrations(&self) -> MigrationReport {
        self.migrations
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
}

/// The file a `sqlite:` URL names, or `None` for an in-memory database.
pub fn database_file(url: &str) -> Result<Option<PathBuf>, StoreError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let opts = SqliteConnectOptions::from_str(url).map_err(backend)?;
    Ok(Some(opts.get_filename().to_path_buf()))
}

/// Makes sure the database file exists with mode 0600 before SQLite opens it: creates it
/// (empty, which SQLite takes as a new database) when `create`, refuses a missing one
/// otherwise, and takes group and other access away from an existing one and its `-wal` and
/// `-shm` files.
fn prepare_file(path: &Path, create: bool) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(_) => {
            // Opened here first so that a file this user may not write is refused with the
            // cause, not with SQLite's "unable to open database file".
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| file_error("open", path, &e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => {
            return Err(StoreError::Backend(
                format!("no database at {}", path.display()).into(),
            ));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(file_error("open", path, &e));
        }
        Err(_) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(_) => tracing::info!(path = %path.display(), "created the database file"),
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(file_error("create", path, &e)),
            }
        }
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => tracing::warn!(
                    path = %file.display(),
                    "the database file could be read by other users; made it 0600"
                ),
                Err(e) => tracing::warn!(
                    path = %file.display(),
                    error = %e,
                    "the database file can be read by other users, and chmod failed"
                ),
            }
        }
    }
    Ok(())
}

/// A file that could not be opened or created, with its cause named once: a missing
/// directory, a path through a file, no permission, or the operating system's own words.
fn file_error(action: &str, path: &Path, e: &std::io::Error) -> StoreError {
    use std::io::ErrorKind;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let cause = match e.kind() {
        ErrorKind::NotFound => match parent {
            Some(dir) => format!("the directory {} does not exist", dir.display()),
            None => "not found".to_owned(),
        },
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".to_owned(),
        ErrorKind::NotADirectory => match path.ancestors().skip(1).find(|a| a.is_file()) {
            Some(file) => format!("{} is a file, not a directory", file.display()),
            None => "a part of the path is not a directory".to_owned(),
        },
        _ => e.to_string(),
    };
    StoreError::Backend(
        format!(
            "cannot {action} the database file {}: {cause}",
            path.display()
        )
        .into(),
    )
}

/// An error of opening the database or applying its migrations, its cause named once.
fn open_error(path: Option<&Path>, e: sqlx::Error) -> StoreError {
    let shown = path.map_or_else(|| "the database".to_owned(), |p| p.display().to_string());
    let code = match &e {
        sqlx::Error::Database(d) => d.code().and_then(|c| c.parse::<u32>().ok()),
        _ => None,
    };
    match code.map(|c| c & 0xff) {
        // SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM.
        Some(8) => StoreError::Backend(
            format!("cannot write {shown}: permission denied (the file or its directory is read-only for this user)").into(),
        ),
        Some(14) | Some(3) => StoreError::Backend(
            format!("cannot open {shown}: permission denied, or its directory cannot be written (SQLite keeps -wal and -shm files beside it)").into(),
        ),
        _ => match e {
            sqlx::Error::Database(d) => {
                StoreError::Backend(format!("{shown}: {}", d.message()).into())
            }
            sqlx::Error::Migrate(m) => {
                StoreError::Backend(format!("migrating {shown}: {m}").into())
            }
            other => backend(other),
        },
    }
}

/// Writes a consistent copy of the database at a `sqlite:` URL to `to`, while other processes
/// (a serving server) go on reading and writing it, and returns its size in bytes.
///
/// The copy is SQLite's `VACUUM INTO` (<https://sqlite.org/lang_vacuum.html#vacuuminto>): one
/// read transaction, so the copy is the database as of one instant, with every transaction
/// committed before it and none after, and writers are never blocked (WAL mode). It is written
/// to a new file beside `to` (mode 0600: it holds password hashes), synced to disk, then moved
/// to `to`; the directory is synced too. An existing `to` is an `AlreadyExists` error unless
/// `replace`; a failed backup leaves nothing behind.
pub async fn backup(url: &str, to: &Path, replace: bool) -> Result<u64, StoreError> {
    let io = |e: std::io::Error| StoreError::Backend(Box::new(e));
    let Some(source) = database_file(url)? else {
        return Err(StoreError::Backend(
            "an in-memory database has no file to back up".into(),
        ));
    };
    if !source.exists() {
        return Err(StoreError::Backend(
            format!("no database at {}", source.display()).into(),
        ));
    }
    if !replace && to.exists() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        )));
    }
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = to
        .file_name()
        .ok_or_else(|| StoreError::Backend(format!("{} names no file", to.display()).into()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = dir.join(partial_name);
    let result = write_copy(url, &partial).await.and_then(|size| {
        publish(&partial, to, replace).map_err(io)?;
        // The new directory entry is durable only once the directory is.
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(size)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Puts a backup made by [`backup`] in place as the database at a `sqlite:` URL, and returns
/// its size in bytes. The backup must pass `PRAGMA integrity_check` and be a Tessera database.
/// An existing database is replaced only when `replace`, and never while it is open: SQLite is
/// asked for an exclusive lock (`locking_mode = EXCLUSIVE`, `BEGIN EXCLUSIVE`), which it
/// refuses while any connection (a server, a command) has the file open in WAL mode. Its
/// `-wal` and `-shm` files are then removed (they belong to the old file), the backup copied
/// beside the database (mode 0600), synced, and moved into place, and the directory synced.
pub async fn restore(url: &str, from: &Path, replace: bool) -> Result<u64, StoreError> {
    let fail = |m: String| StoreError::Backend(m.into());
    let io = |e: std::io::Error| StoreError::Backend(Box::new(e));
    let Some(target) = database_file(url)? else {
        return Err(fail("an in-memory database cannot be restored".into()));
    };
    check_backup(from).await?;
    if target.exists() {
        if !replace {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("a database exists at {}", target.display()),
            )));
        }
        ensure_closed(url, &target).await?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = target.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| fail("the database URL names no file".into()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".restoring-{}", std::process::id()));
    let partial = dir.join(partial_name);
    let copy = || -> std::io::Result<u64> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut out = opts.open(&partial)?;
        let size = std::io::copy(&mut std::fs::File::open(from)?, &mut out)?;
        out.sync_all()?;
        publish(&partial, &target, replace)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(size)
    };
    let result = copy().map_err(io);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Fails when any connection has the database open: an exclusive lock in exclusive locking
/// mode is refused at once (no busy wait) while another connection holds the WAL open. The
/// probe's own close checkpoints whatever the WAL still held into the old file.
async fn ensure_closed(url: &str, target: &Path) -> Result<(), StoreError> {
    use sqlx::Connection as _;
    let mut conn = SqliteConnectOptions::from_str(url)
        .map_err(backend)?
        .create_if_missing(false)
        .busy_timeout(Duration::ZERO)
        .locking_mode(sqlx::sqlite::SqliteLockingMode::Exclusive)
        .connect()
        .await
        .map_err(backend)?;
    let locked = sqlx::raw_sql("BEGIN EXCLUSIVE; COMMIT;")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    locked.map(|_| ()).map_err(|_| {
        StoreError::Backend(
            format!(
                "{} is open in a server or another command: stop every server first",
                target.display()
            )
            .into(),
        )
    })
}

/// A backup passes `PRAGMA integrity_check` and holds Tessera's schema.
async fn check_backup(file: &Path) -> Result<(), StoreError> {
    use sqlx::Connection as _;
    let fail = |m: String| StoreError::Backend(m.into());
    if !file.is_file() {
        return Err(fail(format!("no backup file at {}", file.display())));
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .map_err(backend)?;
    let integrity: Result<String, _> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await;
    let tessera: Result<i64, _> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await;
    let _ = conn.close().await;
    match (integrity, tessera) {
        (Ok(ok), Ok(1)) if ok == "ok" => Ok(()),
        (Ok(ok), Ok(1)) => Err(fail(format!(
            "{} fails SQLite's integrity check: {ok}",
            file.display()
        ))),
        _ => Err(fail(format!(
            "{} is not a Tessera database backup",
            file.display()
        ))),
    }
}

/// `VACUUM INTO` a new, empty file made with mode 0600, then fsync it.
async fn write_copy(url: &str, partial: &Path) -> Result<u64, StoreError> {
    use sqlx::Connection as _;
    let io = |e: std::io::Error| StoreError::Backend(Box::new(e));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(partial).map_err(io)?;
    let mut conn = SqliteConnectOptions::from_str(url)
        .map_err(backend)?
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(backend)?;
    let target = partial
        .to_str()
        .ok_or_else(|| StoreError::Backend("the backup path is not UTF-8".into()))?;
    let vacuum = sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .map_err(backend);
    let _ = conn.close().await;
    vacuum?;
    let file = std::fs::File::open(partial).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(file.metadata().map_err(io)?.len())
}

/// Moves the finished copy to its name: over an existing file only when `replace`; otherwise
/// a hard link, which fails rather than replace a file made meanwhile.
fn publish(partial: &Path, to: &Path, replace: bool) -> std::io::Result<()> {
    if replace {
        return std::fs::rename(partial, to);
    }
    match std::fs::hard_link(partial, to) {
        Ok(()) => std::fs::remove_file(partial),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        )),
        // A file system without hard links.
        Err(_) if !to.exists() => std::fs::rename(partial, to),
        Err(e) => Err(e),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sqlx::Connection as _;

    #[tokio::test]
    async fn a_database_locked_by_another_process_is_unavailable_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        // Another process holds the write lock...
        let mut holder = opts_for_writer(&url).unwrap().connect().await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .unwrap();
        // ...and a writer that gives up at once gets SQLITE_BUSY.
        let mut writer = opts_for_writer(&url)
            .unwrap()
            .busy_timeout(Duration::ZERO)
            .connect()
            .await
            .unwrap();
        let err = sqlx::query("INSERT INTO changes (kind, key, created_at) VALUES ('keys', '', 0)")
            .execute(&mut writer)
            .await
            .unwrap_err();
        assert!(matches!(backend(err), StoreError::Unavailable(_)));
        // A wrong statement is not an outage.
        let err = sqlx::query("SELECT * FROM no_such_table")
            .execute(&mut writer)
            .await
            .unwrap_err();
        assert!(matches!(backend(err), StoreError::Backend(_)));
        writer.close().await.unwrap();
        holder.close().await.unwrap();
        store.close().await;
    }
}
