//! `tessera user ...`: the people who sign in on Tessera's pages.
//!
//! A thin caller of [`tessera_core::admin::users`], where the rules live. Passwords are read
//! from standard input (never from a flag, which would leave them in the shell history and
//! the process list), asked for twice without echo when that is a terminal, and stored only
//! as Argon2id hashes. Usernames are prepared (RFC 8265
//! `UsernameCaseMapped`, [`tessera_core::username`]) when a user is created and when one is
//! looked up, so `Alice` and `ａｌｉｃｅ` name the user `alice`; a new username with an
//! invisible or bidirectional control character, mixing Latin with Cyrillic or Greek
//! letters, or looking like an existing one is refused. A user's consents and grants are
//! listed and revoked through [`tessera_core::admin::grants`].

use std::io::Read;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
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
        /// Read the password from standard input (required: passwords never go in flags); on
        /// a terminal it is asked for twice, without echo.
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
        /// Read the password from standard input; on a terminal it is asked for twice,
        /// without echo.
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

/// Reads a new password: from standard input (one trailing line break dropped), or, when
/// standard input is a terminal, typed twice at a prompt without echo (two that differ are
/// refused). The application layer checks it ([`users::check_password`]).
pub(crate) async fn read_password() -> Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        return prompt_twice().await;
    }
    let mut text = String::new();
    std::io::stdin()
        .take(password::MAX_LENGTH as u64 + 2)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let pw = text.strip_suffix('\n').unwrap_or(&text);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    Ok(pw.to_owned())
}

/// Asks for the password twice on the terminal, echo off.
async fn prompt_twice() -> Result<String> {
    let first = prompt("Password: ", "password").await?;
    let second = prompt("Repeat the password: ", "password").await?;
    if first != second {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

/// Shows `text` on the terminal and reads one line typed there without echo. Echo is off
/// before the prompt shows, and the terminal's settings are put back however the read ends,
/// Ctrl-C included (the kernel's line editing stays: backspace and Ctrl-U work).
pub(crate) async fn prompt(text: &'static str, what: &str) -> Result<String> {
    use rustix::termios::{self, LocalModes, OptionalActions};
    use std::io::Write as _;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .with_context(|| format!("opening the terminal to ask for the {what} (or pipe it in)"))?;
    let saved = termios::tcgetattr(&tty).context("reading the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)
        .context("turning the terminal's echo off")?;
    let restore = tty.try_clone().context("opening the terminal")?;
    // A thread of its own, not the runtime's blocking pool: after Ctrl-C its read stays
    // blocked, and the runtime would wait for a blocking task at exit.
    let (done, read) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let line = (|| -> std::io::Result<String> {
            let mut tty = tty;
            tty.write_all(text.as_bytes())?;
            tty.flush()?;
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new((&tty).take(password::MAX_LENGTH as u64 + 2)),
                &mut line,
            )?;
            Ok(line)
        })();
        let _ = done.send(line);
    });
    let line = tokio::select! {
        line = read => Some(line),
        _ = tokio::signal::ctrl_c() => None,
    };
    let _ = termios::tcsetattr(&restore, OptionalActions::Now, &saved);
    let line = match line {
        None => {
            let _ = (&restore).write_all(b"\n");
            anyhow::bail!("interrupted; nothing was changed");
        }
        Some(sent) => sent
            .with_context(|| format!("reading the {what} from the terminal"))?
            .with_context(|| format!("reading the {what} from the terminal"))?,
    };
    let Some(pw) = line.strip_suffix('\n') else {
        anyhow::bail!("no {what} was typed (end of input); nothing was changed");
    };
    Ok(pw.strip_suffix('\r').unwrap_or(pw).to_owned())
}

fn describe(u: &UserRecord) -> Value {
    json!({
        "user_id": u.user_id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "created_at": u.created_at,
    })
}

/// A user as `--json` prints them, from the admin API's or the database's fields.
pub(crate) fn describe_json(u: &Value) -> Value {
    json!({
        "user_id": u.get("user_id"),
        "username": u.get("username"),
        "email": u.get("email"),
        "name": u.get("name"),
        "created_at": u.get("created_at"),
    })
}

/// A string field of a JSON object.
fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A number field of a JSON object, as printed.
fn number(v: &Value, key: &str) -> String {
    v.get(key).map(Value::to_string).unwrap_or_default()
}

/// A time field (Unix seconds) of a JSON object, as RFC 3339.
fn time_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_i64)
        .map(crate::cli::time)
        .unwrap_or_else(|| "-".to_owned())
}

/// The items of an array field of a JSON object.
fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn grant_line(g: &Value) -> String {
    let state = match g.get("revoked_at").and_then(Value::as_i64) {
        Some(at) => format!("revoked {}", crate::cli::time(at)),
        None => "live".to_owned(),
    };
    format!(
        "grant    {}  {}  {}  created {}  {state}",
        field(g, "client_id"),
        field(g, "scope"),
        field(g, "grant_id"),
        time_field(g, "created_at")
    )
}

/// What `user create` prints, from the created user (either form).
pub(crate) fn print_created(user: &Value, json: bool) {
    if json {
        print_json(&describe_json(user));
    } else {
        println!(
            "created user {} (sub {})",
            field(user, "username"),
            field(user, "user_id")
        );
    }
}

