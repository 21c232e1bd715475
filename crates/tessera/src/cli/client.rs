//! `tessera client ...`: register, inspect, rotate and delete clients.
//!
//! A client secret is generated here (256 random bits), printed once, and stored only as its
//! hash; it cannot be shown again (seed 004).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::client_assertion::ClientKeys;
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
        /// How the client authenticates: client_secret_basic (default; Basic or body secret
        /// both work), private_key_jwt, or none (same as --public).
        #[arg(long, default_value = "client_secret_basic")]
        token_endpoint_auth_method: String,
        /// For private_key_jwt: a JWKS file with the client's public keys.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
        /// For private_key_jwt: a PEM public key file (repeatable).
        #[arg(long = "public-key")]
        public_keys: Vec<std::path::PathBuf>,
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
    /// Replace the public keys of a private_key_jwt client (its key rotation).
    SetKeys {
        /// The client.
        client_id: String,
        /// A JWKS file with the client's public keys.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
        /// A PEM public key file (repeatable).
        #[arg(long = "public-key")]
        public_keys: Vec<std::path::PathBuf>,
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
            token_endpoint_auth_method,
            jwks_file,
            public_keys,
            access_token_format,
            access_token_ttl,
            json,
        } => {
            let public = public || token_endpoint_auth_method == "none";
            let jwks = match token_endpoint_auth_method.as_str() {
                "client_secret_basic" | "client_secret_post" | "none" => {
                    if jwks_file.is_some() || !public_keys.is_empty() {
                        bail!("--jwks-file and --public-key go with --token-endpoint-auth-method private_key_jwt");
                    }
                    None
                }
                "private_key_jwt" => {
                    if public {
                        bail!("a private_key_jwt client is not public");
                    }
                    Some(load_keys(jwks_file.as_deref(), &public_keys)?)
                }
                other => bail!(
                    "unsupported --token-endpoint-auth-method '{other}' (client_secret_basic, \
                     private_key_jwt or none; client_secret_jwt would need the secret kept in \
                     clear, and Tessera keeps only hashes)"
                ),
            };
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
            let secret = (!public && jwks.is_none()).then(|| secret::generate(SECRET_PREFIX));
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
                jwks,
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
                    None if client.public => println!("public client: no secret"),
                    None => println!("private_key_jwt client: authenticates with signed JWTs"),
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
            if client.jwks.is_some() {
                bail!("client '{client_id}' uses private_key_jwt: replace its keys with `client set-keys`");
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
            jwks_file,
            public_keys,
            json,
        } => {
            let Some(client) = store.get_client(&client_id).await? else {
                bail!("no client '{client_id}'");
            };
            if client.jwks.is_none() {
                bail!("client '{client_id}' does not use private_key_jwt");
            }
            let keys = load_keys(jwks_file.as_deref(), &public_keys)?;
            store.set_client_keys(&client_id, &keys, now()).await?;
            if json {
                print_json(&json!({"client_id": client_id, "keys_replaced": true}));
            } else {
                println!("replaced the public keys of client {client_id}");
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

fn auth_method(c: &ClientRecord) -> &'static str {
    if c.public {
        "none"
    } else if c.jwks.is_some() {
        "private_key_jwt"
    } else {
        "client_secret_basic"
    }
}

/// Reads a client's public keys from a JWKS file and/or PEM files, checking each.
fn load_keys(jwks_file: Option<&std::path::Path>, pems: &[std::path::PathBuf]) -> Result<String> {
    let mut keys = match jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ClientKeys::from_jwks(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => ClientKeys::default(),
    };
    for path in pems {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        keys.add_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if keys.keys.is_empty() && keys.pems.is_empty() {
        bail!("private_key_jwt needs --jwks-file or --public-key");
    }
    Ok(keys.to_stored())
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
        "old_secret_valid_until": c.old_secret_expires_at,
        "created_at": c.created_at,
    })
}
