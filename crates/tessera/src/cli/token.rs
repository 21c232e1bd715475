//! `tessera token ...`: look at or revoke one token by its value, as an operator (no client
//! credentials): for incident response and debugging. An operator's look never consumes a
//! single-use token: it reports whether the token is still unused and leaves it so. Revoking
//! takes access tokens of both formats and refresh tokens (which revoke their whole grant),
//! by the revocation endpoint's rule ([`tessera_core::admin::tokens`]).

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use tessera_core::admin::tokens;
use tessera_core::cx::{verified_tokens, Cx};
use tessera_core::keys::KeySet;

use crate::cli::{audit, now, open_store, print_json};
use crate::settings::Settings;
use tessera_core::audit::AuditKind;

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether a token is active and what it says (as introspection would; a
    /// single-use token is not consumed by this look).
    Introspect {
        /// The access token.
        token: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token, whoever it was issued to.
    Revoke {
        /// The access or refresh token.
        token: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a token subcommand.
pub async fn run(cmd: Command, settings: &Settings) -> Result<()> {
    let store = open_store(settings).await?;
    let sealer = settings.sealer()?;
    let keys = KeySet::load(&store.list_keys().await?, &sealer)?;
    let verified = verified_tokens(16);
    let cx = Cx {
        config: &settings.core,
        store: store.as_ref(),
        keys: &keys,
        verified: &verified,
        sealer: &sealer,
        remote_keys: None,
        now: now(),
        dialect: None,
        request: Default::default(),
        confirmation: None,
    };
    let result = match cmd {
        Command::Introspect { token, json } => {
            let out = match tokens::inspect(&cx, &token).await? {
                Some(t) => json!({
                    "active": true, "client_id": t.client_id, "sub": t.sub, "scope": t.scope,
                    "aud": t.aud, "iss": t.iss, "iat": t.iat, "exp": t.exp, "jti": t.jti,
                    "format": t.format.as_str(), "env": t.env, "claims": t.claims,
                    "single_use": t.single_use,
                }),
                None => json!({"active": false}),
            };
            if json {
                print_json(&out);
            } else {
                crate::cli::print_readable(&out);
            }
            Ok(())
        }
        Command::Revoke { token, json } => {
            // Whose token it was, for the audit trail (never the value).
            let owner = tokens::inspect(&cx, &token)
                .await
                .ok()
                .flatten()
                .map(|t| t.client_id);
            let revoked = tokens::revoke(&cx, &token).await?;
            if revoked {
                let kind = if token.starts_with(tessera_core::opaque::REFRESH_PREFIX) {
                    "refresh_token"
                } else {
                    "access_token"
                };
                let target = owner.as_deref().unwrap_or_default();
                let detail = json!({"token_type": kind});
                audit(store.as_ref(), AuditKind::TokenRevoked, target, detail).await;
            }
            if json {
                print_json(&json!({"revoked": revoked}));
            } else if revoked {
                println!("revoked; every server honours it within a second");
            } else {
                println!("the token was not active; nothing to revoke");
            }
            Ok(())
        }
    };
    store.close().await;
    result
}
