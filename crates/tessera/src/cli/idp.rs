//! `tessera idp ...`: upstream OpenID providers users may sign in through.
//!
//! A provider names the upstream's issuer (its discovery document is read from
//! `ISSUER/.well-known/openid-configuration`), Tessera's client id and secret there, the
//! e-mail domains whose users are sent to it, and whether a first sign-in may link to an
//! existing user by a verified e-mail address. At the upstream, register Tessera's callback
//! `<tessera issuer>/oauth2/sso/callback` as the redirect URI. The client secret is read from
//! standard input (never from a flag, which would leave it in the shell history and the
//! process list), stored sealed under the servers' sealing secret, and never printed. A thin
//! caller of [`tessera_core::admin::idps`], where the rules live.

use std::io::Read;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use tessera_core::admin::idps::{self, IdpSpec, IdpView, MAX_CREDENTIAL_LEN};
use tessera_core::secret::Secret;

use tessera_core::admin::AdminError;

use crate::cli::client::registration::flagged;
use crate::cli::{audit, now, open_store, print_json};
use crate::settings::Settings;
use tessera_core::audit::AuditKind;

/// Identity provider subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add an upstream OpenID provider; Tessera's client secret there is read from standard
    /// input.
    Add {
        /// Its name: 1 to 64 of a-z, 0-9, '-' and '_' (shown as "Sign in with NAME" unless
        /// --display-name is given).
        #[arg(long)]
        name: String,
        /// The upstream's issuer URL, exactly as its ID tokens' `iss` says it (https; plain
        /// http only on a loopback address).
        #[arg(long)]
        issuer: String,
        /// Tessera's client id at the upstream.
        #[arg(long)]
        client_id: String,
        /// Read Tessera's client secret at the upstream from standard input (required:
        /// secrets never go in flags); on a terminal it is asked for without echo.
        #[arg(long, required = true)]
        client_secret_stdin: bool,
        /// What the sign-in page shows [default: the name].
        #[arg(long)]
        display_name: Option<String>,
        /// An e-mail domain whose users are sent to this provider (repeatable); a domain
        /// belongs to one provider only.
        #[arg(long = "email-domain")]
        email_domains: Vec<String>,
        /// Let a first sign-in link to the existing user with the same e-mail address, when
        /// the upstream says it is verified (and it is in one of --email-domain, if any).
        #[arg(long)]
        link_by_email: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List upstream providers (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an upstream provider: nobody signs in through it any more; its users keep
    /// their accounts (and their links, should it be added again).
    Remove {
        /// Its name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an idp subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(cmd, &store, settings).await;
    store.close().await;
    result
}

/// Reads the client secret from standard input (one trailing line break dropped), or, when
/// that is a terminal, at a prompt without echo.
pub(crate) async fn read_secret() -> Result<Secret> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        return Ok(Secret::new(
            crate::cli::user::prompt("Client secret: ", "client secret").await?,
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_CREDENTIAL_LEN as u64 + 2)
        .read_to_string(&mut text)
        .context("reading the client secret from standard input")?;
    let s = text.strip_suffix('\n').unwrap_or(&text);
    let s = s.strip_suffix('\r').unwrap_or(s);
    Ok(Secret::new(s))
}

/// An error about an input, naming the flag it came from.
fn flag(e: AdminError) -> anyhow::Error {
    if let AdminError::Invalid { field, reason } = &e {
        let flag = match *field {
            "client_secret" => "the client secret (standard input, --client-secret-stdin)",
            "email_domains" => "--email-domain",
            _ => return flagged(e),
        };
        let rest = reason.strip_prefix(field).unwrap_or(reason);
        return anyhow::anyhow!("{flag}{rest}");
    }
    flagged(e)
}

fn describe(v: &IdpView) -> serde_json::Value {
    json!({
        "name": v.name,
        "display_name": v.display_name,
        "issuer": v.issuer,
        "client_id": v.client_id,
        "email_domains": v.email_domains,
        "link_by_email": v.link_by_email,
        "created_at": v.created_at,
    })
}

async fn dispatch(cmd: Command, store: &super::Database, settings: &Settings) -> Result<()> {
    match cmd {
        Command::Add {
            name,
            issuer,
            client_id,
            display_name,
            email_domains,
            link_by_email,
            json,
            ..
        } => {
            let secret = read_secret().await?;
            let sealer = settings.sealer_for(store.as_ref()).await?;
            let spec = IdpSpec {
                name,
                display_name,
                issuer,
                client_id,
                client_secret: Some(secret),
                email_domains,
                link_by_email,
            };
            let view = idps::add(store.as_ref(), &sealer, spec, now())
                .await
                .map_err(flag)?;
            let detail = json!({"issuer": view.issuer});
            audit(store.as_ref(), AuditKind::IdpAdded, &view.name, detail).await;
            print_added(&describe(&view), json);
        }
        Command::List { json } => {
            let list = idps::list(store.as_ref()).await?;
            print_list(&list.iter().map(describe).collect::<Vec<_>>(), json);
        }
        Command::Remove { name, json } => {
            idps::remove(store.as_ref(), &name).await?;
            audit(store.as_ref(), AuditKind::IdpRemoved, &name, json!({})).await;
            print_removed(&name, json);
        }
    }
    Ok(())
}

/// A string field of a JSON object.
fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// What `idp add` prints, from the provider as [`describe`] (or the admin API) shows it
/// (never its secret).
pub(crate) fn print_added(v: &Value, json: bool) {
    if json {
        print_json(v);
    } else {
        println!(
            "added identity provider {} ({}) for issuer {}",
            field(v, "name"),
            field(v, "display_name"),
            field(v, "issuer")
        );
    }
}

/// What `idp list` prints.
pub(crate) fn print_list(list: &[Value], json: bool) {
    if json {
        print_json(&Value::Array(list.to_vec()));
    } else {
        for v in list {
            let domains: Vec<&str> = v
                .get("email_domains")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            println!(
                "{}  \"{}\"  {}  client_id={}  domains=[{}]  link_by_email={}",
                field(v, "name"),
                field(v, "display_name"),
                field(v, "issuer"),
                field(v, "client_id"),
                domains.join(","),
                v.get("link_by_email").and_then(Value::as_bool) == Some(true)
            );
        }
    }
}

/// What `idp remove` prints.
pub(crate) fn print_removed(name: &str, json: bool) {
    if json {
        print_json(&json!({"removed": name}));
    } else {
        println!("removed identity provider {name}");
    }
}
