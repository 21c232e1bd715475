//! `tessera admin-token ...`: credentials of the admin API.
//!
//! A token is shown once when made and stored only as its hash; each has scopes (`clients:write`
//! lets a vendor's product create clients and nothing else) and may expire. A thin caller of
//! [`tessera_core::admin::admin_tokens`], where the rules live.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::admin_tokens::{self, AdminTokenSpec, AdminTokenView};
use tessera_core::audit::AuditKind;
use tessera_core::store::Store;

use crate::cli::{now, open_store, print_json};
use crate::settings::Settings;

/// Admin token subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a token and print it (this once).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// A scope (repeatable, or space-separated): RESOURCE:read, RESOURCE:write (implies
        /// read) for clients, users, trust, envs, keys, idps, grants; tokens:write;
        /// audit:read; clients:register (an initial access token for dynamic client
        /// registration, nothing else); or admin (everything).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// How long until it expires: seconds, or a number with s, m, h or d (`30d`)
        /// [default: never].
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it is refused from now on.
    Revoke {
        /// The token's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses a lifetime: `90` (seconds), `90s`, `15m`, `12h`, `30d`; at least one second.
fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (text.get(..i).unwrap_or(""), c),
        _ => (text, 's'),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (like 3600, 90m, 12h or 30d)"))?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("'{text}': the unit must be s, m, h or d")),
    };
    match n.checked_mul(factor) {
        Some(v) if v >= 1 => Ok(v),
        _ => Err(format!("'{text}' must be at least one second")),
    }
}

/// Runs an admin-token subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(cmd, store.as_ref()).await;
    store.close().await;
    result
}

async fn dispatch(cmd: Command, store: &dyn Store) -> Result<()> {
    match cmd {
        Command::Create {
            name,
            scopes,
            expires_in,
            json,
        } => {
            let spec = AdminTokenSpec {
                name,
                scopes,
                expires_in,
            };
            let made = admin_tokens::create(store, spec, now()).await?;
            crate::cli::audit(
                store,
                AuditKind::AdminTokenCreated,
                &made.record.id,
                json!({"name": made.record.name, "scopes": made.record.scopes}),
            )
            .await;
            if json {
                let mut v = json!(AdminTokenView::from(&made.record));
                if let Some(o) = v.as_object_mut() {
                    o.insert("token".into(), json!(made.token.expose()));
                }
                print_json(&v);
            } else {
                println!(
                    "admin token {} ({}), scopes: {}",
                    made.record.id,
                    made.record.name,
                    made.record.scopes.join(" ")
                );
                println!("token (shown once): {}", made.token.expose());
            }
        }
        Command::List { json } => {
            let all = admin_tokens::list(store).await?;
            if json {
                print_json(&json!(all
                    .iter()
                    .map(AdminTokenView::from)
                    .collect::<Vec<_>>()));
            } else {
                let t = now();
                for r in &all {
                    let state = if r.revoked_at.is_some() {
                        "revoked"
                    } else if r.expires_at.is_some_and(|e| e <= t) {
                        "expired"
                    } else {
                        "active"
                    };
                    let until = r
                        .expires_at
                        .map(|e| format!("  expires {}", crate::cli::time(e)))
                        .unwrap_or_default();
                    println!(
                        "{}  {}  {}  [{state}]{until}",
                        r.id,
                        r.name,
                        r.scopes.join(" ")
                    );
                }
            }
        }
        Command::Revoke { id, json } => {
            admin_tokens::revoke(store, &id, now()).await?;
            crate::cli::audit(store, AuditKind::AdminTokenRevoked, &id, json!({})).await;
            if json {
                print_json(&json!({"id": id, "revoked": true}));
            } else {
                println!("revoked admin token {id}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("12h").unwrap(), 43_200);
        assert_eq!(parse_duration("30d").unwrap(), 2_592_000);
        for bad in ["", "d", "0", "-5m", "3w", "1.5h", "99999999999999999d", "é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
