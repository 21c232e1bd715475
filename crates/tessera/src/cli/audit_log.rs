//! `tessera audit`: the audit trail, newest first, a page at a time.
//!
//! A thin caller of [`tessera_core::admin::audit::list`], where the filters are checked
//! (times are Unix seconds, RFC 3339 in UTC or an age such as `24h`; kinds are the trail's
//! own names). `--json` prints the page as the admin API answers it (`events` and
//! `next_cursor`). With `--server` it asks the admin API (`GET /admin/audit`, scope
//! `audit:read`) and prints the same.

use anyhow::Result;
use clap::Parser;
use tessera_core::admin::audit::{self, AuditPage, AuditQuery};

use crate::cli::{now, open_store, print_json};
use crate::settings::Settings;

/// `tessera audit` flags.
#[derive(Debug, Parser)]
pub struct Args {
    /// Only entries at or after this time (Unix seconds, 2026-12-05T01:00:00Z, or an age: 15m, 24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries at or before this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// Only entries by this actor: cli, admin_token:ID, client:ID, user:ID or anonymous.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries about this target (a client id, a user id, ...).
    #[arg(long)]
    pub target: Option<String>,
    /// Only entries of this kind (client_created, client_auth_failed, code_replayed, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only entries with this outcome: success or failure.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Most entries to print (1 to 1000).
    #[arg(long, default_value_t = audit::DEFAULT_LIMIT)]
    pub limit: i64,
    /// Continue after a previous page (its next_cursor).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lists a page of the trail.
pub async fn run(args: Args, settings: &Settings) -> Result<()> {
    let json = args.json;
    let query = query(args);
    let store = open_store(settings).await?;
    let page = audit::list(store.as_ref(), &query, now()).await;
    store.close().await;
    print(&page?, json)
}

/// Lists a page of the trail through the admin API: `get` is `GET /admin{path}` of the
/// server ([`crate::cli::remote`]), here `/audit` with the filters as its query.
pub async fn run_remote<F, Fut>(args: Args, get: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value>>,
{
    let json = args.json;
    let q = query(args);
    let mut url = reqwest::Url::parse("http://audit.invalid/audit")?;
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in [
            ("since", q.since),
            ("until", q.until),
            ("actor", q.actor),
            ("target", q.target),
            ("kind", q.kind),
            ("outcome", q.outcome),
            ("limit", q.limit.map(|l| l.to_string())),
            ("cursor", q.cursor),
        ] {
            if let Some(v) = v {
                pairs.append_pair(k, &v);
            }
        }
    }
    let path = format!("/audit?{}", url.query().unwrap_or_default());
    let page: AuditPage = serde_json::from_value(get(path).await?)?;
    print(&page, json)
}

fn query(args: Args) -> AuditQuery {
    AuditQuery {
        since: args.since,
        until: args.until,
        actor: args.actor,
        target: args.target,
        kind: args.kind,
        outcome: args.outcome,
        limit: Some(args.limit),
        cursor: args.cursor,
    }
}

fn print(page: &AuditPage, json: bool) -> Result<()> {
    if json {
        print_json(&serde_json::to_value(page)?);
        return Ok(());
    }
    for e in &page.events {
        println!(
            "{}  {}  {}  actor={}  target={}  request={}  source={}  {}",
            e.time,
            e.kind,
            e.outcome,
            e.actor,
            e.target.as_deref().unwrap_or("-"),
            e.request_id.as_deref().unwrap_or("-"),
            e.source.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    if let Some(c) = &page.next_cursor {
        println!("(more: --cursor {c})");
    }
    Ok(())
}
