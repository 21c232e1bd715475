//! Dialects: named presets of how Tessera's endpoints behave for clients written against
//! another product.
//!
//! Owns the data of a dialect and nothing that acts on it: [`DialectOverrides`] (the keys a
//! config file may set, each optional; see `docs/dialects/` and the README), the five
//! presets ([`presets`]), merging a config file's changes over them, validation at start-up
//! ([`DialectError`] names the offending key), the resolved [`Dialect`] and [`Dialects`], the
//! set the server runs with, looked up by path and by name.
//!
//! A request is *through* a dialect when it arrives on one of the dialect's paths, or on one
//! of Tessera's own paths while the dialect has `standard_paths = true`. What a dialect
//! changes is applied by the protocol modules that own each behaviour:
//! - the token endpoint ([`crate::endpoint::token`]): the `token_type` label and extra fields
//!   of token responses, the accepted body styles;
//! - the grants: access-token lifetime ([`crate::issue`]), refresh policy and absolute
//!   refresh lifetime ([`crate::grant::authorization_code`], [`crate::grant::refresh_token`]);
//! - the authorization endpoint ([`crate::endpoint::authorize`]): code lifetime, parameters
//!   added to the redirect (never `code`, `state` or `iss`, RFC 6749 §4.1.2, RFC 9207), and
//!   authorization-request parameters carried into the tokens as claims (never a registered
//!   claim, [`crate::jwt::REGISTERED_CLAIMS`]);
//! - the JSON exchange of a vendor-signed JWT ([`crate::endpoint::sdk_token`]): its path, body
//!   member names, lifetimes and audience rule ([`SdkRules`]);
//! - bearer-token extraction ([`access_token_from`]): other request headers that may carry an
//!   access token besides `Authorization: Bearer` (RFC 6750 §2.1).
//!
//! A dialect's paths are served by the same handler as the endpoint they name; discovery
//! names only Tessera's own paths (RFC 8414 §2).

pub mod presets;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::endpoint::{EndpointId, ENDPOINTS};
use crate::error::OAuthError;
use crate::model::RefreshPolicy;
use crate::scope::ScopeSet;

/// The changes a config file makes to one dialect (`[dialects.NAME]`). Every key is
/// optional: unset keeps the preset's value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectOverrides {
    /// On or off; listing a preset switches it on unless this says `false`.
    pub enabled: Option<bool>,
    /// Extra paths per endpoint name (`token`, `authorize`, `introspect`, `revoke`,
    /// `userinfo`, `sdk_token`, `discovery`, `jwks`, `logout`); merged per endpoint.
    pub paths: Option<BTreeMap<String, Vec<String>>>,
    /// Also apply this dialect's rules on Tessera's own paths.
    pub standard_paths: Option<bool>,
    /// The `token_type` label of token responses.
    pub token_type: Option<String>,
    /// Extra token-response fields; known: `wid`.
    pub response_fields: Option<Vec<String>>,
    /// Request headers that may carry an access token (as `Authorization: Bearer` does).
    pub token_headers: Option<Vec<String>>,
    /// Parameters added to the redirect that carries a code; merged per parameter.
    pub redirect_params: Option<BTreeMap<String, String>>,
    /// Codes issued through it live at most this long, seconds.
    pub code_ttl: Option<i64>,
    /// Lifetime of access tokens issued through it, seconds (capped by the server's maximum).
    pub access_token_ttl: Option<i64>,
    /// Absolute lifetime of refresh tokens from the user's sign-in, seconds.
    pub refresh_token_ttl: Option<i64>,
    /// `offline_access`, `always` or `never`.
    pub refresh_tokens: Option<String>,
    /// Body styles accepted at its token paths: `form`, `json`, `multipart`.
    pub request_styles: Option<Vec<String>>,
    /// Authorization-request parameters kept with the code and carried into its tokens as
    /// claims.
    pub carry_params: Option<Vec<String>>,
    /// A code exchange may ask `offline_access` beyond what the authorization request asked,
    /// to get a refresh token, when the client is registered for that scope.
    pub offline_access_at_exchange: Option<bool>,
    /// The JSON exchange of a vendor-signed JWT; merged per key.
    pub sdk: Option<SdkOverrides>,
    /// Per-client changes, by client id.
    pub clients: Option<BTreeMap<String, ClientOverrides>>,
}

