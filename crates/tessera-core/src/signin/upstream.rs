//! Signing in through an upstream OpenID provider: Tessera as the relying party of the
//! authorization code flow (OpenID Connect Core §3.1), the [`SignInMethod`] beside the
//! password form.
//!
//! Owns every rule of that exchange, with no I/O (the HTTP layer fetches and posts):
//!
//! - [`parse_discovery`]: the provider's metadata (OpenID Connect Discovery §3), whose
//!   `issuer` must be exactly the configured one (§4.3) and whose endpoints must use the
//!   issuer's scheme.
//! - [`start`]: the authorization request sent to the provider (`response_type=code`, the
//!   scope [`SCOPE`], a random `state` and `nonce`, PKCE S256 with a random verifier, RFC 7636
//!   §4) and the [`PendingSignIn`] kept meanwhile: those values with the local authorization
//!   request in progress, sealed ([`seal`], AES-256-GCM under the server's secret) and bound
//!   to the browser's CSRF cookie, for [`PENDING_TTL`] seconds.
//! - [`check_callback`]: the provider's answer. Its `state` must be the pending one
//!   (compared in constant time, RFC 6749 §10.12); the `iss` parameter (RFC 9207 §2.4) must be
//!   present when the provider's metadata says it sends it, and equal to the issuer whenever
//!   present; an `error` is the user's refusal, which the client hears as `access_denied`.
//! - [`token_request`] / [`id_token_of`]: the code redeemed at the provider's token endpoint
//!   with `client_secret_basic` (RFC 6749 §2.3.1) and the PKCE verifier.
//! - [`verify_id_token`]: the ID token (OpenID Connect Core §3.1.3.7): signed by a key of the
//!   provider's JWKS with an algorithm of the allow-list ([`ALGORITHMS`]: never `none`, never
//!   an HMAC), fetched through [`RemoteKeys`] and fetched again once when no cached key
//!   verifies it (the provider may have rotated its key); `iss` the issuer; `aud` naming
//!   Tessera's client id, with `azp` equal to it when there are several audiences or an
//!   `azp`; `exp`, `iat` and `nbf` within [`LEEWAY`]; `nonce` the pending one.
//! - [`UpstreamSignIn`]: the verified claims to the local user
//!   ([`super::external::resolve_user`]) and an [`Identity`] like any other sign-in's.

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::external::{resolve_user, ExternalClaims, AMR_EXTERNAL};
use super::{Identity, SignInError, SignInMethod};
use crate::audience::Audience;
pub use crate::client_keys::ALGORITHMS;
use crate::client_keys::{ClientKeys, SignatureError};
use crate::cx::RemoteKeys;
use crate::model::IdpRecord;
use crate::params::Params;
use crate::secret::{random_bytes, Secret};
use crate::store::{Store, UserStore};

/// The scope asked of the provider (OpenID Connect Core §5.4).
pub const SCOPE: &str = "openid email profile";
/// How long a sign-in at the provider may take, seconds.
pub const PENDING_TTL: i64 = 10 * 60;
/// Clock difference tolerated with the provider, seconds.
pub const LEEWAY: i64 = 60;
/// The oldest `iat` accepted, seconds before now (beyond [`LEEWAY`]): an ID token is redeemed
/// moments after it is made.
pub const MAX_ID_TOKEN_AGE: i64 = 10 * 60;
/// Longest `sub` accepted (OpenID Connect Core §2: at most 255 ASCII characters).
pub const MAX_SUBJECT_LEN: usize = 255;
/// Longest other string claim kept (an email address, a name).
const MAX_CLAIM_LEN: usize = 320;

/// Why a sign-in through a provider did not succeed. Each message is safe to log and names
/// no secret; the user sees one general message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The provider's metadata cannot be used.
    #[error("the provider's metadata is not usable: {0}")]
    Discovery(String),
    /// No sign-in through a provider is pending in this browser, or the answer's `state` is
    /// not the pending one.
    #[error("the provider's answer does not belong to a sign-in of this browser")]
    State,
    /// The answer's `iss` is missing though the provider sends it, or names another issuer
    /// (RFC 9207 §2.4).
    #[error("the provider's answer has a missing or wrong iss")]
    Issuer,
    /// The answer is not an authorization response.
    #[error("the provider's answer is malformed: {0}")]
    Callback(String),
    /// The token endpoint did not give an ID token.
    #[error("the provider's token endpoint refused or answered badly: {0}")]
    Token(String),
    /// The ID token is not valid.
    #[error("the provider's ID token is not valid: {0}")]
    IdToken(String),
}

/// The metadata of a provider that Tessera uses (OpenID Connect Discovery §3, RFC 9207 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// Its issuer: the configured one.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is redeemed.
    pub token_endpoint: String,
    /// Its signing keys.
    pub jwks_uri: String,
    /// Whether its authorization responses carry `iss` (RFC 9207 §3).
    pub iss_parameter_supported: bool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    response_types_supported: Option<Vec<String>>,
}

