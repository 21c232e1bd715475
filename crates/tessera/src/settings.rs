//! Settings: flag > environment variable > config file > default.
//!
//! Owns [`FileConfig`] (the TOML file's keys, each also an environment variable
//! `TESSERA_<KEY>`; [`FileConfig::keys`] lists them from the type itself), the resolution
//! order, the record of where each value came from ([`Source`], shown by `tessera config
//! check` with [`Settings::effective`], secrets redacted), and the sealing secret:
//! `TESSERA_SECRET`, else the file named by `secret_file`, else (SQLite only) a key file
//! beside the database, created with mode 0600 on first use, and never for a database that
//! already has signing keys.
//!
//! A new setting needs: a field of [`FileConfig`], its value taken through `Sources::pick`
//! (so its source is recorded), an arm in [`Settings::effective`], and a line in
//! `tessera.example.toml`; the tests fail on any of these missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tessera_core::config::{url_authority, Config, Host};
use tessera_core::environment::valid_env_name;
use tessera_core::keys::{Sealer, SigningAlg};
use tessera_http::HttpConfig;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./tessera.db";
/// Default number of database connections per process (PostgreSQL).
pub const DEFAULT_DATABASE_POOL_SIZE: u32 = 16;
/// Default longest wait for a request's headers, seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT: u64 = 10;
/// Default largest request head, bytes.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 16 * 1024;
/// Smallest request head limit (the HTTP/1 parser's least buffer).
const MIN_MAX_HEADER_SIZE: usize = 8 * 1024;
/// Shortest bootstrap admin token accepted (`TESSERA_ADMIN_TOKEN`), characters.
pub const MIN_ADMIN_TOKEN: usize = 16;
/// Default seconds a change-feed entry is kept.
pub const DEFAULT_CHANGE_RETENTION: i64 = 3600;

/// The config file (`--config tessera.toml`). Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Issuer identifier.
    pub issuer: Option<String>,
    /// Further public base URLs (custom domains, data centres), each answering as an issuer
    /// of its own (`[[hosts]]`; in the file only).
    pub hosts: Option<Vec<HostEntry>>,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    pub database_url: Option<String>,
    /// Most database connections a process holds (PostgreSQL).
    pub database_pool_size: Option<u32>,
    /// Seconds between two purges of expired rows by the server.
    pub purge_interval: Option<u64>,
    /// File holding the sealing secret.
    pub secret_file: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Log one line per request (request id, method, route template, status, latency,
    /// authenticated client id) at info level, target `access` (env `TESSERA_ACCESS_LOG`:
    /// `true` or `false`) [default: false].
    pub access_log: Option<bool>,
    /// How long a back-channel logout delivery is retried, seconds from when it was queued
    /// (10 to 86400) [default: 600].
    pub backchannel_logout_retry_window: Option<i64>,
    /// Longest one logout token POST may take, seconds (1 to 60) [default: 5].
    pub backchannel_logout_timeout: Option<u64>,
    /// Whether logout tokens may be sent to loopback and private (RFC 1918, `fc00::/7`)
    /// addresses [default: true when the issuer is a loopback `http://` URL, else false].
    pub backchannel_logout_private_addresses: Option<bool>,
    /// How many logout token deliveries may wait (100 to 1000000); past it the oldest are
    /// dropped [default: 10000].
    pub backchannel_logout_max_queued: Option<u64>,
    /// Origins allowed by CORS.
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Request body limit, bytes.
    pub body_limit: Option<usize>,
    /// Request timeout, seconds.
    pub request_timeout: Option<u64>,
    /// `ES256` or `EdDSA`.
    pub signing_alg: Option<String>,
    /// Seconds a new key is published before it signs.
    pub key_rotation_lead_time: Option<i64>,
    /// Rotate the signing key automatically at this age, seconds (0: off).
    pub key_rotation_interval: Option<i64>,
    /// Access-token lifetime for clients registered without one, seconds.
    pub default_access_token_ttl: Option<i64>,
    /// Longest access-token lifetime, seconds.
    pub max_access_token_ttl: Option<i64>,
    /// Failed client authentications allowed per address per minute (0: unlimited).
    pub auth_failures_per_minute: Option<u32>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (IP addresses).
    pub trusted_proxies: Option<Vec<String>>,
    /// Allow a non-loopback `http://` issuer (development only).
    pub allow_insecure_http: Option<bool>,
    /// Dynamic client registration (RFC 7591): `off`, `token` (an initial access token is
    /// required) or `open` [default: off].
    pub dynamic_registration: Option<String>,
    /// Serving threads (default: one per CPU).
    pub workers: Option<usize>,
    /// Address of the operational endpoints (`/health/*`, `/metrics`), if apart.
    pub ops_listen: Option<String>,
    /// Address of the admin API (`/admin`), which is served nowhere else.
    pub admin_listen: Option<String>,
    /// PEM certificate chain: serve HTTPS (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Directory whose files replace the built-in page templates and stylesheet.
    pub templates_dir: Option<PathBuf>,
    /// How long a browser sign-in lasts, seconds.
    pub session_ttl: Option<i64>,
    /// Lifetime of ID tokens, seconds.
    pub id_token_ttl: Option<i64>,
    /// Lifetime of a pushed authorization request's `request_uri`, seconds (RFC 9126).
    pub par_ttl: Option<i64>,
    /// Every authorization request must be pushed first (RFC 9126).
    pub require_par: Option<bool>,
    /// Mutual TLS (RFC 8705): certificate client authentication and certificate-bound
    /// access tokens [default: off].
    pub mtls_enabled: Option<bool>,
    /// PEM bundle of the certificate authorities `tls_client_auth` chains are checked
    /// against (RFC 8705 §2.1).
    pub mtls_ca_file: Option<PathBuf>,
    /// PEM file of those authorities' certificate revocation lists (RFC 5280 §5): a
    /// `tls_client_auth` certificate they list is refused.
    pub mtls_crl_file: Option<PathBuf>,
    /// The header a trusted TLS-terminating proxy passes the client certificate in.
    pub mtls_client_cert_header: Option<String>,
    /// Base URL of the endpoints clients reach with their certificate (RFC 8705 §5).
    pub mtls_base_url: Option<String>,
    /// DPoP proofs must carry a nonce this server provided (RFC 9449 §8).
    pub dpop_nonce: Option<bool>,
    /// How long a DPoP proof is accepted after its `iat`, seconds (RFC 9449 §11.1).
    pub dpop_proof_lifetime: Option<i64>,
    /// How long a DPoP nonce stays valid, seconds (RFC 9449 §8).
    pub dpop_nonce_lifetime: Option<i64>,
    /// Failed sign-ins allowed per username per lockout window (0: unlimited).
    pub login_failures_per_user: Option<u32>,
    /// Failed sign-ins allowed per client address per lockout window (0: unlimited).
    pub login_failures_per_address: Option<u32>,
    /// The sign-in lockout window, seconds.
    pub login_lockout_window: Option<i64>,
    /// Failed sign-ins allowed per lockout window from a browser with a device cookie.
    pub login_failures_per_device: Option<u32>,
    /// How long a device cookie lasts, seconds.
    pub device_cookie_ttl: Option<i64>,
    /// Wrong user codes allowed per client address per lockout window on the device
    /// verification page (RFC 8628 §5.1; 0: unlimited).
    pub user_code_failures_per_address: Option<u32>,
    /// Device authorizations allowed per client per client address per device code
    /// lifetime (0: unlimited).
    pub device_codes_per_client_address: Option<u32>,
    /// Password checks that run at once.
    pub password_checks_concurrent: Option<usize>,
    /// Password checks that may wait for one of those.
    pub password_checks_queued: Option<usize>,
    /// Longest a JWT assertion may be valid for, seconds.
    pub assertion_max_lifetime: Option<i64>,
    /// Clock leeway for assertions, seconds.
    pub assertion_leeway: Option<i64>,
    /// Most client connections held at once (default: what the descriptor limit allows).
    pub max_connections: Option<usize>,
    /// Longest a client may take to send a request's headers, seconds.
    pub header_read_timeout: Option<u64>,
    /// Largest request line and headers, bytes.
    pub max_header_size: Option<usize>,
    /// Bearer token that reads `/metrics` on the public listener.
    pub metrics_token: Option<String>,
    /// Seconds a change-feed entry is kept before the purge deletes it.
    pub change_retention: Option<i64>,
    /// How long audit trail entries are kept before the purge deletes them: seconds, or a
    /// number with a unit (`90d`, `12h`, `30m`, `45s`).
    pub audit_retention: Option<DurationValue>,
    /// Dialects switched on or changed (`[dialects.NAME]`, see `tessera_core::dialect`);
    /// only in the file.
    pub dialects:
        Option<std::collections::BTreeMap<String, tessera_core::dialect::DialectOverrides>>,
    /// The file these keys were read from (not a key).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl FileConfig {
    /// Every key of the file, in the order of [`FileConfig`]'s fields: read from the type
    /// itself, so that a new setting is known to everything that lists them.
    pub fn keys() -> &'static [&'static str] {
        struct_fields::<FileConfig>()
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
impl HostEntry {
    /// Every key of a `[[hosts]]` entry.
    pub fn keys() -> &'static [&'static str] {
        struct_fields::<HostEntry>()
    }
}

