//! `tessera env ...`: deployment environments.
//!
//! An environment is created on first use (`trust add --env`, `client create --env`, or
//! `env create`); `default` always exists. Deleting one removes its trust registrations and
//! its `/sdk/token` client (which revokes that client's tokens), and is refused while other
//! clients are registered in it: delete or re-create those first. A thin caller of
//! [`tessera_core::admin::envs`], where the rules live.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::envs::{self, EnvPatch};
use tessera_core::admin::AdminError;
use tessera_core::environment::DEFAULT_ENV;
use tessera_core::model::EnvRecord;
use tessera_core::store::Store;

use crate::cli::client::registration::flagged;
use crate::cli::{audit, now, open_store, print_json};
use crate::settings::Settings;
use tessera_core::audit::AuditKind;

/// Environment subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an environment (nothing happens if it exists).
    Create {
        /// Its name: 1 to 64 of a-z, 0-9, '-' and '_'.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change an environment's settings.
    Set {
        /// The environment.
        name: String,
        /// Every access token issued in it is single-use: the first successful check
        /// consumes it (`--single-use-tokens false` to turn it off).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        single_use_tokens: Option<bool>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List environments.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an environment with its trust registrations and its /sdk/token client;
    /// refused while other clients are registered in it, and for `default`.
    Delete {
        /// The environment.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an env subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(cmd, store.as_ref()).await;
    store.close().await;
    result
}

async fn dispatch(cmd: Command, store: &dyn Store) -> Result<()> {
    match cmd {
        Command::Create { name, json } => {
            let env = envs::create(store, &name, now()).await?;
            audit(store, AuditKind::EnvCreated, &name, json!({})).await;
            show(&env, json);
        }
        Command::Set {
            name,
            single_use_tokens,
            json,
        } => {
            let patch = EnvPatch { single_use_tokens };
            let env = envs::update(store, &name, patch, now())
                .await
                .map_err(flagged)?;
            let detail = json!({"single_use_tokens": env.single_use_tokens});
            audit(store, AuditKind::EnvUpdated, &name, detail).await;
            show(&env, json);
        }
        Command::List { json } => {
            let envs = envs::list(store).await?;
            if json {
                print_json(&serde_json::Value::Array(
                    envs.iter().map(describe).collect(),
                ));
            } else {
                for e in &envs {
                    let once = if e.single_use_tokens {
                        "  single-use tokens"
                    } else {
                        ""
                    };
                    println!("{}{once}", e.name);
                }
            }
        }
        Command::Delete { name, json } => {
            match envs::delete(store, &name, now()).await {
                Ok(()) => {}
                Err(AdminError::Conflict(m)) if name != DEFAULT_ENV => {
                    bail!("{m} (`tessera client list --json` shows each client's env)")
                }
                Err(e) => return Err(e.into()),
            }
            audit(store, AuditKind::EnvDeleted, &name, json!({})).await;
            if json {
                print_json(&json!({"env": name, "deleted": true}));
            } else {
                println!("deleted environment {name} with its trust registrations");
            }
        }
    }
    Ok(())
}

fn describe(e: &EnvRecord) -> serde_json::Value {
    json!({
        "name": e.name,
        "single_use_tokens": e.single_use_tokens,
        "created_at": e.created_at,
    })
}

fn show(e: &EnvRecord, json: bool) {
    if json {
        print_json(&describe(e));
    } else {
        println!(
            "environment {}{}",
            e.name,
            if e.single_use_tokens {
                " (single-use tokens)"
            } else {
                ""
            }
        );
    }
}
