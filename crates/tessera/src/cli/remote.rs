//! The management commands against a running server: `--server URL` (`TESSERA_SERVER`).
//!
//! Owns the admin API's client side: the credential (`--admin-token-file FILE`, whose first
//! line is the token, or else `TESSERA_ADMIN_TOKEN`), the requests (JSON bodies, the token as
//! `Authorization: Bearer`, RFC 6750 §2.1), and turning an answer into what the command
//! prints. The server runs the same application layer ([`tessera_core::admin`]) as a command
//! run against the database, so a command prints the same lines and exits with the same code
//! either way; an error is the server's own `error_description`, and a refused credential
//! (401) or a missing scope (403) fails the command with it.
//!
//! Covered: `client` (but not PEM key files at `client create`: the API takes a JWK Set
//! there), `user`, `trust`, `idp`, `keys list`, `keys rotate`, `admin-token`, `env`,
//! `token` and `audit`. `keys reseal`, `purge` and `migrate` work on the database itself
//! and say so. Key files are read here and sent as the API takes them (`trust add`,
//! `trust set-keys` and `client set-keys` take PEM keys too); a password
//! (`--password-stdin`) or an upstream client secret (`--client-secret-stdin`) is read
//! from standard input and sent in the JSON body only, never printed.
//!
//! Nothing here reads the database or the sealing secret, and the admin token is never
//! printed.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use tessera_core::admin::clients::{ClientSettings, ClientSpec};
use tessera_core::admin::public_keys::{KeyDocument, PublicKeys};
use tessera_core::environment::DEFAULT_ENV;

use super::{admin_token, client, env, idp, keys, print_json, token, trust, user};
use crate::Command;

/// Longest a request may take before the command gives up.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Longest answer read from the server.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A running server's admin API and the credential to call it with.
pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Remote").field("base", &self.base).finish()
    }
}

impl Remote {
    /// The admin API of the server at `server` (its admin listener's base URL, with or
    /// without `/admin`), with the token of `token_file`, else of `TESSERA_ADMIN_TOKEN`.
    pub fn new(server: &str, token_file: Option<&Path>) -> Result<Remote> {
        let url = reqwest::Url::parse(server).with_context(|| {
            format!("--server must be a URL such as http://127.0.0.1:9090, not '{server}'")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            bail!("--server must be an http:// or https:// URL, not '{server}'");
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("--server must have no query or fragment");
        }
        let base = url.as_str().trim_end_matches('/');
        let base = base.strip_suffix("/admin").unwrap_or(base).to_owned();
        let token = match token_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the admin token file {}", file.display()))?;
                text.lines().next().unwrap_or_default().trim().to_owned()
            }
            None => std::env::var("TESSERA_ADMIN_TOKEN")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        if token.is_empty() {
            bail!(
                "--server needs an admin token: set TESSERA_ADMIN_TOKEN or pass \
                 --admin-token-file FILE"
            );
        }
        if token.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            bail!("the admin token must be printable ASCII without spaces");
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("making the HTTP client")?;
        Ok(Remote { base, token, http })
    }

    /// `GET /admin{path}`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// `POST /admin{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PATCH /admin{path}` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE /admin{path}`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.call(Method::DELETE, path, None).await
    }

    /// One request; the answer's JSON (`null` for an empty one), or the server's error.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}/admin{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("calling the admin API at {}", self.base))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {method} {path}"))?;
        if bytes.len() > MAX_ANSWER {
            bail!("the answer to {method} {path} is too large");
        }
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(value);
        }
        bail!("{}", error_message(status, &value))
    }
}

/// Whether `--server` applies to a command: the management commands. `serve`, `jwt`,
/// `secret`, `config` and `completions` do not manage a server and ignore it.
pub fn applies(command: &Command) -> bool {
    !matches!(
        command,
        Command::Serve(_)
            | Command::Jwt(_)
            | Command::Secret(_)
            | Command::Config(_)
            | Command::Completions(_)
    )
}