/// The field names a derived `Deserialize` of a struct asks for: a deserializer that records
/// them and stops.
fn struct_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> de::Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// A length of time in the config file: seconds, or text with a unit (`90d`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// Seconds.
    Seconds(i64),
    /// `N` followed by `s`, `m`, `h` or `d`.
    Text(String),
}

impl DurationValue {
    fn seconds(&self, key: &str) -> Result<i64> {
        match self {
            DurationValue::Seconds(n) => Ok(*n),
            DurationValue::Text(t) => parse_duration(t).ok_or_else(|| {
                anyhow::anyhow!(
                    "{key}: '{t}' is not a duration like 90d, 12h, 30m, 45s or a number of seconds"
                )
            }),
        }
    }
}

/// Seconds in `N`, `Ns`, `Nm`, `Nh` or `Nd`; `None` for anything else or an overflow.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// One `[[hosts]]` entry: a public base URL besides the issuer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// Scheme, host and optional port (`https://api.example.com`).
    pub url: String,
    /// The deployment environment this host serves alone (need not exist yet).
    pub env: Option<String>,
}

/// Loads the config file, if one is named.
pub fn load_file(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let mut file: FileConfig =
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?;
    file.path = Some(path.to_owned());
    Ok(file)
}

fn env<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map(Some).map_err(|_| {
            // Only numbers, booleans and paths fail to parse here, never a secret.
            anyhow::anyhow!("environment variable {name}: '{v}' is not a valid value")
        }),
        _ => Ok(None),
    }
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built in (nothing set it).
    Default,
    /// The config file (its path when known).
    File(Option<PathBuf>),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl Source {
    /// `default`, `file`, `env` or `flag`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File(_) => "file",
            Source::Env(_) => "env",
            Source::Flag(_) => "flag",
        }
    }

    /// The file, variable or flag, if any.
    pub fn origin(&self) -> Option<String> {
        match self {
            Source::Default | Source::File(None) => None,
            Source::File(Some(p)) => Some(p.display().to_string()),
            Source::Env(n) | Source::Flag(n) => Some(n.clone()),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.origin() {
            Some(o) => write!(f, "{} {o}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// The source of each setting, recorded as [`resolve`] picks values.
#[derive(Debug, Default)]
struct Sources {
    file: Option<PathBuf>,
    map: std::collections::BTreeMap<&'static str, Source>,
}

impl Sources {
    fn set(&mut self, key: &'static str, source: Source) {
        self.map.insert(key, source);
    }

    fn file(&self) -> Source {
        Source::File(self.file.clone())
    }

    /// The first of: the flag (which clap may have filled from `flag_env`), the environment
    /// variable `TESSERA_<KEY>` (when `env_too`), the file.
    fn pick<T: std::str::FromStr>(
        &mut self,
        key: &'static str,
        flag: Option<(T, &'static str, &'static str)>,
        env_too: bool,
        file: Option<T>,
    ) -> Result<Option<T>> {
        if let Some((v, flag, flag_env)) = flag {
            self.set(key, flag_source(flag, flag_env));
            return Ok(Some(v));
        }
        if env_too {
            let name = format!("TESSERA_{}", key.to_ascii_uppercase());
            if let Some(v) = env(&name)? {
                self.set(key, Source::Env(name));
                return Ok(Some(v));
            }
        }
        let source = if file.is_some() {
            self.file()
        } else {
            Source::Default
        };
        self.set(key, source);
        Ok(file)
    }

    /// [`Sources::pick`] without a flag.
    fn env_file<T: std::str::FromStr>(
        &mut self,
        key: &'static str,
        file: Option<T>,
    ) -> Result<Option<T>> {
        self.pick(key, None, true, file)
    }

    /// The error, with the source of each setting it names that something set.
    fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        let text = format!("{e:#}");
        let named: Vec<(&str, &Source)> = self
            .map
            .iter()
            .filter(|(key, source)| **source != Source::Default && names_key(&text, key))
            .filter(|(_, source)| match source {
                // An error about an environment variable already names it.
                Source::Env(name) => !text.contains(name.as_str()),
                _ => true,
            })
            .map(|(key, source)| (*key, source))
            .collect();
        match named.as_slice() {
            [] => e,
            [(_, source)] => anyhow::anyhow!("{text} (set by {source})"),
            _ => {
                let each: Vec<String> = named
                    .iter()
                    .map(|(key, source)| format!("{key} set by {source}"))
                    .collect();
                anyhow::anyhow!("{text} ({})", each.join(", "))
            }
        }
    }
}

/// Whether `text` names `key` as a word of its own.
fn names_key(text: &str, key: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(key).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + key.len()..].chars().next().is_some_and(word)
    })
}

/// A flag's value came from the command line, or from the environment variable clap reads
/// for it when the flag is absent.
fn flag_source(flag: &'static str, flag_env: &'static str) -> Source {
    let on_command_line = std::env::args()
        .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')));
    if !on_command_line && std::env::var_os(flag_env).is_some_and(|v| !v.is_empty()) {
        Source::Env(flag_env.to_owned())
    } else {
        Source::Flag(flag.to_owned())
    }
}

/// Everything resolved.
#[derive(Debug)]
pub struct Settings {
    /// Listen address.
    pub listen: String,
    /// Database URL.
    pub database_url: String,
    /// Most database connections a process holds (PostgreSQL).
    pub database_pool_size: u32,
    /// Log format.
    pub json_logs: bool,
    /// Protocol settings.
    pub core: Config,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Serving threads.
    pub workers: usize,
    /// Where `/health/*` and `/metrics` listen, when not on `listen`.
    pub ops_listen: Option<String>,
    /// Where the admin API listens, if it is served.
    pub admin_listen: Option<String>,
    /// Certificate chain and key files, when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Most client connections held at once; `None`: what the descriptor limit allows.
    pub max_connections: Option<usize>,
    /// Longest a client may take to send a request's headers (idle connections close then).
    pub header_read_timeout: Duration,
    /// Largest request line and headers, bytes.
    pub max_header_size: usize,
    /// Seconds a change-feed entry is kept.
    pub change_retention: i64,
    /// Where each setting came from, by file key (and `secret`, `admin_token` for the two
    /// read from the environment only).
    pub sources: std::collections::BTreeMap<&'static str, Source>,
    /// Whether a plain-http issuer may be off loopback.
    pub allow_insecure_http: bool,
    /// The certificate authorities of `tls_client_auth` were read from this file.
    pub mtls_ca_file: Option<PathBuf>,
    /// Their revocation lists were read from this file.
    pub mtls_crl_file: Option<PathBuf>,
    secret_file: Option<PathBuf>,
}

