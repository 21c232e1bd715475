//! The `tessera` binary: the server and its management commands.
//!
//! Owns the command line (clap), logging set-up, and wiring of settings, storage and the HTTP
//! layer. The only crate that uses `anyhow`. Subcommands live in [`cli`].

mod cli;
mod sealing;
mod settings;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tessera: an OAuth 2.0 / OpenID Connect authorization server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// TOML config file.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL, e.g. sqlite://./tessera.db.
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL")]
    database_url: Option<String>,
    /// File holding the secret that seals signing keys at rest (TESSERA_SECRET wins over it).
    #[arg(long, global = true, env = "TESSERA_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// Manage a running server through its admin API at this URL (its admin listener)
    /// instead of opening the database; the admin token comes from --admin-token-file or
    /// TESSERA_ADMIN_TOKEN.
    #[arg(long, global = true, env = "TESSERA_SERVER")]
    server: Option<String>,
    /// File whose first line is the admin token for --server (else TESSERA_ADMIN_TOKEN).
    #[arg(long, global = true)]
    admin_token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(cli::serve::Args),
    /// Manage clients.
    #[command(subcommand)]
    Client(Box<cli::client::Command>),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(cli::keys::Command),
    /// Inspect or revoke a token by its value.
    #[command(subcommand)]
    Token(cli::token::Command),
    /// Manage the users who sign in on Tessera's pages.
    #[command(subcommand)]
    User(cli::user::Command),
    /// Manage the trusted issuers of JWT assertions (RFC 7523).
    #[command(subcommand)]
    Trust(cli::trust::Command),
    /// Manage deployment environments.
    #[command(subcommand)]
    Env(cli::env::Command),
    /// Manage the upstream OpenID providers users may sign in through.
    #[command(subcommand)]
    Idp(cli::idp::Command),
    /// Manage the credentials of the admin API.
    #[command(subcommand)]
    AdminToken(cli::admin_token::Command),
    /// Make a key pair and sign JWTs as a vendor backend would (to try the JWT-bearer flow).
    #[command(subcommand)]
    Jwt(cli::jwt::Command),
    /// List the audit trail: admin changes and security events, newest first.
    Audit(cli::audit_log::Args),
    /// Delete expired tokens, revocation records, change-feed entries and retired keys now.
    Purge(cli::maintenance::PurgeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(cli::maintenance::MigrateArgs),
    /// Make a sealing secret (for TESSERA_SECRET or secret_file).
    #[command(subcommand)]
    Secret(cli::secret::Command),
    /// Write a consistent copy of the SQLite database while servers serve it.
    Backup(cli::backup::Args),
    /// Put a backup in place as the SQLite database (with the servers stopped).
    Restore(cli::restore::Args),
    /// Check the configuration: effective settings and where each came from.
    #[command(subcommand)]
    Config(cli::config::Command),
    /// Print a tab-completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(cli::completions::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
