//! The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, OpenID Connect Core §3.1.2).
//!
//! Owns the rules of an authorization request, without HTTP: [`validate`] checks the request
//! in the order that decides where an error may go (an unknown client or an unregistered
//! redirect URI is shown on a page and never redirected to, RFC 6749 §4.1.2.1; every later
//! error goes back to the client with `state` and `iss`); [`next_step`] decides whether the
//! user must sign in, must consent, or gets a code; [`issue_code`] stores the code (hashed)
//! and builds the success redirect (RFC 9207 `iss`); [`proceed`] takes a request one step on
//! from what the user did on a page (sign-in, consent), using [`crate::session`] for whether
//! the sign-in is recent enough and [`crate::consent`] for what consent covers.
//!
//! **Consent is remembered only for a client whose identity the redirect URI assures**
//! ([`remembers_consent`]): a confidential client (it authenticates to redeem the code) or a
//! public one answered at an `https` redirect URI. A public client answered at a loopback or
//! private-use-scheme redirect URI (a native app, RFC 8252 §7) cannot be told from another app
//! on the same device that listens on another port or claims the same scheme; RFC 8252 §8.6
//! says such requests should not be processed automatically, so the user is asked every time,
//! whatever consent was given before and whatever `--skip-consent` says, and `prompt=none`
//! gets `consent_required` (as Auth0 does for `localhost` redirects).
//!
//! Through a dialect ([`crate::dialect`]), a code lives at most the dialect's `code_ttl`, the
//! redirect carrying it gets the dialect's parameters (after `code`, `state` and `iss`, never
//! replacing them), and the parameters the dialect carries are kept on the code under
//! [`dialect::CARRIED`], to be claims of its tokens.
//!
//! Parameters Tessera does not know are kept on the code as JSON (a product's `productId`),
//! at most [`MAX_EXTRA_PARAMS`] of them, each (name and value) at most [`MAX_EXTRA_LEN`]
//! bytes and all together at most [`MAX_EXTRA_TOTAL`]; more is refused with
//! `invalid_request`, sent back to the client.

use serde_json::{Map, Value};

use crate::consent;
use crate::cx::Cx;
use crate::dialect;
use crate::error::OAuthError;
use crate::grant::types;
use crate::model::{ClientRecord, CodeRecord, SessionRecord};
use crate::params::Params;
use crate::pkce;
use crate::redirect_uri;
use crate::scope::ScopeSet;
use crate::secret::{self, generate_id};
use crate::session;

/// Parameters this endpoint understands; any other is kept on the grant as extra.
const KNOWN: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "ui_locales",
    "response_mode",
    "login_hint",
    "display",
    "claims_locales",
    "acr_values",
    "id_token_hint",
    "resource",
    "audience",
    "request_uri",
];

/// Longest `state` or `nonce` accepted.
const MAX_VALUE: usize = 1024;

/// Most parameters Tessera does not know that one request may carry (kept on the code).
pub const MAX_EXTRA_PARAMS: usize = 16;

/// Longest such parameter, name and value together, in bytes.
pub const MAX_EXTRA_LEN: usize = 1024;

/// Most bytes of such parameters, names and values together, in one request.
pub const MAX_EXTRA_TOTAL: usize = 4096;

/// `prompt` values (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No page may be shown.
    pub none: bool,
    /// Sign in again even with a session.
    pub login: bool,
    /// Ask for consent even if given before.
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client.
    pub client: ClientRecord,
    /// Where the answer goes (registered, exact match).
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (else the client's one registered URI is
    /// used): the token request must then repeat it (RFC 6749 §4.1.3).
    pub redirect_uri_named: bool,
    /// Requested scope (the client's default if none was asked).
    pub scope: ScopeSet,
    /// Opaque value echoed back.
    pub state: Option<String>,
    /// OpenID Connect nonce.
    pub nonce: Option<String>,
    /// PKCE challenge and method.
    pub pkce: Option<(String, &'static str)>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// `ui_locales`, as given.
    pub ui_locales: Option<String>,
    /// Parameters Tessera does not know (such as a `productId`), kept on the grant.
    pub extra: Map<String, Value>,
}

/// Where an authorization error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user on a page: the client or its redirect URI cannot be trusted.
    Page(OAuthError),
    /// Sent back to the client.
    Redirect(String),
}