/// Flags that override the file and environment.
#[derive(Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--issuer`.
    pub issuer: Option<String>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--secret-file`.
    pub secret_file: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--ops-listen`.
    pub ops_listen: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--assertion-max-lifetime`.
    pub assertion_max_lifetime: Option<i64>,
    /// `--assertion-leeway`.
    pub assertion_leeway: Option<i64>,
}

/// Resolves every setting, recording where each came from ([`Settings::sources`]). An error
/// names the setting and, when something set it, where from.
pub fn resolve(o: Overrides, file: FileConfig) -> Result<Settings> {
    let mut src = Sources {
        file: file.path.clone(),
        ..Sources::default()
    };
    match resolve_with(o, file, &mut src) {
        Ok(mut s) => {
            s.sources = src.map;
            Ok(s)
        }
        Err(e) => Err(src.explain(e)),
    }
}

fn resolve_with(o: Overrides, file: FileConfig, src: &mut Sources) -> Result<Settings> {
    // `serve` reads these from flags or the environment through clap; management commands,
    // which have no such flags, still need the same issuer (to check tokens it signed).
    let listen = src
        .pick(
            "listen",
            o.listen.map(|v| (v, "--listen", "TESSERA_LISTEN")),
            true,
            file.listen,
        )?
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    check_listen("listen", &listen)?;
    let issuer = src
        .pick(
            "issuer",
            o.issuer.map(|v| (v, "--issuer", "TESSERA_ISSUER")),
            true,
            file.issuer,
        )?
        .unwrap_or_else(|| format!("http://{listen}"));
    let allow_insecure = src
        .env_file("allow_insecure_http", file.allow_insecure_http)?
        .unwrap_or(false);
    check_issuer(&issuer, allow_insecure)?;
    let log_format = src
        .pick(
            "log_format",
            o.log_format
                .map(|v| (v, "--log-format", "TESSERA_LOG_FORMAT")),
            false,
            file.log_format,
        )?
        .unwrap_or_else(|| "text".to_owned());
    let json_logs = match log_format.as_str() {
        "json" => true,
        "text" => false,
        other => bail!("log_format must be 'text' or 'json', not '{other}'"),
    };
    let mut core = Config::new(issuer);
    src.set(
        "hosts",
        if file.hosts.is_some() {
            src.file()
        } else {
            Source::Default
        },
    );
    let hosts = resolve_hosts(file.hosts.unwrap_or_default(), &core.issuer, allow_insecure)?;
    core = core.with_hosts(hosts);
    if let Some(alg) = src.env_file::<String>("signing_alg", file.signing_alg)? {
        core.signing_alg = SigningAlg::parse(&alg).context("signing_alg")?;
    }
    if let Some(v) = src.env_file("key_rotation_lead_time", file.key_rotation_lead_time)? {
        core.key_rotation_lead_time = v;
    }
    if let Some(v) = src.env_file("key_rotation_interval", file.key_rotation_interval)? {
        core.key_rotation_interval = v;
    }
    if core.key_rotation_lead_time < core.jwks_max_age() {
        bail!(
            "key_rotation_lead_time must be at least the {} s the JWKS may be cached (its \
             Cache-Control max-age), and not negative",
            core.jwks_max_age()
        );
    }
    if core.key_rotation_interval > 0 && core.key_rotation_interval <= core.key_rotation_lead_time {
        bail!("key_rotation_interval must be longer than key_rotation_lead_time");
    }
    if let Some(v) = src.env_file("default_access_token_ttl", file.default_access_token_ttl)? {
        core.default_access_token_ttl = v;
    }
    if let Some(v) = src.env_file("max_access_token_ttl", file.max_access_token_ttl)? {
        core.max_access_token_ttl = v;
    }
    if core.default_access_token_ttl < 1 || core.max_access_token_ttl < 1 {
        bail!("default_access_token_ttl and max_access_token_ttl must be at least 1 second");
    }
    if let Some(v) = src.env_file("session_ttl", file.session_ttl)? {
        core.session_ttl = v;
    }
    if let Some(v) = src.env_file("id_token_ttl", file.id_token_ttl)? {
        core.id_token_ttl = v;
    }
    if core.session_ttl < 1 || core.id_token_ttl < 1 {
        bail!("session_ttl and id_token_ttl must be at least 1 second");
    }
    if let Some(v) = src.env_file("par_ttl", file.par_ttl)? {
        if !(1..=600).contains(&v) {
            bail!("par_ttl must be between 1 and 600 seconds");
        }
        core.par_ttl = v;
    }
    if let Some(v) = src.env_file("require_par", file.require_par)? {
        core.require_par = v;
    }
    if let Some(v) = src.env_file("dpop_nonce", file.dpop_nonce)? {
        core.dpop_nonce = v;
    }
    if let Some(v) = src.env_file("dpop_proof_lifetime", file.dpop_proof_lifetime)? {
        if !(1..=600).contains(&v) {
            bail!("dpop_proof_lifetime must be between 1 and 600 seconds");
        }
        core.dpop_proof_lifetime = v;
    }
    if let Some(v) = src.env_file("dpop_nonce_lifetime", file.dpop_nonce_lifetime)? {
        if !(10..=3600).contains(&v) {
            bail!("dpop_nonce_lifetime must be between 10 and 3600 seconds");
        }
        core.dpop_nonce_lifetime = v;
    }
    if let Some(v) = src.pick(
        "assertion_max_lifetime",
        o.assertion_max_lifetime.map(|v| {
            (
                v,
                "--assertion-max-lifetime",
                "TESSERA_ASSERTION_MAX_LIFETIME",
            )
        }),
        true,
        file.assertion_max_lifetime,
    )? {
        core.assertion_max_lifetime = v;
    }
    if let Some(v) = src.pick(
        "assertion_leeway",
        o.assertion_leeway
            .map(|v| (v, "--assertion-leeway", "TESSERA_ASSERTION_LEEWAY")),
        true,
        file.assertion_leeway,
    )? {
        core.assertion_leeway = v;
    }
    if core.assertion_max_lifetime < 1 || !(0..=600).contains(&core.assertion_leeway) {
        bail!(
            "assertion_max_lifetime must be at least 1 second and assertion_leeway between 0 \
             and 600 seconds"
        );
    }
    if let Some(mode) =
        src.env_file::<String>("dynamic_registration", file.dynamic_registration.clone())?
    {
        core.dynamic_registration = tessera_core::config::DynamicRegistration::parse(&mode)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "dynamic_registration must be 'off', 'token' or 'open', not '{mode}'"
                )
            })?;
    }
    if let Some(v) = env::<String>("TESSERA_AUDIT_RETENTION")? {
        src.set(
            "audit_retention",
            Source::Env("TESSERA_AUDIT_RETENTION".into()),
        );
        core.audit_retention = parse_duration(&v).ok_or_else(|| {
            anyhow::anyhow!(
                "TESSERA_AUDIT_RETENTION: '{v}' is not a duration like 90d, 12h, 30m, 45s or a number of seconds"
            )
        })?;
    } else if let Some(v) = &file.audit_retention {
        src.set("audit_retention", src.file());
        core.audit_retention = v.seconds("audit_retention")?;
    } else {
        src.set("audit_retention", Source::Default);
    }
    if core.audit_retention < 1 {
        bail!("audit_retention must be at least 1 second");
    }
    src.set(
        "dialects",
        if file.dialects.is_some() {
            src.file()
        } else {
            Source::Default
        },
    );
    if let Some(changes) = &file.dialects {
        let dialects = tessera_core::dialect::Dialects::resolve(changes)
            .map_err(|e| anyhow::anyhow!("config file: {e}"))?;
        core.dialects = std::sync::Arc::new(dialects);
    }
    let mut http = HttpConfig::default();
    if let Some(v) = env::<String>("TESSERA_CORS_ALLOWED_ORIGINS")? {
        src.set(
            "cors_allowed_origins",
            Source::Env("TESSERA_CORS_ALLOWED_ORIGINS".into()),
        );
        http.cors_allowed_origins = v
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
    } else if let Some(v) = file.cors_allowed_origins {
        src.set("cors_allowed_origins", src.file());
        http.cors_allowed_origins = v;
    } else {
        src.set("cors_allowed_origins", Source::Default);
    }
    if let Some(v) = src.env_file("body_limit", file.body_limit)? {
        http.body_limit = v;
    }
    if let Some(v) = src.env_file("request_timeout", file.request_timeout)? {
        http.request_timeout = Duration::from_secs(v);
    }
    if let Some(v) = src.env_file::<u64>("purge_interval", file.purge_interval)? {
        if v == 0 {
            bail!("purge_interval must be at least 1 second");
        }
        http.purge_interval = Duration::from_secs(v);
    }
    if let Some(v) = src.env_file("auth_failures_per_minute", file.auth_failures_per_minute)? {
        http.auth_failures_per_minute = v;
    }
    http.templates_dir = src.env_file::<PathBuf>("templates_dir", file.templates_dir)?;
    if let Some(dir) = &http.templates_dir {
        if !dir.is_dir() {
            bail!("templates_dir {} is not a directory", dir.display());
        }
    }
    if let Some(v) = src.env_file("login_failures_per_user", file.login_failures_per_user)? {
        http.login_failures_per_user = v;
    }
    if let Some(v) = src.env_file(
        "login_failures_per_address",
        file.login_failures_per_address,
    )? {
        http.login_failures_per_address = v;
    }
    if let Some(v) = src.env_file("login_lockout_window", file.login_lockout_window)? {
        if v < 1 {
            bail!("login_lockout_window must be at least 1 second");
        }
        http.login_lockout_window = v;
    }
    if let Some(v) = src.env_file("login_failures_per_device", file.login_failures_per_device)? {
        http.login_failures_per_device = v;
    }
    if let Some(v) = src.env_file(
        "user_code_failures_per_address",
        file.user_code_failures_per_address,
    )? {
        http.user_code_failures_per_address = v;
    }
    if let Some(v) = src.env_file(
        "device_codes_per_client_address",
        file.device_codes_per_client_address,
    )? {
        http.device_codes_per_client_address = v;
    }
    if let Some(v) = src.env_file("device_cookie_ttl", file.device_cookie_ttl)? {
        if v < 1 {
            bail!("device_cookie_ttl must be at least 1 second");
        }
        http.device_cookie_ttl = v;
    }
    if let Some(v) = src.env_file(
        "password_checks_concurrent",
        file.password_checks_concurrent,
    )? {
        if v < 1 {
            bail!("password_checks_concurrent must be at least 1");
        }
        http.password_checks_concurrent = v;
    }
    if let Some(v) = src.env_file("password_checks_queued", file.password_checks_queued)? {
        http.password_checks_queued = v;
    }
    let proxies = match env::<String>("TESSERA_TRUSTED_PROXIES")? {
        Some(v) => {
            src.set(
                "trusted_proxies",
                Source::Env("TESSERA_TRUSTED_PROXIES".into()),
            );
            v.split(',').map(|s| s.trim().to_owned()).collect()
        }
        None => {
            src.set(
                "trusted_proxies",
                if file.trusted_proxies.is_some() {
                    src.file()
                } else {
                    Source::Default
                },
            );
            file.trusted_proxies.unwrap_or_default()
        }
    };
    http.trusted_proxies = proxies
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| anyhow::anyhow!("trusted_proxies: '{p}' is not an IP address"))
        })
        .collect::<Result<_>>()?;
    http.access_log = src
        .env_file("access_log", file.access_log)?
        .unwrap_or(false);
    if let Some(v) = src.env_file(
        "backchannel_logout_retry_window",
        file.backchannel_logout_retry_window,
    )? {
        if !(10..=86_400).contains(&v) {
            bail!("backchannel_logout_retry_window must be between 10 and 86400 seconds");
        }
        http.backchannel_logout_retry_window = v;
    }
    if let Some(v) = src.env_file(
        "backchannel_logout_timeout",
        file.backchannel_logout_timeout,
    )? {
        if !(1..=60).contains(&v) {
            bail!("backchannel_logout_timeout must be between 1 and 60 seconds");
        }
        http.backchannel_logout_timeout = Duration::from_secs(v);
    }
    if let Some(v) = src.env_file(
        "backchannel_logout_max_queued",
        file.backchannel_logout_max_queued,
    )? {
        if !(100..=1_000_000).contains(&v) {
            bail!("backchannel_logout_max_queued must be between 100 and 1000000");
        }
        http.backchannel_logout_max_queued = v;
    }
    // Development on loopback sends logout tokens to loopback receivers; a deployment must
    // opt in to private targets.
    http.backchannel_logout_private_addresses = src
        .env_file(
            "backchannel_logout_private_addresses",
            file.backchannel_logout_private_addresses,
        )?
        .unwrap_or_else(|| loopback_http(&core.issuer));
    http.metrics_token = src
        .env_file::<String>("metrics_token", file.metrics_token)?
        .filter(|t| !t.trim().is_empty())
        .map(|t| tessera_core::secret::SecretHash::of(t.trim()));
    // The bootstrap credential of the admin API: from the environment only, never a file.
    let admin_token = env::<String>("TESSERA_ADMIN_TOKEN")?;
    src.set(
        "admin_token",
        if admin_token.is_some() {
            Source::Env("TESSERA_ADMIN_TOKEN".into())
        } else {
            Source::Default
        },
    );
    http.admin_token = match admin_token {
        // The value of an admin token (as the command line's `--server` mode uses it) is no
        // bootstrap token: it is checked as the admin token it is, with its own scopes,
        // expiry and revocation, never promoted to `admin`.
        Some(t)
            if t.trim()
                .starts_with(tessera_core::admin::admin_tokens::TOKEN_PREFIX) =>
        {
            None
        }
        Some(t) if t.trim().len() < MIN_ADMIN_TOKEN => bail!(
            "TESSERA_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN} characters (make one with \
             `openssl rand -hex 32`)"
        ),
        Some(t) => Some(tessera_core::secret::SecretHash::of(t.trim())),
        None => None,
    };
    let max_connections = match src.env_file("max_connections", file.max_connections)? {
        Some(0) => bail!("max_connections must be at least 1"),
        v => v,
    };
    let header_read_timeout = match src.env_file("header_read_timeout", file.header_read_timeout)? {
        Some(0) => bail!("header_read_timeout must be at least 1 second"),
        v => Duration::from_secs(v.unwrap_or(DEFAULT_HEADER_READ_TIMEOUT)),
    };
    let max_header_size = src
        .env_file("max_header_size", file.max_header_size)?
        .unwrap_or(DEFAULT_MAX_HEADER_SIZE);
    if max_header_size < MIN_MAX_HEADER_SIZE {
        bail!("max_header_size must be at least {MIN_MAX_HEADER_SIZE} bytes");
    }
    let tls_cert = src.pick(
        "tls_cert_file",
        o.tls_cert.map(|v| (v, "--tls-cert", "TESSERA_TLS_CERT")),
        false,
        file.tls_cert_file,
    )?;
    let tls_key = src.pick(
        "tls_key_file",
        o.tls_key.map(|v| (v, "--tls-key", "TESSERA_TLS_KEY")),
        false,
        file.tls_key_file,
    )?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => bail!("a TLS certificate and its key go together (tls_cert_file and tls_key_file)"),
    };
    let change_retention = src
        .env_file("change_retention", file.change_retention)?
        .unwrap_or(DEFAULT_CHANGE_RETENTION);
    if change_retention < 1 {
        bail!("change_retention must be at least 1 second");
    }
    let ops_listen = src.pick(
        "ops_listen",
        o.ops_listen
            .map(|v| (v, "--ops-listen", "TESSERA_OPS_LISTEN")),
        false,
        file.ops_listen,
    )?;
    let admin_listen = src.pick(
        "admin_listen",
        o.admin_listen
            .map(|v| (v, "--admin-listen", "TESSERA_ADMIN_LISTEN")),
        true,
        file.admin_listen,
    )?;
    for (key, addr) in [("ops_listen", &ops_listen), ("admin_listen", &admin_listen)] {
        if let Some(addr) = addr {
            check_listen(key, addr)?;
        }
    }
    let database_url = src
        .pick(
            "database_url",
            o.database_url
                .map(|v| (v, "--database-url", "TESSERA_DATABASE_URL")),
            false,
            file.database_url,
        )?
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let database_pool_size =
        match src.env_file::<u32>("database_pool_size", file.database_pool_size)? {
            Some(0) => bail!("database_pool_size must be at least 1"),
            Some(n) => n,
            None => DEFAULT_DATABASE_POOL_SIZE,
        };
    let workers = src
        .env_file("workers", file.workers)?
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 0 {
        bail!("workers must be at least 1");
    }
    let secret_file = src.pick(
        "secret_file",
        o.secret_file
            .map(|v| (v, "--secret-file", "TESSERA_SECRET_FILE")),
        false,
        file.secret_file,
    )?;
    src.set(
        "secret",
        if std::env::var_os("TESSERA_SECRET").is_some_and(|v| !v.is_empty()) {
            Source::Env("TESSERA_SECRET".into())
        } else {
            src.map
                .get("secret_file")
                .cloned()
                .unwrap_or(Source::Default)
        },
    );
    let (mtls_ca_file, mtls_crl_file) = mtls_settings(
        src,
        &mut core,
        &mut http,
        MtlsFile {
            enabled: file.mtls_enabled,
            ca_file: file.mtls_ca_file,
            crl_file: file.mtls_crl_file,
            client_cert_header: file.mtls_client_cert_header,
            base_url: file.mtls_base_url,
        },
    )?;
    Ok(Settings {
        change_retention,
        ops_listen,
        admin_listen,
        tls,
        max_connections,
        header_read_timeout,
        max_header_size,
        listen,
        database_url,
        database_pool_size,
        json_logs,
        core,
        http,
        workers,
        sources: Default::default(),
        allow_insecure_http: allow_insecure,
        secret_file,
        mtls_ca_file,
        mtls_crl_file,
    })
}

/// The mutual TLS keys of the file.
struct MtlsFile {
    enabled: Option<bool>,
    ca_file: Option<PathBuf>,
    crl_file: Option<PathBuf>,
    client_cert_header: Option<String>,
    base_url: Option<String>,
}

/// The mutual TLS settings (RFC 8705): on or off, the certificate authorities of
/// `tls_client_auth` (read now: a file that cannot be read or holds no certificate fails the
/// start), the header a trusted proxy passes the client certificate in, and the base URL of
/// the endpoint aliases. Returns the authorities' file and their revocation lists' file
/// (read now too: a list that does not parse fails the start).
fn mtls_settings(
    src: &mut Sources,
    core: &mut Config,
    http: &mut HttpConfig,
    file: MtlsFile,
) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    core.mtls.enabled = src.env_file("mtls_enabled", file.enabled)?.unwrap_or(false);
    let ca_file = src.env_file("mtls_ca_file", file.ca_file)?;
    if let Some(path) = &ca_file {
        let anchors = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("mtls_ca_file: reading {}", path.display()))?
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("mtls_ca_file: parsing {}", path.display()))?;
        if anchors.is_empty() {
            bail!("mtls_ca_file: no certificate in {}", path.display());
        }
        core.mtls.trust_anchors = anchors.into();
    }
    let crl_file = src.env_file("mtls_crl_file", file.crl_file)?;
    if let Some(path) = &crl_file {
        if ca_file.is_none() {
            bail!("mtls_crl_file goes with mtls_ca_file (the lists are of its authorities)");
        }
        core.mtls.crls = tessera_core::config::CrlSet::new(read_crls(path)?);
    }
    if let Some(name) = src.env_file("mtls_client_cert_header", file.client_cert_header)? {
        let header = axum::http::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            anyhow::anyhow!("mtls_client_cert_header: '{name}' is not a header name")
        })?;
        http.mtls_client_cert_header = Some(header);
    }
    if let Some(url) = src.env_file("mtls_base_url", file.base_url)? {
        let url = url.trim().trim_end_matches('/').to_owned();
        tessera_core::config::Host::parse(&url, None)
            .map_err(|e| anyhow::anyhow!("mtls_base_url: {}", e.reason))?;
        core.mtls.base_url = Some(url);
    }
    let given =
        ca_file.is_some() || http.mtls_client_cert_header.is_some() || core.mtls.base_url.is_some();
    if given && !core.mtls.enabled {
        bail!(
            "mtls_ca_file, mtls_client_cert_header and mtls_base_url go with mtls_enabled = true"
        );
    }
    Ok((ca_file, crl_file))
}

/// The certificate revocation lists of `mtls_crl_file` (PEM `X509 CRL` blocks), parsed; an
/// error names the file and what is wrong with it.
pub fn read_crls(path: &std::path::Path) -> Result<Vec<tessera_core::mtls::Crl>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateRevocationListDer;
    let lists = CertificateRevocationListDer::pem_file_iter(path)
        .with_context(|| format!("mtls_crl_file: reading {}", path.display()))?
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("mtls_crl_file: parsing {}", path.display()))?;
    if lists.is_empty() {
        bail!("mtls_crl_file: no X509 CRL in {}", path.display());
    }
    tessera_core::mtls::parse_crls(&lists)
        .map_err(|e| anyhow::anyhow!("mtls_crl_file: {}: {e}", path.display()))
}

/// RFC 9700 §2.6 / RFC 6749 §10.9: TLS everywhere except loopback development.
/// Checks that a listen address is `HOST:PORT` (an IP address, `[IPv6]` or a host name, and
/// a port number), before the issuer is derived from it: `--listen 8082` is refused as what
/// it is, not as the issuer `http://8082` it would make.
fn check_listen(key: &str, addr: &str) -> Result<()> {
    let valid = addr.parse::<std::net::SocketAddr>().is_ok()
        || addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(['/', '[', ']', ':', ' '])
                && port.parse::<u16>().is_ok()
        });
    if !valid {
        bail!(
            "invalid listen address '{addr}' ({key}): expected HOST:PORT, e.g. \
             127.0.0.1:8082, 0.0.0.0:8082, [::]:8082 or localhost:8082"
        );
    }
    Ok(())
}

