//! `tessera secret generate`: a new sealing secret for `TESSERA_SECRET` or `secret_file`.
//!
//! What a sealing secret is lives in [`crate::sealing`]. This command prints one as a server
//! makes its own default key file: 32 random bytes from the operating system, base64url without padding (RFC 4648
//! §5), 43 characters, so it can be pasted into a shell, an environment file or a secret
//! store unquoted.

use anyhow::Result;
use clap::Subcommand;

use crate::sealing::generate;

/// Secret subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a new random sealing secret (32 random bytes, base64url: 43 characters), e.g.
    /// `export TESSERA_SECRET=$(tessera secret generate)`.
    Generate,
}

/// Runs a secret subcommand; opens no database and reads no settings.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Generate => println!("{}", generate()),
    }
    Ok(())
}
