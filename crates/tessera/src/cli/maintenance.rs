//! `tessera purge` and `tessera migrate`.

use anyhow::Result;
use serde_json::json;

use crate::cli::{now, open_or_create_store, open_store, print_json};
use crate::settings::Settings;

/// Flags of `purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Deletes expired rows now (the server also does this every minute).
pub async fn purge(args: PurgeArgs, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let r = store.purge_expired(now()).await?;
    let audit = store
        .purge_audit(now().saturating_sub(settings.core.audit_retention))
        .await?;
    let out = json!({
        "tokens": r.tokens, "revoked_jtis": r.revoked_jtis, "used_jtis": r.used_jtis,
        "changes": r.changes, "keys": r.keys, "codes": r.codes, "sessions": r.sessions,
        "grants": r.grants, "refresh_tokens": r.refresh_tokens,
        "throttle_budgets": r.throttle, "device_codes": r.device_codes, "audit_events": audit,
    });
    if args.json {
        print_json(&out);
    } else {
        println!(
            "purged {} tokens, {} revocation records, {} replay records, {} change-feed entries, \
             {} keys, {} codes, {} sessions, {} grants, {} refresh tokens, {} throttle budgets, \
             {} device codes, {} audit events",
            r.tokens,
            r.revoked_jtis,
            r.used_jtis,
            r.changes,
            r.keys,
            r.codes,
            r.sessions,
            r.grants,
            r.refresh_tokens,
            r.throttle,
            r.device_codes,
            audit
        );
    }
    store.close().await;
    Ok(())
}

/// Flags of `migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Record ISSUER as the issuer the database is served under, replacing the one recorded
    /// by the first server (servers configured with another issuer are refused). JWTs issued
    /// under the old issuer are then no longer accepted.
    #[arg(long, value_name = "ISSUER")]
    set_issuer: Option<String>,
}

/// Applies migrations (opening the store does) and says what it did, records a new issuer if asked, and exits.
pub async fn migrate(args: MigrateArgs, settings: &Settings) -> Result<()> {
    let store = open_or_create_store(settings).await?;
    let issuer = match args.set_issuer.as_deref().map(str::trim) {
        Some("") => anyhow::bail!("--set-issuer needs an issuer URL"),
        Some(new) => {
            let old = store.recorded_issuer().await?;
            store.record_issuer(new, true, now()).await?;
            if !args.json {
                match &old {
                    Some(old) if old != new => {
                        println!("the database's issuer is now {new} (it was {old})")
                    }
                    _ => println!("the database's issuer is now {new}"),
                }
            }
            Some(new.to_owned())
        }
        None => store.recorded_issuer().await?,
    };
    store.close().await;
    let (before, applied) = store.migrations();
    if args.json {
        print_json(&json!({
            "migrated": true,
            "created": before == 0 && applied > 0,
            "applied": applied,
            "issuer": issuer,
        }));
    } else {
        println!("{}", migrated_line(before, applied));
    }
    Ok(())
}

/// What `migrate` says it did, from the migrations the database had and those applied.
fn migrated_line(before: usize, applied: usize) -> String {
    match (before, applied) {
        (_, 0) => format!("the database schema is already up to date ({before} migrations)"),
        (0, n) => format!("created the database schema ({n} migrations applied)"),
        (_, 1) => "applied 1 migration; the database schema is up to date".to_owned(),
        (_, n) => format!("applied {n} migrations; the database schema is up to date"),
    }
}

#[cfg(test)]
mod tests {
    use super::migrated_line;

    #[test]
    fn migrate_says_created_applied_or_up_to_date() {
        assert_eq!(
            migrated_line(0, 12),
            "created the database schema (12 migrations applied)"
        );
        assert_eq!(
            migrated_line(11, 1),
            "applied 1 migration; the database schema is up to date"
        );
        assert_eq!(
            migrated_line(10, 2),
            "applied 2 migrations; the database schema is up to date"
        );
        assert_eq!(
            migrated_line(12, 0),
            "the database schema is already up to date (12 migrations)"
        );
    }
}
