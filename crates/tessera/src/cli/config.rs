//! `tessera config check`: the settings a server would run with, and where each came from.
//!
//! Resolves the settings exactly as `serve` does (the same flags, environment variables and
//! file; [`crate::settings::resolve`]) without opening the database, then prints every setting
//! with its effective value and its source (`default`, `file PATH`, `env NAME`, `flag --NAME`).
//! Secrets are never printed ([`crate::settings::REDACTED`]). An invalid configuration (an
//! unknown key, a bad value) is the command's error, naming the key and its source.

use std::path::Path;

use anyhow::Result;

use crate::cli::print_json;
use crate::settings::{self, Overrides, Source};

/// `tessera config ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the effective settings (secrets redacted) and where each came from; exit
    /// non-zero, naming the key and its source, when the configuration is invalid.
    Check(CheckArgs),
}

/// Flags of `config check`: those of `serve`, to check a server's command line.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The flags `serve` takes.
    #[command(flatten)]
    pub serve: crate::cli::serve::Args,
    /// Print JSON: `{"config_file", "settings": {KEY: {"value", "source", "from"}}}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs `config check` with the global `--config`, `--database-url` and `--secret-file`.
pub fn run(
    cmd: Command,
    config: Option<&Path>,
    database_url: Option<String>,
    secret_file: Option<std::path::PathBuf>,
) -> Result<()> {
    let Command::Check(args) = cmd;
    let file = settings::load_file(config)?;
    let serve = args.serve;
    let settings = settings::resolve(
        Overrides {
            listen: serve.listen,
            issuer: serve.issuer,
            database_url,
            secret_file,
            log_format: serve.log_format,
            ops_listen: serve.ops_listen,
            admin_listen: serve.admin_listen,
            tls_cert: serve.tls_cert,
            tls_key: serve.tls_key,
            assertion_max_lifetime: serve.assertion_max_lifetime,
            assertion_leeway: serve.assertion_leeway,
        },
        file,
    )?;
    let rows: Vec<(&str, serde_json::Value, Source)> = settings
        .effective()
        .into_iter()
        .map(|(key, value)| {
            let source = settings
                .sources
                .get(key)
                .cloned()
                .unwrap_or(Source::Default);
            (key, value, source)
        })
        .collect();
    let config_file = config.map(|p| p.display().to_string());
    if args.json {
        let mut out = serde_json::Map::new();
        for (key, value, source) in rows {
            out.insert(
                key.to_owned(),
                serde_json::json!({
                    "value": value,
                    "source": source.kind(),
                    "from": source.origin(),
                }),
            );
        }
        print_json(&serde_json::json!({ "config_file": config_file, "settings": out }));
        return Ok(());
    }
    match &config_file {
        Some(f) => println!("# config file: {f}"),
        None => println!("# no config file (--config, TESSERA_CONFIG)"),
    }
    let lines: Vec<(String, String)> = rows
        .into_iter()
        .map(|(key, value, source)| {
            let value = match value {
                serde_json::Value::Null => "(not set)".to_owned(),
                v => v.to_string(),
            };
            (format!("{key} = {value}"), source.to_string())
        })
        .collect();
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, source) in lines {
        println!("{line:width$}  # {source}");
    }
    Ok(())
}
