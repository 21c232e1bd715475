//! Signing in through an upstream OpenID provider: the start (from the sign-in page) and
//! `GET /oauth2/sso/callback`, where the provider sends the browser back.
//!
//! Owns the browser side: the sign-in page's provider buttons ([`providers`]); [`begin`],
//! which sends the browser to the provider with the sign-in in progress sealed in a
//! short-lived cookie bound to the browser's CSRF cookie
//! ([`tessera_core::signin::upstream::seal`]); and [`callback`], which opens that cookie
//! (removing it: an answer is taken once, and its `state` once in storage every node shares),
//! checks the provider's answer, redeems the code ([`crate::sso::redeem`]), verifies the ID
//! token, names the local user ([`UpstreamSignIn`]), starts a session and continues the
//! authorization request exactly as after a password sign-in
//! ([`super::authorize::continue_after_upstream_sign_in`]). The rules are the core's
//! ([`tessera_core::signin::upstream`]).
//!
//! A refusal by the provider (the user denied, OpenID Connect Core §3.1.2.6) goes back to
//! the client as `access_denied` (RFC 6749 §4.1.2.1). Anything else that fails shows a page:
//! no sign-in is made, and the client hears nothing it could mistake for one.

use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use tessera_core::endpoint::authorize::{self, AuthorizeError};
use tessera_core::endpoint::{self, EndpointId};
use tessera_core::model::IdpRecord;
use tessera_core::params::Params;
use tessera_core::session;
use tessera_core::signin::upstream::{
    self, CallbackOutcome, StartOptions, UpstreamError, UpstreamSignIn,
};
use tessera_core::signin::{SignInError, SignInMethod};
use tessera_core::store::{IdpStore, ReplayStore, StoreError};
use tessera_core::OAuthError;

use crate::i18n::Lang;
use crate::pages::{self, origin_of};
use crate::sso;
use crate::state::AppState;

/// Largest sealed sign-in kept in the cookie: browsers keep cookies of up to 4096 bytes.
const MAX_COOKIE_VALUE: usize = 3_800;

/// The cookie holding the sign-in in progress at a provider.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.cookies().session().starts_with("__Host-") {
        "__Host-tessera_sso"
    } else {
        "tessera_sso"
    }
}

/// The value of the request cookie `name`, up to [`MAX_COOKIE_VALUE`] bytes (the sealed
/// sign-in is longer than the values [`pages::cookie`] reads).
fn long_cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
}

/// One "Sign in with NAME" button of the sign-in page.
#[derive(Debug, Clone, Serialize)]
pub struct Button {
    /// The provider's name (the posted `idp`).
    pub name: String,
    /// Its text.
    pub label: String,
}

/// The providers the sign-in page offers, and the origins the browser may be sent to from
/// its forms (the page's `form-action`: a form's answer redirects there).
#[derive(Debug, Clone, Default)]
pub struct Providers {
    /// One button per provider.
    pub buttons: Vec<Button>,
    /// The origins of their authorization endpoints.
    pub origins: Vec<String>,
}

/// The configured providers, for the sign-in page in `lang`. None when they cannot be read.
pub async fn providers(state: &AppState, lang: Lang) -> Providers {
    let idps = match state.store().list_idps().await {
        Ok(idps) => idps,
        Err(e) => {
            tracing::warn!(error = %e, "the upstream providers could not be read");
            return Providers::default();
        }
    };
    let mut out = Providers::default();
    let text = lang.text("sso_with");
    for idp in idps {
        // The authorization endpoint's origin when the metadata is at hand, else the
        // issuer's (its usual home).
        let at = match sso::metadata(state, &idp).await {
            Ok(meta) => meta.authorization_endpoint,
            Err(_) => idp.issuer.clone(),
        };
        if let Some(origin) = origin_of(&at) {
            if !out.origins.contains(&origin) {
                out.origins.push(origin);
            }
        }
        let shown = if idp.display_name.is_empty() {
            &idp.name
        } else {
            &idp.display_name
        };
        out.buttons.push(Button {
            label: text.replacen("{idp}", shown, 1),
            name: idp.name,
        });
    }
    out
}

/// Starts a sign-in at `idp` for the authorization request `request` in progress in the
/// browser whose CSRF cookie is `csrf_cookie`: where to send the browser, and the cookie to
/// set.
pub async fn begin(
    state: &AppState,
    csrf_cookie: &str,
    idp: &IdpRecord,
    request: Vec<(String, String)>,
    options: &StartOptions<'_>,
) -> Result<(String, HeaderValue), UpstreamError> {
    let meta = sso::metadata(state, idp).await?;
    let redirect_uri = state
        .config()
        .endpoint(endpoint::path(EndpointId::SsoCallback));
    let started = upstream::start(&meta, idp, &redirect_uri, request, options, state.now());
    let too_large = || UpstreamError::Callback("the request in progress is too large".into());
    let sealed = upstream::seal(state.sealer(), csrf_cookie, &started.pending)
        .filter(|s| s.len() <= MAX_COOKIE_VALUE)
        .ok_or_else(too_large)?;
    let cookie = state
        .cookies()
        .set(cookie_name(state), &sealed, upstream::PENDING_TTL)
        .ok_or_else(too_large)?;
    Ok((started.authorization_url, cookie))
}

