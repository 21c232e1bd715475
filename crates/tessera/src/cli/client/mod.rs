//! `tessera client ...`: register, inspect, change, rotate and delete clients.
//!
//! A thin caller of [`tessera_core::admin::clients`], where every rule of a registration
//! lives: this module turns flags into its input and prints its answers. A client secret
//! (256 random bits) is printed once; only its hash is stored, and it cannot be shown again.

mod import;
pub(crate) mod registration;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::clients::{self, AuthMethod, ClientPatch, ClientSpec, Created};
use tessera_core::admin::public_keys;
use tessera_core::environment::DEFAULT_ENV;
use tessera_core::model::ClientRecord;
use tessera_core::store::Store;

use crate::cli::{audit, now, open_store, print_json, EnvOutput};
use crate::settings::Settings;
use registration::{flagged, KeyFiles, Registration};
use tessera_core::audit::AuditKind;

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
        /// both work), private_key_jwt, tls_client_auth (a certificate from the configured
        /// authorities, with the subject given by one --tls-client-auth-* flag),
        /// self_signed_tls_client_auth (a certificate holding one of its keys), or none (same
        /// as --public).
        #[arg(long, default_value = "client_secret_basic")]
        token_endpoint_auth_method: String,
        #[command(flatten)]
        keys: KeyFiles,
        #[command(flatten)]
        certificate_subject: Box<registration::CertificateSubject>,
        /// Keep this client id (a client moved from another server): 1 to 128 of A-Z,
        /// a-z, 0-9, '-', '.', '_' and '~' [default: a generated one].
        #[arg(long)]
        client_id: Option<String>,
        /// Read the client's existing secret hash (bcrypt, PBKDF2, Argon2 or SHA-256, see
        /// the README) from the first line of standard input, instead of generating a secret.
        #[arg(long)]
        secret_hash_stdin: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        output: EnvOutput,
    },
    /// Register clients from a JSON-lines file, one client a line (the fields of the create
    /// JSON, with `client_id` and `secret_hash` to keep existing credentials); reports each
    /// line and fails if any line did.
    Import {
        /// The file.
        file: String,
        /// Print one JSON object a line.
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
        #[command(flatten)]
        output: EnvOutput,
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
    let config = &settings.core;
    match cmd {
        Command::Create {
            name,
            env,
            registration,
            public,
            token_endpoint_auth_method,
            keys,
            certificate_subject,
            client_id,
            secret_hash_stdin,
            json,
            output,
        } => {
            let env_output = output.wanted()?;
            let secret_hash = if secret_hash_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim().to_owned())
            } else {
                None
            };
            let spec = ClientSpec {
                name,
                env: Some(env),
                public,
                token_endpoint_auth_method: Some(token_endpoint_auth_method),
                keys: keys.read()?,
                certificate_subject: (*certificate_subject).fields(),
                client_id,
                secret_hash,
                settings: registration.settings(),
            };
            let Created { client, secret } = clients::create(store, config, spec, now())
                .await
                .map_err(flagged)?;
            audit(
                store,
                AuditKind::ClientCreated,
                &client.client_id,
                json!({"name": client.name}),
            )
            .await;
            // A running server answers an id it has not heard of from memory (so an unknown
            // id costs what a known one does) and learns of new clients through the change
            // feed: give every node two polls to hear of this one before its credentials are
            // shown, so that they work at once wherever they are used.
            tokio::time::sleep(2 * tessera_node::SYNC_INTERVAL).await;
            if env_output {
                output.print(&client.client_id, secret.as_ref().map(|s| s.expose()));
            } else if json {
                let mut out = serde_json::Map::new();
                out.insert("client_id".into(), json!(client.client_id));
                out.insert(
                    "client_secret".into(),
                    json!(secret.as_ref().map(|s| s.expose())),
                );
                if let Some(stored) = &client.jwks {
                    out.insert("kids".into(), json!(public_keys::kids(stored)));
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
                    None if client.user_flow.certificate_auth.is_some() => println!(
                        "{} client: authenticates with its certificate",
                        AuthMethod::of(&client).as_str()
                    ),
                    None if client.jwks.is_none() => {
                        println!("client_secret: (imported: the client keeps its own)")
                    }
                    None => println!("private_key_jwt client: authenticates with signed JWTs"),
                }
                if let Some(stored) = &client.jwks {
                    println!("key ids (kid): {}", registration::kids_line(stored));
                }
            }
        }
        Command::Import { file, json } => import::run(&file, json, settings, store).await?,
        Command::Update {
            client_id,
            name,
            registration,
            json,
        } => {
            let patch = ClientPatch {
                name,
                settings: registration.settings(),
            };
            let client = clients::update(store, config, &client_id, patch, now())
                .await
                .map_err(flagged)?;
            audit(store, AuditKind::ClientUpdated, &client_id, json!({})).await;
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
            output,
        } => {
            let env_output = output.wanted()?;
            let rotated = clients::rotate_secret(store, &client_id, keep_old_secret_for, now())
                .await
                .map_err(flagged)?;
            let detail = json!({"old_valid_until": rotated.old_valid_until});
            audit(store, AuditKind::ClientSecretRotated, &client_id, detail).await;
            let secret = rotated.secret;
            if env_output {
                output.print(&client_id, Some(secret.expose()));
            } else if json {
                print_json(&json!({"client_id": client_id, "client_secret": secret.expose()}));
            } else {
                println!("client_id:     {client_id}");
                println!("client_secret: {}", secret.expose());
                match rotated.old_valid_until {
                    Some(u) => println!("the old secret stays valid until {}", crate::cli::time(u)),
                    None => println!("the old secret no longer works; earlier tokens are revoked"),
                }
            }
        }
        Command::SetKeys {
            client_id,
            keys,
            json,
        } => {
            let stored = clients::set_keys(store, &client_id, &keys.read()?, now())
                .await
                .map_err(flagged)?;
            let detail = json!({"keys_replaced": true});
            audit(store, AuditKind::ClientUpdated, &client_id, detail).await;
            if json {
                print_json(&json!({
                    "client_id": client_id,
                    "keys_replaced": true,
                    "kids": public_keys::kids(&stored),
                }));
            } else {
                println!("replaced the public keys of client {client_id}");
                println!("key ids (kid): {}", registration::kids_line(&stored));
            }
        }
        Command::RevokeTokens { client_id, json } => {
            clients::revoke_tokens(store, &client_id, now()).await?;
            audit(store, AuditKind::ClientTokensRevoked, &client_id, json!({})).await;
            if json {
                print_json(&json!({"client_id": client_id, "tokens_revoked": true}));
            } else {
                println!("every token issued to {client_id} until now is revoked");
            }
        }
        Command::List { json } => {
            let clients = clients::list(store).await?;
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
            let c = clients::get(store, &client_id).await?;
            if json {
                print_json(&describe(&c));
            } else {
                crate::cli::print_readable(&describe(&c));
            }
        }
        Command::Delete { client_id, json } => {
            clients::delete(store, &client_id, now()).await?;
            audit(store, AuditKind::ClientDeleted, &client_id, json!({})).await;
            if json {
                print_json(&json!({"client_id": client_id, "deleted": true}));
            } else {
                println!("deleted client {client_id}; its tokens are no longer valid");
            }
        }
    }
    Ok(())
}