/// Builds a redirect to `uri` with parameters added to its query.
pub fn redirect_with(uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// The redirect that carries an error to the client (RFC 6749 §4.1.2.1, RFC 9207).
pub fn error_redirect(
    cx: &Cx<'_>,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
) -> String {
    let mut p: Vec<(&str, &str)> = vec![
        ("error", err.code.as_str()),
        ("error_description", &err.description),
    ];
    if let Some(s) = state {
        p.push(("state", s));
    }
    p.push(("iss", &cx.config.issuer));
    redirect_with(redirect_uri, &p)
}

fn page(description: &'static str) -> AuthorizeError {
    AuthorizeError::Page(OAuthError::invalid_request(description))
}

/// Checks an authorization request. One that names `request_uri` was pushed first and
/// resolved by [`super::par::resolve`] (it holds the pushed parameters only); one that does
/// not is refused when the server or the client requires pushed requests (RFC 9126 §5, §6).
pub async fn validate(cx: &Cx<'_>, params: &Params) -> Result<AuthorizeRequest, AuthorizeError> {
    validate_as(cx, params, false).await
}

/// Checks the parameters of an authorization request as they are pushed (RFC 9126 §2.1:
/// validated as the authorization endpoint would, before a `request_uri` is given out).
pub(crate) async fn validate_pushed(
    cx: &Cx<'_>,
    params: &Params,
) -> Result<AuthorizeRequest, AuthorizeError> {
    validate_as(cx, params, true).await
}

async fn validate_as(
    cx: &Cx<'_>,
    params: &Params,
    pushing: bool,
) -> Result<AuthorizeRequest, AuthorizeError> {
    // Until the client and redirect URI are trusted, nothing may be redirected.
    let single = |name: &str| params.get(name).map_err(AuthorizeError::Page);
    let client_id = single("client_id")?.ok_or_else(|| page("client_id is missing"))?;
    let client = cx
        .store
        .get_client(client_id)
        .await
        .map_err(|e| AuthorizeError::Page(e.into()))?
        .filter(|c| cx.config.serves_env(&c.env))
        .ok_or_else(|| page("unknown client"))?;
    let redirect_uri = match single("redirect_uri")? {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect_uri::matches(r, uri)) =>
        {
            uri.to_owned()
        }
        Some(_) => return Err(page("redirect_uri is not registered for this client")),
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => return Err(page("redirect_uri is missing")),
        },
    };
    // A repeated `state` cannot be echoed, but the redirect URI is trusted: the error goes
    // back without it.
    let (state, state_error) = match params.get("state") {
        Ok(s) => (s.map(str::to_owned), None),
        Err(e) => (None, Some(e)),
    };
    let fail = |err: OAuthError| {
        AuthorizeError::Redirect(error_redirect(cx, &redirect_uri, state.as_deref(), &err))
    };
    if let Some(e) = state_error {
        return Err(fail(e));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_VALUE) {
        return Err(fail(OAuthError::invalid_request("state is too long")));
    }
    params.reject_duplicates().map_err(fail)?;
    match params.get("response_type").map_err(fail)? {
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                crate::error::ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is missing",
            )))
        }
    }
    if !matches!(
        params.get("response_mode").map_err(fail)?,
        None | Some("query")
    ) {
        return Err(fail(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )));
    }
    if params.contains("request") {
        return Err(fail(OAuthError::invalid_request(
            "request objects are not supported",
        )));
    }
    // A request that names `request_uri` here was resolved from a push (the route resolves
    // every `request_uri` before validating; a push may not name one, RFC 9126 §2.1).
    let pushed = pushing || params.contains("request_uri");
    if !pushed && (cx.config.require_par || client.user_flow.require_par) {
        return Err(fail(OAuthError::invalid_request(
            "authorization requests must be pushed first (RFC 9126): \
             POST them to the pushed_authorization_request_endpoint",
        )));
    }
    if !client.allows_grant(types::AUTHORIZATION_CODE) {
        return Err(fail(OAuthError::unauthorized_client(
            "this client may not use the authorization code flow",
        )));
    }
    let scope = match params.get("scope").map_err(fail)? {
        None => client.scopes.clone(),
        Some(s) => {
            let asked = ScopeSet::parse(s).map_err(fail)?;
            asked.check_within(&client.scopes).map_err(fail)?;
            asked
        }
    };
    let challenge = params.get("code_challenge").map_err(fail)?;
    let method = params.get("code_challenge_method").map_err(fail)?;
    let pkce = match challenge {
        Some(c) => {
            let m = pkce::check_challenge(c, method, client.user_flow.allow_plain_pkce)
                .map_err(fail)?;
            Some((c.to_owned(), m))
        }
        None if client.public || client.user_flow.require_pkce => {
            return Err(fail(OAuthError::invalid_request(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            )))
        }
        None if method.is_some() => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            )))
        }
        None => None,
    };
    let nonce = params.get("nonce").map_err(fail)?.map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_VALUE) {
        return Err(fail(OAuthError::invalid_request("nonce is too long")));
    }
    let mut prompt = Prompt::default();
    for p in params.get("prompt").map_err(fail)?.unwrap_or("").split(' ') {
        match p {
            "" | "select_account" => {}
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => return Err(fail(OAuthError::invalid_request("unknown prompt value"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        )));
    }
    let max_age = match params.get("max_age").map_err(fail)? {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| fail(OAuthError::invalid_request("max_age must be seconds")))?,
        ),
    };
    // RFC 9449 §10: `dpop_jkt` binds the code to a DPoP key; it stays with the code among the
    // parameters kept ([`crate::sender::check_code_binding`] reads it).
    if let Some(jkt) = params.get("dpop_jkt").map_err(fail)? {
        if !crate::dpop::is_thumbprint(jkt) {
            return Err(fail(OAuthError::invalid_request(
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 §10)",
            )));
        }
    }
    let unknown: Vec<&(String, String)> = params
        .pairs()
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .collect();
    if unknown.len() > MAX_EXTRA_PARAMS {
        return Err(fail(OAuthError::invalid_request(format!(
            "at most {MAX_EXTRA_PARAMS} parameters this server does not know are accepted"
        ))));
    }
    if unknown
        .iter()
        .any(|(k, v)| k.len() + v.len() > MAX_EXTRA_LEN)
    {
        return Err(fail(OAuthError::invalid_request(format!(
            "a parameter this server does not know is longer than {MAX_EXTRA_LEN} bytes"
        ))));
    }
    if unknown
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        > MAX_EXTRA_TOTAL
    {
        return Err(fail(OAuthError::invalid_request(format!(
            "the parameters this server does not know exceed {MAX_EXTRA_TOTAL} bytes"
        ))));
    }
    let extra: Map<String, Value> = unknown
        .into_iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let ui_locales = params.get("ui_locales").map_err(fail)?.map(str::to_owned);
    Ok(AuthorizeRequest {
        redirect_uri: redirect_uri.clone(),
        redirect_uri_named: params.get("redirect_uri").is_ok_and(|u| u.is_some()),
        scope,
        state: state.clone(),
        nonce,
        pkce,
        prompt,
        max_age,
        ui_locales,
        extra,
        client,
    })
}