/// The keys of a dialect's JSON exchange of a vendor-signed JWT (`sdk = { ... }`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdkOverrides {
    /// The body member holding the JWT.
    pub assertion: Option<String>,
    /// The body member naming the environment.
    pub env: Option<String>,
    /// Lifetime of its tokens, seconds.
    pub ttl: Option<i64>,
    /// Lifetime of its tokens in an environment whose tokens are single-use, seconds.
    pub single_use_ttl: Option<i64>,
    /// `optional` (checked when present) or `required`.
    pub audience: Option<String>,
}

/// Per-client changes of a dialect (`[dialects.NAME.clients."CLIENT_ID"]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientOverrides {
    /// Parameters added to this client's code redirects, over the dialect's.
    pub redirect_params: Option<BTreeMap<String, String>>,
}

/// A body style of a token request, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStyle {
    /// `application/x-www-form-urlencoded` (RFC 6749 §3.2).
    Form,
    /// `application/json`.
    Json,
    /// `multipart/form-data`.
    Multipart,
}

impl BodyStyle {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyStyle::Form => "form",
            BodyStyle::Json => "json",
            BodyStyle::Multipart => "multipart",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "form" => Some(BodyStyle::Form),
            "json" => Some(BodyStyle::Json),
            "multipart" => Some(BodyStyle::Multipart),
            _ => None,
        }
    }

    /// The style of a `Content-Type` header value (parameters and case ignored), if it is
    /// one.
    pub fn of_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        [
            ("application/x-www-form-urlencoded", BodyStyle::Form),
            ("application/json", BodyStyle::Json),
            ("multipart/form-data", BodyStyle::Multipart),
        ]
        .into_iter()
        .find(|(media, _)| essence.eq_ignore_ascii_case(media))
        .map(|(_, style)| style)
    }
}

/// An extra field of token responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseField {
    /// `wid`: the stable id of the user who authorized (the same across grants); absent for
    /// tokens that act for no user.
    Wid,
}

impl ResponseField {
    fn parse(name: &str) -> Option<Self> {
        (name == "wid").then_some(ResponseField::Wid)
    }
}

/// Whether an assertion of a dialect's JSON exchange must name an audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkAudience {
    /// Checked only when present.
    Optional,
    /// Required (RFC 7523 §3 item 3).
    Required,
}

/// The rules of a dialect's JSON exchange of a vendor-signed JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkRules {
    /// The body member holding the JWT.
    pub assertion: String,
    /// The body member naming the environment.
    pub env: String,
    /// Lifetime of its tokens, seconds.
    pub ttl: i64,
    /// Lifetime of its tokens in an environment whose tokens are single-use, seconds.
    pub single_use_ttl: i64,
    /// The audience rule.
    pub audience: SdkAudience,
}

impl Default for SdkRules {
    /// The Anyflow dialect's rules: `{"jwt", "env"}`, 5 minutes, 10 when single-use, an
    /// optional audience.
    fn default() -> Self {
        Self {
            assertion: "jwt".into(),
            env: "env".into(),
            ttl: 300,
            single_use_ttl: 600,
            audience: SdkAudience::Optional,
        }
    }
}

