//! Pushed authorization requests (RFC 9126).
//!
//! Owns both halves of a pushed request, without HTTP:
//!
//! - [`push`] (the pushed authorization request endpoint, RFC 9126 §2): the client
//!   authenticates as at the token endpoint ([`client_auth::authenticate`], every method it
//!   has; a public client names its `client_id`), its parameters are checked as the
//!   authorization endpoint would check them ([`authorize`]: registered redirect URI,
//!   `response_type`, scope, PKCE), a pushed `request_uri` is refused (§2.1) and a `client_id`
//!   other than the authenticated client's is refused. The answer (§2.2) is a `request_uri`
//!   valid for `par_ttl` seconds (60 by default).
//! - [`resolve`] (the authorization endpoint, RFC 9126 §4): a request naming `request_uri`
//!   is replaced by the pushed parameters only (any other parameter sent with it is ignored,
//!   RFC 9101 §5 as RFC 9126 §4 requires); the `client_id` sent with it must be the one it
//!   was pushed by; an unknown, altered, expired, already used or other client's
//!   `request_uri` is `invalid_request_uri` (RFC 9101 §6.2), shown on the error page and
//!   never redirected (the redirect URI it would go to is inside the request).
//!
//! **The `request_uri`** is `urn:ietf:params:oauth:request_uri:` followed by the pushed
//! request sealed (AES-256-GCM under the server's secret, [`crate::keys::Sealer`]): the
//! client id, the expiry, the parameters and 256 random bits. It cannot be read, altered or
//! made without the secret, works on every node sharing it, and needs no table. It is single
//! use: the first authorization request that presents it records the SHA-256 of its random
//! part in the store's replay set ([`crate::store::ReplayStore::use_once`], kept until the
//! expiry), and every later one is refused; the value itself is never stored. A presentation
//! by another client (a wrong `client_id`) is refused before it is recorded, so it cannot
//! spend the owner's request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::client_auth::{self, BasicCredentials};
use crate::cx::Cx;
use crate::endpoint::authorize::{self, AuthorizeError};
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::secret::{random_bytes, SecretHash};

/// The prefix of every `request_uri` (RFC 9126 §2.2).
pub const URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Most bytes of pushed parameters, names and values together (the `request_uri` carries
/// them, sealed, through the browser); more is refused with 413 (RFC 9126 §2.3).
pub const MAX_PUSHED: usize = 8192;

/// Parameters of client authentication: they authenticate the push and are not part of the
/// authorization request.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

/// The associated data of the seal: a sealed value of another purpose never opens as a
/// pushed request.
const BINDING: &str = "tessera/pushed-authorization-request/v1";

#[derive(Serialize, Deserialize)]
struct Pushed {
    /// 256 random bits, URL-safe base64: its hash marks the request used.
    id: String,
    client_id: String,
    exp: i64,
    params: Vec<(String, String)>,
}

/// The answer to a push (RFC 9126 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResponse {
    /// The reference to the pushed request, for the authorization request.
    pub request_uri: String,
    /// Its lifetime, seconds.
    pub expires_in: i64,
}

/// The error of an authorization check, as the push answers it (RFC 9126 §2.3): the
/// error of a trusted redirect is read back from its query.
fn push_error(e: AuthorizeError) -> OAuthError {
    match e {
        AuthorizeError::Page(e) => e,
        AuthorizeError::Redirect(url) => {
            let query = url.split_once('?').map_or("", |(_, q)| q);
            let mut code = None;
            let mut description = String::new();
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                match k.as_ref() {
                    "error" => code = Some(v.into_owned()),
                    "error_description" => description = v.into_owned(),
                    _ => {}
                }
            }
            let code = match code.as_deref() {
                Some("unauthorized_client") => ErrorCode::UnauthorizedClient,
                Some("invalid_scope") => ErrorCode::InvalidScope,
                Some("unsupported_response_type") => ErrorCode::UnsupportedResponseType,
                Some("invalid_target") => ErrorCode::InvalidTarget,
                Some("access_denied") => ErrorCode::AccessDenied,
                _ => ErrorCode::InvalidRequest,
            };
            OAuthError::new(code, description)
        }
    }
}

