//! `tessera restore --from FILE`: puts a backup made by `tessera backup` in place as the SQLite
//! database, with the servers stopped ([`tessera_store_sqlite::restore`]: refused while the
//! database is open, checked with `PRAGMA integrity_check`, never over an existing database
//! unless `--force`). A PostgreSQL database is restored with `pg_restore`, as the README's
//! "Backup and restore" section describes.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cli::redact;
use crate::settings::Settings;

/// Flags of `restore`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup file (`tessera backup --to FILE`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Replace the existing database.
    #[arg(long)]
    pub force: bool,
}

/// Restores the backup and says what it did.
pub async fn run(args: Args, settings: &Settings) -> Result<()> {
    let url = &settings.database_url;
    if tessera_store_postgres::is_postgres_url(url) {
        bail!(
            "tessera restore restores a SQLite database, and {} is PostgreSQL: restore a \
             `pg_dump -Fc` dump with `pg_restore` (see \"Backup and restore\" in the README)",
            redact(url)
        );
    }
    let size = match tessera_store_sqlite::restore(url, &args.from, args.force).await {
        Err(tessera_core::store::StoreError::Backend(e))
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists) =>
        {
            bail!("{e}: stop every server, then give --force to replace it")
        }
        other => other
            .map_err(crate::cli::backup::plain)
            .with_context(|| format!("restoring {} from {}", redact(url), args.from.display()))?,
    };
    println!(
        "restored {} from {} ({size} bytes)",
        redact(url),
        args.from.display()
    );
    println!(
        "start the servers with the sealing secret the backup's keys were sealed under \
         (read from {}) and the same issuer",
        settings.secret_location()
    );
    Ok(())
}