/// `GET /oauth2/sso/callback`: the provider's answer. The pending sign-in's cookie is
/// removed whatever the outcome.
pub async fn callback(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let lang = Lang::choose(
        None,
        parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut res = answer(&state, &parts, lang).await;
    if let Some(clear) = state.cookies().clear(cookie_name(&state)) {
        res.headers_mut().append(header::SET_COOKIE, clear);
    }
    res
}

fn failed(state: &AppState, lang: Lang, status: StatusCode, key: &str) -> Response {
    state.pages().error(lang, status, &lang.text(key), None)
}

fn store_failed(state: &AppState, lang: Lang, e: &StoreError) -> Response {
    tracing::error!(error = %e, "signing in through an upstream provider failed");
    let mut res = state.pages().error(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        Some("temporarily_unavailable"),
    );
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(crate::error::UNAVAILABLE_RETRY_AFTER),
    );
    res
}

async fn answer(state: &AppState, parts: &Parts, lang: Lang) -> Response {
    let now = state.now();
    let refused = |idp: &str, e: &UpstreamError, status| {
        tracing::warn!(idp, error = %e, "a sign-in through an upstream provider was refused");
        failed(state, lang, status, "sso_failed")
    };
    // The sign-in in progress, from this browser only.
    let csrf = pages::cookie(&parts.headers, state.cookies().csrf());
    let sealed = long_cookie(&parts.headers, cookie_name(state));
    let Some(pending) = csrf
        .zip(sealed)
        .and_then(|(c, s)| upstream::open(state.sealer(), c, s, now))
    else {
        return refused("", &UpstreamError::State, StatusCode::BAD_REQUEST);
    };
    let idp = match state.store().get_idp(&pending.idp).await {
        Ok(Some(idp)) => idp,
        Ok(None) => {
            let e = UpstreamError::Discovery("the provider was removed".into());
            return refused(&pending.idp, &e, StatusCode::BAD_REQUEST);
        }
        Err(e) => return store_failed(state, lang, &e),
    };
    let meta = match sso::metadata(state, &idp).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(idp = %idp.name, error = %e, "an upstream provider cannot be used");
            return failed(state, lang, StatusCode::BAD_GATEWAY, "sso_unavailable");
        }
    };
    let query = match Params::from_form(parts.uri.query().unwrap_or("").as_bytes()) {
        Ok(q) => q,
        Err(_) => {
            let e = UpstreamError::Callback("the query is not a form".into());
            return refused(&idp.name, &e, StatusCode::BAD_REQUEST);
        }
    };
    let outcome = match upstream::check_callback(&meta, &pending, &query) {
        Ok(o) => o,
        Err(e) => return refused(&idp.name, &e, StatusCode::BAD_REQUEST),
    };
    // One answer per sign-in, whichever node it reaches.
    let (once, until) = pending.once_key();
    match state.store().use_once(&once, until).await {
        Ok(true) => {}
        Ok(false) => {
            let e = UpstreamError::Callback("the answer was already used".into());
            return refused(&idp.name, &e, StatusCode::BAD_REQUEST);
        }
        Err(e) => return store_failed(state, lang, &e),
    }
    let keys = state.keys();
    let cx = state.cx(&keys);
    let Ok(params) = Params::from_pairs(pending.request.clone()) else {
        return failed(state, lang, StatusCode::BAD_REQUEST, "form_expired");
    };
    let req = match authorize::validate(&cx, &params).await {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => {
            return state.pages().error(
                lang,
                StatusCode::BAD_REQUEST,
                &e.description,
                Some(e.code.as_str()),
            )
        }
        Err(AuthorizeError::Redirect(url)) => return pages::redirect(&url),
    };
    let code = match outcome {
        CallbackOutcome::Code(code) => code,
        CallbackOutcome::Refused { error, description } => {
            tracing::info!(idp = %idp.name, error, description, client_id = %req.client.client_id, "the upstream provider did not sign the user in");
            let url = authorize::error_redirect(
                &cx,
                &req.redirect_uri,
                req.state.as_deref(),
                &OAuthError::access_denied("the identity provider did not sign the user in"),
            );
            return pages::redirect(&url);
        }
    };
    let redirect_uri = cx.config.endpoint(endpoint::path(EndpointId::SsoCallback));
    let id_token = match sso::redeem(state, &meta, &idp, &code, &redirect_uri, &pending).await {
        Ok(t) => t,
        Err(e) => return refused(&idp.name, &e, StatusCode::BAD_GATEWAY),
    };
    let token = match upstream::verify_id_token(
        state.remote_keys(),
        &meta,
        &idp.client_id,
        &pending,
        &id_token,
        now,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return refused(&idp.name, &e, StatusCode::BAD_GATEWAY),
    };
    let identity = match UpstreamSignIn::new(cx.store, &idp)
        .sign_in(cx.store, &token, now)
        .await
    {
        Ok(identity) => identity,
        Err(SignInError::Store(e)) => return store_failed(state, lang, &e),
        Err(e) => {
            tracing::warn!(idp = %idp.name, error = %e, "an upstream identity names no local user");
            return failed(state, lang, StatusCode::FORBIDDEN, "sso_failed");
        }
    };
    let started = match session::start(
        cx.store,
        &identity,
        cx.config.session_ttl,
        now,
        pages::cookie(&parts.headers, state.cookies().session()),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return store_failed(state, lang, &e),
    };
    super::authorize::continue_after_upstream_sign_in(state, parts, params, identity, started).await
}
