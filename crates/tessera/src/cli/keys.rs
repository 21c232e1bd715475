//! `tessera keys ...`: signing keys.
//!
//! The commands that write keys (`rotate`, `reseal`) first open every stored key with the
//! sealing secret they were given and refuse, writing nothing, when one does not open
//! (`keys::check_sealed_by`): a wrong `TESSERA_SECRET` or a missing `--secret-file` must not
//! leave a database no server can start from. No command creates a key file for a database
//! that already has keys. A thin caller of [`tessera_core::admin::keys`].

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use tessera_core::admin;

use crate::cli::{audit, now, open_store, print_json, time};
use crate::settings::Settings;
use tessera_core::audit::AuditKind;

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new signing key: published in the JWKS at once, signing after the lead time;
    /// older keys stay published until every token they signed has expired. Refused when
    /// the stored keys do not open with this command's sealing secret.
    Rotate {
        /// Seconds before the new key signs [default: key_rotation_lead_time, 600]; at least
        /// the JWKS cache lifetime (its Cache-Control max-age: half key_rotation_lead_time,
        /// at most 300).
        #[arg(long)]
        lead_time: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every signing key under a new sealing secret (the current one comes from
    /// TESSERA_SECRET or the secret file as usual). Then restart every server with the new
    /// secret.
    Reseal {
        /// File holding the new sealing secret (at least 16 bytes).
        #[arg(long)]
        new_secret_file: std::path::PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List signing keys (public parts only).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a keys subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        Command::Rotate { lead_time, json } => {
            let sealer = settings.sealer_for(store.as_ref()).await?;
            let t = now();
            let key = admin::keys::rotate(store.as_ref(), &sealer, &settings.core, lead_time, t)
                .await
                .context("no key was made")?;
            let detail = json!({"alg": key.alg, "activates_at": key.activates_at});
            audit(store.as_ref(), AuditKind::KeyRotated, &key.kid, detail).await;
            let out = json!({"kid": key.kid, "alg": key.alg, "activates_at": key.activates_at});
            print_rotated(&out, t, json);
        }
        Command::Reseal {
            new_secret_file,
            json,
        } => {
            let text = std::fs::read_to_string(&new_secret_file).with_context(|| {
                format!("reading the new secret from {}", new_secret_file.display())
            })?;
            let source = format!("the new secret in {}", new_secret_file.display());
            let new = crate::settings::sealer_from(&source, text.trim())?;
            let old = settings.sealer_for(store.as_ref()).await?;
            // The client secrets of upstream identity providers are sealed under the same
            // secret: re-sealed first (a secret the new one already opens is left as it is, so
            // a re-run finishes an interrupted one), and back again if the keys are not.
            let idps = admin::idps::reseal(store.as_ref(), &old, &new)
                .await
                .context("nothing was re-sealed")?;
            let n = match admin::keys::reseal(store.as_ref(), &old, &new, now()).await {
                Ok(n) => n,
                Err(e) => {
                    let back = admin::idps::reseal(store.as_ref(), &new, &old).await;
                    let e = anyhow::Error::from(e).context("no key was re-sealed");
                    return Err(match back {
                        Ok(_) => e,
                        Err(b) => e.context(format!(
                            "and the identity provider secrets re-sealed under the new secret \
                             could not be put back ({b}): run the command again"
                        )),
                    });
                }
            };
            let detail = json!({"resealed": n, "resealed_idp_secrets": idps});
            audit(store.as_ref(), AuditKind::KeyRotated, "resealed", detail).await;
            if json {
                print_json(&json!({"resealed": n, "resealed_idp_secrets": idps}));
            } else {
                println!(
                    "re-sealed {n} keys and {idps} identity provider secrets; restart every \
                     server with the new secret (the old one no longer opens them; until then \
                     running servers keep their keys and make none)"
                );
            }
        }
        Command::List { json } => {
            let list: Vec<serde_json::Value> = admin::keys::list(store.as_ref(), now())
                .await?
                .iter()
                .map(|(k, state)| {
                    json!({
                        "kid": k.kid,
                        "alg": k.alg,
                        "created_at": k.created_at,
                        "activates_at": k.activates_at,
                        "retires_at": k.retires_at,
                        "sealed_by": k.sealed_by,
                        "state": state.as_str(),
                    })
                })
                .collect();
            print_list(&list, json);
        }
    }
    store.close().await;
    Ok(())
}

/// What `keys rotate` prints, from `{kid, alg, activates_at}` made at `t`.
pub(crate) fn print_rotated(key: &Value, t: i64, json: bool) {
    if json {
        print_json(key);
    } else {
        let activates_at = key["activates_at"].as_i64().unwrap_or_default();
        println!(
            "new {} key {} is published now and signs from {} (in {} s)",
            key["alg"].as_str().unwrap_or_default(),
            key["kid"].as_str().unwrap_or_default(),
            time(activates_at),
            activates_at - t
        );
    }
}

/// A key's state as `keys list` prints it, from its name in the JSON and the admin API
/// (`pending`, `active`, `superseded`, `retired`): what the key does now, and since or until
/// when.
pub(crate) fn state_line(k: &Value) -> String {
    let at = |key: &str| k[key].as_i64().map(time).unwrap_or_else(|| "-".to_owned());
    match k["state"].as_str().unwrap_or_default() {
        "pending" => format!("next      published; signs from {}", at("activates_at")),
        "active" => format!("active    signs since {}", at("activates_at")),
        "superseded" => format!(
            "previous  replaced by a newer key; published until {}",
            at("retires_at")
        ),
        "retired" => format!("retired   not published since {}", at("retires_at")),
        other => other.to_owned(),
    }
}

/// What `keys list` prints (public parts only).
pub(crate) fn print_list(list: &[Value], json: bool) {
    if json {
        print_json(&Value::Array(list.to_vec()));
    } else {
        for k in list {
            println!(
                "{}  {}  {}",
                k["kid"].as_str().unwrap_or_default(),
                k["alg"].as_str().unwrap_or_default(),
                state_line(k)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_states_read_as_what_the_key_does_with_rfc3339_times() {
        let line = |state: &str| {
            state_line(&json!({
                "state": state, "activates_at": 951_827_415, "retires_at": 951_827_475,
            }))
        };
        assert_eq!(
            line("pending"),
            "next      published; signs from 2000-02-29T12:30:15Z"
        );
        assert_eq!(line("active"), "active    signs since 2000-02-29T12:30:15Z");
        assert!(line("superseded").starts_with("previous"));
        assert!(line("superseded").ends_with("until 2000-02-29T12:31:15Z"));
        assert_eq!(
            line("retired"),
            "retired   not published since 2000-02-29T12:31:15Z"
        );
    }
}
