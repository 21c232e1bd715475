//! Subcommands. Management commands open the same database as the server; the server learns
//! of their changes through the change feed within a second. With `--server URL` they call a
//! running server's admin API instead ([`remote`]).

pub mod admin_token;
pub mod audit_log;
pub mod backup;
pub mod client;
pub mod completions;
pub mod config;
pub mod connections;
pub mod env;
pub mod idp;
pub mod jwt;
pub mod keys;
pub mod maintenance;
pub mod remote;
pub mod restore;
pub mod secret;
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

pub use crate::settings::redact;
use crate::settings::{self, Overrides, Settings};
use crate::{Cli, Command};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    // Need no settings: they work where the configuration is not written yet, or is broken.
    let command = match cli.command {
        Command::Secret(cmd) => return secret::run(cmd),
        Command::Completions(args) => return completions::run(&args),
        other => other,
    };
    if let Some(server) = cli.server.as_deref() {
        if remote::applies(&command) {
            let api = remote::Remote::new(server, cli.admin_token_file.as_deref())?;
            return remote::run(command, &api).await;
        }
    }
    if let Command::Config(cmd) = command {
        return config::run(
            cmd,
            cli.config.as_deref(),
            cli.database_url,
            cli.secret_file,
        );
    }
    let file = settings::load_file(cli.config.as_deref())?;
    let mut overrides = Overrides {
        database_url: cli.database_url,
        secret_file: cli.secret_file,
        ..Overrides::default()
    };
    if let Command::Serve(args) = &command {
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
    match command {
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
        Command::Secret(cmd) => secret::run(cmd),
        Command::Backup(args) => backup::run(args, &settings).await,
        Command::Restore(args) => restore::run(args, &settings).await,
        Command::Config(_) => unreachable!("handled before the settings are resolved"),
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

    /// What opening the database did to its schema: migrations it had before, and
    /// migrations applied now.
    pub fn migrations(&self) -> (usize, usize) {
        match self {
            Database::Sqlite(s) => (s.migrations().before, s.migrations().applied),
            Database::Postgres(s) => (s.migrations().before, s.migrations().applied),
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
        // Only a file that is not there is "no database"; one this user may not see is
        // refused by the store with its cause (permission denied).
        let missing = |f: &std::path::PathBuf| {
            std::fs::metadata(f).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        };
        if let Some(file) = file.filter(missing) {
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

/// Unix seconds as an RFC 3339 UTC time (`2026-12-05T04:02:43Z`), for text output; `--json`
/// keeps the numbers.
pub fn time(at: i64) -> String {
    tessera_core::admin::audit::rfc3339(at)
}

/// A JSON value for reading rather than parsing: every number under a key that names a time
/// (`*_at`, `*_until`, `iat`, `exp`, `nbf`, `auth_time`) becomes an RFC 3339 time, at any
/// depth. What `client show` and `token introspect` print without `--json`.
pub fn readable_times(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    let is_time = key.ends_with("_at")
                        || key.ends_with("_until")
                        || matches!(key.as_str(), "iat" | "exp" | "nbf" | "auth_time");
                    match value.as_i64() {
                        Some(at) if is_time => *value = serde_json::Value::String(time(at)),
                        _ => walk(value),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Prints a value as pretty JSON with its times as RFC 3339 ([`readable_times`]): the text
/// output of commands whose `--json` output is the same object.
pub fn print_readable(v: &serde_json::Value) {
    print_json(&readable_times(v.clone()));
}

/// Prints a value as pretty JSON.
pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// `--output env`: a new client's credentials as shell assignments, so that a script (and
/// every shell example of the README) sets its variables with
/// `eval "$(tessera client create … --output env)"`, without a JSON parser.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvOutput {
    /// `env`: print shell assignments, `CLIENT_ID='…'` and `CLIENT_SECRET='…'` (`unset
    /// CLIENT_SECRET` for a client without one), for `eval "$(tessera … --output env)"`.
    #[arg(long, value_name = "FORMAT", value_parser = ["env"], conflicts_with = "json")]
    pub output: Option<String>,
    /// With `--output env`: the variables' prefix (`API` gives `API_ID` and `API_SECRET`).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "CLIENT",
        requires = "output"
    )]
    pub var_prefix: String,
}

impl EnvOutput {
    /// Whether `--output env` was asked for; refuses a prefix that is not a shell name.
    pub fn wanted(&self) -> Result<bool> {
        if self.output.is_none() {
            return Ok(false);
        }
        let p = &self.var_prefix;
        let valid = p
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            anyhow::bail!(
                "--var-prefix must be upper-case letters, digits and '_', not starting with a \
                 digit (a shell variable name), not '{p}'"
            );
        }
        Ok(true)
    }

    /// Prints `PREFIX_ID` and `PREFIX_SECRET` (or unsets the latter when there is none).
    pub fn print(&self, id: &str, secret: Option<&str>) {
        let p = &self.var_prefix;
        println!("{p}_ID={}", shell_quote(id));
        match secret {
            Some(s) => println!("{p}_SECRET={}", shell_quote(s)),
            None => println!("unset {p}_SECRET"),
        }
    }
}

/// A string as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_text_output_are_rfc3339_and_other_numbers_stay() {
        let v = serde_json::json!({
            "created_at": 951_827_415,
            "claims": {"exp": 0, "iat": 951_827_415},
            "revoked_at": null,
            "access_token_lifetime": 3600,
            "items": [{"old_secret_valid_until": 951_827_415}],
        });
        assert_eq!(
            readable_times(v),
            serde_json::json!({
                "created_at": "2000-02-29T12:30:15Z",
                "claims": {"exp": "1970-01-01T00:00:00Z", "iat": "2000-02-29T12:30:15Z"},
                "revoked_at": null,
                "access_token_lifetime": 3600,
                "items": [{"old_secret_valid_until": "2000-02-29T12:30:15Z"}],
            })
        );
    }
}
