//! `GET /oauth2/sso/callback`: where an upstream OpenID provider sends the browser back
//! after a sign-in there (OpenID Connect Core §3.1.2.5).
//!
//! Owns [`callback`] (the start, from the sign-in page, is [`crate::sso::begin`]). It opens
//! the cookie holding the sign-in in progress and removes it (an answer is taken once, and
//! its `state` once in storage every node shares), checks the provider's answer, redeems the
//! code ([`crate::sso::redeem`]), verifies the ID token, names the local user
//! ([`UpstreamSignIn`]), starts a session and continues the authorization request exactly as
//! after a password sign-in ([`super::authorize::continue_after_upstream_sign_in`]), or, for a
//! sign-in started on the device verification page, that page's consent
//! ([`super::device::continue_after_upstream_sign_in`]). The
//! rules are the core's ([`tessera_core::signin::upstream`]).
//!
//! A refusal by the provider (the user denied, OpenID Connect Core §3.1.2.6) goes back to
//! the client as `access_denied` (RFC 6749 §4.1.2.1). Anything else that fails shows a page:
//! no sign-in is made, and the client hears nothing it could mistake for one.
//!
//! The browser often arrives here from a form of the provider's pages (its sign-in or
//! consent page) through the redirect that answered it, and browsers check every redirect of
//! that navigation against the provider page's `form-action` (Content Security Policy
//! Level 3, `form-action`), which names this server but not the client. So where the flow
//! would redirect on to the client, the callback answers with a page that continues there
//! itself (`<meta http-equiv="refresh">` and a link, `templates/continue.html`): a navigation
//! of its own.

use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::authorize::{self, AuthorizeError};
use tessera_core::endpoint::{self, EndpointId};
use tessera_core::params::Params;
use tessera_core::session;
use tessera_core::signin::upstream::{self, CallbackOutcome, UpstreamError, UpstreamSignIn};
use tessera_core::signin::{SignInError, SignInMethod};
use tessera_core::store::{IdpStore, ReplayStore, StoreError};
use tessera_core::OAuthError;

use crate::i18n::Lang;
use crate::pages;
use crate::sso::{self, cookie_name, long_cookie};
use crate::state::AppState;
use crate::through::Through;

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
    if res.status() == StatusCode::SEE_OTHER {
        if let Some(location) = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        {
            res = onward(&state, lang, &location, &res);
        }
    }
    if let Some(clear) = state.cookies().clear(cookie_name(&state)) {
        res.headers_mut().append(header::SET_COOKIE, clear);
    }
    res
}

/// A page that takes the browser on to `location` by itself, with the cookies `redirect` set.
fn onward(state: &AppState, lang: Lang, location: &str, redirect: &Response) -> Response {
    let mut page = state.pages().page(
        StatusCode::OK,
        "continue.html",
        minijinja::context! {
            lang => lang.tag(), t => lang.texts("", ""), assets => "/assets", location,
        },
        &[],
    );
    for cookie in redirect.headers().get_all(header::SET_COOKIE) {
        page.headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    page
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
    // The dialect the request started through, sealed with it (never the callback's path).
    let through = Through(
        pending
            .dialect
            .as_deref()
            .and_then(|name| state.config().dialects.get(name).cloned()),
    );
    let mut cx = state.cx_for(&state.host(parts), &keys);
    cx.dialect = through.dialect();
    let Ok(params) = Params::from_pairs(pending.request.clone()) else {
        return failed(state, lang, StatusCode::BAD_REQUEST, "form_expired");
    };
    // A sign-in started on the device verification page has no authorization request.
    let device = super::device::is_device_request(&params);
    let req = match authorize::validate(&cx, &params).await {
        _ if device => None,
        Ok(r) => Some(r),
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
    let code = match (outcome, req) {
        (CallbackOutcome::Code(code), _) => code,
        (CallbackOutcome::Refused { error, description }, None) => {
            tracing::info!(idp = %idp.name, error, description, "the upstream provider did not sign the user in");
            return failed(state, lang, StatusCode::FORBIDDEN, "sso_failed");
        }
        (CallbackOutcome::Refused { error, description }, Some(req)) => {
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
    // The callback URL the sign-in started with (`sso::begin`): the main issuer's.
    let redirect_uri = state
        .config()
        .endpoint(endpoint::path(EndpointId::SsoCallback));
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
    if device {
        return super::device::continue_after_upstream_sign_in(
            state, parts, &params, identity, started,
        )
        .await;
    }
    super::authorize::continue_after_upstream_sign_in(
        state, parts, params, through, identity, started,
    )
    .await
}