/// Runs a management command through the admin API.
pub async fn run(command: Command, api: &Remote) -> Result<()> {
    match command {
        Command::Client(cmd) => client(*cmd, api).await,
        Command::AdminToken(cmd) => admin_token(cmd, api).await,
        Command::Token(cmd) => token(cmd, api).await,
        Command::Env(cmd) => env(cmd, api).await,
        Command::User(cmd) => user(cmd, api).await,
        Command::Trust(cmd) => trust(cmd, api).await,
        Command::Idp(cmd) => idp(cmd, api).await,
        Command::Keys(cmd) => keys(cmd, api).await,
        Command::Audit(args) => {
            super::audit_log::run_remote(args, |path| async move { api.get(&path).await }).await
        }
        other => bail!(
            "`tessera {}` does not work with --server: it works on the database itself, so \
             run it where the server's database is",
            name(&other)
        ),
    }
}

/// The command's name, for messages.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Serve(_) => "serve",
        Command::Client(_) => "client",
        Command::Keys(_) => "keys",
        Command::Token(_) => "token",
        Command::User(_) => "user",
        Command::Trust(_) => "trust",
        Command::Env(_) => "env",
        Command::Idp(_) => "idp",
        Command::Jwt(_) => "jwt",
        Command::AdminToken(_) => "admin-token",
        Command::Audit(_) => "audit",
        Command::Purge(_) => "purge",
        Command::Backup(_) => "backup",
        Command::Restore(_) => "restore",
        Command::Config(_) => "config",
        Command::Migrate(_) => "migrate",
        Command::Secret(_) => "secret",
        Command::Completions(_) => "completions",
    }
}

/// Puts `value` under `key` when it is given.
fn put<T: serde::Serialize>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), json!(v));
    }
}

/// The JSON of client settings, as the admin API reads them (the core's field names).
fn settings_json(s: ClientSettings, map: &mut Map<String, Value>) {
    put(map, "grant_types", s.grant_types);
    put(map, "redirect_uris", s.redirect_uris);
    put(map, "scope", s.scope);
    put(map, "audiences", s.audiences);
    put(map, "access_token_format", s.access_token_format);
    put(map, "access_token_ttl", s.access_token_ttl);
    put(map, "refresh_tokens", s.refresh_tokens);
    put(map, "refresh_token_ttl", s.refresh_token_ttl);
    put(map, "refresh_token_idle_ttl", s.refresh_token_idle_ttl);
    put(map, "refresh_grace_period", s.refresh_grace_period);
    put(map, "code_ttl", s.code_ttl);
    put(map, "require_pkce", s.require_pkce);
    put(map, "allow_plain_pkce", s.allow_plain_pkce);
    put(
        map,
        "post_logout_redirect_uris",
        s.post_logout_redirect_uris,
    );
    put(map, "skip_consent", s.skip_consent);
    put(
        map,
        "require_pushed_authorization_requests",
        s.require_pushed_authorization_requests,
    );
    put(map, "dpop_bound_access_tokens", s.dpop_bound_access_tokens);
    put(map, "single_use_tokens", s.single_use_tokens);
    put(map, "backchannel_logout_uri", s.backchannel_logout_uri);
    put(
        map,
        "backchannel_logout_session_required",
        s.backchannel_logout_session_required,
    );
    put(map, "token_exchange_audiences", s.token_exchange_audiences);
}

/// The JWK Set of a `private_key_jwt` client, from its key files: the admin API takes a
/// JWK Set (RFC 7517 §5) only, so PEM keys are refused here with what to do instead.
fn jwks_json(keys: PublicKeys) -> Result<Option<Value>> {
    if !keys.pems.is_empty() {
        bail!(
            "--public-key (PEM) does not work with --server: give the keys as a JWK Set \
             with --jwks-file, or run the command where the server's database is"
        );
    }
    keys.jwks
        .map(|d: KeyDocument| {
            serde_json::from_str(&d.text).with_context(|| {
                format!(
                    "{} is not JSON",
                    d.source.as_deref().unwrap_or("the JWK Set")
                )
            })
        })
        .transpose()
}

