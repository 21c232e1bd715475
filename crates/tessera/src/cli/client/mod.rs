//! `tessera client ...`: register, inspect, change, rotate and delete clients.
//!
//! A client secret is generated here (256 random bits), printed once, and stored only as its
//! hash; it cannot be shown again (seed 004).

pub(crate) mod registration;

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::environment::{valid_env_name, DEFAULT_ENV};
use tessera_core::grant::types as grant_types;
use tessera_core::model::{ClientRecord, TokenFormat};
use tessera_core::scope::ScopeSet;
use tessera_core::secret;
use tessera_core::store::Store;

use crate::cli::{now, open_store, print_json};
use crate::settings::Settings;
use registration::{KeyFiles, Registration};

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
        /// The deployment environment the client belongs to (created if new): its tokens
        /// carry it, and it introspects only tokens of its own environment.
        #[arg(long, default_value = DEFAULT_ENV)]
        env: String,
        #[command(flatten)]
        registration: Registration,
        /// A public client: no secret (token endpoint auth method `none`).
        #[arg(long)]
        public: bool,
        /// How the client authenticates: client_secret_basic (default; Basic or body secret
        /// both work), private_key_jwt, or none (same as --public).
        #[arg(long, default_value = "client_secret_basic")]
        token_endpoint_auth_method: String,
        #[command(flatten)]
        keys: KeyFiles,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change what a client is registered for; flags not given stay as they were. The
    /// running server honours the change within a second.
    Update {
        /// The client.
        client_id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        registration: Registration,
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
    /// Replace the public keys of a private_key_jwt client (its key rotation).
    SetKeys {
        /// The client.
        client_id: String,
        #[command(flatten)]
        keys: KeyFiles,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every token issued to the client so far (JWT and opaque), keeping its
    /// secret: for a leaked token when the client itself is fine.
    RevokeTokens {
        /// The client.
        client_id: String,
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

/// Runs a client subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(cmd, settings, store.as_ref()).await;
    store.close().await;
    result
}

async fn dispatch(cmd: Command, settings: &Settings, store: &dyn Store) -> Result<()> {
    match cmd {
        Command::Create {
            name,
            env,
            registration,
            public,
            token_endpoint_auth_method,
            keys,
            json,
        } => {
            tessera_core::username::check_display_name(&name)?;
            let public = public || token_endpoint_auth_method == "none";
            let jwks = match token_endpoint_auth_method.as_str() {
                "client_secret_basic" | "client_secret_post" | "none" => {
                    if keys.given() {
                        bail!("--jwks-file and --public-key go with --token-endpoint-auth-method private_key_jwt");
                    }
                    None
                }
                "private_key_jwt" => {
                    if public {
                        bail!("a private_key_jwt client is not public");
                    }
                    Some(keys.load()?)
                }
                other => bail!(
                    "unsupported --token-endpoint-auth-method '{other}' (client_secret_basic, \
                     private_key_jwt or none; client_secret_jwt would need the secret kept in \
                     clear, and Tessera keeps only hashes)"
                ),
            };
            if !valid_env_name(&env) {
                bail!("--env must be 1 to 64 of a-z, 0-9, '-' and '_'");
            }
            let secret = (!public && jwks.is_none()).then(|| secret::generate(SECRET_PREFIX));
            let mut client = ClientRecord {
                client_id: secret::generate_id(),
                name,
                secret_hash: secret.as_ref().map(|s| s.hash()),
                old_secret_hash: None,
                old_secret_expires_at: None,
                // A public client cannot use client credentials (RFC 6749 §4.4).
                grant_types: vec![if public {
                    grant_types::AUTHORIZATION_CODE.to_owned()
                } else {
                    grant_types::CLIENT_CREDENTIALS.to_owned()
                }],
                redirect_uris: Vec::new(),
                scopes: ScopeSet::default(),
                audiences: Vec::new(),
                public,
                jwks,
                access_token_format: TokenFormat::Jwt,
                access_token_ttl: settings.core.default_access_token_ttl,
                token_epoch: 0,
                env,
                single_use_tokens: false,
                created_at: now(),
                user_flow: Default::default(),
            };
            registration.apply(&mut client, settings)?;
            store.ensure_env(&client.env, now()).await?;
            store.insert_client(&client).await?;
            // A running server answers an id it has not heard of from memory (so an unknown
            // id costs what a known one does) and learns of new clients through the change
            // feed: give every node two polls to hear of this one before its credentials are
            // shown, so that they work at once wherever they are used.
            tokio::time::sleep(2 * tessera_node::SYNC_INTERVAL).await;
            if json {
                let mut out = serde_json::Map::new();
                out.insert("client_id".into(), json!(client.client_id));
                out.insert(
                    "client_secret".into(),
                    json!(secret.as_ref().map(|s| s.expose())),
                );
                if let Some(stored) = &client.jwks {
                    out.insert("kids".into(), json!(registration::stored_kids(stored)));
                }
                print_json(&serde_json::Value::Object(out));
            } else {
                println!("client_id:     {}", client.client_id);
                match &secret {
                    Some(s) => {
                        println!("client_secret: {}", s.expose());
                        println!("(the secret is shown this once; only its hash is stored)");
                    }
                    None if client.public => println!("public client: no secret"),
                    None => println!("private_key_jwt client: authenticates with signed JWTs"),
                }
                if let Some(stored) = &client.jwks {
                    println!("key ids (kid): {}", registration::kids_line(stored));
                }
            }
        }
        Command::Update {
            client_id,
            name,
            registration,
            json,
        } => {
            let mut client = existing(store, &client_id).await?;
            if let Some(name) = name {
                tessera_core::username::check_display_name(&name)?;
                client.name = name;
            }
            registration.apply(&mut client, settings)?;
            store.update_client(&client, now()).await?;
            if json {
                print_json(&describe(&client));
            } else {
                println!("updated client {client_id}");
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
            let client = existing(store, &client_id).await?;
            if client.public {
                bail!("client '{client_id}' is public and has no secret");
            }
            if client.jwks.is_some() {
                bail!("client '{client_id}' uses private_key_jwt: replace its keys with `client set-keys`");
            }
            if client.secret_hash.is_none() {
                bail!("client '{client_id}' has no secret (an environment's /sdk/token client)");
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
        Command::SetKeys {
            client_id,
            keys,
            json,
        } => {
            let client = existing(store, &client_id).await?;
            if client.jwks.is_none() {
                bail!("client '{client_id}' does not use private_key_jwt");
            }
            let stored = keys.load()?;
            store.set_client_keys(&client_id, &stored, now()).await?;
            if json {
                print_json(&json!({
                    "client_id": client_id,
                    "keys_replaced": true,
                    "kids": registration::stored_kids(&stored),
                }));
            } else {
                println!("replaced the public keys of client {client_id}");
                println!("key ids (kid): {}", registration::kids_line(&stored));
            }
        }
        Command::RevokeTokens { client_id, json } => {
            if !store.revoke_client_tokens(&client_id, now()).await? {
                bail!("no client '{client_id}'");
            }
            if json {
                print_json(&json!({"client_id": client_id, "tokens_revoked": true}));
            } else {
                println!("every token issued to {client_id} until now is revoked");
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
            let c = existing(store, &client_id).await?;
            if json {
                print_json(&describe(&c));
            } else {
                println!("{}", serde_json::to_string_pretty(&describe(&c))?);
            }
        }
        Command::Delete { client_id, json } => {
            if !store.delete_client(&client_id, now()).await? {
                bail!("no client '{client_id}'");
            }
            if json {
                print_json(&json!({"client_id": client_id, "deleted": true}));
            } else {
                println!("deleted client {client_id}; its tokens are no longer valid");
            }
        }
    }
    Ok(())
}

async fn existing(store: &dyn Store, client_id: &str) -> Result<ClientRecord> {
    match store.get_client(client_id).await? {
        Some(c) => Ok(c),
        None => bail!("no client '{client_id}'"),
    }
}

fn auth_method(c: &ClientRecord) -> &'static str {
    if c.public {
        "none"
    } else if c.jwks.is_some() {
        "private_key_jwt"
    } else {
        "client_secret_basic"
    }
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
        "token_endpoint_auth_method": auth_method(c),
        "access_token_format": c.access_token_format.as_str(),
        "access_token_ttl": c.access_token_ttl,
        "env": c.env,
        "single_use_tokens": c.single_use_tokens,
        "old_secret_valid_until": c.old_secret_expires_at,
        "created_at": c.created_at,
        "refresh_tokens": c.user_flow.refresh_tokens.as_str(),
        "refresh_token_ttl": c.user_flow.refresh_token_ttl,
        "refresh_token_idle_ttl": c.user_flow.refresh_token_idle_ttl,
        "refresh_grace_period": c.user_flow.refresh_grace_period,
        "code_ttl": c.user_flow.code_ttl,
        "require_pkce": c.public || c.user_flow.require_pkce,
        "allow_plain_pkce": c.user_flow.allow_plain_pkce,
        "post_logout_redirect_uris": c.user_flow.post_logout_redirect_uris,
        "skip_consent": c.user_flow.skip_consent,
        "kids": c.jwks.as_deref().map(registration::stored_kids),
    })
}