/// One dialect, resolved: its preset with the config file's changes, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    /// Its name (a preset's).
    pub name: String,
    /// Whether it is served.
    pub enabled: bool,
    /// Its extra paths and the endpoint each is served by.
    pub paths: Vec<(EndpointId, String)>,
    /// Whether its rules also apply on Tessera's own paths.
    pub standard_paths: bool,
    /// The `token_type` label of token responses.
    pub token_type: String,
    /// Extra token-response fields.
    pub response_fields: Vec<ResponseField>,
    /// Request headers (lowercase names) that may carry an access token.
    pub token_headers: Vec<String>,
    /// Parameters added to the redirect that carries a code.
    pub redirect_params: Vec<(String, String)>,
    /// Per-client redirect parameters, over the dialect's.
    pub client_redirect_params: BTreeMap<String, Vec<(String, String)>>,
    /// Longest lifetime of codes issued through it, seconds.
    pub code_ttl: Option<i64>,
    /// Lifetime of access tokens issued through it, seconds.
    pub access_token_ttl: Option<i64>,
    /// Absolute lifetime of refresh tokens from sign-in, seconds.
    pub refresh_token_ttl: Option<i64>,
    /// When refresh tokens are issued through it (a client whose policy is `never` gets
    /// none whatever this says).
    pub refresh_tokens: Option<RefreshPolicy>,
    /// Body styles accepted at its token paths.
    pub request_styles: Vec<BodyStyle>,
    /// Authorization-request parameters carried into the tokens as claims.
    pub carry_params: Vec<String>,
    /// A code exchange through it may add `offline_access` to the granted scope when the
    /// client is registered for that scope (see [`exchange_scope`]).
    pub offline_access_at_exchange: bool,
    /// Its JSON exchange of a vendor-signed JWT.
    pub sdk: SdkRules,
}

/// Names a code redirect always carries, which no dialect may add or replace (RFC 6749
/// §4.1.2, §4.1.2.1, RFC 9207).
pub const RESERVED_REDIRECT_PARAMS: &[&str] = &[
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// Claims no carried parameter may be named: Tessera's own ([`crate::jwt::REGISTERED_CLAIMS`]
/// and the other claims of RFC 7519 §4.1 and OpenID Connect Core §2); a unit test keeps the
/// former in step.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "env",
    "single_use",
    "active",
    "token_type",
    "username",
    "typ",
    "cnf",
    "auth_time",
    "gid",
    "nonce",
    "azp",
    "acr",
    "amr",
    "at_hash",
    "sid",
    "wid",
    "dialect",
];

/// Paths outside the endpoint table that a dialect may not take.
const OPERATIONAL_PATHS: &[&str] = &["/health/alive", "/health/ready", "/metrics"];

impl Dialect {
    /// The parameters added to a code redirect for `client_id`: the dialect's, with the
    /// client's over them.
    pub fn redirect_params_for(&self, client_id: &str) -> Vec<(String, String)> {
        let mut params = self.redirect_params.clone();
        if let Some(own) = self.client_redirect_params.get(client_id) {
            for (k, v) in own {
                match params.iter_mut().find(|(name, _)| name == k) {
                    Some(slot) => slot.1.clone_from(v),
                    None => params.push((k.clone(), v.clone())),
                }
            }
        }
        params
    }

    /// Whether token responses through it carry `field`.
    pub fn has_field(&self, field: ResponseField) -> bool {
        self.response_fields.contains(&field)
    }

    /// Refuses a token request body of a style this dialect does not accept
    /// (`invalid_request`, RFC 6749 §5.2).
    pub fn check_style(&self, style: Option<BodyStyle>) -> Result<(), OAuthError> {
        match style {
            Some(s) if self.request_styles.contains(&s) => Ok(()),
            _ => {
                let names: Vec<&str> = self.request_styles.iter().map(|s| s.as_str()).collect();
                Err(OAuthError::invalid_request(format!(
                    "this token endpoint accepts only these body styles: {}",
                    names.join(", ")
                )))
            }
        }
    }
}

/// A dialect setting refused at start-up; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct DialectError {
    /// The key, as `dialects.NAME.KEY`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

fn err(key: String, message: impl Into<String>) -> DialectError {
    DialectError {
        key,
        message: message.into(),
    }
}

/// The dialects the server runs with: every preset, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialects {
    all: Vec<Arc<Dialect>>,
}

impl Default for Dialects {
    /// The presets as they ship: only `anyflow` on.
    fn default() -> Self {
        Self::presets()
    }
}

impl Dialects {
    /// The presets as they ship: only `anyflow` on.
    pub fn presets() -> Self {
        Self::resolve(&BTreeMap::new()).unwrap_or_else(|_| Self { all: Vec::new() })
    }