/// A string field of an answer.
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The `kid`s of an answer on one line, as [`super::client::registration::kids_line`]
/// prints them.
fn kids_line(v: &Value) -> Option<String> {
    let kids = v.get("kids")?.as_array()?;
    Some(
        kids.iter()
            .map(|k| k.as_str().unwrap_or("(none)").to_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Every client, following the pages of the list.
async fn all_clients(api: &Remote) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut path = "/clients?limit=200".to_owned();
    loop {
        let page = api.get(&path).await?;
        let (items, next) = match &page {
            Value::Array(items) => (items.clone(), None),
            Value::Object(o) => (
                o.get("items")
                    .or_else(|| o.get("clients"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                o.get("next_cursor")
                    .or_else(|| o.get("next"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
            _ => bail!("the admin API answered the client list with something else"),
        };
        out.extend(items);
        match next {
            Some(cursor) if !cursor.is_empty() => {
                path = format!("/clients?limit=200&cursor={}", seg(&cursor));
            }
            _ => return Ok(out),
        }
    }
}

/// `tessera client ...` through the admin API, printing what the database form prints.
async fn client(cmd: client::Command, api: &Remote) -> Result<()> {
    use client::Command as C;
    match cmd {
        C::Create {
            name,
            env,
            registration,
            public,
            token_endpoint_auth_method,
            keys,
            client_id,
            secret_hash_stdin,
            json,
            output,
        } => {
            let env_output = output.wanted()?;
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("env".into(), json!(env));
            if public {
                body.insert("public".into(), json!(true));
            }
            body.insert(
                "token_endpoint_auth_method".into(),
                json!(token_endpoint_auth_method),
            );
            put(&mut body, "jwks", jwks_json(keys.read()?)?);
            put(&mut body, "client_id", client_id);
            if secret_hash_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                body.insert("secret_hash".into(), json!(line.trim()));
            }
            settings_json(registration.settings(), &mut body);
            let made = api
                .post("/clients", &Value::Object(body))
                .await
                .map_err(flag_named)?;
            let id = text(&made, "client_id");
            let secret = made.get("client_secret").and_then(Value::as_str);
            if env_output {
                output.print(id, secret);
            } else if json {
                let mut out = Map::new();
                out.insert("client_id".into(), json!(id));
                out.insert("client_secret".into(), json!(secret));
                if let Some(k) = made.get("kids") {
                    out.insert("kids".into(), k.clone());
                }
                print_json(&Value::Object(out));
            } else {
                println!("client_id:     {id}");
                let public = made.get("public").and_then(Value::as_bool) == Some(true)
                    || text(&made, "token_endpoint_auth_method") == "none";
                let jwt = text(&made, "token_endpoint_auth_method") == "private_key_jwt";
                match secret {
                    Some(s) => {
                        println!("client_secret: {s}");
                        println!("(the secret is shown this once; only its hash is stored)");
                    }
                    None if public => println!("public client: no secret"),
                    None if !jwt => println!("client_secret: (imported: the client keeps its own)"),
                    None => println!("private_key_jwt client: authenticates with signed JWTs"),
                }
                if let Some(k) = kids_line(&made) {
                    println!("key ids (kid): {k}");
                }
            }
        }
        C::Import { file, json } => import(&file, json, api).await?,
        C::Update {
            client_id,
            name,
            registration,
            json,
        } => {
            let mut body = Map::new();
            put(&mut body, "name", name);
            settings_json(registration.settings(), &mut body);
            let updated = api
                .patch(
                    &format!("/clients/{}", seg(&client_id)),
                    &Value::Object(body),
                )
                .await
                .map_err(flag_named)?;
            if json {
                print_json(&updated);
            } else {
                println!("updated client {client_id}");
            }
        }
        C::RotateSecret {
            client_id,
            keep_old_secret_for,
            json,
            output,
        } => {
            let env_output = output.wanted()?;
            let mut body = Map::new();
            put(&mut body, "keep_old_secret_for", keep_old_secret_for);
            let rotated = api
                .post(
                    &format!("/clients/{}/secret", seg(&client_id)),
                    &Value::Object(body),
                )
                .await
                .map_err(flag_named)?;
            let secret = text(&rotated, "client_secret");
            if env_output {
                output.print(&client_id, Some(secret));
            } else if json {
                print_json(&json!({"client_id": client_id, "client_secret": secret}));
            } else {
                println!("client_id:     {client_id}");
                println!("client_secret: {secret}");
                match rotated
                    .get("old_secret_valid_until")
                    .and_then(Value::as_i64)
                {
                    Some(u) => println!("the old secret stays valid until {}", crate::cli::time(u)),
                    None => println!("the old secret no longer works; earlier tokens are revoked"),
                }
            }
        }
        C::SetKeys {
            client_id,
            keys,
            json,
        } => {
            let mut body = Map::new();
            key_fields(keys.read()?, &mut body);
            let done = api
                .call(
                    Method::PUT,
                    &format!("/clients/{}/keys", seg(&client_id)),
                    Some(&Value::Object(body)),
                )
                .await
                .map_err(flag_named)?;
            if json {
                print_json(&done);
            } else {
                println!("replaced the public keys of client {client_id}");
                println!("key ids (kid): {}", kids_line(&done).unwrap_or_default());
            }
        }
        C::RevokeTokens { client_id, json } => {
            api.post(
                &format!("/clients/{}/revoke-tokens", seg(&client_id)),
                &json!({}),
            )
            .await?;
            if json {
                print_json(&json!({"client_id": client_id, "tokens_revoked": true}));
            } else {
                println!("every token issued to {client_id} until now is revoked");
            }
        }
        C::List { json } => {
            let clients = all_clients(api).await?;
            if json {
                print_json(&Value::Array(clients));
            } else {
                for c in &clients {
                    let grants: Vec<&str> = c
                        .get("grant_types")
                        .and_then(Value::as_array)
                        .map(|g| g.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    println!(
                        "{}  {}  [{}]  {}",
                        text(c, "client_id"),
                        text(c, "name"),
                        grants.join(","),
                        text(c, "access_token_format")
                    );
                }
            }
        }
        C::Show { client_id, json } => {
            let c = api.get(&format!("/clients/{}", seg(&client_id))).await?;
            if json {
                print_json(&c);
            } else {
                super::print_readable(&c);
            }
        }
        C::Delete { client_id, json } => {
            api.delete(&format!("/clients/{}", seg(&client_id))).await?;
            if json {
                print_json(&json!({"client_id": client_id, "deleted": true}));
            } else {
                println!("deleted client {client_id}; its tokens are no longer valid");
            }
        }
    }
    Ok(())
}

/// `tessera admin-token ...` through the admin API (which takes the scope `admin`).
async fn admin_token(cmd: admin_token::Command, api: &Remote) -> Result<()> {
    use admin_token::Command as C;
    match cmd {
        C::Create {
            name,
            scopes,
            expires_in,
            json,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("scopes".into(), json!(scopes));
            put(&mut body, "expires_in", expires_in);
            let mut made = api
                .post("/admin-tokens", &Value::Object(body))
                .await
                .map_err(flag_named)?;
            let value = text(&made, "value").to_owned();
            if json {
                if let Some(o) = made.as_object_mut() {
                    o.remove("value");
                    o.insert("token".into(), json!(value));
                }
                print_json(&made);
            } else {
                println!(
                    "admin token {} ({}), scopes: {}",
                    text(&made, "id"),
                    text(&made, "name"),
                    strings(&made, "scopes").join(" ")
                );
                println!("token (shown once): {value}");
            }
        }
        C::List { json } => {
            let list = api.get("/admin-tokens").await?;
            let items = list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if json {
                print_json(&Value::Array(items));
            } else {
                let t = super::now();
                for r in &items {
                    let state = if r.get("revoked_at").is_some_and(|v| !v.is_null()) {
                        "revoked"
                    } else if r
                        .get("expires_at")
                        .and_then(Value::as_i64)
                        .is_some_and(|e| e <= t)
                    {
                        "expired"
                    } else {
                        "active"
                    };
                    let until = r
                        .get("expires_at")
                        .and_then(Value::as_i64)
                        .map(|e| format!("  expires {}", super::time(e)))
                        .unwrap_or_default();
                    println!(
                        "{}  {}  {}  [{state}]{until}",
                        text(r, "id"),
                        text(r, "name"),
                        strings(r, "scopes").join(" ")
                    );
                }
            }
        }
        C::Revoke { id, json } => {
            api.delete(&format!("/admin-tokens/{}", seg(&id))).await?;
            if json {
                print_json(&json!({"id": id, "revoked": true}));
            } else {
                println!("revoked admin token {id}");
            }
        }
    }
    Ok(())
}

/// `tessera token ...` through the admin API.
async fn token(cmd: token::Command, api: &Remote) -> Result<()> {
    use token::Command as C;
    match cmd {
        C::Introspect { token, json } => {
            let out = api
                .post("/tokens/introspect", &json!({"token": token}))
                .await?;
            if json {
                print_json(&out);
            } else {
                crate::cli::print_readable(&out);
            }
        }
        C::Revoke { token, json } => {
            let out = api.post("/tokens/revoke", &json!({"token": token})).await?;
            let revoked = out.get("revoked").and_then(Value::as_bool) == Some(true);
            if json {
                print_json(&json!({"revoked": revoked}));
            } else if revoked {
                println!("revoked; every server honours it within a second");
            } else {
                println!("the token was not active; nothing to revoke");
            }
        }
    }
    Ok(())
}

/// `tessera env ...` through the admin API.
async fn env(cmd: env::Command, api: &Remote) -> Result<()> {
    use env::Command as C;
    let show = |e: &Value, json: bool| {
        if json {
            print_json(e);
        } else {
            let once = e.get("single_use_tokens").and_then(Value::as_bool) == Some(true);
            println!(
                "environment {}{}",
                text(e, "name"),
                if once { " (single-use tokens)" } else { "" }
            );
        }
    };
    match cmd {
        C::Create { name, json } => {
            let e = api.post("/envs", &json!({"name": name})).await?;
            show(&e, json);
        }
        C::Set {
            name,
            single_use_tokens,
            json,
        } => {
            let mut body = Map::new();
            put(&mut body, "single_use_tokens", single_use_tokens);
            let e = api
                .patch(&format!("/envs/{}", seg(&name)), &Value::Object(body))
                .await
                .map_err(flag_named)?;
            show(&e, json);
        }
        C::List { json } => {
            let list = api.get("/envs").await?;
            let items = match list {
                Value::Array(items) => items,
                other => other
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
            if json {
                print_json(&Value::Array(items));
            } else {
                for e in &items {
                    let once = if e.get("single_use_tokens").and_then(Value::as_bool) == Some(true)
                    {
                        "  single-use tokens"
                    } else {
                        ""
                    };
                    println!("{}{once}", text(e, "name"));
                }
            }
        }
        C::Delete { name, json } => {
            api.delete(&format!("/envs/{}", seg(&name)))
                .await
                .map_err(|e| {
                    // As the database form says it: a conflict names where to look.
                    let m = e.to_string();
                    match m.strip_suffix(" (HTTP 409)") {
                        Some(m) if name != DEFAULT_ENV => anyhow::anyhow!(
                            "{m} (`tessera client list --json` shows each client's env)"
                        ),
                        _ => e,
                    }
                })?;
            if json {
                print_json(&json!({"env": name, "deleted": true}));
            } else {
                println!("deleted environment {name} with its trust registrations");
            }
        }
    }
    Ok(())
}

/// Every user, following the pages of the list (in order of username, as the database
/// form lists them).
async fn all_users(api: &Remote) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut path = "/users?limit=200".to_owned();
    loop {
        let page = api.get(&path).await?;
        out.extend(
            page.get("users")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(cursor) if !cursor.is_empty() => {
                path = format!("/users?limit=200&cursor={}", seg(cursor));
            }
            _ => return Ok(out),
        }
    }
}

/// `tessera user ...` through the admin API, printing what the database form prints. A
/// password read from standard input goes in the request's JSON body only.
async fn user(cmd: user::Command, api: &Remote) -> Result<()> {
    use user::Command as C;
    let at = |u: &str| format!("/users/{}", seg(u));
    match cmd {
        C::Create {
            username,
            email,
            name,
            json,
            ..
        } => {
            let password = user::read_password().await?;
            let mut body = Map::new();
            body.insert("username".into(), json!(username));
            body.insert("password".into(), json!(password));
            put(&mut body, "email", email);
            put(&mut body, "name", name);
            let made = api
                .post("/users", &Value::Object(body))
                .await
                .map_err(status_dropped)?;
            user::print_created(&made, json);
        }
        C::List { json } => {
            let mut users = all_users(api).await?;
            users.sort_by(|a, b| text(a, "username").cmp(text(b, "username")));
            user::print_list(&users, json);
        }
        C::Delete { username, json } => {
            // The user's name as the server prepared it, for the message.
            let found = api.get(&at(&username)).await.map_err(status_dropped)?;
            api.delete(&at(text(&found, "user_id")))
                .await
                .map_err(status_dropped)?;
            user::print_deleted(text(&found, "username"), json);
        }
        C::SetPassword { username, json, .. } => {
            // Refuse an unknown user before waiting on standard input.
            api.get(&at(&username)).await.map_err(status_dropped)?;
            let password = user::read_password().await?;
            let done = api
                .call(
                    Method::PUT,
                    &format!("{}/password", at(&username)),
                    Some(&json!({"password": password})),
                )
                .await
                .map_err(status_dropped)?;
            user::print_password_set(text(&done, "username"), json);
        }
        C::Consents { username, json } => {
            let consents = api
                .get(&format!("{}/consents", at(&username)))
                .await
                .map_err(status_dropped)?;
            let grants = api
                .get(&format!("{}/grants", at(&username)))
                .await
                .map_err(status_dropped)?;
            let listed = json!({
                "user_id": consents.get("user_id"),
                "username": consents.get("username"),
                "consents": consents.get("consents"),
                "grants": grants.get("grants"),
            });
            user::print_consents(&listed, json);
        }
        C::Grants { username, json } => {
            let listed = api
                .get(&format!("{}/grants", at(&username)))
                .await
                .map_err(status_dropped)?;
            user::print_grants(&listed, json);
        }
        C::RevokeGrant {
            username,
            grant_id,
            json,
        } => {
            let done = api
                .delete(&format!("{}/grants/{}", at(&username), seg(&grant_id)))
                .await
                .map_err(status_dropped)?;
            user::print_grant_revoked(&done, json);
        }
        C::RevokeConsent {
            username,
            client_id,
            json,
        } => {
            let done = api
                .delete(&format!("{}/consents/{}", at(&username), seg(&client_id)))
                .await
                .map_err(status_dropped)?;
            user::print_consent_revoked(&done, json);
        }
        C::RevokeTokens { username, json } => {
            let done = api
                .post(&format!("{}/revoke-tokens", at(&username)), &json!({}))
                .await
                .map_err(status_dropped)?;
            let n = done
                .get("grants_revoked")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            user::print_tokens_revoked(text(&done, "username"), n, json);
        }
    }
    Ok(())
}

/// The key files of a command, as the admin API takes them: the JWK Set's text as it is,
/// and each PEM public key's text (read here; nothing private is read).
fn key_fields(keys: PublicKeys, map: &mut Map<String, Value>) {
    if let Some(jwks) = keys.jwks {
        map.insert("jwks".into(), json!(jwks.text));
    }
    if !keys.pems.is_empty() {
        let pems: Vec<String> = keys.pems.into_iter().map(|d| d.text).collect();
        map.insert("pems".into(), json!(pems));
    }
}

/// `tessera trust ...` through the admin API, printing what the database form prints.
async fn trust(cmd: trust::Command, api: &Remote) -> Result<()> {
    use trust::Command as C;
    match cmd {
        C::Add {
            issuer,
            keys,
            jwks_url,
            subject_claim,
            claims,
            env,
            scope,
            json,
        } => {
            let mut body = Map::new();
            body.insert("issuer".into(), json!(issuer));
            key_fields(keys.read()?, &mut body);
            put(&mut body, "jwks_url", jwks_url);
            body.insert("subject_claim".into(), json!(subject_claim));
            body.insert("claims".into(), json!(claims));
            body.insert("env".into(), json!(env));
            body.insert("scope".into(), json!(scope));
            let made = api
                .post("/trust", &Value::Object(body))
                .await
                .map_err(flag_named)?;
            trust::print_added(&made, json);
        }
        C::List { env, json } => {
            let path = match env {
                Some(e) => format!("/trust?env={}", seg(&e)),
                None => "/trust".to_owned(),
            };
            let list = api.get(&path).await.map_err(status_dropped)?;
            let items = match list {
                Value::Array(items) => items,
                other => other
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
            trust::print_list(&items, json);
        }
        C::SetKeys { id, keys, json } => {
            let mut body = Map::new();
            key_fields(keys.read()?, &mut body);
            let done = api
                .call(
                    Method::PUT,
                    &format!("/trust/{}/keys", seg(&id)),
                    Some(&Value::Object(body)),
                )
                .await
                .map_err(flag_named)?;
            trust::print_keys_set(&done, json);
        }
        C::Remove { id, json } => {
            api.delete(&format!("/trust/{}", seg(&id)))
                .await
                .map_err(status_dropped)?;
            trust::print_removed(&id, json);
        }
    }
    Ok(())
}

/// `tessera idp ...` through the admin API, printing what the database form prints. The
/// client secret read from standard input goes in the request's JSON body only; the server
/// seals it with its own sealing key.
async fn idp(cmd: idp::Command, api: &Remote) -> Result<()> {
    use idp::Command as C;
    match cmd {
        C::Add {
            name,
            issuer,
            client_id,
            display_name,
            email_domains,
            link_by_email,
            json,
            ..
        } => {
            let secret = idp::read_secret().await?;
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            put(&mut body, "display_name", display_name);
            body.insert("issuer".into(), json!(issuer));
            body.insert("client_id".into(), json!(client_id));
            body.insert("client_secret".into(), json!(secret.expose()));
            body.insert("email_domains".into(), json!(email_domains));
            body.insert("link_by_email".into(), json!(link_by_email));
            let made = api
                .post("/idps", &Value::Object(body))
                .await
                .map_err(flag_named)?;
            idp::print_added(&made, json);
        }
        C::List { json } => {
            let list = api.get("/idps").await.map_err(status_dropped)?;
            let items = match list {
                Value::Array(items) => items,
                _ => bail!("the admin API answered the provider list with something else"),
            };
            idp::print_list(&items, json);
        }
        C::Remove { name, json } => {
            api.delete(&format!("/idps/{}", seg(&name)))
                .await
                .map_err(status_dropped)?;
            idp::print_removed(&name, json);
        }
    }
    Ok(())
}

/// `tessera keys ...` through the admin API (`list` and `rotate`: the server makes the key
/// and seals it with its own sealing secret). `keys reseal` changes the sealing secret
/// itself, which only the database form can hold.
async fn keys(cmd: keys::Command, api: &Remote) -> Result<()> {
    use keys::Command as C;
    match cmd {
        C::Rotate { lead_time, json } => {
            let mut body = Map::new();
            put(&mut body, "lead_time", lead_time);
            let t = super::now();
            let made = api
                .post("/keys/rotate", &Value::Object(body))
                .await
                .map_err(status_dropped)
                .context("no key was made")?;
            let out = json!({
                "kid": made.get("kid"),
                "alg": made.get("alg"),
                "activates_at": made.get("activates_at"),
            });
            keys::print_rotated(&out, t, json);
        }
        C::List { json } => {
            let list = api.get("/keys").await.map_err(status_dropped)?;
            let items = match list {
                Value::Array(items) => items,
                _ => bail!("the admin API answered the key list with something else"),
            };
            keys::print_list(&items, json);
        }
        C::Reseal { .. } => bail!(
            "`tessera keys reseal` does not work with --server: it re-seals the keys under a \
             new sealing secret, which only a command run where the server's database is \
             holds"
        ),
    }
    Ok(())
}

/// A server error in the database form's words: without the ` (HTTP NNN)` this module
/// adds (a refused credential keeps its own words).
fn status_dropped(e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", strip_status(&e.to_string()))
}

/// An array of strings of an answer.
fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `tessera client import FILE` through the admin API: each line is posted as it is (the
/// server reads it as the database form does), and reported the same way.
async fn import(path: &str, json: bool, api: &Remote) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut created = 0usize;
    let mut failed = 0usize;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // The line is checked as the database form checks it before it is sent, so a
        // malformed line is reported in the same words.
        let outcome = match ClientSpec::from_json(line) {
            Ok(_) => match serde_json::from_str::<Value>(line) {
                Ok(body) => api.post("/clients", &body).await,
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(c) => {
                created += 1;
                let id = c
                    .get("client_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let secret = c.get("client_secret").and_then(Value::as_str);
                if json {
                    println!(
                        "{}",
                        json!({"line": n, "client_id": id, "client_secret": secret})
                    );
                } else {
                    match secret {
                        Some(s) => println!(
                            "line {n}: created {id} (new client_secret, shown this once: {s})"
                        ),
                        None => println!("line {n}: created {id}"),
                    }
                }
            }
            Err(e) => {
                failed += 1;
                let e = strip_status(&e.to_string());
                if json {
                    println!("{}", json!({"line": n, "error": e}));
                } else {
                    println!("line {n}: error: {e}");
                }
            }
        }
    }
    if json {
        println!("{}", json!({"created": created, "failed": failed}));
    } else {
        println!("{created} created, {failed} failed");
    }
    if failed > 0 {
        bail!("{failed} of {} lines failed", created + failed);
    }
    Ok(())
}

/// A message without the ` (HTTP NNN)` this module adds.
fn strip_status(message: &str) -> String {
    match message.rfind(" (HTTP ") {
        Some(i) if message.ends_with(')') => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// A server error about one field, named by the flag that gives it, as the database form
/// names it ([`super::client::registration::flagged`]).
fn flag_named(e: anyhow::Error) -> anyhow::Error {
    let message = e.to_string();
    const FIELDS: &[(&str, &str)] = &[
        ("grant_types", "--grant-type"),
        ("redirect_uris", "--redirect-uri"),
        ("post_logout_redirect_uris", "--post-logout-redirect-uri"),
        ("token_exchange_audiences", "--token-exchange-audience"),
        ("audiences", "--audience"),
        ("secret_hash", "--secret-hash"),
        ("client_id", "--client-id"),
        ("scope", "--scope"),
        ("access_token_format", "--access-token-format"),
        ("access_token_ttl", "--access-token-ttl"),
        ("refresh_tokens", "--refresh-tokens"),
        ("refresh_token_ttl", "--refresh-token-ttl"),
        ("refresh_token_idle_ttl", "--refresh-token-idle-ttl"),
        ("refresh_grace_period", "--refresh-grace-period"),
        ("code_ttl", "--code-ttl"),
        ("backchannel_logout_uri", "--backchannel-logout-uri"),
        ("token_endpoint_auth_method", "--token-endpoint-auth-method"),
        ("keep_old_secret_for", "--keep-old-secret-for"),
        ("env", "--env"),
        ("single_use_tokens", "--single-use-tokens"),
        ("name", "--name"),
        ("issuer", "--issuer"),
        ("jwks_url", "--jwks-url"),
        ("subject_claim", "--subject-claim"),
        ("claims", "--claim"),
        ("email_domains", "--email-domain"),
        ("display_name", "--display-name"),
        (
            "client_secret",
            "the client secret (standard input, --client-secret-stdin)",
        ),
    ];
    let message = strip_status(&message);
    for (field, flag) in FIELDS {
        if let Some(rest) = message.strip_prefix(field) {
            if rest.starts_with([' ', ':']) {
                return anyhow::anyhow!("{flag}{rest}");
            }
        }
    }
    anyhow::anyhow!("{message}")
}

/// The message of an error answer: the server's `error_description` (or `error`), with the
/// status.
fn error_message(status: StatusCode, body: &Value) -> String {
    let said = body
        .get("error_description")
        .and_then(Value::as_str)
        .or_else(|| body.get("error").and_then(Value::as_str));
    let said: String = said
        .unwrap_or("no explanation given")
        .chars()
        .filter(|c| !c.is_control())
        .take(1000)
        .collect();
    match status {
        StatusCode::UNAUTHORIZED => format!("the server refused the admin token: {said}"),
        StatusCode::FORBIDDEN => format!("the admin token may not do this: {said}"),
        s => format!("{said} (HTTP {})", s.as_u16()),
    }
}

/// A path segment, percent-encoded (an id never changes the path it goes in).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_cannot_climb_or_split_the_path() {
        assert_eq!(seg("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(seg("../keys"), "..%2Fkeys");
        assert_eq!(seg(".."), "%2E%2E");
        assert_eq!(seg("a?b#c d"), "a%3Fb%23c%20d");
    }

    #[test]
    fn the_servers_words_are_kept_without_control_characters() {
        let body =
            serde_json::json!({"error": "invalid_token", "error_description": "no\u{1b}[31m"});
        let m = error_message(StatusCode::UNAUTHORIZED, &body);
        assert!(m.contains("refused the admin token: no[31m"), "{m}");
        let m = error_message(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not_found"}),
        );
        assert_eq!(m, "not_found (HTTP 404)");
    }
}
