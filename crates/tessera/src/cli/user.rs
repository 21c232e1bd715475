//! `tessera user ...`: the people who sign in on Tessera's pages.
//!
//! A thin caller of [`tessera_core::admin::users`], where the rules live. Passwords are read
//! from standard input (never from a flag, which would leave them in the shell history and
//! the process list) and stored only as Argon2id hashes. Usernames are prepared (RFC 8265
//! `UsernameCaseMapped`, [`tessera_core::username`]) when a user is created and when one is
//! looked up, so `Alice` and `ａｌｉｃｅ` name the user `alice`; a new username with an
//! invisible or bidirectional control character, mixing Latin with Cyrillic or Greek
//! letters, or looking like an existing one is refused. A user's consents and grants are
//! listed and revoked through [`tessera_core::admin::grants`].

use std::io::Read;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::grants;
use tessera_core::admin::users::{self, UserSpec};
use tessera_core::model::UserRecord;
use tessera_core::password;
use tessera_core::store::Store;

use crate::cli::{audit, now, open_store, print_json};
use crate::settings::Settings;
use tessera_core::audit::AuditKind;

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
    /// List a user's consents (client, scope, since when) and grants (live and revoked).
    Consents {
        /// Username.
        username: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a user's grants (client, scope, since when, live or revoked when), without their
    /// consents.
    Grants {
        /// Username or user id.
        username: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one grant of a user: its access and refresh tokens stop working at once; the
    /// consent stays.
    RevokeGrant {
        /// Username or user id.
        username: String,
        /// The grant's id (from `tessera user grants`).
        grant_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a user's consent to a client: the next authorization request asks again, and
    /// every token the client obtained for the user stops working at once.
    RevokeConsent {
        /// Username.
        username: String,
        /// The client.
        client_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every access and refresh token issued for a user (the user and their consents
    /// stay).
    RevokeTokens {
        /// Username.
        username: String,
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

/// Reads a password from standard input (one trailing line break dropped); the application
/// layer checks it ([`users::check_password`]).
fn read_password() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(password::MAX_LENGTH as u64 + 2)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let pw = text.strip_suffix('\n').unwrap_or(&text);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    Ok(pw.to_owned())
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

fn grant_line(g: &grants::GrantView) -> String {
    let state = match g.revoked_at {
        Some(at) => format!("revoked {at}"),
        None => "live".to_owned(),
    };
    format!(
        "grant    {}  {}  {}  created {}  {state}",
        g.client_id, g.scope, g.grant_id, g.created_at
    )
}

async fn dispatch(cmd: Command, store: &dyn Store) -> Result<()> {
    match cmd {
        Command::Create {
            username,
            email,
            name,
            json,
            ..
        } => {
            // Refuse a bad name before waiting on standard input.
            users::new_username(store, &username).await?;
            let password = read_password()?;
            let spec = UserSpec {
                username,
                password,
                email,
                name,
            };
            let user = users::create(store, spec, now()).await?;
            audit(store, AuditKind::UserCreated, &user.user_id, json!({})).await;
            if json {
                print_json(&describe(&user));
            } else {
                println!("created user {} (sub {})", user.username, user.user_id);
            }
        }
        Command::List { json } => {
            let users = users::list(store).await?;
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
            let user = users::delete(store, &username, now()).await?;
            audit(store, AuditKind::UserDeleted, &user.user_id, json!({})).await;
            let username = user.username;
            if json {
                print_json(&json!({"username": username, "deleted": true}));
            } else {
                println!("deleted user {username}; their tokens are revoked");
            }
        }
        Command::SetPassword { username, json, .. } => {
            // Refuse an unknown user before waiting on standard input.
            users::find(store, &username).await?;
            let password = read_password()?;
            let user = users::set_password(store, &username, &password, now()).await?;
            audit(store, AuditKind::UserPasswordSet, &user.user_id, json!({})).await;
            let username = user.username;
            if json {
                print_json(&json!({"username": username, "password_changed": true}));
            } else {
                println!("changed the password of {username}; their sessions have ended");
            }
        }
        Command::Consents { username, json } => {
            let listed = grants::list(store, &username).await?;
            if json {
                print_json(&json!(listed));
            } else {
                for c in &listed.consents {
                    println!(
                        "consent  {}  {}  since {}",
                        c.client_id, c.scope, c.granted_at
                    );
                }
                for g in &listed.grants {
                    println!("{}", grant_line(g));
                }
            }
        }
        Command::Grants { username, json } => {
            let listed = grants::list(store, &username).await?;
            if json {
                print_json(&json!({
                    "user_id": listed.user_id,
                    "username": listed.username,
                    "grants": listed.grants,
                }));
            } else {
                for g in &listed.grants {
                    println!("{}", grant_line(g));
                }
            }
        }
        Command::RevokeGrant {
            username,
            grant_id,
            json,
        } => {
            let done = grants::revoke_grant(store, &username, &grant_id, now()).await?;
            if json {
                print_json(&json!(done));
            } else if done.revoked {
                println!(
                    "revoked grant {} of {} to {} and its tokens",
                    done.grant_id, done.username, done.client_id
                );
            } else {
                println!("grant {} was revoked already", done.grant_id);
            }
        }
        Command::RevokeConsent {
            username,
            client_id,
            json,
        } => {
            let user_id = users::find(store, &username).await?.user_id;
            let done = grants::revoke_consent(store, &username, &client_id, now()).await?;
            let detail =
                json!({"client_id": done.client_id, "grants_revoked": done.grants_revoked});
            audit(store, AuditKind::ConsentRevoked, &user_id, detail).await;
            if json {
                print_json(&json!(done));
            } else {
                println!(
                    "revoked the consent of {} to {}; {} grant(s) and their tokens revoked",
                    done.username, done.client_id, done.grants_revoked
                );
            }
        }
        Command::RevokeTokens { username, json } => {
            let (user, n) = grants::revoke_tokens(store, &username, now()).await?;
            let detail = json!({"grants_revoked": n});
            audit(store, AuditKind::GrantRevoked, &user.user_id, detail).await;
            if json {
                print_json(&json!({"username": user.username, "grants_revoked": n}));
            } else {
                println!("revoked {n} grant(s) of {} and their tokens", user.username);
            }
        }
    }
    Ok(())
}
