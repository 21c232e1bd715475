//! `tessera user ...`: the people who sign in on Tessera's pages.
//!
//! Passwords are read from standard input (never from a flag, which would leave them in the
//! shell history and the process list) and stored only as Argon2id hashes. Usernames are
//! prepared (RFC 8265 `UsernameCaseMapped`, [`tessera_core::username`]) when a user is
//! created and when one is looked up, so `Alice` and `ａｌｉｃｅ` name the user `alice`; a new
//! username with an invisible or bidirectional control character, mixing Latin with Cyrillic
//! or Greek letters, or looking like an existing one is refused.

use std::io::Read;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::model::UserRecord;
use tessera_core::password;
use tessera_core::secret;
use tessera_core::store::{StoreError, UserStore};
use tessera_core::username;

use crate::cli::{now, open_store, print_json};
use crate::settings::Settings;

/// User subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a user; the password is read from standard input.
    Create {
        /// What they sign in with.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (required: passwords never go in flags).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// E-mail address (released with the `email` scope).
        #[arg(long)]
        email: Option<String>,
        /// Display name (released with the `profile` scope).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user: their sessions end and every token issued for them is revoked.
    Delete {
        /// Username.
        username: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a user's password (read from standard input); their sessions end.
    SetPassword {
        /// Username.
        username: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a user subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(cmd, store.as_ref()).await;
    store.close().await;
    result
}

fn read_password() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(password::MAX_LENGTH as u64 + 2)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let pw = text.strip_suffix('\n').unwrap_or(&text);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.chars().count() < password::MIN_LENGTH {
        bail!(
            "the password must be at least {} characters",
            password::MIN_LENGTH
        );
    }
    if pw.len() > password::MAX_LENGTH {
        bail!(
            "the password must be at most {} bytes",
            password::MAX_LENGTH
        );
    }
    Ok(pw.to_owned())
}

/// A new username, prepared, or why it is refused.
async fn new_username(store: &dyn UserStore, typed: &str) -> Result<String> {
    let prepared = username::prepare(typed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let users = store.list_users().await?;
    username::check_new(
        &prepared,
        users
            .iter()
            .map(|u| u.username.as_str())
            .filter(|u| *u != prepared),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(prepared)
}

/// The user named `typed`: stored exactly so (every username created now is stored
/// prepared; one stored before and left as it was, say `Alice` beside `alice`, is named by
/// the operator as stored), else by its prepared form.
async fn find(store: &dyn UserStore, typed: &str) -> Result<UserRecord> {
    if let Some(u) = store.find_user(typed).await? {
        return Ok(u);
    }
    let found = match username::prepare(typed) {
        Ok(prepared) => store.find_user(&prepared).await?,
        Err(_) => None,
    };
    found.with_context(|| format!("no user named '{}'", typed.escape_default()))
}

fn describe(u: &UserRecord) -> serde_json::Value {
    json!({
        "user_id": u.user_id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "created_at": u.created_at,
    })
}

async fn dispatch(cmd: Command, store: &dyn UserStore) -> Result<()> {
    match cmd {
        Command::Create {
            username,
            email,
            name,
            json,
            ..
        } => {
            let username = new_username(store, &username).await?;
            if let Some(name) = &name {
                username::check_display_name(name)?;
            }
            let pw = read_password()?;
            let t = now();
            let user = UserRecord {
                user_id: secret::generate_id(),
                username: username.clone(),
                password_hash: password::hash(&pw)?,
                email,
                name,
                created_at: t,
                updated_at: t,
            };
            match store.insert_user(&user).await {
                Err(StoreError::Conflict) => bail!("a user named '{username}' already exists"),
                r => r?,
            }
            if json {
                print_json(&describe(&user));
            } else {
                println!("created user {username} (sub {})", user.user_id);
            }
        }
        Command::List { json } => {
            let users = store.list_users().await?;
            if json {
                print_json(&json!(users.iter().map(describe).collect::<Vec<_>>()));
            } else {
                for u in &users {
                    println!(
                        "{}  {}  {}",
                        u.user_id,
                        u.username,
                        u.email.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        Command::Delete { username, json } => {
            let user = find(store, &username).await?;
            store.delete_user(&user.user_id, now()).await?;
            let username = user.username;
            if json {
                print_json(&json!({"username": username, "deleted": true}));
            } else {
                println!("deleted user {username}; their tokens are revoked");
            }
        }
        Command::SetPassword { username, json, .. } => {
            let user = find(store, &username).await?;
            let pw = read_password()?;
            store
                .set_password(&user.user_id, &password::hash(&pw)?, now())
                .await?;
            let username = user.username;
            if json {
                print_json(&json!({"username": username, "password_changed": true}));
            } else {
                println!("changed the password of {username}; their sessions have ended");
            }
        }
    }
    Ok(())
}