/// What the user must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Sign in.
    Login,
    /// Consent to the scope.
    Consent,
    /// Nothing: issue the code.
    Issue,
}

/// Decides the next step. `just_signed_in` and `just_consented` say what this very request
/// did, so that `prompt=login` / `prompt=consent` are not asked twice.
pub fn next_step(
    cx: &Cx<'_>,
    req: &AuthorizeRequest,
    session: Option<&SessionRecord>,
    consented: Option<&ScopeSet>,
    just_signed_in: bool,
    just_consented: bool,
) -> Result<Step, AuthorizeError> {
    let fail = |err: OAuthError| {
        AuthorizeError::Redirect(error_redirect(
            cx,
            &req.redirect_uri,
            req.state.as_deref(),
            &err,
        ))
    };
    if session::must_sign_in(
        session,
        req.max_age,
        req.prompt.login,
        just_signed_in,
        cx.now,
    ) {
        if req.prompt.none {
            return Err(fail(OAuthError::login_required(
                "the user is not signed in",
            )));
        }
        return Ok(Step::Login);
    }
    let identified = remembers_consent(req);
    let covered = identified && consent::covers(consented, &req.scope);
    let skip = identified && req.client.user_flow.skip_consent;
    let needs_consent = !skip && !just_consented && (req.prompt.consent || !covered);
    if needs_consent {
        if req.prompt.none {
            return Err(fail(OAuthError::consent_required(
                "the user has not consented to this scope",
            )));
        }
        return Ok(Step::Consent);
    }
    Ok(Step::Issue)
}

/// Whether consent given to this request's client may be remembered and used again without
/// asking: not for a public client answered at a loopback or private-use-scheme redirect URI
/// (RFC 8252 §8.6; see the module documentation).
pub fn remembers_consent(req: &AuthorizeRequest) -> bool {
    consent::remembered_for(&req.client, &req.redirect_uri)
}