    /// The presets with a config file's changes (`[dialects.NAME]`) over them, checked.
    pub fn resolve(config: &BTreeMap<String, DialectOverrides>) -> Result<Self, DialectError> {
        if let Some(name) = config.keys().find(|n| presets::preset(n).is_none()) {
            return Err(err(
                format!("dialects.{name}"),
                format!(
                    "unknown dialect (the presets are {})",
                    presets::NAMES.join(", ")
                ),
            ));
        }
        let mut all = Vec::new();
        for name in presets::NAMES {
            let base = presets::preset(name).unwrap_or_default();
            let merged = match config.get(*name) {
                Some(changes) => merge(base, changes.clone()),
                None => base,
            };
            all.push(Arc::new(build(name, merged)?));
        }
        check_together(&all)?;
        Ok(Self { all })
    }

    /// Every enabled dialect.
    pub fn enabled(&self) -> impl Iterator<Item = &Arc<Dialect>> {
        self.all.iter().filter(|d| d.enabled)
    }

    /// The enabled dialect called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Dialect>> {
        self.enabled().find(|d| d.name == name)
    }

    /// The enabled dialect serving `path`, and the endpoint it serves there.
    pub fn by_path(&self, path: &str) -> Option<(&Arc<Dialect>, EndpointId)> {
        self.enabled().find_map(|d| {
            d.paths
                .iter()
                .find(|(_, p)| p == path)
                .map(|(id, _)| (d, *id))
        })
    }

    /// The enabled dialect whose rules apply on Tessera's own paths, if one does.
    pub fn on_standard_paths(&self) -> Option<&Arc<Dialect>> {
        self.enabled().find(|d| d.standard_paths)
    }

    /// Every extra path of every enabled dialect: the dialect, the endpoint, the path.
    pub fn routes(&self) -> impl Iterator<Item = (&Arc<Dialect>, EndpointId, &str)> {
        self.enabled()
            .flat_map(|d| d.paths.iter().map(move |(id, p)| (d, *id, p.as_str())))
    }

    /// The request headers (lowercase names) that enabled dialects let carry an access token.
    pub fn token_headers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .enabled()
            .flat_map(|d| d.token_headers.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// `changes` over `base`: a key set in `changes` replaces the base's; `paths`,
/// `redirect_params`, `sdk` and `clients` are merged entry by entry. A dialect listed in the
/// config is on unless it says `enabled = false`.
fn merge(base: DialectOverrides, changes: DialectOverrides) -> DialectOverrides {
    fn map<V>(
        base: Option<BTreeMap<String, V>>,
        over: Option<BTreeMap<String, V>>,
    ) -> Option<BTreeMap<String, V>> {
        match (base, over) {
            (Some(mut b), Some(o)) => {
                b.extend(o);
                Some(b)
            }
            (b, o) => o.or(b),
        }
    }
    let sdk = match (base.sdk, changes.sdk) {
        (Some(b), Some(o)) => Some(SdkOverrides {
            assertion: o.assertion.or(b.assertion),
            env: o.env.or(b.env),
            ttl: o.ttl.or(b.ttl),
            single_use_ttl: o.single_use_ttl.or(b.single_use_ttl),
            audience: o.audience.or(b.audience),
        }),
        (b, o) => o.or(b),
    };
    DialectOverrides {
        enabled: Some(changes.enabled.unwrap_or(true)),
        paths: map(base.paths, changes.paths),
        standard_paths: changes.standard_paths.or(base.standard_paths),
        token_type: changes.token_type.or(base.token_type),
        response_fields: changes.response_fields.or(base.response_fields),
        token_headers: changes.token_headers.or(base.token_headers),
        redirect_params: map(base.redirect_params, changes.redirect_params),
        code_ttl: changes.code_ttl.or(base.code_ttl),
        access_token_ttl: changes.access_token_ttl.or(base.access_token_ttl),
        refresh_token_ttl: changes.refresh_token_ttl.or(base.refresh_token_ttl),
        refresh_tokens: changes.refresh_tokens.or(base.refresh_tokens),
        request_styles: changes.request_styles.or(base.request_styles),
        carry_params: changes.carry_params.or(base.carry_params),
        offline_access_at_exchange: changes
            .offline_access_at_exchange
            .or(base.offline_access_at_exchange),
        sdk,
        clients: map(base.clients, changes.clients),
    }
}

/// The endpoint a dialect's `paths` key names.
fn endpoint_named(name: &str) -> Option<EndpointId> {
    Some(match name {
        "token" => EndpointId::Token,
        "authorize" => EndpointId::Authorize,
        "introspect" => EndpointId::Introspect,
        "revoke" => EndpointId::Revoke,
        "userinfo" => EndpointId::Userinfo,
        "sdk_token" => EndpointId::SdkToken,
        "discovery" => EndpointId::Discovery,
        "jwks" => EndpointId::Jwks,
        "logout" => EndpointId::Logout,
        _ => return None,
    })
}

/// A path a router can serve literally: `/`-separated segments of unreserved characters
/// (RFC 3986 §2.3), no empty segment, no trailing `/`.
fn valid_path(p: &str) -> bool {
    p.len() <= 256
        && p.strip_prefix('/').is_some_and(|rest| {
            !rest.is_empty()
                && rest.split('/').all(|seg| {
                    !seg.is_empty()
                        && seg != "."
                        && seg != ".."
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                })
        })
}

/// An HTTP field name (RFC 9110 §5.1: a token).
fn valid_header(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A redirect parameter or carried parameter name: printable ASCII without `=`, `&`, `#`.
fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"=&#%+".contains(&b))
}