/// Handles a push: authenticates the client, checks the authorization request and seals it
/// into a `request_uri` (RFC 9126 §2).
pub async fn push(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<PushResponse, OAuthError> {
    // RFC 6749 §3.1, as at the token endpoint.
    params.reject_duplicates()?;
    let (client, _method) = client_auth::authenticate(cx, basic, params).await?;
    if params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "request_uri may not be pushed (RFC 9126 §2.1)",
        ));
    }
    match params.get("client_id")? {
        Some(id) if id != client.client_id => {
            return Err(OAuthError::invalid_request(
                "client_id is not the authenticated client",
            ))
        }
        _ => {}
    }
    let mut pairs: Vec<(String, String)> = params
        .pairs()
        .iter()
        .filter(|(k, _)| !CREDENTIALS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !params.contains("client_id") {
        pairs.push(("client_id".to_owned(), client.client_id.clone()));
    }
    // RFC 9449 §10.1: a DPoP proof with the push binds the code to its key, as `dpop_jkt`
    // would; with both, they must name the same key.
    if let Some(input) = &cx.request.dpop {
        let proof = crate::dpop::check(cx, input, None).await?;
        match params.get("dpop_jkt")? {
            Some(jkt) if jkt != proof.jkt => {
                return Err(OAuthError::invalid_dpop_proof(
                    "dpop_jkt is not the thumbprint of the DPoP proof's key",
                ))
            }
            Some(_) => {}
            None => pairs.push(("dpop_jkt".to_owned(), proof.jkt)),
        }
    }
    if pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > MAX_PUSHED {
        return Err(OAuthError::new(
            ErrorCode::PushTooLarge,
            format!("the pushed parameters exceed {MAX_PUSHED} bytes"),
        ));
    }
    let checked = Params::from_pairs(pairs)?;
    authorize::validate_pushed(cx, &checked)
        .await
        .map_err(push_error)?;
    let ttl = cx.config.par_ttl;
    let pushed = Pushed {
        id: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
        client_id: client.client_id,
        exp: cx.now.saturating_add(ttl),
        params: checked.pairs().to_vec(),
    };
    let plain = serde_json::to_vec(&pushed).map_err(OAuthError::server_error)?;
    let sealed = cx
        .sealer
        .seal(BINDING, &plain)
        .map_err(OAuthError::server_error)?;
    Ok(PushResponse {
        request_uri: format!("{URN_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)),
        expires_in: ttl,
    })
}

fn invalid_request_uri(description: &'static str) -> AuthorizeError {
    AuthorizeError::Page(OAuthError::new(ErrorCode::InvalidRequestUri, description))
}

/// The parameters an authorization request stands for: those it carries, or, when it names
/// `request_uri`, the pushed ones (with `request_uri`, which marks them pushed), the
/// `request_uri` then being used up (RFC 9126 §4).
pub async fn resolve(cx: &Cx<'_>, params: Params) -> Result<Params, AuthorizeError> {
    let Some(uri) = params.get("request_uri").map_err(AuthorizeError::Page)? else {
        return Ok(params);
    };
    let client_id = params
        .get("client_id")
        .map_err(AuthorizeError::Page)?
        .ok_or_else(|| {
            AuthorizeError::Page(OAuthError::invalid_request(
                "client_id is missing (RFC 9126 §4)",
            ))
        })?;
    let unknown = "the request_uri is unknown, expired, already used or another client's";
    let sealed = uri
        .strip_prefix(URN_PREFIX)
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .ok_or_else(|| invalid_request_uri(unknown))?;
    let pushed: Pushed = cx
        .sealer
        .open(BINDING, &sealed)
        .ok()
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or_else(|| invalid_request_uri(unknown))?;
    let same_client: bool = pushed
        .client_id
        .as_bytes()
        .ct_eq(client_id.as_bytes())
        .into();
    if !same_client || pushed.exp <= cx.now {
        return Err(invalid_request_uri(unknown));
    }
    let key = format!("par:{}", SecretHash::of(&pushed.id).as_str());
    let first = cx
        .store
        .use_once(&key, pushed.exp)
        .await
        .map_err(|e| AuthorizeError::Page(e.into()))?;
    if !first {
        return Err(invalid_request_uri(unknown));
    }
    let mut pairs = pushed.params;
    pairs.push(("request_uri".to_owned(), uri.to_owned()));
    Params::from_pairs(pairs).map_err(AuthorizeError::Page)
}