/// Stores a code for the signed-in user and returns the success redirect.
pub async fn issue_code(
    cx: &Cx<'_>,
    req: &AuthorizeRequest,
    session: &SessionRecord,
) -> Result<String, OAuthError> {
    let code = secret::generate("");
    // A dialect's code lifetime is a ceiling: codes live at most that long.
    let client_ttl = req.client.user_flow.code_ttl;
    let ttl = cx
        .dialect
        .and_then(|d| d.code_ttl)
        .map_or(client_ttl, |d| d.min(client_ttl))
        .clamp(1, 600);
    // Only the dialect sets the carried parameters: a request's own parameter of that name
    // is dropped.
    let mut extra = req.extra.clone();
    extra.remove(dialect::CARRIED);
    let carried = dialect::carry(cx.dialect, &extra);
    if !carried.is_empty() {
        extra.insert(dialect::CARRIED.to_owned(), Value::Object(carried));
    }
    cx.store
        .insert_code(&CodeRecord {
            code_hash: code.hash(),
            client_id: req.client.client_id.clone(),
            user_id: session.user_id.clone(),
            // Empty when the request named none: see `grant::authorization_code`.
            redirect_uri: if req.redirect_uri_named {
                req.redirect_uri.clone()
            } else {
                String::new()
            },
            scope: req.scope.to_string(),
            nonce: req.nonce.clone(),
            code_challenge: req.pkce.as_ref().map(|(c, _)| c.clone()),
            code_challenge_method: req.pkce.as_ref().map(|(_, m)| (*m).to_owned()),
            auth_time: session.auth_time,
            grant_id: generate_id(),
            sid: Some(session::sid(session)),
            extra: Value::Object(extra).to_string(),
            issued_at: cx.now,
            expires_at: cx.now + ttl,
        })
        .await?;
    let mut p: Vec<(&str, &str)> = vec![("code", code.expose())];
    if let Some(s) = &req.state {
        p.push(("state", s));
    }
    p.push(("iss", &cx.config.issuer));
    // The dialect's parameters come after, and never replace one already there.
    let added = cx
        .dialect
        .map(|d| d.redirect_params_for(&req.client.client_id))
        .unwrap_or_default();
    for (k, v) in &added {
        if !dialect::RESERVED_REDIRECT_PARAMS.contains(&k.as_str())
            && !p.iter().any(|(name, _)| name == k)
        {
            p.push((k, v));
        }
    }
    Ok(redirect_with(&req.redirect_uri, &p))
}

/// The redirect for a user who refused consent.
pub fn denied(cx: &Cx<'_>, req: &AuthorizeRequest) -> String {
    error_redirect(
        cx,
        &req.redirect_uri,
        req.state.as_deref(),
        &OAuthError::access_denied("the user denied the request"),
    )
}

/// What the user did on one of the flow's pages during this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Nothing: the authorization request itself, or a page shown again.
    Nothing,
    /// Signed in (a session was started by this request).
    SignedIn,
    /// Answered the consent page.
    Consent {
        /// Whether they allowed the request.
        allow: bool,
    },
}

/// Where the flow goes after [`proceed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Show the sign-in page.
    Login,
    /// Show the consent page to the signed-in user.
    Consent,
    /// Send the browser back to the client: a code, or an error for the client.
    Redirect(String),
}

/// Takes a checked request one step on, for the browser's live `session` (if any) and what
/// the user did in this request: a refusal of consent goes back to the client as
/// `access_denied`; consent given is remembered when [`remembers_consent`] allows, merged with
/// earlier consent ([`consent::remember`]); then [`next_step`] decides, and a code is issued
/// when nothing is left to ask. Consent answered without a session changes nothing (the user
/// is asked to sign in).
pub async fn proceed(
    cx: &Cx<'_>,
    req: &AuthorizeRequest,
    session: Option<&SessionRecord>,
    answer: Answer,
) -> Result<Next, OAuthError> {
    let mut just_consented = false;
    if let (Answer::Consent { allow }, Some(s)) = (answer, session) {
        if !allow {
            return Ok(Next::Redirect(denied(cx, req)));
        }
        if remembers_consent(req) {
            consent::remember(
                cx.store,
                &s.user_id,
                &req.client.client_id,
                &req.scope,
                cx.now,
            )
            .await?;
        }
        just_consented = true;
    }
    // Consent given in this very request needs no second read.
    let consented = match session {
        Some(s) if !just_consented => {
            consent::granted(cx.store, &s.user_id, &req.client.client_id).await?
        }
        _ => None,
    };
    let step = next_step(
        cx,
        req,
        session,
        consented.as_ref(),
        answer == Answer::SignedIn,
        just_consented,
    );
    match (step, session) {
        (Err(AuthorizeError::Redirect(url)), _) => Ok(Next::Redirect(url)),
        (Err(AuthorizeError::Page(e)), _) => Err(e),
        (Ok(Step::Issue), Some(s)) => Ok(Next::Redirect(issue_code(cx, req, s).await?)),
        (Ok(Step::Consent), Some(_)) => Ok(Next::Consent),
        (Ok(_), _) => Ok(Next::Login),
    }
}