fn redirect_params(
    key: &str,
    map: Option<BTreeMap<String, String>>,
) -> Result<Vec<(String, String)>, DialectError> {
    let mut out = Vec::new();
    for (name, value) in map.unwrap_or_default() {
        if !valid_param_name(&name) {
            return Err(err(format!("{key}.{name}"), "not a valid parameter name"));
        }
        if RESERVED_REDIRECT_PARAMS.contains(&name.as_str()) {
            return Err(err(
                format!("{key}.{name}"),
                "a code redirect carries this parameter itself; a dialect may not set it",
            ));
        }
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(err(
                format!("{key}.{name}"),
                "the value must be at most 256 characters, none a control character",
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn positive(key: String, v: Option<i64>, max: i64) -> Result<Option<i64>, DialectError> {
    match v {
        Some(s) if !(1..=max).contains(&s) => {
            Err(err(key, format!("must be between 1 and {max} seconds")))
        }
        v => Ok(v),
    }
}

/// Resolves and checks one dialect.
fn build(name: &str, d: DialectOverrides) -> Result<Dialect, DialectError> {
    let key = |k: &str| format!("dialects.{name}.{k}");
    let mut paths = Vec::new();
    for (endpoint, list) in d.paths.unwrap_or_default() {
        let id = endpoint_named(&endpoint).ok_or_else(|| {
            err(
                key(&format!("paths.{endpoint}")),
                "unknown endpoint name (token, authorize, introspect, revoke, userinfo, \
                 sdk_token, discovery, jwks, logout)",
            )
        })?;
        for p in list {
            if !valid_path(&p) {
                return Err(err(
                    key(&format!("paths.{endpoint}")),
                    format!(
                        "'{p}' is not a path of letters, digits, '-', '.', '_', '~' between \
                         '/'s"
                    ),
                ));
            }
            paths.push((id, p));
        }
    }
    let token_type = d.token_type.unwrap_or_else(|| "bearer".to_owned());
    if !valid_header(&token_type) {
        return Err(err(key("token_type"), "must be a token (RFC 9110 §5.6.2)"));
    }
    let mut response_fields = Vec::new();
    for f in d.response_fields.unwrap_or_default() {
        let field = ResponseField::parse(&f).ok_or_else(|| {
            err(
                key("response_fields"),
                format!("unknown field '{f}' (known: wid)"),
            )
        })?;
        response_fields.push(field);
    }
    let mut token_headers = Vec::new();
    for h in d.token_headers.unwrap_or_default() {
        let lower = h.to_ascii_lowercase();
        if !valid_header(&h)
            || [
                "authorization",
                "cookie",
                "host",
                "content-type",
                "content-length",
            ]
            .contains(&lower.as_str())
        {
            return Err(err(
                key("token_headers"),
                format!("'{h}' cannot carry an access token"),
            ));
        }
        token_headers.push(lower);
    }
    let redirect = redirect_params(&key("redirect_params"), d.redirect_params)?;
    let mut client_redirect_params = BTreeMap::new();
    for (client, changes) in d.clients.unwrap_or_default() {
        let k = key(&format!("clients.\"{client}\".redirect_params"));
        client_redirect_params.insert(client, redirect_params(&k, changes.redirect_params)?);
    }
    let code_ttl = positive(key("code_ttl"), d.code_ttl, 600)?;
    let access_token_ttl = positive(key("access_token_ttl"), d.access_token_ttl, i64::MAX)?;
    let refresh_token_ttl = positive(key("refresh_token_ttl"), d.refresh_token_ttl, i64::MAX)?;
    let refresh_tokens = match d.refresh_tokens.as_deref() {
        None => None,
        Some("offline_access") => Some(RefreshPolicy::OfflineAccess),
        Some("always") => Some(RefreshPolicy::Always),
        Some("never") => Some(RefreshPolicy::Never),
        Some(other) => {
            return Err(err(
                key("refresh_tokens"),
                format!("'{other}' is not offline_access, always or never"),
            ))
        }
    };
    let mut request_styles = Vec::new();
    match d.request_styles {
        None => request_styles = vec![BodyStyle::Form, BodyStyle::Json, BodyStyle::Multipart],
        Some(list) => {
            for s in list {
                let style = BodyStyle::parse(&s).ok_or_else(|| {
                    err(
                        key("request_styles"),
                        format!("unknown style '{s}' (form, json, multipart)"),
                    )
                })?;
                request_styles.push(style);
            }
        }
    }
    if request_styles.is_empty() {
        return Err(err(key("request_styles"), "must name at least one style"));
    }
    let carry_params = d.carry_params.unwrap_or_default();
    for p in &carry_params {
        if !valid_param_name(p) || RESERVED_CLAIMS.contains(&p.as_str()) {
            return Err(err(
                key("carry_params"),
                format!("'{p}' cannot be carried: it is not a name or it is a claim Tessera sets"),
            ));
        }
    }
    let sdk = match d.sdk {
        None => SdkRules::default(),
        Some(s) => {
            let base = SdkRules::default();
            let audience = match s.audience.as_deref() {
                None | Some("optional") => SdkAudience::Optional,
                Some("required") => SdkAudience::Required,
                Some(other) => {
                    return Err(err(
                        key("sdk.audience"),
                        format!("'{other}' is not optional or required"),
                    ))
                }
            };
            let rules = SdkRules {
                assertion: s.assertion.unwrap_or(base.assertion),
                env: s.env.unwrap_or(base.env),
                ttl: positive(key("sdk.ttl"), s.ttl, i64::MAX)?.unwrap_or(base.ttl),
                single_use_ttl: positive(key("sdk.single_use_ttl"), s.single_use_ttl, i64::MAX)?
                    .unwrap_or(base.single_use_ttl),
                audience,
            };
            if rules.assertion.is_empty() || rules.env.is_empty() || rules.assertion == rules.env {
                return Err(err(
                    key("sdk"),
                    "assertion and env must be two different, non-empty member names",
                ));
            }
            rules
        }
    };
    Ok(Dialect {
        name: name.to_owned(),
        enabled: d.enabled.unwrap_or(false),
        paths,
        standard_paths: d.standard_paths.unwrap_or(false),
        token_type,
        response_fields,
        token_headers,
        redirect_params: redirect,
        client_redirect_params,
        code_ttl,
        access_token_ttl,
        refresh_token_ttl,
        refresh_tokens,
        request_styles,
        carry_params,
        offline_access_at_exchange: d.offline_access_at_exchange.unwrap_or(false),
        sdk,
    })
}

/// Checks across the enabled dialects: no path twice, none equal to one of Tessera's own,
/// and at most one dialect on the standard paths.
fn check_together(all: &[Arc<Dialect>]) -> Result<(), DialectError> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut standard: Option<&str> = None;
    for d in all.iter().filter(|d| d.enabled) {
        if d.standard_paths {
            if let Some(other) = standard {
                return Err(err(
                    format!("dialects.{}.standard_paths", d.name),
                    format!("the dialect {other} already applies on the standard paths"),
                ));
            }
            standard = Some(&d.name);
        }
        for (_, p) in &d.paths {
            let key = || format!("dialects.{}.paths", d.name);
            if ENDPOINTS.iter().any(|e| e.paths.contains(&p.as_str()))
                || OPERATIONAL_PATHS.contains(&p.as_str())
            {
                return Err(err(key(), format!("'{p}' is one of Tessera's own paths")));
            }
            if let Some((_, other)) = seen.iter().find(|(q, _)| *q == p.as_str()) {
                return Err(err(
                    key(),
                    format!("'{p}' is used twice (also by the dialect {other})"),
                ));
            }
            seen.push((p, &d.name));
        }
    }
    Ok(())
}

/// The member of a code's `extra` object ([`crate::model::CodeRecord::extra`]) holding the
/// parameters its dialect carries into the tokens, as an object of strings. An authorization
/// request's own parameters are strings and one of this name is dropped, so only the dialect
/// can set it.
pub const CARRIED: &str = "tessera:carried";

/// The parameters of `request_extra` (an authorization request's parameters Tessera does
/// not know) that `dialect` carries into the tokens.
pub fn carry(
    dialect: Option<&Dialect>,
    request_extra: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let Some(d) = dialect else {
        return serde_json::Map::new();
    };
    request_extra
        .iter()
        .filter(|(k, v)| d.carry_params.contains(k) && v.is_string())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The claims a code carries into its tokens: the strings under [`CARRIED`] in its `extra`
/// JSON, if any. Registered claims among them are dropped when the token is minted.
pub fn carried_claims(extra: &str) -> serde_json::Map<String, serde_json::Value> {
    let Ok(serde_json::Value::Object(mut all)) = serde_json::from_str(extra) else {
        return serde_json::Map::new();
    };
    match all.remove(CARRIED) {
        Some(serde_json::Value::Object(carried)) => carried
            .into_iter()
            .filter(|(k, v)| v.is_string() && !RESERVED_CLAIMS.contains(&k.as_str()))
            .collect(),
        _ => serde_json::Map::new(),
    }
}

/// The access token a request carries, from `Authorization: Bearer` (RFC 6750 §2.1) or from
/// one of the other headers dialects allow (`others`: each value present). Two different
/// tokens, or one header given twice, is `invalid_request` (RFC 6750 §2: one method only).
pub fn access_token_from<'a>(
    authorization: &[&'a str],
    others: &[&'a str],
) -> Result<Option<&'a str>, OAuthError> {
    let mut found: Option<&str> = None;
    let two = || OAuthError::invalid_request("the request carries more than one access token");
    if authorization.len() > 1 {
        return Err(two());
    }
    let bearer = authorization.first().and_then(|v| {
        v.get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| v.get(7..).unwrap_or("").trim())
    });
    for token in bearer.into_iter().chain(others.iter().map(|v| v.trim())) {
        if token.is_empty() {
            continue;
        }
        match found {
            Some(f) if f != token => return Err(two()),
            _ => found = Some(token),
        }
    }
    Ok(found)
}

/// The scope a code exchange works from: what the user granted, plus `offline_access` when
/// the exchange comes through a dialect with `offline_access_at_exchange`, its `scope`
/// parameter asks for it, and the client is registered for it. Some products' clients ask
/// for a refresh token at the token request rather than the authorization request (RFC 6749
/// §4.1.3 defines no `scope` there); the operator's registration of the client for
/// `offline_access` then stands for that one scope. Nothing else is ever added.
pub fn exchange_scope(
    dialect: Option<&Dialect>,
    granted: ScopeSet,
    asked: Option<&str>,
    registered: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    const OFFLINE: &str = "offline_access";
    let asks = match asked {
        Some(s) => ScopeSet::parse(s)?.contains(OFFLINE),
        None => false,
    };
    if asks
        && dialect.is_some_and(|d| d.offline_access_at_exchange)
        && registered.contains(OFFLINE)
        && !granted.contains(OFFLINE)
    {
        ScopeSet::parse(&format!("{granted} {OFFLINE}"))
    } else {
        Ok(granted)
    }
}

#[cfg(test)]
mod tests;
