//! `tessera trust ...`: the trusted issuers of JWT assertions (RFC 7523), per deployment
//! environment.
//!
//! A registration names an issuer (`iss`), its public keys (PEM files, a JWKS file, and/or a
//! JWKS URL the server fetches), the claim that names the end user (`sub` unless told), the
//! claims carried into access tokens, and the scopes its assertions may obtain. Its
//! environment is created on first use. A running server honours a change within a second.
//! A thin caller of [`tessera_core::admin::trust`], where the rules live.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};
use tessera_core::admin::public_keys;
use tessera_core::admin::trust::{self, TrustSpec};
use tessera_core::environment::DEFAULT_ENV;
use tessera_core::model::TrustRecord;
use tessera_core::store::Store;

use crate::cli::client::registration::{flagged, KeyFiles};
use crate::cli::{audit, now, open_store, print_json};
use crate::settings::Settings;
use tessera_core::audit::AuditKind;

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
            let spec = TrustSpec {
                issuer,
                keys: keys.read()?,
                jwks_url,
                subject_claim: Some(subject_claim),
                claims,
                env: Some(env),
                scope,
            };
            let record = trust::add(store, spec, now()).await.map_err(flagged)?;
            let detail = json!({"issuer": record.issuer, "env": record.env});
            audit(store, AuditKind::TrustAdded, &record.id, detail).await;
            print_added(&describe(&record), json);
        }
        Command::List { env, json } => {
            let list = trust::list(store, env.as_deref()).await?;
            print_list(&list.iter().map(describe).collect::<Vec<_>>(), json);
        }
        Command::SetKeys { id, keys, json } => {
            let stored = trust::set_keys(store, &id, &keys.read()?, now())
                .await
                .map_err(flagged)?;
            audit(
                store,
                AuditKind::TrustUpdated,
                &id,
                json!({"keys_replaced": true}),
            )
            .await;
            let done = json!({
                "id": id,
                "keys_replaced": true,
                "kids": public_keys::kids(&stored),
            });
            print_keys_set(&done, json);
        }
        Command::Remove { id, json } => {
            trust::remove(store, &id, now()).await?;
            audit(store, AuditKind::TrustRemoved, &id, json!({})).await;
            print_removed(&id, json);
        }
    }
    Ok(())
}

/// A registration as shown to operators (public keys are public; counted, with their `kid`s).
fn describe(t: &TrustRecord) -> serde_json::Value {
    let keys = public_keys::count(&t.keys);
    json!({
        "id": t.id,
        "env": t.env,
        "issuer": t.issuer,
        "subject_claim": t.subject_claim,
        "claims": t.claims,
        "scope": t.scopes.to_string(),
        "keys": keys,
        "jwks_url": t.jwks_uri,
        "kids": public_keys::kids(&t.keys),
        "created_at": t.created_at,
    })
}

/// A string field of a JSON object.
fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The `kid`s of a JSON object's `kids` on one line (`(none)` for a key without one).
fn kids_of(v: &Value) -> String {
    v.get("kids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|k| k.as_str().unwrap_or("(none)").to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// What `trust add` prints, from the registration as [`describe`] (or the admin API)
/// shows it.
pub(crate) fn print_added(t: &Value, json: bool) {
    if json {
        print_json(t);
    } else {
        println!(
            "trusted {} in environment {} (id {})",
            field(t, "issuer"),
            field(t, "env"),
            field(t, "id")
        );
        let kids = kids_of(t);
        if !kids.is_empty() {
            println!("key ids (kid): {kids}");
        }
    }
}

/// What `trust list` prints.
pub(crate) fn print_list(list: &[Value], json: bool) {
    if json {
        print_json(&Value::Array(list.to_vec()));
    } else {
        for t in list {
            let claims: Vec<&str> = t
                .get("claims")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            println!(
                "{}  {}  {}  sub={}  claims=[{}]  scope=\"{}\"",
                field(t, "id"),
                field(t, "env"),
                field(t, "issuer"),
                field(t, "subject_claim"),
                claims.join(","),
                field(t, "scope")
            );
        }
    }
}

/// What `trust set-keys` prints, from `{id, keys_replaced, kids}`.
pub(crate) fn print_keys_set(done: &Value, json: bool) {
    if json {
        print_json(done);
    } else {
        println!(
            "replaced the public keys of trust registration {}",
            field(done, "id")
        );
        println!("key ids (kid): {}", kids_of(done));
    }
}

/// What `trust remove` prints.
pub(crate) fn print_removed(id: &str, json: bool) {
    if json {
        print_json(&json!({"id": id, "removed": true}));
    } else {
        println!("removed trust registration {id}");
    }
}
