//! `GET|POST /oauth2/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! Owns ending a browser session. `GET` (with `id_token_hint`, `client_id`,
//! `post_logout_redirect_uri`, `state`, `ui_locales`) checks the return address and asks the
//! user to confirm with a form (CSRF-protected, so no other site can sign a user out);
//! `POST` ends the session, clears the cookie and returns to the client's registered
//! post-logout URI with `state`, or shows a signed-out page. A return address that is not
//! registered for the client is refused on a page, never redirected to. Ending a session
//! queues a logout token for every client it signed into that registered a back-channel
//! logout URI (OpenID Connect Back-Channel Logout 1.0 §2.5; sent by [`crate::backchannel`]).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::Response;
use minijinja::context;
use tessera_core::endpoint::authorize::redirect_with;
use tessera_core::endpoint::{self, EndpointId};
use tessera_core::id_token::verify_hint;
use tessera_core::params::Params;
use tessera_core::{backchannel_logout, session};

use crate::i18n::Lang;
use crate::pages::{self, csrf_ok, csrf_token};
use crate::state::AppState;

/// `GET /oauth2/logout`: the confirmation page.
pub async fn get(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    run(&state, &parts, &params, false).await
}

/// `POST /oauth2/logout`: the confirmed form.
pub async fn post(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, state.http().body_limit)
        .await
        .unwrap_or_default();
    let params = Params::from_form(&body).unwrap_or_default();
    run(&state, &parts, &params, true).await
}

async fn run(state: &AppState, parts: &Parts, params: &Params, confirmed: bool) -> Response {
    let one = |name: &str| params.get(name).ok().flatten().map(str::to_owned);
    let lang = Lang::choose(
        one("ui_locales").as_deref(),
        parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let t = lang.texts("", "");
    let keys = state.keys();
    let cx = state.cx_for(&state.host(parts), &keys);
    let error = |message: &str| {
        state
            .pages()
            .error(lang, StatusCode::BAD_REQUEST, message, None)
    };
    // Which client is asking: the ID token's audience, or client_id (they must agree).
    let hinted = one("id_token_hint")
        .and_then(|h| verify_hint(&keys, &h, cx.config, cx.now).map(|(_, aud)| aud));
    if one("id_token_hint").is_some() && hinted.is_none() {
        return error("id_token_hint is not a valid ID token of this server");
    }
    let client_id = match (hinted, one("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return error("client_id differs from the ID token's audience")
        }
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    let back = match one("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(id) => cx.store.get_client(id).await.ok().flatten(),
                None => None,
            };
            match client {
                Some(c) if c.user_flow.post_logout_redirect_uris.contains(&uri) => Some(uri),
                _ => return error("post_logout_redirect_uri is not registered for this client"),
            }
        }
    };
    if !confirmed {
        let (cookie_value, set_csrf) = state
            .cookies()
            .csrf_value(&parts.headers, state.config().session_ttl);
        let hidden: Vec<(String, String)> = params
            .pairs()
            .iter()
            .filter(|(k, _)| k != "_csrf")
            .cloned()
            .collect();
        let ctx = context! {
            lang => lang.tag(), t, assets => "/assets", action => endpoint::path(EndpointId::Logout),
            hidden, csrf => csrf_token(state.sealer(), &cookie_value),
        };
        let targets: Vec<String> = back.iter().filter_map(|b| pages::origin_of(b)).collect();
        let mut res = state
            .pages()
            .page(StatusCode::OK, "logout.html", ctx, &targets);
        if let Some(v) = set_csrf {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        return res;
    }
    let csrf_cookie = pages::cookie(&parts.headers, state.cookies().csrf());
    if !csrf_ok(state.sealer(), csrf_cookie, one("_csrf").as_deref()) {
        return state.pages().error(
            lang,
            StatusCode::FORBIDDEN,
            &lang.text("form_expired"),
            None,
        );
    }
    if let Some(value) = pages::cookie(&parts.headers, state.cookies().session()) {
        let ended = session::current(cx.store, Some(value), cx.now)
            .await
            .ok()
            .flatten();
        // Back-Channel Logout §2.5: tell every client the session signed into.
        let result = match ended {
            Some((s, _)) => {
                let sid = session::sid(&s);
                let who = backchannel_logout::Ending::Session(&sid);
                backchannel_logout::ending(cx.store, who, cx.now, session::end(cx.store, value))
                    .await
            }
            None => session::end(cx.store, value).await,
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not end a session");
        }
    }
    let mut res = match back {
        Some(uri) => pages::redirect(&match one("state") {
            Some(s) => redirect_with(&uri, &[("state", &s)]),
            None => uri,
        }),
        None => state.pages().page(
            StatusCode::OK,
            "logged_out.html",
            context! { lang => lang.tag(), t, assets => "/assets" },
            &[],
        ),
    };
    if let Some(v) = state.cookies().clear(state.cookies().session()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
