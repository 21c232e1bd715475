//! Subcommands. Management commands open the same database as the server; the server learns
//! of their changes through the change feed within a second.

pub mod client;
pub mod env;
pub mod jwt;
pub mod keys;
pub mod maintenance;
pub mod serve;
pub mod tls;
pub mod token;
pub mod trust;
pub mod user;

use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_core::clock::{Clock, SystemClock};
use tessera_core::store::Store;
use tessera_store_sqlite::SqliteStore;

use crate::settings::{self, Overrides, Settings};
use crate::{Cli, Command};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
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
        Command::Jwt(cmd) => jwt::run(cmd),
        Command::Purge(args) => maintenance::purge(args, &settings).await,
        Command::Migrate(args) => maintenance::migrate(args, &settings).await,
    }
}

/// Opens the configured database (migrating it).
pub async fn open_store(settings: &Settings) -> Result<Arc<SqliteStore>> {
    let url = &settings.database_url;
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "unsupported database URL '{}': this build supports sqlite://PATH",
            redact(url)
        );
    }
    let store = SqliteStore::connect(url)
        .await
        .with_context(|| format!("opening database {}", redact(url)))?;
    Ok(Arc::new(store))
}

/// The store as the trait object the core wants.
pub fn as_dyn(store: &Arc<SqliteStore>) -> Arc<dyn Store> {
    store.clone()
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