/// Reads a provider's discovery document, fetched from
/// `<configured_issuer>/.well-known/openid-configuration`.
pub fn parse_discovery(
    configured_issuer: &str,
    document: &str,
) -> Result<ProviderMetadata, UpstreamError> {
    let bad = |why: &str| UpstreamError::Discovery(why.to_owned());
    let doc: Discovery =
        serde_json::from_str(document).map_err(|_| bad("not a JSON metadata document"))?;
    // OpenID Connect Discovery §4.3: the issuer must be exactly the one it was fetched for.
    if doc.issuer.as_deref() != Some(configured_issuer) {
        return Err(bad("its issuer is not the configured one"));
    }
    if let Some(types) = &doc.response_types_supported {
        if !types.iter().any(|t| t == "code") {
            return Err(bad("it does not support response_type=code"));
        }
    }
    let endpoint = |v: Option<String>, name: &str| -> Result<String, UpstreamError> {
        let v = v.ok_or_else(|| UpstreamError::Discovery(format!("it names no {name}")))?;
        if same_scheme(configured_issuer, &v) {
            Ok(v)
        } else {
            Err(UpstreamError::Discovery(format!(
                "its {name} is not an absolute URL of the issuer's scheme"
            )))
        }
    };
    Ok(ProviderMetadata {
        issuer: configured_issuer.to_owned(),
        authorization_endpoint: endpoint(doc.authorization_endpoint, "authorization_endpoint")?,
        token_endpoint: endpoint(doc.token_endpoint, "token_endpoint")?,
        jwks_uri: endpoint(doc.jwks_uri, "jwks_uri")?,
        iss_parameter_supported: doc.authorization_response_iss_parameter_supported,
    })
}

/// Whether `url` is an absolute URL with a host, of the scheme of `issuer` (https; http only
/// for an issuer configured with http, as on a loopback test bed), without a fragment.
fn same_scheme(issuer: &str, url: &str) -> bool {
    let scheme = if issuer.starts_with("https://") {
        "https://"
    } else if issuer.starts_with("http://") {
        "http://"
    } else {
        return false;
    };
    url.strip_prefix(scheme).is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !url.contains('#')
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// A sign-in through a provider in progress: kept sealed in the browser meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The provider's name ([`IdpRecord::name`]).
    pub idp: String,
    state: String,
    nonce: String,
    verifier: String,
    /// The local authorization request in progress, to continue after the sign-in.
    pub request: Vec<(String, String)>,
    /// The dialect that request goes through ([`crate::dialect`]), by name: the flow keeps
    /// it across the sign-in, as the local forms keep it sealed.
    #[serde(default)]
    pub dialect: Option<String>,
    exp: i64,
}

/// A sign-in through a provider, started.
#[derive(Debug, Clone)]
pub struct Started {
    /// Where to send the browser.
    pub authorization_url: String,
    /// What to keep until the provider answers ([`seal`]).
    pub pending: PendingSignIn,
}

/// Options of the authorization request sent to the provider.
#[derive(Debug, Clone, Default)]
pub struct StartOptions<'a> {
    /// Ask the provider to authenticate the user again (`prompt=login`): the local request
    /// asked for that.
    pub login: bool,
    /// The address the user typed, as `login_hint` (OpenID Connect Core §3.1.2.1).
    pub login_hint: Option<&'a str>,
    /// The local request's `max_age`, passed on: the provider's `auth_time` then satisfies it.
    pub max_age: Option<i64>,
}

fn random_value() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Starts a sign-in at the provider `meta` (registered as `idp`) for the local authorization
/// request `request`; the provider sends the browser back to `redirect_uri`.
pub fn start(
    meta: &ProviderMetadata,
    idp: &IdpRecord,
    redirect_uri: &str,
    request: Vec<(String, String)>,
    options: &StartOptions<'_>,
    now: i64,
) -> Started {
    let pending = PendingSignIn {
        idp: idp.name.clone(),
        state: random_value(),
        nonce: random_value(),
        // 43 characters of the unreserved set (RFC 7636 §4.1).
        verifier: random_value(),
        request,
        dialect: None,
        exp: now.saturating_add(PENDING_TTL),
    };
    let challenge = URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA256, pending.verifier.as_bytes()).as_ref());
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &idp.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", crate::pkce::S256);
    if options.login {
        query.append_pair("prompt", "login");
    }
    if let Some(max_age) = options.max_age {
        query.append_pair("max_age", &max_age.to_string());
    }
    if let Some(hint) = options.login_hint {
        query.append_pair("login_hint", hint);
    }
    let endpoint = &meta.authorization_endpoint;
    // The endpoint may have a query of its own (OpenID Connect Core §3.1.2.1).
    let joint = if endpoint.contains('?') { '&' } else { '?' };
    Started {
        authorization_url: format!("{endpoint}{joint}{}", query.finish()),
        pending,
    }
}

fn binding(csrf_cookie: &str) -> String {
    format!("tessera/upstream-sign-in/v1:{csrf_cookie}")
}