/// A client as shown to operators: never its secret hash. The flow settings a profile
/// overrides are shown as they apply (a FAPI 2.0 client requires PAR and S256 PKCE and has
/// codes of at most 60 s, whatever was stored).
fn describe(c: &ClientRecord) -> serde_json::Value {
    use tessera_core::profile;
    let fapi2 = c.user_flow.profile == tessera_core::model::ClientProfile::Fapi2;
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "public": c.public,
        "grant_types": c.grant_types,
        "redirect_uris": c.redirect_uris,
        "scope": c.scopes.to_string(),
        "audiences": c.audiences,
        "token_endpoint_auth_method": AuthMethod::of(c).as_str(),
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
        "code_ttl": profile::code_ttl(c, c.user_flow.code_ttl),
        "require_pkce": c.public || c.user_flow.require_pkce || fapi2,
        "allow_plain_pkce": c.user_flow.allow_plain_pkce && !fapi2,
        "post_logout_redirect_uris": c.user_flow.post_logout_redirect_uris,
        "skip_consent": c.user_flow.skip_consent,
        "backchannel_logout_uri": c.user_flow.backchannel_logout_uri,
        "backchannel_logout_session_required": c.user_flow.backchannel_logout_session_required,
        "token_exchange_audiences": c.user_flow.token_exchange_audiences,
        "require_pushed_authorization_requests": profile::requires_par(c),
        "dpop_bound_access_tokens": c.user_flow.dpop_bound_access_tokens,
        "profile": c.user_flow.profile.as_str(),
        "tls_client_auth_subject": match &c.user_flow.certificate_auth {
            Some(tessera_core::model::CertificateAuth::TlsClientAuth(s)) => {
                let (field, value) = s.field();
                json!({ field: value })
            }
            _ => serde_json::Value::Null,
        },
        "tls_client_certificate_bound_access_tokens": tessera_core::mtls::binds_tokens(c),
        "kids": c.jwks.as_deref().map(public_keys::kids),
    })
}
