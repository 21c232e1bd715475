//! `tessera trust ...`: the trusted issuers of JWT assertions (RFC 7523), per deployment
//! environment.
//!
//! A registration names an issuer (`iss`), its public keys (PEM files, a JWKS file, and/or a
//! JWKS URL the server fetches), the claim that names the end user (`sub` unless told), the
//! claims carried into access tokens, and the scopes its assertions may obtain. Its environment is created on first use.
//! A running server honours a change within a second.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;
use tessera_core::client_assertion::ClientKeys;
use tessera_core::environment::{valid_env_name, DEFAULT_ENV};
use tessera_core::jwt::REGISTERED_CLAIMS;
use tessera_core::model::TrustRecord;
use tessera_core::scope::ScopeSet;
use tessera_core::secret;
use tessera_core::store::{Store, StoreError};

use crate::cli::client::registration::{kids_line, stored_kids, KeyFiles};
use crate::cli::{now, open_store, print_json};
use crate::settings::Settings;

/// Trust subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trust an issuer's signed JWTs in an environment.
    Add {
        /// The issuer, as its JWTs' `iss` claim says it.
        #[arg(long)]
        issuer: String,
        #[command(flatten)]
        keys: KeyFiles,
        /// Where the issuer publishes its JWKS (https; plain http only on loopback): the
        /// server fetches it, caches it 5 minutes, and fetches again when a signature names
        /// a key it does not have. Instead of, or besides, --public-key / --jwks-file.
        #[arg(long)]
        jwks_url: Option<String>,
        /// The claim that names the end user; it becomes the access token's `sub`.
        #[arg(long, default_value = "sub")]
        subject_claim: String,
        /// A claim copied from the JWT into the access token and the introspection answer
        /// (repeatable), e.g. --claim anyflow_team_id --claim anyflow_user_id.
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// The deployment environment (created if new).
        #[arg(long, default_value = DEFAULT_ENV)]
        env: String,
        /// Space-delimited scopes tokens obtained with these JWTs may have (also their
        /// default).
        #[arg(long, default_value = "")]
        scope: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List trusted issuers.
    List {
        /// Only those of this environment.
        #[arg(long)]
        env: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace an issuer's public keys (its key rotation: register the new key alongside
    /// the old one first, then the new one alone).
    SetKeys {
        /// The registration id (from `trust add` or `trust list`).
        id: String,
        #[command(flatten)]
        keys: KeyFiles,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting an issuer (by registration id).
    Remove {
        /// The registration id (from `trust add` or `trust list`).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a trust subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let result = dispatch(cmd, store.as_ref()).await;
    store.close().await;
    result
}

async fn dispatch(cmd: Command, store: &dyn Store) -> Result<()> {
    match cmd {
        Command::Add {
            issuer,
            keys,
            jwks_url,
            subject_claim,
            claims,
            env,
            scope,
            json,
        } => {
            if !valid_env_name(&env) {
                bail!("--env must be 1 to 64 of a-z, 0-9, '-' and '_'");
            }
            if issuer.is_empty() || issuer.len() > 256 {
                bail!("--issuer must be 1 to 256 characters");
            }
            if !keys.given() && jwks_url.is_none() {
                bail!(
                    "give the issuer's public key: --public-key PEM (repeatable), --jwks-file F \
                     or --jwks-url URL"
                );
            }
            if let Some(url) = &jwks_url {
                check_jwks_url(url)?;
            }
            if subject_claim.is_empty() {
                bail!("--subject-claim must not be empty");
            }
            for c in &claims {
                if REGISTERED_CLAIMS.contains(&c.as_str()) {
                    bail!("--claim {c}: Tessera sets this claim itself; it cannot be carried");
                }
            }
            let record = TrustRecord {
                id: secret::generate_id(),
                env,
                issuer,
                keys: if keys.given() {
                    keys.load()?
                } else {
                    ClientKeys::default().to_stored()
                },
                jwks_uri: jwks_url,
                subject_claim,
                claims,
                scopes: ScopeSet::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?,
                created_at: now(),
            };
            store.ensure_env(&record.env, now()).await?;
            match store.insert_trust(&record).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => bail!(
                    "environment '{}' already trusts issuer '{}': remove it first",
                    record.env,
                    record.issuer
                ),
                Err(e) => return Err(e.into()),
            }
            if json {
                print_json(&describe(&record));
            } else {
                println!(
                    "trusted {} in environment {} (id {})",
                    record.issuer, record.env, record.id
                );
                let kids = kids_line(&record.keys);
                if !kids.is_empty() {
                    println!("key ids (kid): {kids}");
                }
            }
        }
        Command::List { env, json } => {
            let list = store.list_trust(env.as_deref()).await?;
            if json {
                print_json(&serde_json::Value::Array(
                    list.iter().map(describe).collect(),
                ));
            } else {
                for t in &list {
                    println!(
                        "{}  {}  {}  sub={}  claims=[{}]  scope=\"{}\"",
                        t.id,
                        t.env,
                        t.issuer,
                        t.subject_claim,
                        t.claims.join(","),
                        t.scopes
                    );
                }
            }
        }
        Command::SetKeys { id, keys, json } => {
            if !keys.given() {
                bail!(
                    "give the issuer's public keys: --public-key PEM (repeatable) or --jwks-file F"
                );
            }
            let stored = keys.load()?;
            if !store.set_trust_keys(&id, &stored, now()).await? {
                bail!("no trust registration '{id}'");
            }
            if json {
                print_json(&json!({
                    "id": id,
                    "keys_replaced": true,
                    "kids": stored_kids(&stored),
                }));
            } else {
                println!("replaced the public keys of trust registration {id}");
                println!("key ids (kid): {}", kids_line(&stored));
            }
        }
        Command::Remove { id, json } => {
            if !store.delete_trust(&id, now()).await? {
                bail!("no trust registration '{id}'");
            }
            if json {
                print_json(&json!({"id": id, "removed": true}));
            } else {
                println!("removed trust registration {id}");
            }
        }
    }
    Ok(())
}

/// A JWKS URL must be https, or plain http on a loopback address (development).
fn check_jwks_url(url: &str) -> Result<()> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if loopback {
        Ok(())
    } else {
        bail!("--jwks-url must be an https URL (plain http only on a loopback address)")
    }
}

/// A registration as shown to operators (public keys are public; counted, with their `kid`s).
fn describe(t: &TrustRecord) -> serde_json::Value {
    let keys = serde_json::from_str::<ClientKeys>(&t.keys)
        .map(|k| k.keys.len() + k.pems.len())
        .unwrap_or(0);
    json!({
        "id": t.id,
        "env": t.env,
        "issuer": t.issuer,
        "subject_claim": t.subject_claim,
        "claims": t.claims,
        "scope": t.scopes.to_string(),
        "keys": keys,
        "jwks_url": t.jwks_uri,
        "kids": stored_kids(&t.keys),
        "created_at": t.created_at,
    })
}
