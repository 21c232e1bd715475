//! `tessera client import FILE`: registers clients from a JSON-lines file, for a migration
//! from another server.
//!
//! Each non-blank line is one client as `tessera client create` and the admin API take it
//! ([`ClientSpec::from_json`]), usually with its old `client_id` and its secret's existing
//! hash (`secret_hash`, [`tessera_core::imported_secret`]), so its owner keeps its
//! credentials across the cutover. Every line is tried on its own and reported (`line N:
//! created ID` or `line N: error: ...`, or one JSON object a line with `--json`), then a
//! summary; the command fails if any line did. A line without `secret_hash` for a client
//! that authenticates with a secret gets a generated one, printed this once.

use anyhow::{bail, Context as _, Result};
use serde_json::json;
use tessera_core::admin::clients::{self, ClientSpec};
use tessera_core::audit::AuditKind;
use tessera_core::store::Store;

use crate::cli::now;
use crate::settings::Settings;

/// Imports every line of `path`; fails when any line failed.
pub async fn run(path: &str, json: bool, settings: &Settings, store: &dyn Store) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut created = 0usize;
    let mut failed = 0usize;
    let mut shown = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let outcome = match ClientSpec::from_json(line) {
            Ok(spec) => clients::create(store, &settings.core, spec, now()).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(c) => {
                created += 1;
                crate::cli::audit(
                    store,
                    AuditKind::ClientCreated,
                    &c.client.client_id,
                    json!({"name": c.client.name, "imported": true}),
                )
                .await;
                let secret = c.secret.as_ref().map(|s| s.expose().to_owned());
                shown.push(if json {
                    json!({"line": n, "client_id": c.client.client_id, "client_secret": secret})
                        .to_string()
                } else {
                    match secret {
                        Some(s) => format!(
                            "line {n}: created {} (new client_secret, shown this once: {s})",
                            c.client.client_id
                        ),
                        None => format!("line {n}: created {}", c.client.client_id),
                    }
                });
            }
            Err(e) => {
                failed += 1;
                shown.push(if json {
                    json!({"line": n, "error": e.to_string()}).to_string()
                } else {
                    format!("line {n}: error: {e}")
                });
            }
        }
    }
    if created > 0 {
        // As `client create` does: let every running node hear of the new clients before
        // reporting them, so that their credentials work at once wherever they are used.
        tokio::time::sleep(2 * tessera_node::SYNC_INTERVAL).await;
    }
    for line in &shown {
        println!("{line}");
    }
    if json {
        println!("{}", json!({"created": created, "failed": failed}));
    } else {
        println!("{created} created, {failed} failed");
    }
    if failed > 0 {
        bail!("{failed} of {} lines failed", created + failed);
    }
    Ok(())
}
