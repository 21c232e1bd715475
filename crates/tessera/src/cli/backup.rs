//! `tessera backup --to FILE`: a consistent copy of the SQLite database, taken while servers
//! serve it ([`tessera_store_sqlite::backup`]: `VACUUM INTO`, fsynced, never over an existing
//! file unless `--force`). A PostgreSQL database is backed up with `pg_dump` instead, as the
//! README's "Backup and restore" section describes.
//!
//! The copy holds the signing keys sealed under the sealing secret, not the secret: the output
//! says where the secret is, since a backup restored without it cannot open its keys.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cli::{print_json, redact};
use crate::settings::Settings;

/// Flags of `backup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File to write the copy to; refused if it exists (unless --force).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Writes the backup and says what it wrote.
pub async fn run(args: Args, settings: &Settings) -> Result<()> {
    let url = &settings.database_url;
    if tessera_store_postgres::is_postgres_url(url) {
        bail!(
            "tessera backup copies a SQLite database, and {} is PostgreSQL: back it up with \
             `pg_dump -Fc` and keep the sealing secret with the dump (see \"Backup and restore\" \
             in the README)",
            redact(url)
        );
    }
    if !args.force && args.to.exists() {
        bail!(
            "{} already exists: choose a new file, or give --force to replace it",
            args.to.display()
        );
    }
    let size = tessera_store_sqlite::backup(url, &args.to, args.force)
        .await
        .map_err(plain)
        .with_context(|| format!("backing up {} to {}", redact(url), args.to.display()))?;
    let secret = settings.secret_location();
    if args.json {
        print_json(&serde_json::json!({
            "database_url": redact(url),
            "backup": args.to.display().to_string(),
            "bytes": size,
            "secret": secret,
        }));
    } else {
        println!(
            "wrote a consistent copy of {} to {} ({size} bytes)",
            redact(url),
            args.to.display()
        );
        println!(
            "keep the sealing secret with it ({secret}): without it the signing keys in the \
             backup cannot be opened"
        );
    }
    Ok(())
}

/// A storage error as its cause alone (a file-system or SQLite message), said once.
pub(crate) fn plain(e: tessera_core::store::StoreError) -> anyhow::Error {
    match e {
        tessera_core::store::StoreError::Backend(cause) => anyhow::anyhow!("{cause}"),
        other => other.into(),
    }
}