/// Whether `issuer` is a plain `http://` URL on a loopback host (development).
fn loopback_http(issuer: &str) -> bool {
    let Some(rest) = issuer.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_issuer(issuer: &str, allow_insecure: bool) -> Result<()> {
    if issuer.starts_with("https://") {
        return Ok(());
    }
    if !issuer.starts_with("http://") {
        bail!("issuer must be an http(s) URL, got '{issuer}'");
    }
    if loopback_http(issuer) || allow_insecure {
        Ok(())
    } else {
        bail!(
            "issuer '{issuer}' uses plain http on a non-loopback host; use https, or set \
             TESSERA_ALLOW_INSECURE_HTTP=true for development"
        )
    }
}

/// Checks the `[[hosts]]` entries: each an http(s) base URL (scheme, host, port; no path,
/// query or fragment), https unless loopback or `allow_insecure_http` (as the issuer), named
/// once, not the issuer's own host, with a valid environment name when bound to one.
fn resolve_hosts(entries: Vec<HostEntry>, issuer: &str, allow_insecure: bool) -> Result<Vec<Host>> {
    let issuer_authority = url_authority(issuer).to_ascii_lowercase();
    let default_port = if issuer.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    let issuer_authority = issuer_authority
        .strip_suffix(default_port)
        .unwrap_or(&issuer_authority);
    let mut hosts: Vec<Host> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let key = format!("hosts[{i}]");
        if let Some(env) = &entry.env {
            if !valid_env_name(env) {
                bail!("{key}.env '{env}' is not a valid environment name");
            }
        }
        let host = Host::parse(&entry.url, entry.env).with_context(|| format!("{key}.url"))?;
        check_issuer(&host.url, allow_insecure).with_context(|| format!("{key}.url"))?;
        let authority = host.authority();
        if authority == issuer_authority || host.url == issuer {
            bail!("{key}.url '{}' is the issuer's own host", host.url);
        }
        if hosts.iter().any(|h| h.authority() == authority) {
            bail!("{key}.url '{}' is listed twice", host.url);
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// What `config check` shows for a value that is set but secret.
pub const REDACTED: &str = "<redacted>";

impl Settings {
    /// The effective value of every setting, by file key in [`FileConfig::keys`] order, then
    /// `secret` and `admin_token` (environment only). Secrets are [`REDACTED`]: the sealing
    /// secret, the admin and metrics tokens, a database URL's password. Unset is `null`.
    pub fn effective(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::{json, Value};
        let path = |p: &Option<PathBuf>| json!(p.as_ref().map(|p| p.display().to_string()));
        let set = |on: bool| if on { json!(REDACTED) } else { Value::Null };
        let mut out = Vec::new();
        for &key in FileConfig::keys() {
            let (core, http) = (&self.core, &self.http);
            let value = match key {
                "listen" => json!(self.listen),
                "issuer" => json!(core.issuer),
                "hosts" => Value::Array(
                    core.hosts
                        .iter()
                        .map(|h| match &h.env {
                            Some(env) => json!({ "url": h.url, "env": env }),
                            None => json!({ "url": h.url }),
                        })
                        .collect(),
                ),
                "database_url" => json!(redact(&self.database_url)),
                "database_pool_size" => json!(self.database_pool_size),
                "purge_interval" => json!(http.purge_interval.as_secs()),
                "secret_file" => path(&self.secret_file),
                "log_format" => json!(if self.json_logs { "json" } else { "text" }),
                "cors_allowed_origins" => json!(http.cors_allowed_origins),
                "body_limit" => json!(http.body_limit),
                "request_timeout" => json!(http.request_timeout.as_secs()),
                "signing_alg" => json!(core.signing_alg.as_str()),
                "key_rotation_lead_time" => json!(core.key_rotation_lead_time),
                "key_rotation_interval" => json!(core.key_rotation_interval),
                "default_access_token_ttl" => json!(core.default_access_token_ttl),
                "max_access_token_ttl" => json!(core.max_access_token_ttl),
                "auth_failures_per_minute" => json!(http.auth_failures_per_minute),
                "trusted_proxies" => json!(http
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()),
                "allow_insecure_http" => json!(self.allow_insecure_http),
                "dynamic_registration" => json!(match core.dynamic_registration {
                    tessera_core::config::DynamicRegistration::Off => "off",
                    tessera_core::config::DynamicRegistration::Token => "token",
                    tessera_core::config::DynamicRegistration::Open => "open",
                }),
                "workers" => json!(self.workers),
                "ops_listen" => json!(self.ops_listen),
                "admin_listen" => json!(self.admin_listen),
                "tls_cert_file" => path(&self.tls.as_ref().map(|t| t.0.clone())),
                "tls_key_file" => path(&self.tls.as_ref().map(|t| t.1.clone())),
                "templates_dir" => path(&http.templates_dir),
                "session_ttl" => json!(core.session_ttl),
                "id_token_ttl" => json!(core.id_token_ttl),
                "par_ttl" => json!(core.par_ttl),
                "require_par" => json!(core.require_par),
                "mtls_enabled" => json!(core.mtls.enabled),
                "mtls_ca_file" => path(&self.mtls_ca_file),
                "mtls_crl_file" => path(&self.mtls_crl_file),
                "mtls_client_cert_header" => {
                    json!(http
                        .mtls_client_cert_header
                        .as_ref()
                        .map(ToString::to_string))
                }
                "mtls_base_url" => json!(core.mtls.base_url),
                "dpop_nonce" => json!(core.dpop_nonce),
                "dpop_proof_lifetime" => json!(core.dpop_proof_lifetime),
                "dpop_nonce_lifetime" => json!(core.dpop_nonce_lifetime),
                "login_failures_per_user" => json!(http.login_failures_per_user),
                "login_failures_per_address" => json!(http.login_failures_per_address),
                "login_lockout_window" => json!(http.login_lockout_window),
                "login_failures_per_device" => json!(http.login_failures_per_device),
                "device_cookie_ttl" => json!(http.device_cookie_ttl),
                "user_code_failures_per_address" => json!(http.user_code_failures_per_address),
                "device_codes_per_client_address" => json!(http.device_codes_per_client_address),
                "password_checks_concurrent" => json!(http.password_checks_concurrent),
                "password_checks_queued" => json!(http.password_checks_queued),
                "assertion_max_lifetime" => json!(core.assertion_max_lifetime),
                "assertion_leeway" => json!(core.assertion_leeway),
                "max_connections" => json!(self.max_connections),
                "header_read_timeout" => json!(self.header_read_timeout.as_secs()),
                "max_header_size" => json!(self.max_header_size),
                "metrics_token" => set(http.metrics_token.is_some()),
                "access_log" => json!(http.access_log),
                "backchannel_logout_retry_window" => json!(http.backchannel_logout_retry_window),
                "backchannel_logout_timeout" => json!(http.backchannel_logout_timeout.as_secs()),
                "backchannel_logout_max_queued" => json!(http.backchannel_logout_max_queued),
                "backchannel_logout_private_addresses" => {
                    json!(http.backchannel_logout_private_addresses)
                }
                "change_retention" => json!(self.change_retention),
                "audit_retention" => json!(core.audit_retention),
                "dialects" => json!(core
                    .dialects
                    .enabled()
                    .map(|d| d.name.clone())
                    .collect::<Vec<_>>()),
                // A key this match does not know yet: the unit test
                // `every_key_has_an_effective_value_and_a_source` fails on it.
                _ => json!("(unknown)"),
            };
            out.push((key, value));
        }
        let secret = match self.sources.get("secret") {
            Some(Source::Env(name)) if name == "TESSERA_SECRET" => json!(REDACTED),
            _ if self.secret_file.is_none() && default_key_file(&self.database_url).is_err() => {
                Value::Null
            }
            _ => json!(format!("{REDACTED} (from {})", self.secret_location())),
        };
        out.push(("secret", secret));
        out.push((
            "admin_token",
            set(self.sources.get("admin_token") != Some(&Source::Default)),
        ));
        out
    }
}

impl Settings {
    /// Where the sealing secret is read from, for messages: never the secret itself.
    pub fn secret_location(&self) -> String {
        if let Some(Source::Env(name)) = self.sources.get("secret") {
            if name == "TESSERA_SECRET" {
                return format!("the value of {name}");
            }
        }
        let path = match &self.secret_file {
            Some(p) => p.clone(),
            None => match default_key_file(&self.database_url) {
                Ok(p) => p,
                Err(_) => return "TESSERA_SECRET".to_owned(),
            },
        };
        if path.exists() {
            path.display().to_string()
        } else if self.secret_file.is_some() {
            format!("{}, which does not exist", path.display())
        } else {
            format!("{}, not made yet", path.display())
        }
    }

    /// The sealing key for signing keys at rest. Never creates the default key file (see
    /// [`Settings::sealer_for`]).
    pub fn sealer(&self) -> Result<Sealer> {
        self.sealer_inner(false)
    }

    /// The sealing key for a process that opened `store` and may write keys to it: the
    /// default key file is created only for a database that has no signing keys yet. A new
    /// secret for a database whose keys were sealed under another one would open none of them
    /// and seal new keys no server can open.
    pub async fn sealer_for(&self, store: &dyn tessera_core::store::Store) -> Result<Sealer> {
        let has_keys = !store.list_keys().await?.is_empty();
        if has_keys && env::<String>("TESSERA_SECRET")?.is_none() && self.secret_file.is_none() {
            let path = default_key_file(&self.database_url)?;
            if !path.exists() {
                bail!(
                    "the database already has signing keys, sealed under a secret this command \
                     was not given, and {} does not exist (it is not created for a database \
                     with keys): set TESSERA_SECRET or --secret-file to the servers' secret",
                    path.display()
                );
            }
        }
        self.sealer_inner(!has_keys)
    }

    fn sealer_inner(&self, may_create: bool) -> Result<Sealer> {
        if let Some(secret) = env::<String>("TESSERA_SECRET")? {
            return sealer_from("TESSERA_SECRET", &secret);
        }
        let path = match &self.secret_file {
            Some(p) => p.clone(),
            None => default_key_file(&self.database_url)?,
        };
        if may_create && !path.exists() && self.secret_file.is_none() {
            create_key_file(&path)?;
        }
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading the sealing secret from {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(&path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        "the sealing secret file can be read by other users; chmod 600 it"
                    );
                }
            }
        }
        let trimmed = String::from_utf8_lossy(&bytes).trim().to_owned();
        sealer_from(
            &format!("the sealing secret in {}", path.display()),
            &trimmed,
        )
    }
}

/// The sealer of a secret read from `source` (named in the error when it is too short).
pub fn sealer_from(source: &str, secret: &str) -> Result<Sealer> {
    if secret.len() < crate::sealing::MIN_SECRET_BYTES {
        bail!(crate::sealing::too_short(source, secret.len()));
    }
    Ok(Sealer::from_secret(secret.as_bytes())?)
}

/// `sqlite://./tessera.db` -> `./tessera.key`.
fn default_key_file(database_url: &str) -> Result<PathBuf> {
    let Some(path) = database_url.strip_prefix("sqlite://") else {
        bail!(
            "set TESSERA_SECRET (make one with `tessera secret generate`) or secret_file: \
             there is no default key file for this database"
        );
    };
    let path = path.split('?').next().unwrap_or(path);
    Ok(Path::new(path).with_extension("key"))
}

fn create_key_file(path: &Path) -> Result<()> {
    let secret = crate::sealing::generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(secret.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "created the key-sealing secret file");
            Ok(())
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example config at the repository's root.
    const EXAMPLE: &str = include_str!("../../../tessera.example.toml");

    /// A commented-out setting of the example: `key = value` or a table header.
    fn is_setting(line: &str) -> bool {
        line.starts_with('[')
            || line.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
    }

    /// The example with its commented-out settings switched on.
    fn example_uncommented() -> String {
        EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if is_setting(rest) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_example_config_names_every_setting_and_sets_only_defaults() {
        assert!(FileConfig::keys().len() >= 40, "{:?}", FileConfig::keys());
        let set: FileConfig = toml::from_str(EXAMPLE).expect("the example parses");
        let example = resolve(Overrides::default(), set).unwrap();
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(
            example.effective(),
            defaults.effective(),
            "a key set in tessera.example.toml is not at its default"
        );
        let all = example_uncommented();
        let table: toml::Table = toml::from_str(&all).expect("the uncommented example parses");
        for key in FileConfig::keys() {
            assert!(
                table.contains_key(*key),
                "setting {key} is missing from tessera.example.toml"
            );
        }
        let host = table["hosts"].as_array().unwrap()[0].as_table().unwrap();
        for key in HostEntry::keys() {
            assert!(host.contains_key(*key), "[[hosts]] {key} is missing");
        }
        // Nothing else: the loader refuses a key it does not know, and takes all of these.
        toml::from_str::<FileConfig>(&all).expect("every key of the example is known");
        let unknown = toml::from_str::<FileConfig>(&format!("{EXAMPLE}\nlisten_address = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("unknown field `listen_address`"),
            "{unknown}"
        );
    }

    #[test]
    fn every_key_has_an_effective_value_and_a_source() {
        let s = resolve(Overrides::default(), FileConfig::default()).unwrap();
        let effective = s.effective();
        let keys: Vec<&str> = effective.iter().map(|(k, _)| *k).collect();
        let mut expected = FileConfig::keys().to_vec();
        expected.extend(["secret", "admin_token"]);
        assert_eq!(keys, expected);
        for (key, value) in &effective {
            assert_ne!(value, &serde_json::json!("(unknown)"), "{key}");
            assert_eq!(s.sources.get(key), Some(&Source::Default), "{key}");
        }
    }

    #[test]
    fn sources_are_recorded_and_named_by_errors() {
        let file = FileConfig {
            body_limit: Some(1000),
            metrics_token: Some("do-not-show-me".into()),
            database_url: Some("postgres://u:hunter2@db/t".into()),
            path: Some(PathBuf::from("conf/t.toml")),
            ..Default::default()
        };
        let s = resolve(
            Overrides {
                listen: Some("127.0.0.1:9100".into()),
                ..Default::default()
            },
            file,
        )
        .unwrap();
        let file_source = Source::File(Some(PathBuf::from("conf/t.toml")));
        assert_eq!(s.sources["body_limit"], file_source);
        assert_eq!(s.sources["listen"], Source::Flag("--listen".into()));
        assert_eq!(s.sources["issuer"], Source::Default);
        let shown = serde_json::to_string(&s.effective()).unwrap();
        assert!(
            !shown.contains("do-not-show-me") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("postgres://u:***@db/t"), "{shown}");
        let file = FileConfig {
            key_rotation_lead_time: Some(700),
            key_rotation_interval: Some(650),
            path: Some(PathBuf::from("t.toml")),
            ..Default::default()
        };
        let e = resolve(Overrides::default(), file).unwrap_err().to_string();
        assert!(
            e.contains("key_rotation_interval set by file t.toml")
                && e.contains("key_rotation_lead_time set by file t.toml"),
            "{e}"
        );
        let file = FileConfig {
            purge_interval: Some(0),
            ..Default::default()
        };
        let e = resolve(Overrides::default(), file).unwrap_err().to_string();
        assert_eq!(e, "purge_interval must be at least 1 second (set by file)");
        assert!(names_key(
            "a key_rotation_interval b",
            "key_rotation_interval"
        ));
        assert!(!names_key(
            "TESSERA_KEY_ROTATION_INTERVAL",
            "key_rotation_interval"
        ));
        assert!(!names_key(
            "key_rotation_interval_x",
            "key_rotation_interval"
        ));
    }

    #[test]
    fn plain_http_issuer_only_on_loopback() {
        assert!(check_issuer("http://127.0.0.1:8080", false).is_ok());
        assert!(check_issuer("http://localhost:8080/", false).is_ok());
        assert!(check_issuer("https://auth.example.com", false).is_ok());
        assert!(check_issuer("http://auth.example.com", false).is_err());
        assert!(check_issuer("http://auth.example.com", true).is_ok());
        assert!(check_issuer("ftp://x", true).is_err());
    }

    #[test]
    fn a_listen_address_is_host_and_port_and_a_bare_port_is_named_as_such() {
        for good in ["127.0.0.1:8082", "[::]:8082", "0.0.0.0:0", "localhost:8082"] {
            assert!(check_listen("listen", good).is_ok(), "{good}");
        }
        for bad in [
            "8082",
            ":8082",
            "localhost",
            "127.0.0.1:99999",
            "http://x:1",
            "::1:80",
        ] {
            let err = check_listen("listen", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid listen address"), "{bad}: {err}");
            assert!(err.contains("127.0.0.1:8082"), "{err}");
        }
        let err = resolve(
            Overrides {
                listen: Some("8082".into()),
                ..Default::default()
            },
            FileConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid listen address '8082'"), "{err}");
        assert!(!err.contains("issuer"), "{err}");
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let file = FileConfig {
            listen: Some("127.0.0.1:9000".into()),
            issuer: Some("http://127.0.0.1:9000".into()),
            ..Default::default()
        };
        let s = resolve(
            Overrides {
                listen: Some("127.0.0.1:9100".into()),
                ..Default::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9100");
        assert_eq!(s.core.issuer, "http://127.0.0.1:9000");
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn assertion_limits_come_from_the_file_and_are_checked() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.core.assertion_max_lifetime, 3600);
        assert_eq!(defaults.core.assertion_leeway, 60);
        let file = FileConfig {
            assertion_max_lifetime: Some(600),
            assertion_leeway: Some(5),
            ..Default::default()
        };
        let s = resolve(
            Overrides {
                assertion_leeway: Some(10),
                ..Default::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(s.core.assertion_max_lifetime, 600);
        assert_eq!(s.core.assertion_leeway, 10, "the flag wins");
        for (max, leeway) in [(0, 60), (3600, -1), (3600, 601)] {
            let file = FileConfig {
                assertion_max_lifetime: Some(max),
                assertion_leeway: Some(leeway),
                ..Default::default()
            };
            assert!(
                resolve(Overrides::default(), file).is_err(),
                "{max} {leeway}"
            );
        }
    }

    #[test]
    fn back_channel_logout_timings_bounds_and_private_targets() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        let h = &defaults.http;
        assert_eq!(
            (
                h.backchannel_logout_retry_window,
                h.backchannel_logout_timeout,
                h.backchannel_logout_max_queued
            ),
            (600, Duration::from_secs(5), 10_000)
        );
        // The default issuer is on loopback (development): private targets allowed.
        assert!(h.backchannel_logout_private_addresses);
        let public: FileConfig = toml::from_str("issuer = \"https://auth.example.com\"").unwrap();
        let s = resolve(Overrides::default(), public).unwrap();
        assert!(!s.http.backchannel_logout_private_addresses);
        let set: FileConfig = toml::from_str(
            "backchannel_logout_retry_window = 60\nbackchannel_logout_timeout = 2\n\
             backchannel_logout_max_queued = 500\nbackchannel_logout_private_addresses = false",
        )
        .unwrap();
        let s = resolve(Overrides::default(), set).unwrap();
        assert_eq!(
            (
                s.http.backchannel_logout_retry_window,
                s.http.backchannel_logout_timeout,
                s.http.backchannel_logout_max_queued,
                s.http.backchannel_logout_private_addresses
            ),
            (60, Duration::from_secs(2), 500, false)
        );
        for bad in [
            "backchannel_logout_retry_window = 5",
            "backchannel_logout_retry_window = 86401",
            "backchannel_logout_timeout = 0",
            "backchannel_logout_timeout = 61",
            "backchannel_logout_max_queued = 99",
            "backchannel_logout_max_queued = 1000001",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(resolve(Overrides::default(), file).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_access_log_is_off_unless_turned_on() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert!(!defaults.http.access_log);
        let file: FileConfig = toml::from_str("access_log = true").unwrap();
        assert!(resolve(Overrides::default(), file).unwrap().http.access_log);
        assert!(toml::from_str::<FileConfig>("access_log = \"yes\"").is_err());
    }

    #[test]
    fn connection_limits_and_the_metrics_token_are_checked() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.max_connections, None);
        assert_eq!(
            defaults.header_read_timeout,
            Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT)
        );
        assert_eq!(defaults.max_header_size, DEFAULT_MAX_HEADER_SIZE);
        assert!(defaults.http.metrics_token.is_none());
        let file = FileConfig {
            max_connections: Some(500),
            header_read_timeout: Some(3),
            max_header_size: Some(32 * 1024),
            metrics_token: Some("scrape-me".into()),
            ..Default::default()
        };
        let s = resolve(Overrides::default(), file).unwrap();
        assert_eq!(s.max_connections, Some(500));
        assert_eq!(s.header_read_timeout, Duration::from_secs(3));
        assert_eq!(s.max_header_size, 32 * 1024);
        assert!(s
            .http
            .metrics_token
            .as_ref()
            .is_some_and(|h| h.ct_eq(&tessera_core::secret::SecretHash::of("scrape-me"))));
        for file in [
            FileConfig {
                max_connections: Some(0),
                ..Default::default()
            },
            FileConfig {
                header_read_timeout: Some(0),
                ..Default::default()
            },
            FileConfig {
                max_header_size: Some(4096),
                ..Default::default()
            },
        ] {
            assert!(resolve(Overrides::default(), file).is_err());
        }
    }

    #[test]
    fn audit_retention_is_90_days_unless_set_with_a_unit_or_in_seconds() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.core.audit_retention, 90 * 86_400);
        let with = |v: DurationValue| {
            resolve(
                Overrides::default(),
                FileConfig {
                    audit_retention: Some(v),
                    ..FileConfig::default()
                },
            )
        };
        assert_eq!(
            with(DurationValue::Text("7d".into()))
                .unwrap()
                .core
                .audit_retention,
            7 * 86_400
        );
        assert_eq!(
            with(DurationValue::Text("12h".into()))
                .unwrap()
                .core
                .audit_retention,
            12 * 3600
        );
        assert_eq!(
            with(DurationValue::Seconds(30))
                .unwrap()
                .core
                .audit_retention,
            30
        );
        for bad in ["", "d", "7w", "-1d", "1.5d", "99999999999999999999d", "0d"] {
            let err = with(DurationValue::Text(bad.into()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("audit_retention"), "{bad}: {err}");
        }
        assert!(with(DurationValue::Seconds(0)).is_err());
        let parsed: FileConfig = toml::from_str("audit_retention = \"30d\"").unwrap();
        assert!(matches!(parsed.audit_retention, Some(DurationValue::Text(ref t)) if t == "30d"));
        let parsed: FileConfig = toml::from_str("audit_retention = 60").unwrap();
        assert!(matches!(
            parsed.audit_retention,
            Some(DurationValue::Seconds(60))
        ));
    }

    #[test]
    fn change_retention_comes_from_the_file_and_is_checked() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(defaults.change_retention, DEFAULT_CHANGE_RETENTION);
        let file = FileConfig {
            change_retention: Some(120),
            ..Default::default()
        };
        assert_eq!(
            resolve(Overrides::default(), file)
                .unwrap()
                .change_retention,
            120
        );
        let file = FileConfig {
            change_retention: Some(0),
            ..Default::default()
        };
        assert!(resolve(Overrides::default(), file).is_err());
    }

    fn hosts_from(toml_text: &str) -> Result<Settings> {
        let file: FileConfig = toml::from_str(toml_text)?;
        resolve(Overrides::default(), file)
    }

    #[test]
    fn hosts_are_read_normalised_and_bound_to_environments() {
        let s = hosts_from(
            r#"
            issuer = "https://auth.example.com"
            [[hosts]]
            url = "https://API.boltcompany.com/"
            env = "prod"
            [[hosts]]
            url = "https://eu.example.com:443"
            [[hosts]]
            url = "http://localhost:9000"
            "#,
        )
        .unwrap();
        assert_eq!(s.core.issuer, "https://auth.example.com");
        let urls: Vec<&str> = s.core.hosts.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://api.boltcompany.com",
                "https://eu.example.com",
                "http://localhost:9000"
            ]
        );
        assert_eq!(s.core.hosts[0].env.as_deref(), Some("prod"));
        assert_eq!(s.core.hosts[1].env, None);
        assert_eq!(s.core.issuers.len(), 4);
        assert!(s.core.accepts_issuer("https://eu.example.com"));
        let none = resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert!(none.core.hosts.is_empty());
        assert_eq!(none.core.issuers.len(), 1);
    }

    #[test]
    fn bad_hosts_are_start_up_errors_naming_the_entry() {
        let issuer = "issuer = \"https://auth.example.com\"\n";
        for (entries, says) in [
            ("[[hosts]]\nurl = \"api.example.com\"", "hosts[0].url"),
            ("[[hosts]]\nurl = \"https://api.example.com/oauth2\"", "hosts[0].url"),
            ("[[hosts]]\nurl = \"https://api.example.com?a=b\"", "hosts[0].url"),
            ("[[hosts]]\nurl = \"https://api.example.com#x\"", "hosts[0].url"),
            ("[[hosts]]\nurl = \"http://api.example.com\"", "hosts[0].url"),
            ("[[hosts]]\nurl = \"https://AUTH.example.com:443\"", "issuer's own host"),
            ("[[hosts]]\nurl = \"http://auth.example.com\"", "hosts[0].url"),
            (
                "[[hosts]]\nurl = \"https://a.example.com\"\n[[hosts]]\nurl = \"https://A.example.com/\"",
                "hosts[1].url",
            ),
            ("[[hosts]]\nurl = \"https://a.example.com\"\nenv = \"Bad Env\"", "hosts[0].env"),
        ] {
            let err = hosts_from(&format!("{issuer}{entries}")).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{entries}: {err:#}");
        }
        // An unknown key in an entry is refused by the parser.
        assert!(hosts_from(&format!(
            "{issuer}[[hosts]]\nurl = \"https://a.example.com\"\nenvironment = \"x\""
        ))
        .is_err());
        // Plain http off loopback only with allow_insecure_http.
        let s = hosts_from(&format!(
            "{issuer}allow_insecure_http = true\n[[hosts]]\nurl = \"http://api.example.com\""
        ))
        .unwrap();
        assert_eq!(s.core.hosts[0].url, "http://api.example.com");
    }

    #[test]
    fn key_file_sits_beside_the_database() {
        assert_eq!(
            default_key_file("sqlite://./data/t.db").unwrap(),
            PathBuf::from("./data/t.key")
        );
        assert!(default_key_file("postgres://x").is_err());
    }

    #[test]
    fn dialects_come_from_the_file_over_the_presets_and_bad_keys_are_named() {
        let defaults = resolve(Overrides::default(), FileConfig::default()).unwrap();
        let on: Vec<&str> = defaults
            .core
            .dialects
            .enabled()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(on, ["anyflow"]);
        let file: FileConfig = toml::from_str(
            r#"
[dialects.workfront]
enabled = true
paths = { authorize = ["/integrations/oauth2/authorize"], token = ["/integrations/oauth2/api/v1/token"] }
standard_paths = false
token_type = "sessionID"
response_fields = ["wid"]
token_headers = ["sessionID"]
redirect_params = { domain = "myorganization", lane = "my" }
code_ttl = 120
access_token_ttl = 3600
refresh_token_ttl = 2592000
refresh_tokens = "offline_access"
request_styles = ["form", "json"]
carry_params = []

[dialects.workfront.clients."CLIENT_ID"]
redirect_params = { lane = "preview" }

[dialects.anyflow]
paths = { sdk_token = ["/sdk/token"] }
sdk = { assertion = "jwt", env = "env", ttl = 300, single_use_ttl = 600, audience = "optional" }
"#,
        )
        .unwrap();
        let s = resolve(Overrides::default(), file).unwrap();
        let wf = s.core.dialects.get("workfront").unwrap();
        assert_eq!(wf.redirect_params_for("CLIENT_ID")[1].1, "preview");
        assert!(s.core.dialects.by_path("/sdk/token").is_some());
        for (text, key) in [
            ("[dialects.workfrnt]\n", "dialects.workfrnt"),
            (
                "[dialects.workfront]\nrequest_styles = [\"xml\"]\n",
                "dialects.workfront.request_styles",
            ),
            (
                "[dialects.vantage]\n[dialects.workfront]\nstandard_paths = true\n",
                "dialects.workfront.standard_paths",
            ),
        ] {
            let file: FileConfig = toml::from_str(text).unwrap();
            let e = resolve(Overrides::default(), file).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let unknown = toml::from_str::<FileConfig>("[dialects.workfront]\ntoken_typ = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("token_typ"), "{unknown}");
    }
}
