//! Subcommands. Management commands open the same database as the server; the server learns
//! of their changes through the change feed within a second. With `--server URL` they call a
//! running server's admin API instead ([`remote`]).

pub mod admin_token;
pub mod audit_log;
pub mod client;
pub mod completions;
pub mod connections;
pub mod env;
pub mod idp;
pub mod jwt;
pub mod keys;
pub mod maintenance;
pub mod remote;
pub mod serve;
pub mod tls;
pub mod token;
pub mod trust;
pub mod user;

use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_core::audit::{Actor, AuditEvent, AuditKind};
use tessera_core::clock::{Clock, SystemClock};
use tessera_core::store::Store;
use tessera_store_postgres::{PgOptions, PgStore};
use tessera_store_sqlite::SqliteStore;

use crate::settings::{self, Overrides, Settings};
use crate::{Cli, Command};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    // Completions read no settings: a broken config file must not keep them from printing.
    if let Command::Completions(args) = &cli.command {
        return completions::run(args);
    }
    if let Some(server) = cli.server.as_deref() {
        if remote::applies(&cli.command) {
            let api = remote::Remote::new(server, cli.admin_token_file.as_deref())?;
            return remote::run(cli.command, &api).await;
        }
    }
    let file = settings::load_file(cli.config.as_deref())?;
    let mut overrides = Overrides {
        database_url: cli.database_url,
        secret_file: cli.secret_file,
        ..Overrides::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.listen = args.listen.clone();
        overrides.issuer = args.issuer.clone();
        overrides.log_format = args.log_format.clone();
        overrides.tls_cert = args.tls_cert.clone();
        overrides.ops_listen = args.ops_listen.clone();
        overrides.admin_listen = args.admin_listen.clone();
        overrides.tls_key = args.tls_key.clone();
        overrides.assertion_max_lifetime = args.assertion_max_lifetime;
        overrides.assertion_leeway = args.assertion_leeway;
    }
    let settings = settings::resolve(overrides, file)?;
    match cli.command {
        Command::Serve(_) => serve::run(settings).await,
        Command::Client(cmd) => client::run(*cmd, &settings).await,
        Command::Keys(cmd) => keys::run(cmd, &settings).await,
        Command::Token(cmd) => token::run(cmd, &settings).await,
        Command::User(cmd) => user::run(cmd, &settings).await,
        Command::Trust(cmd) => trust::run(cmd, &settings).await,
        Command::Env(cmd) => env::run(cmd, &settings).await,
        Command::Idp(cmd) => idp::run(cmd, &settings).await,
        Command::Audit(args) => audit_log::run(args, &settings).await,
        Command::AdminToken(cmd) => admin_token::run(cmd, &settings).await,
        Command::Jwt(cmd) => jwt::run(cmd),
        Command::Purge(args) => maintenance::purge(args, &settings).await,
        Command::Migrate(args) => maintenance::migrate(args, &settings).await,
        Command::Completions(args) => completions::run(&args),
    }
}

/// An open database: SQLite or PostgreSQL, chosen by the URL's scheme.
#[derive(Debug, Clone)]
pub enum Database {
    /// `sqlite://PATH` (or `sqlite:PATH`).
    Sqlite(Arc<SqliteStore>),
    /// `postgres://...` or `postgresql://...`.
    Postgres(Arc<PgStore>),
}

impl Database {
    /// The store as the trait object the core wants.
    pub fn as_dyn(&self) -> Arc<dyn Store> {
        match self {
            Database::Sqlite(s) => s.clone(),
            Database::Postgres(s) => s.clone(),
        }
    }

    /// Closes the connections, waiting for in-flight statements.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(s) => s.close().await,
            Database::Postgres(s) => s.close().await,
        }
    }
}

impl std::ops::Deref for Database {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            Database::Sqlite(s) => s.as_ref(),
            Database::Postgres(s) => s.as_ref(),
        }
    }
}

impl AsRef<dyn Store> for Database {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        &**self
    }
}

/// Opens the configured database, applying its migrations: the one place that picks the
/// backend, for every management command. A database that does not exist yet (no SQLite
/// file, or a PostgreSQL database never migrated) is refused with the path or URL it was
/// looked for at: a command run in the wrong directory must not answer from a new, empty
/// database. Only `serve` and `migrate` create one ([`open_or_create_store`]).
pub async fn open_store(settings: &Settings) -> Result<Database> {
    open(settings, false).await
}

/// Opens the configured database, creating it (and its schema) if it does not exist yet:
/// for `serve` and `migrate`.
pub async fn open_or_create_store(settings: &Settings) -> Result<Database> {
    open(settings, true).await
}

async fn open(settings: &Settings, create: bool) -> Result<Database> {
    let url = &settings.database_url;
    if tessera_store_postgres::is_postgres_url(url) {
        let options = PgOptions {
            max_connections: settings.database_pool_size,
            ..PgOptions::default()
        };
        let store = if create {
            PgStore::connect(url, options).await
        } else {
            PgStore::connect_existing(url, options).await
        }
        .with_context(|| format!("opening database {}", redact(url)))?
        .with_change_retention(settings.change_retention);
        return Ok(Database::Postgres(Arc::new(store)));
    }
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "unsupported database URL '{}': use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
            redact(url)
        );
    }
    if !create {
        let file = tessera_store_sqlite::database_file(url)
            .with_context(|| format!("reading the database URL {}", redact(url)))?;
        if let Some(file) = file.filter(|f| !f.exists()) {
            let shown = std::path::absolute(&file).unwrap_or(file);
            anyhow::bail!(
                "no database at {} (database URL {}): run this command where the server's \
                 database is, or point --database-url (TESSERA_DATABASE_URL) at it; only \
                 `tessera serve` and `tessera migrate` create a new database",
                shown.display(),
                redact(url)
            );
        }
    }
    let store = if create {
        SqliteStore::connect(url).await
    } else {
        SqliteStore::open_existing(url).await
    }
    .with_context(|| format!("opening database {}", redact(url)))?
    .with_change_retention(settings.change_retention);
    Ok(Database::Sqlite(Arc::new(store)))
}

/// Records the issuer a database is served under the first time it is served, and refuses to
/// serve it under another: every token, code and session in it was issued under that issuer,
/// and two servers with different issuers over one database would each find the other's
/// tokens inactive. `tessera migrate --set-issuer` changes it deliberately.
pub async fn check_issuer(store: &Database, issuer: &str) -> Result<()> {
    let recorded = store
        .record_issuer(issuer, false, now())
        .await
        .context("recording the issuer the database is served under")?;
    if recorded != issuer {
        anyhow::bail!(
            "this database is served under the issuer {recorded}, and this server is \
             configured with {issuer}: set issuer (TESSERA_ISSUER, serve --issuer) to \
             {recorded}, or, to move the database to the new issuer deliberately, run \
             `tessera migrate --set-issuer {issuer}` first (JWTs issued under the old \
             issuer are then no longer accepted)"
        );
    }
    Ok(())
}

/// Records a change made at the command line in the audit trail (actor `cli`; `target`
/// empty for none). Never fails the command: a trail that cannot be written is logged.
pub async fn audit(store: &dyn Store, kind: AuditKind, target: &str, detail: serde_json::Value) {
    let mut event = AuditEvent::new(now(), kind, Actor::Cli).detail(detail);
    if !target.is_empty() {
        event = event.target(target);
    }
    tessera_core::audit::record(store, event).await;
}

/// The current time.
pub fn now() -> i64 {
    SystemClock.now()
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}
