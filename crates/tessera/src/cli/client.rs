//! `tessera client ...`: register, inspect, rotate and delete clients.
//!
//! A client secret is generated here (256 random bits), printed once, and stored only as its
//! hash; it cannot be shown again (seed 004).

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::model::{grant_types, ClientRecord, TokenFormat};
use tessera_core::redirect_uri;
use tessera_core::scope::ScopeSet;
use tessera_core::secret;
use tessera_core::store::ClientStore;

use crate::cli::{now, open_store, print_json};
use crate::settings::Settings;

/// Prefix of generated client secrets (recognisable by secret scanners; adds no entropy).
const SECRET_PREFIX: &str = "tcs_";

/// Client subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a client; prints its id and (once) its secret.
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// Grant type the client may use (repeatable) [default: client_credentials].
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Space-delimited scopes the client may ask for (also its default).
        #[arg(long, default_value = "")]
        scope: String,
        /// A resource (API) the client may get tokens for, the `aud` of its tokens
        /// (repeatable; RFC 8707). Default: the issuer.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// A public client: no secret (token endpoint auth method `none`).
        #[arg(long)]
        public: bool,
        /// Access token format: jwt or opaque.
        #[arg(long, default_value = "jwt")]
        access_token_format: String,
        /// Access token lifetime, seconds [default: the server's default, 3600].
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret. By default the old one stops working at once and every token
    /// issued to the client before is revoked.
    RotateSecret {
        /// The client.
        client_id: String,
        /// Keep the old secret valid this many seconds as well, and revoke nothing.
        #[arg(long)]
        keep_old_secret_for: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        /// The client.
        client_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client; its tokens stop being valid.
    Delete {
        /// The client.
        client_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

const KNOWN_GRANTS: &[&str] = &[
    grant_types::CLIENT_CREDENTIALS,
    grant_types::AUTHORIZATION_CODE,
    grant_types::REFRESH_TOKEN,
    grant_types::JWT_BEARER,
];

/// Runs a client subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    match cmd {
        Command::Create {
            name,
            grant_types,
            redirect_uris,
            scope,
            audiences,
            public,
            access_token_format,
            access_token_ttl,
            json,
        } => {
            for a in &audiences {
                if a.contains('#') || !a.contains(':') || a.contains(char::is_whitespace) {
                    bail!("--audience '{a}' must be an absolute URI without a fragment");
                }
            }
            let grant_types = if grant_types.is_empty() {
                vec![grant_types::CLIENT_CREDENTIALS.to_owned()]
            } else {
                grant_types
            };
            for g in &grant_types {
                if !KNOWN_GRANTS.contains(&g.as_str()) {
                    bail!(
                        "unknown grant type '{g}' (known: {})",
                        KNOWN_GRANTS.join(", ")
                    );
                }
                if g == grant_types::CLIENT_CREDENTIALS && public {
                    bail!("a public client cannot use client_credentials (RFC 6749 §4.4)");
                }
            }
            for uri in &redirect_uris {
                redirect_uri::validate_registration(uri)?;
            }
            let Some(format) = TokenFormat::parse(&access_token_format) else {
                bail!("--access-token-format must be 'jwt' or 'opaque'");
            };
            let ttl = access_token_ttl.unwrap_or(settings.core.default_access_token_ttl);
            if ttl < 1 || ttl > settings.core.max_access_token_ttl {
                bail!(
                    "--access-token-ttl must be between 1 and {} seconds",
                    settings.core.max_access_token_ttl
                );
            }
            let scopes = ScopeSet::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?;
            let secret = (!public).then(|| secret::generate(SECRET_PREFIX));
            let client = ClientRecord {
                client_id: secret::generate_id(),
                name,
                secret_hash: secret.as_ref().map(|s| s.hash()),
                old_secret_hash: None,
                old_secret_expires_at: None,
                grant_types,
                redirect_uris,
                scopes,
                audiences,
                public,
                access_token_format: format,
                access_token_ttl: ttl,
                token_epoch: 0,
                created_at: now(),
            };
            store.insert_client(&client).await?;
            let out = json!({
                "client_id": client.client_id,
                "client_secret": secret.as_ref().map(|s| s.expose()),
            });
            if json {
                print_json(&out);
            } else {
                println!("client_id:     {}", client.client_id);
                match &secret {
                    Some(s) => {
                        println!("client_secret: {}", s.expose());
                        println!("(the secret is shown this once; only its hash is stored)");
                    }
                    None => println!("public client: no secret"),
                }
            }
        }
        Command::RotateSecret {
            client_id,
            keep_old_secret_for,
            json,
        } => {
            if keep_old_secret_for.is_some_and(|s| s < 1) {
                bail!("--keep-old-secret-for must be at least 1 second");
            }
            let Some(client) = store.get_client(&client_id).await? else {
                bail!("no client '{client_id}'");
            };
            if client.public {
                bail!("client '{client_id}' is public and has no secret");
            }
            let secret = secret::generate(SECRET_PREFIX);
            let t = now();
            let keep_until = keep_old_secret_for.map(|s| t + s);
            store
                .rotate_client_secret(&client_id, &secret.hash(), keep_until, t)
                .await?;
            if json {
                print_json(&json!({"client_id": client_id, "client_secret": secret.expose()}));
            } else {
                println!("client_id:     {client_id}");
                println!("client_secret: {}", secret.expose());
                match keep_until {
                    Some(u) => println!("the old secret stays valid until {u} (Unix time)"),
                    None => println!("the old secret no longer works; earlier tokens are revoked"),
                }
            }
        }
        Command::List { json } => {
            let clients = store.list_clients().await?;
            if json {
                print_json(&serde_json::Value::Array(
                    clients.iter().map(describe).collect(),
                ));
            } else {
                for c in &clients {
                    println!(
                        "{}  {}  [{}]  {}",
                        c.client_id,
                        c.name,
                        c.grant_types.join(","),
                        c.access_token_format.as_str()
                    );
                }
            }
        }
        Command::Show { client_id, json } => {
            let Some(c) = store.get_client(&client_id).await? else {
                bail!("no client '{client_id}'");
            };
            if json {
                print_json(&describe(&c));
            } else {
                println!("{}", serde_json::to_string_pretty(&describe(&c))?);
            }
        }
        Command::Delete { client_id, json } => {
            let deleted = store.delete_client(&client_id, now()).await?;
            if !deleted {
                bail!("no client '{client_id}'");
            }
            if json {
                print_json(&json!({"client_id": client_id, "deleted": true}));
            } else {
                println!("deleted client {client_id}; its tokens are no longer valid");
            }
        }
    }
    store.close().await;
    Ok(())
}

/// A client as shown to operators: never its secret hash.
fn describe(c: &ClientRecord) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "public": c.public,
        "grant_types": c.grant_types,
        "redirect_uris": c.redirect_uris,
        "scope": c.scopes.to_string(),
        "audiences": c.audiences,
        "token_endpoint_auth_method": if c.public { "none" } else { "client_secret_basic" },
        "access_token_format": c.access_token_format.as_str(),
        "access_token_ttl": c.access_token_ttl,
        "old_secret_valid_until": c.old_secret_expires_at,
        "created_at": c.created_at,
    })
}