/// The sealed form of `pending`, bound to the browser whose CSRF cookie is `csrf_cookie`
/// (`None` only if sealing failed).
pub fn seal(
    sealer: &crate::keys::Sealer,
    csrf_cookie: &str,
    pending: &PendingSignIn,
) -> Option<String> {
    let plain = serde_json::to_vec(pending).ok()?;
    let sealed = sealer.seal(&binding(csrf_cookie), &plain).ok()?;
    Some(URL_SAFE_NO_PAD.encode(sealed))
}

/// The pending sign-in sealed in `sealed`, if this server (or one sharing its secret) sealed
/// it for this browser's CSRF cookie and it has not expired.
pub fn open(
    sealer: &crate::keys::Sealer,
    csrf_cookie: &str,
    sealed: &str,
    now: i64,
) -> Option<PendingSignIn> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let plain = sealer.open(&binding(csrf_cookie), &bytes).ok()?;
    let pending: PendingSignIn = serde_json::from_slice(&plain).ok()?;
    (pending.exp > now).then_some(pending)
}

impl PendingSignIn {
    /// A key naming this sign-in, to accept its answer once
    /// ([`crate::store::ReplayStore::use_once`]), and until when it must be remembered.
    pub fn once_key(&self) -> (String, i64) {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.state.as_bytes());
        (
            format!("upstream_state:{}", URL_SAFE_NO_PAD.encode(digest.as_ref())),
            self.exp,
        )
    }
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// A code, to redeem.
    Code(String),
    /// An error (the user refused, or the provider could not authenticate them): RFC 6749
    /// §4.1.2.1's `error`, and its description if any.
    Refused {
        /// The `error` code.
        error: String,
        /// The `error_description`.
        description: Option<String>,
    },
}

/// Checks the provider's answer, the query of the callback, against the pending sign-in.
pub fn check_callback(
    meta: &ProviderMetadata,
    pending: &PendingSignIn,
    query: &Params,
) -> Result<CallbackOutcome, UpstreamError> {
    query
        .reject_duplicates()
        .map_err(|_| UpstreamError::Callback("a parameter is repeated".into()))?;
    let get = |name: &str| query.get(name).ok().flatten();
    // RFC 6749 §10.12: the answer must carry this browser's state, even when it is an error.
    let state_ok =
        get("state").is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.as_bytes())));
    if !state_ok {
        return Err(UpstreamError::State);
    }
    // RFC 9207 §2.4: required when the provider announced it, checked whenever present.
    match get("iss") {
        Some(iss) if iss == meta.issuer => {}
        Some(_) => return Err(UpstreamError::Issuer),
        None if meta.iss_parameter_supported => return Err(UpstreamError::Issuer),
        None => {}
    }
    if let Some(error) = get("error") {
        return Ok(CallbackOutcome::Refused {
            error: clip(error, 64),
            description: get("error_description").map(|d| clip(d, 256)),
        });
    }
    match get("code") {
        Some(code) if !code.is_empty() => Ok(CallbackOutcome::Code(code.to_owned())),
        _ => Err(UpstreamError::Callback("no code".into())),
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// The token request redeeming a code (RFC 6749 §4.1.3, RFC 7636 §4.5).
#[derive(Debug)]
pub struct TokenRequest {
    /// The provider's token endpoint.
    pub url: String,
    /// The `Authorization` header: `client_secret_basic` (RFC 6749 §2.3.1). A secret.
    pub authorization: Secret,
    /// The form body.
    pub body: String,
}

/// The request redeeming `code` at the provider, authenticated with `client_secret`.
pub fn token_request(
    meta: &ProviderMetadata,
    idp: &IdpRecord,
    client_secret: &Secret,
    code: &str,
    redirect_uri: &str,
    pending: &PendingSignIn,
) -> TokenRequest {
    // RFC 6749 §2.3.1: both form-encoded before they are joined and encoded in base64.
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let basic = STANDARD.encode(format!(
        "{}:{}",
        encode(&idp.client_id),
        encode(client_secret.expose())
    ));
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", &pending.verifier)
        .finish();
    TokenRequest {
        url: meta.token_endpoint.clone(),
        authorization: Secret::new(format!("Basic {basic}")),
        body,
    }
}

/// The ID token of the token endpoint's answer (`success`: a 2xx status).
pub fn id_token_of(success: bool, body: &[u8]) -> Result<String, UpstreamError> {
    #[derive(Deserialize)]
    struct Answer {
        id_token: Option<String>,
        error: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| UpstreamError::Token("the answer is not JSON".into()))?;
    match (success, answer.id_token, answer.error) {
        (true, Some(t), None) if !t.is_empty() => Ok(t),
        (true, _, _) => Err(UpstreamError::Token("the answer has no ID token".into())),
        (false, _, error) => Err(UpstreamError::Token(format!(
            "error {}",
            clip(error.as_deref().unwrap_or("(none)"), 64)
        ))),
    }
}

/// The claims of an ID token that are checked or kept.
#[derive(Deserialize)]
struct IdClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    nonce: Option<String>,
    auth_time: Option<i64>,
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
    preferred_username: Option<String>,
}