/// What `user list` prints, from the users in order of username (either form).
pub(crate) fn print_list(users: &[Value], json: bool) {
    if json {
        print_json(&Value::Array(users.iter().map(describe_json).collect()));
    } else {
        for u in users {
            let email = u.get("email").and_then(Value::as_str).unwrap_or("-");
            println!("{}  {}  {email}", field(u, "user_id"), field(u, "username"));
        }
    }
}

/// What `user delete` prints.
pub(crate) fn print_deleted(username: &str, json: bool) {
    if json {
        print_json(&json!({"username": username, "deleted": true}));
    } else {
        println!("deleted user {username}; their tokens are revoked");
    }
}

/// What `user set-password` prints.
pub(crate) fn print_password_set(username: &str, json: bool) {
    if json {
        print_json(&json!({"username": username, "password_changed": true}));
    } else {
        println!("changed the password of {username}; their sessions have ended");
    }
}

/// What `user consents` prints, from `{user_id, username, consents, grants}`.
pub(crate) fn print_consents(listed: &Value, json: bool) {
    if json {
        print_json(listed);
    } else {
        for c in items(listed, "consents") {
            println!(
                "consent  {}  {}  since {}",
                field(c, "client_id"),
                field(c, "scope"),
                time_field(c, "granted_at")
            );
        }
        for g in items(listed, "grants") {
            println!("{}", grant_line(g));
        }
    }
}

/// What `user grants` prints, from `{user_id, username, grants}`.
pub(crate) fn print_grants(listed: &Value, json: bool) {
    if json {
        print_json(&json!({
            "user_id": listed.get("user_id"),
            "username": listed.get("username"),
            "grants": listed.get("grants"),
        }));
    } else {
        for g in items(listed, "grants") {
            println!("{}", grant_line(g));
        }
    }
}

/// What `user revoke-grant` prints, from `{username, grant_id, client_id, revoked}`.
pub(crate) fn print_grant_revoked(done: &Value, json: bool) {
    let revoked = done.get("revoked").and_then(Value::as_bool) == Some(true);
    if json {
        print_json(done);
    } else if revoked {
        println!(
            "revoked grant {} of {} to {} and its tokens",
            field(done, "grant_id"),
            field(done, "username"),
            field(done, "client_id")
        );
    } else {
        println!("grant {} was revoked already", field(done, "grant_id"));
    }
}

/// What `user revoke-consent` prints, from `{username, client_id, consent_removed,
/// grants_revoked}`.
pub(crate) fn print_consent_revoked(done: &Value, json: bool) {
    if json {
        print_json(done);
    } else {
        println!(
            "revoked the consent of {} to {}; {} grant(s) and their tokens revoked",
            field(done, "username"),
            field(done, "client_id"),
            number(done, "grants_revoked")
        );
    }
}

/// What `user revoke-tokens` prints.
pub(crate) fn print_tokens_revoked(username: &str, n: u64, json: bool) {
    if json {
        print_json(&json!({"username": username, "grants_revoked": n}));
    } else {
        println!("revoked {n} grant(s) of {username} and their tokens");
    }
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
            let password = read_password().await?;
            let spec = UserSpec {
                username,
                password,
                email,
                name,
            };
            let user = users::create(store, spec, now()).await?;
            audit(store, AuditKind::UserCreated, &user.user_id, json!({})).await;
            print_created(&describe(&user), json);
        }
        Command::List { json } => {
            let mut users: Vec<Value> = users::list(store).await?.iter().map(describe).collect();
            users.sort_by(|a, b| field(a, "username").cmp(field(b, "username")));
            print_list(&users, json);
        }
        Command::Delete { username, json } => {
            let user = users::delete(store, &username, now()).await?;
            audit(store, AuditKind::UserDeleted, &user.user_id, json!({})).await;
            print_deleted(&user.username, json);
        }
        Command::SetPassword { username, json, .. } => {
            // Refuse an unknown user before waiting on standard input.
            users::find(store, &username).await?;
            let password = read_password().await?;
            let user = users::set_password(store, &username, &password, now()).await?;
            audit(store, AuditKind::UserPasswordSet, &user.user_id, json!({})).await;
            print_password_set(&user.username, json);
        }
        Command::Consents { username, json } => {
            let listed = grants::list(store, &username).await?;
            print_consents(&json!(listed), json);
        }
        Command::Grants { username, json } => {
            let listed = grants::list(store, &username).await?;
            print_grants(&json!(listed), json);
        }
        Command::RevokeGrant {
            username,
            grant_id,
            json,
        } => {
            let user_id = users::find(store, &username).await?.user_id;
            let done = grants::revoke_grant(store, &username, &grant_id, now()).await?;
            if done.revoked {
                let detail = json!({"grant_id": done.grant_id, "client_id": done.client_id});
                audit(store, AuditKind::GrantRevoked, &user_id, detail).await;
            }
            print_grant_revoked(&json!(done), json);
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
            print_consent_revoked(&json!(done), json);
        }
        Command::RevokeTokens { username, json } => {
            let (user, n) = grants::revoke_tokens(store, &username, now()).await?;
            let detail = json!({"grants_revoked": n});
            audit(store, AuditKind::GrantRevoked, &user.user_id, detail).await;
            print_tokens_revoked(&user.username, n, json);
        }
    }
    Ok(())
}