/// An ID token whose signature and claims were verified: only [`verify_id_token`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedIdToken {
    claims: ExternalClaims,
    auth_time: Option<i64>,
}

impl VerifiedIdToken {
    /// Who the provider says signed in.
    pub fn claims(&self) -> &ExternalClaims {
        &self.claims
    }
}

/// Verifies the ID token the provider `meta` issued to `client_id` for the `pending`
/// sign-in, at `now`, with the provider's keys fetched through `remote`.
pub async fn verify_id_token(
    remote: &dyn RemoteKeys,
    meta: &ProviderMetadata,
    client_id: &str,
    pending: &PendingSignIn,
    id_token: &str,
    now: i64,
) -> Result<VerifiedIdToken, UpstreamError> {
    verify_signature(remote, &meta.jwks_uri, id_token)
        .await
        .map_err(|e| {
            UpstreamError::IdToken(match e {
                SignatureError::Algorithm => "its algorithm is not accepted".into(),
                SignatureError::Malformed => "it is not a compact JWS".into(),
                SignatureError::KidRequired => "it names no kid".into(),
                SignatureError::CritMalformed | SignatureError::CritUnsupported => {
                    "its header has crit".into()
                }
                SignatureError::Keys | SignatureError::Signature => {
                    "no key of the provider verifies its signature".into()
                }
            })
        })?;
    let claims: IdClaims = id_token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| UpstreamError::IdToken("its claims are not a JSON object".into()))?;
    check_claims(&meta.issuer, client_id, &pending.nonce, &claims, now)
        .map_err(|why| UpstreamError::IdToken(why.into()))?;
    Ok(verified(&meta.issuer, claims))
}

/// The signature check with the keys at `jwks_uri`: the cached copy, then, if no key of it
/// verifies the token (an unknown `kid`: the provider may have rotated its key), one fresh
/// fetch ([`RemoteKeys::jwks`] bounds how often).
async fn verify_signature(
    remote: &dyn RemoteKeys,
    jwks_uri: &str,
    jws: &str,
) -> Result<(), SignatureError> {
    let check = |text: String| {
        let keys = ClientKeys::from_published_jwks(&text);
        let jws = jws.to_owned();
        remote.check_signature(Box::new(move || keys.verify_signature(&jws)))
    };
    let first = match remote.jwks(jwks_uri, false).await {
        Ok(text) => check(text).await,
        Err(_) => Err(SignatureError::Keys),
    };
    match first {
        Err(SignatureError::Signature | SignatureError::Keys | SignatureError::KidRequired) => {
            match remote.jwks(jwks_uri, true).await {
                Ok(text) => check(text).await,
                Err(_) => Err(SignatureError::Keys),
            }
        }
        other => other,
    }
}

/// The claim rules of OpenID Connect Core §3.1.3.7 (and §2 for `sub`).
fn check_claims(
    issuer: &str,
    client_id: &str,
    nonce: &str,
    c: &IdClaims,
    now: i64,
) -> Result<(), &'static str> {
    if c.iss.as_deref() != Some(issuer) {
        return Err("its iss is not the provider's issuer");
    }
    let Some(aud) = &c.aud else {
        return Err("it has no aud");
    };
    if !aud.contains(client_id) {
        return Err("its aud does not name this server's client id");
    }
    if (aud.values().len() > 1 || c.azp.is_some()) && c.azp.as_deref() != Some(client_id) {
        return Err("its azp is not this server's client id");
    }
    let Some(exp) = c.exp else {
        return Err("it has no exp");
    };
    if exp.saturating_add(LEEWAY) <= now {
        return Err("it has expired");
    }
    let Some(iat) = c.iat else {
        return Err("it has no iat");
    };
    if iat > now.saturating_add(LEEWAY) {
        return Err("it was issued in the future");
    }
    if now.saturating_sub(iat) > MAX_ID_TOKEN_AGE.saturating_add(LEEWAY) {
        return Err("it was issued too long ago");
    }
    if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY)) {
        return Err("it is not valid yet");
    }
    let nonce_ok = c
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !nonce_ok {
        return Err("its nonce is not the one sent");
    }
    match c.sub.as_deref() {
        Some(sub) if !sub.is_empty() && sub.len() <= MAX_SUBJECT_LEN => Ok(()),
        _ => Err("its sub is missing or too long"),
    }
}

fn verified(issuer: &str, c: IdClaims) -> VerifiedIdToken {
    let keep = |v: Option<String>| v.filter(|s| !s.is_empty() && s.len() <= MAX_CLAIM_LEN);
    let email_verified = match c.email_verified {
        Some(serde_json::Value::Bool(b)) => b,
        // Some providers send the JSON string.
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    };
    VerifiedIdToken {
        claims: ExternalClaims {
            issuer: issuer.to_owned(),
            subject: c.sub.unwrap_or_default(),
            email: keep(c.email),
            email_verified,
            name: keep(c.name),
            preferred_username: keep(c.preferred_username),
        },
        auth_time: c.auth_time,
    }
}

/// Signing in through the provider `idp`: a [`VerifiedIdToken`] to the local user it names
/// ([`resolve_user`]: the linked user, or one linked by email, or a new one).
pub struct UpstreamSignIn<'a> {
    store: &'a dyn Store,
    idp: &'a IdpRecord,
}

impl<'a> UpstreamSignIn<'a> {
    /// Sign-in through `idp`, linking identities in `store`.
    pub fn new(store: &'a dyn Store, idp: &'a IdpRecord) -> Self {
        Self { store, idp }
    }
}

#[async_trait]
impl SignInMethod for UpstreamSignIn<'_> {
    type Presented = VerifiedIdToken;

    async fn sign_in<S: UserStore + ?Sized>(
        &self,
        _users: &S,
        token: &VerifiedIdToken,
        now: i64,
    ) -> Result<Identity, SignInError> {
        if token.claims.issuer != self.idp.issuer {
            return Err(SignInError::Rejected);
        }
        let user = resolve_user(self.store, self.idp, &token.claims, now).await?;
        Ok(Identity {
            user,
            // The provider's `auth_time` when it is a plausible past time, else now.
            auth_time: token
                .auth_time
                .filter(|t| *t > 0 && *t <= now)
                .unwrap_or(now),
            amr: vec![AMR_EXTERNAL.to_owned()],
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::SigningAlg;
    use crate::keys::{generate_key, KeySet, Sealer};

    const NOW: i64 = 1_700_000_000;
    const ISSUER: &str = "https://idp.example";
    const REDIRECT: &str = "https://tessera.example/oauth2/sso/callback";

    fn sealer() -> Sealer {
        Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn idp() -> IdpRecord {
        IdpRecord {
            name: "corp".into(),
            display_name: "Corp".into(),
            issuer: ISSUER.into(),
            client_id: "tessera client".into(),
            client_secret_sealed: Vec::new(),
            email_domains: vec!["example.com".into()],
            link_by_email: false,
            created_at: NOW,
        }
    }

    fn meta(iss_supported: bool) -> ProviderMetadata {
        ProviderMetadata {
            issuer: ISSUER.into(),
            authorization_endpoint: format!("{ISSUER}/authorize"),
            token_endpoint: format!("{ISSUER}/token"),
            jwks_uri: format!("{ISSUER}/jwks"),
            iss_parameter_supported: iss_supported,
        }
    }

    fn started() -> Started {
        start(
            &meta(false),
            &idp(),
            REDIRECT,
            vec![("client_id".into(), "app".into())],
            &StartOptions::default(),
            NOW,
        )
    }

    #[test]
    fn discovery_needs_the_configured_issuer_and_its_scheme() {
        let doc = |v: serde_json::Value| v.to_string();
        let good = serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example/authorize",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://keys.idp.example/jwks",
            "response_types_supported": ["code", "id_token"],
            "authorization_response_iss_parameter_supported": true,
        });
        let m = parse_discovery(ISSUER, &doc(good.clone())).unwrap();
        assert_eq!(m.jwks_uri, "https://keys.idp.example/jwks");
        assert!(m.iss_parameter_supported);
        let with = |key: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[key] = value;
            parse_discovery(ISSUER, &doc(v))
        };
        for (case, result) in [
            (
                "another issuer",
                with("issuer", "https://evil.example".into()),
            ),
            (
                "issuer with a slash",
                with("issuer", "https://idp.example/".into()),
            ),
            ("no issuer", with("issuer", serde_json::Value::Null)),
            (
                "http endpoint",
                with("token_endpoint", "http://idp.example/token".into()),
            ),
            ("relative endpoint", with("jwks_uri", "/jwks".into())),
            (
                "no host",
                with("authorization_endpoint", "https:///x".into()),
            ),
            (
                "fragment",
                with("authorization_endpoint", "https://idp.example/a#f".into()),
            ),
            (
                "no code",
                with("response_types_supported", serde_json::json!(["id_token"])),
            ),
            ("not JSON", parse_discovery(ISSUER, "<html>")),
        ] {
            assert!(matches!(result, Err(UpstreamError::Discovery(_))), "{case}");
        }
        // An http issuer (a loopback test bed) may have http endpoints.
        let local = serde_json::json!({
            "issuer": "http://127.0.0.1:8080",
            "authorization_endpoint": "http://127.0.0.1:8080/authorize",
            "token_endpoint": "http://127.0.0.1:8080/token",
            "jwks_uri": "http://127.0.0.1:8080/jwks",
        });
        assert!(parse_discovery("http://127.0.0.1:8080", &doc(local)).is_ok());
    }

    #[test]
    fn the_authorization_request_carries_fresh_state_nonce_and_an_s256_challenge() {
        let a = started();
        let b = started();
        assert_ne!(a.pending.state, b.pending.state);
        assert_ne!(a.pending.nonce, b.pending.nonce);
        assert_ne!(a.pending.verifier, b.pending.verifier);
        let (endpoint, query) = a.authorization_url.split_once('?').unwrap();
        assert_eq!(endpoint, "https://idp.example/authorize");
        let q = Params::from_form(query.as_bytes()).unwrap();
        let get = |n: &str| q.get(n).unwrap().unwrap().to_owned();
        assert_eq!(get("response_type"), "code");
        assert_eq!(get("client_id"), "tessera client");
        assert_eq!(get("redirect_uri"), REDIRECT);
        assert_eq!(get("scope"), "openid email profile");
        assert_eq!(get("state"), a.pending.state);
        assert_eq!(get("nonce"), a.pending.nonce);
        assert_eq!(get("code_challenge_method"), "S256");
        assert!(crate::pkce::verify(
            &get("code_challenge"),
            "S256",
            &a.pending.verifier
        ));
        assert!(!q.contains("prompt") && !q.contains("login_hint"));
        // The verifier never leaves the server.
        assert!(!a.authorization_url.contains(&a.pending.verifier));
        let mut m = meta(false);
        m.authorization_endpoint = "https://idp.example/authorize?tenant=x".into();
        let options = StartOptions {
            login: true,
            login_hint: Some("alice@example.com"),
            max_age: Some(60),
        };
        let s = start(&m, &idp(), REDIRECT, Vec::new(), &options, NOW);
        assert!(s
            .authorization_url
            .starts_with("https://idp.example/authorize?tenant=x&"));
        assert!(s.authorization_url.contains("&prompt=login"));
        assert!(s.authorization_url.contains("&max_age=60"));
        assert!(s
            .authorization_url
            .contains("&login_hint=alice%40example.com"));
    }

    #[test]
    fn the_pending_sign_in_opens_only_in_its_browser_before_it_expires() {
        let s = sealer();
        let p = started().pending;
        let sealed = seal(&s, "cookie-a", &p).unwrap();
        assert!(!sealed.contains(&p.state), "sealed, not signed");
        assert_eq!(open(&s, "cookie-a", &sealed, NOW), Some(p.clone()));
        assert_eq!(
            open(&s, "cookie-a", &sealed, NOW + PENDING_TTL - 1),
            Some(p)
        );
        assert_eq!(open(&s, "cookie-a", &sealed, NOW + PENDING_TTL), None);
        assert_eq!(open(&s, "cookie-b", &sealed, NOW), None);
        let other = Sealer::from_secret(b"another secret of thirty-two by!").unwrap();
        assert_eq!(open(&other, "cookie-a", &sealed, NOW), None);
        assert_eq!(open(&s, "cookie-a", "garbage", NOW), None);
        // The pending authorization request cannot be swapped for the pending one of the
        // generic authorization page (another binding).
        let handle =
            crate::keys::Sealer::seal(&s, "tessera/authorize-request/v1:cookie-a", b"{}").unwrap();
        assert_eq!(
            open(&s, "cookie-a", &URL_SAFE_NO_PAD.encode(handle), NOW),
            None
        );
    }

    fn query(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn the_callback_needs_this_browsers_state_and_the_right_iss() {
        let p = started().pending;
        let st = p.state.clone();
        let ok = check_callback(&meta(false), &p, &query(&[("code", "c1"), ("state", &st)]));
        assert_eq!(ok, Ok(CallbackOutcome::Code("c1".into())));
        // A changed, missing or repeated state is refused, an error response included.
        let mut changed = st.clone();
        changed.pop();
        changed.push('x');
        for q in [
            query(&[("code", "c1"), ("state", &changed)]),
            query(&[("code", "c1")]),
            query(&[("code", "c1"), ("state", "")]),
            query(&[("error", "access_denied"), ("state", &changed)]),
        ] {
            assert_eq!(
                check_callback(&meta(false), &p, &q),
                Err(UpstreamError::State)
            );
        }
        assert!(matches!(
            check_callback(
                &meta(false),
                &p,
                &query(&[("code", "c1"), ("state", &st), ("state", &st)])
            ),
            Err(UpstreamError::Callback(_))
        ));
        // RFC 9207: a wrong iss is always refused; a missing one when it was announced.
        let wrong = query(&[
            ("code", "c1"),
            ("state", &st),
            ("iss", "https://evil.example"),
        ]);
        assert_eq!(
            check_callback(&meta(false), &p, &wrong),
            Err(UpstreamError::Issuer)
        );
        assert_eq!(
            check_callback(&meta(true), &p, &wrong),
            Err(UpstreamError::Issuer)
        );
        let missing = query(&[("code", "c1"), ("state", &st)]);
        assert_eq!(
            check_callback(&meta(true), &p, &missing),
            Err(UpstreamError::Issuer)
        );
        let right = query(&[("code", "c1"), ("state", &st), ("iss", ISSUER)]);
        assert!(check_callback(&meta(true), &p, &right).is_ok());
        // The provider's refusal.
        let denied = query(&[
            ("error", "access_denied"),
            ("error_description", "no\u{7}"),
            ("state", &st),
        ]);
        assert_eq!(
            check_callback(&meta(false), &p, &denied),
            Ok(CallbackOutcome::Refused {
                error: "access_denied".into(),
                description: Some("no".into())
            })
        );
        assert!(matches!(
            check_callback(&meta(false), &p, &query(&[("state", &st)])),
            Err(UpstreamError::Callback(_))
        ));
    }

    #[test]
    fn the_token_request_uses_client_secret_basic_and_the_verifier() {
        let p = started().pending;
        let r = token_request(
            &meta(false),
            &idp(),
            &Secret::new("s:e&c"),
            "c1",
            REDIRECT,
            &p,
        );
        assert_eq!(r.url, "https://idp.example/token");
        let basic = r.authorization.expose().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap();
        assert_eq!(decoded, "tessera+client:s%3Ae%26c");
        let creds = crate::client_auth::parse_basic(r.authorization.expose().as_bytes()).unwrap();
        assert_eq!(creds.client_id, "tessera client");
        assert_eq!(creds.secret.expose(), "s:e&c");
        let body = Params::from_form(r.body.as_bytes()).unwrap();
        assert_eq!(body.get("grant_type").unwrap(), Some("authorization_code"));
        assert_eq!(body.get("code").unwrap(), Some("c1"));
        assert_eq!(body.get("redirect_uri").unwrap(), Some(REDIRECT));
        assert_eq!(
            body.get("code_verifier").unwrap(),
            Some(p.verifier.as_str())
        );
        assert!(!body.contains("client_secret"));
        assert_eq!(
            id_token_of(true, br#"{"id_token":"a.b.c"}"#),
            Ok("a.b.c".into())
        );
        assert!(id_token_of(true, br#"{"access_token":"x"}"#).is_err());
        assert!(id_token_of(false, br#"{"error":"invalid_grant","id_token":"a.b.c"}"#).is_err());
        assert!(id_token_of(true, b"<html>").is_err());
    }

    /// Serves one JWKS on a plain fetch and another on a refresh; counts refreshes.
    struct Keys {
        cached: String,
        fresh: String,
        refreshes: Mutex<usize>,
    }

    #[async_trait]
    impl RemoteKeys for Keys {
        async fn jwks(&self, uri: &str, refresh: bool) -> Result<String, String> {
            assert_eq!(uri, "https://idp.example/jwks");
            if refresh {
                *self.refreshes.lock().unwrap() += 1;
                Ok(self.fresh.clone())
            } else {
                Ok(self.cached.clone())
            }
        }
    }

    fn key_set(records: &[crate::model::KeyRecord]) -> KeySet {
        KeySet::load(records, &sealer()).unwrap()
    }

    fn claims(p: &PendingSignIn) -> serde_json::Value {
        serde_json::json!({
            "iss": ISSUER, "sub": "u-1", "aud": "tessera client", "exp": NOW + 300,
            "iat": NOW, "nonce": p.nonce, "email": "alice@example.com",
            "email_verified": true, "name": "Alice", "auth_time": NOW - 5,
        })
    }

    #[tokio::test]
    async fn an_id_token_verifies_with_the_providers_keys_fetched_again_after_a_rotation() {
        let old = generate_key(SigningAlg::Es256, &sealer(), NOW, NOW).unwrap();
        let new = generate_key(SigningAlg::Es256, &sealer(), NOW, NOW).unwrap();
        let signer = key_set(std::slice::from_ref(&new));
        let key = signer.signing_key(NOW).unwrap();
        let p = started().pending;
        let token = crate::jwt::encode_json(key, &claims(&p)).unwrap();
        // The cached copy has only the old key: one refresh finds the new one.
        let remote = Keys {
            cached: key_set(std::slice::from_ref(&old)).jwks(NOW).to_string(),
            fresh: key_set(&[old, new]).jwks(NOW).to_string(),
            refreshes: Mutex::new(0),
        };
        let v = verify_id_token(&remote, &meta(false), "tessera client", &p, &token, NOW)
            .await
            .unwrap();
        assert_eq!(*remote.refreshes.lock().unwrap(), 1);
        assert_eq!(v.claims().subject, "u-1");
        assert_eq!(v.claims().issuer, ISSUER);
        assert_eq!(v.claims().email.as_deref(), Some("alice@example.com"));
        assert!(v.claims().email_verified);
        assert_eq!(v.auth_time, Some(NOW - 5));
        // A key the provider does not publish: refused, after one refresh.
        let stranger = generate_key(SigningAlg::Es256, &sealer(), NOW, NOW).unwrap();
        let forged =
            crate::jwt::encode_json(key_set(&[stranger]).signing_key(NOW).unwrap(), &claims(&p))
                .unwrap();
        let e = verify_id_token(&remote, &meta(false), "tessera client", &p, &forged, NOW).await;
        assert!(matches!(e, Err(UpstreamError::IdToken(_))), "{e:?}");
        assert_eq!(*remote.refreshes.lock().unwrap(), 2);
        // Another nonce (a token of another sign-in): refused.
        let other = started().pending;
        let e = verify_id_token(&remote, &meta(false), "tessera client", &other, &token, NOW).await;
        assert_eq!(
            e.map(|_| ()),
            Err(UpstreamError::IdToken(
                "its nonce is not the one sent".into()
            ))
        );
        // `alg: none` and HMAC never verify, whatever the keys.
        let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        for alg in ["none", "HS256"] {
            let t = format!(
                "{}.{}.{}",
                enc(serde_json::json!({"alg": alg, "kid": key.kid})),
                enc(claims(&p)),
                URL_SAFE_NO_PAD.encode(b"sig")
            );
            let e = verify_id_token(&remote, &meta(false), "tessera client", &p, &t, NOW).await;
            assert!(matches!(e, Err(UpstreamError::IdToken(_))), "{alg}");
        }
    }

    #[test]
    fn the_id_token_claims_rules_of_openid_connect_core() {
        let p = started().pending;
        let check = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = claims(&p);
            edit(&mut v);
            let c: IdClaims = serde_json::from_value(v).unwrap();
            check_claims(ISSUER, "tessera client", &p.nonce, &c, NOW)
        };
        assert_eq!(check(&|_| {}), Ok(()));
        assert_eq!(
            check(&|v| v["exp"] = (NOW - 30).into()),
            Ok(()),
            "within leeway"
        );
        assert_eq!(
            check(&|v| {
                v["aud"] = serde_json::json!(["tessera client", "other"]);
                v["azp"] = "tessera client".into();
            }),
            Ok(())
        );
        let remove = |name: &'static str| {
            move |v: &mut serde_json::Value| {
                v.as_object_mut().unwrap().remove(name);
            }
        };
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let bad: Vec<(&str, Edit)> = vec![
            (
                "other iss",
                Box::new(|v| v["iss"] = "https://evil.example".into()),
            ),
            ("no iss", Box::new(remove("iss"))),
            ("other aud", Box::new(|v| v["aud"] = "other".into())),
            ("no aud", Box::new(remove("aud"))),
            (
                "several audiences without azp",
                Box::new(|v| v["aud"] = serde_json::json!(["tessera client", "other"])),
            ),
            (
                "azp of another client",
                Box::new(|v| v["azp"] = "other".into()),
            ),
            ("expired", Box::new(|v| v["exp"] = (NOW - 61).into())),
            ("no exp", Box::new(remove("exp"))),
            ("no iat", Box::new(remove("iat"))),
            ("iat ahead", Box::new(|v| v["iat"] = (NOW + 61).into())),
            ("iat long ago", Box::new(|v| v["iat"] = (NOW - 661).into())),
            ("nbf ahead", Box::new(|v| v["nbf"] = (NOW + 61).into())),
            ("other nonce", Box::new(|v| v["nonce"] = "n".into())),
            ("no nonce", Box::new(remove("nonce"))),
            ("no sub", Box::new(remove("sub"))),
            ("empty sub", Box::new(|v| v["sub"] = "".into())),
            ("long sub", Box::new(|v| v["sub"] = "s".repeat(256).into())),
        ];
        for (case, edit) in bad {
            assert!(check(&*edit).is_err(), "{case}");
        }
    }

    #[test]
    fn kept_claims_are_bounded() {
        let p = started().pending;
        let mut v = claims(&p);
        v["email_verified"] = "true".into();
        v["name"] = "n".repeat(1000).into();
        let c: IdClaims = serde_json::from_value(v).unwrap();
        let t = verified(ISSUER, c);
        assert!(t.claims.email_verified);
        assert_eq!(t.claims.name, None);
    }

    #[tokio::test]
    async fn the_sign_in_method_names_one_local_user_per_upstream_identity() {
        let store = crate::store::memory::MemoryStore::default();
        let provider = idp();
        let p = started().pending;
        let token = verified(ISSUER, serde_json::from_value(claims(&p)).unwrap());
        let method = UpstreamSignIn::new(&store, &provider);
        let first = method.sign_in(&store, &token, NOW).await.unwrap();
        let again = method.sign_in(&store, &token, NOW + 10).await.unwrap();
        assert_eq!(first.user.user_id, again.user.user_id);
        assert_eq!(first.auth_time, NOW - 5, "the provider's auth_time");
        assert_eq!(first.amr, vec![AMR_EXTERNAL.to_owned()]);
        // A token of another provider is not this provider's to vouch for.
        let mut other = idp();
        other.issuer = "https://other.example".into();
        let e = UpstreamSignIn::new(&store, &other)
            .sign_in(&store, &token, NOW)
            .await;
        assert!(matches!(e, Err(SignInError::Rejected)));
        // An auth_time in the future is not believed.
        let mut v = claims(&p);
        v["auth_time"] = (NOW + 100).into();
        let token = verified(ISSUER, serde_json::from_value(v).unwrap());
        let id = method.sign_in(&store, &token, NOW).await.unwrap();
        assert_eq!((id.auth_time, id.user.user_id), (NOW, first.user.user_id));
    }
}
