//! `GET|POST /oauth2/authorize` (and the `authorize` paths of dialects): the sign-in and consent
//! pages of the authorization code flow.
//!
//! Owns the browser side of the flow: parsing the forms, the cookies, the sealed request in
//! progress and rendering. The rules are the core's: the request and the next step in
//! [`tessera_core::endpoint::authorize`] ([`authorize::proceed`]), the live session in
//! [`tessera_core::session`], consent in [`tessera_core::consent`].
//!
//! `GET` takes the authorization request in the query; one that names a field of the pages'
//! own forms is refused. The pages post back to the path the flow started on (a dialect's
//! path keeps its flow there); the dialect the flow goes through is sealed in the request in
//! progress, never read from a field. The forms carry exactly their own fields:
//! the request in progress as one sealed handle bound to the browser ([`crate::pending`]), a
//! CSRF token, and what the user did (`_action=login` with `username`/`password`, or
//! `_action=consent` with `decision=allow|deny`, or `_action=sso` with `idp`, a provider to
//! sign in through: [`crate::sso`]). A post with a repeated or unknown field is
//! refused (400), so no parameter of the authorization request can ever be read as something
//! the user did (RFC 6749 §10.12, RFC 9700 §4.7). Usernames are prepared (RFC 8265) before
//! they are looked up ([`tessera_core::signin::password::PasswordForm`]).
//!
//! A username whose e-mail domain is configured for an upstream provider is sent to that
//! provider instead of having its password checked; after the provider's answer the flow
//! continues here as after a password sign-in ([`continue_after_upstream_sign_in`]).
//!
//! Sign-in failures show one message whatever was wrong and take the same time for an unknown
//! user (a dummy Argon2 check, [`tessera_core::signin::password`]); the throttling and the
//! device cookie are [`crate::signin`]'s.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde::Serialize;
use tessera_core::endpoint::authorize::{self, Answer, AuthorizeError, AuthorizeRequest, Next};
use tessera_core::endpoint::{self, par, EndpointId};
use tessera_core::model::{IdpRecord, UserRecord};
use tessera_core::params::Params;
use tessera_core::session::{self, Started};
use tessera_core::signin::external::idp_for_email;
use tessera_core::signin::password::PasswordForm;
use tessera_core::signin::upstream::StartOptions;
use tessera_core::signin::Identity;
use tessera_core::username;
use tessera_core::OAuthError;

use crate::extract::client_address;
use crate::i18n::Lang;
use crate::pages::{self, csrf_ok, csrf_token, origin_of};
use crate::pending;
use crate::signin::{self, SignIn};
use crate::sso::{self, Providers};
use crate::state::AppState;
use crate::through::Through;

/// Form fields of our own pages, never part of the authorization request: a request that
/// names one is refused.
const OWN_FIELDS: &[&str] = &[
    pending::FIELD,
    "_csrf",
    "_action",
    "username",
    "password",
    "decision",
    "idp",
];

/// The fields of the sign-in form (`templates/login.html`), each exactly once.
const LOGIN_FIELDS: &[&str] = &[pending::FIELD, "_csrf", "_action", "username", "password"];

/// The fields of the consent form (`templates/consent.html`), each exactly once.
const CONSENT_FIELDS: &[&str] = &[pending::FIELD, "_csrf", "_action", "decision"];

/// The fields of a provider's button on the sign-in form, each exactly once.
const SSO_FIELDS: &[&str] = &[pending::FIELD, "_csrf", "_action", "idp"];

/// What the user did on one of our pages.
enum Submitted {
    Login(PasswordForm),
    Consent {
        allow: bool,
    },
    /// Sign in through this upstream provider.
    Sso {
        idp: String,
    },
    /// Signed in through an upstream provider ([`super::sso::callback`]).
    Upstream(Box<(Identity, Started)>),
}

/// Per-request page context: the language, the CSRF cookie, and the cookies to set.
struct Page<'a> {
    state: &'a AppState,
    lang: Lang,
    csrf_cookie: String,
    set_cookies: Vec<HeaderValue>,
    /// Where the forms post: the path the flow started on (the standard path or one of the
    /// dialect's).
    action: String,
    /// The name of the dialect the flow goes through, sealed into the forms.
    dialect: Option<String>,
    /// The upstream providers the sign-in page offers.
    providers: Providers,
}

impl Page<'_> {
    fn finish(&self, mut res: Response) -> Response {
        let h = res.headers_mut();
        for c in &self.set_cookies {
            h.append(header::SET_COOKIE, c.clone());
        }
        res
    }

    fn render(
        &self,
        status: StatusCode,
        template: &str,
        ctx: minijinja::Value,
        targets: &[String],
    ) -> Response {
        self.finish(self.state.pages().page(status, template, ctx, targets))
    }

    fn error(&self, status: StatusCode, message: &str, code: Option<&str>) -> Response {
        self.finish(self.state.pages().error(self.lang, status, message, code))
    }

    fn redirect(&self, location: &str) -> Response {
        self.finish(pages::redirect(location))
    }
}

#[derive(Serialize)]
struct ScopeLine {
    name: String,
    text: String,
}

/// `GET /oauth2/authorize` (and a dialect's `authorize` paths).
pub async fn get(State(state): State<AppState>, through: Through, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let query = parts.uri.query().unwrap_or("");
    let params = match Params::from_form(query.as_bytes()) {
        Ok(p) => p,
        Err(e) => return bad_request(&state, &parts, &e),
    };
    if let Some((name, _)) = params
        .pairs()
        .iter()
        .find(|(k, _)| OWN_FIELDS.contains(&k.as_str()))
    {
        return bad_request(
            &state,
            &parts,
            &OAuthError::invalid_request(format!(
                "the request names '{name}', a field of this server's own forms"
            )),
        );
    }
    flow(&state, &parts, params, through, None).await
}

/// `POST /oauth2/authorize`: a form of our own pages.
pub async fn post(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes =
        match crate::pages::form_body(&parts.headers, body, state.http().body_limit).await {
            Some(b) => b,
            None => {
                return bad_request(
                    &state,
                    &parts,
                    &OAuthError::invalid_request("expected a form of this server's pages"),
                )
            }
        };
    let all = match Params::from_form(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(&state, &parts, &e),
    };
    if let Err(e) = all.reject_duplicates() {
        return bad_request(&state, &parts, &e);
    }
    let field = |name: &str| all.get(name).ok().flatten();
    let (submitted, expected) = match field("_action") {
        Some("login") => (
            Submitted::Login(PasswordForm::new(
                field("username").unwrap_or_default(),
                field("password").unwrap_or_default(),
            )),
            LOGIN_FIELDS,
        ),
        Some("consent") => {
            let allow = match field("decision") {
                Some("allow") => true,
                Some("deny") => false,
                _ => {
                    return bad_request(
                        &state,
                        &parts,
                        &OAuthError::invalid_request("the consent form names no decision"),
                    )
                }
            };
            (Submitted::Consent { allow }, CONSENT_FIELDS)
        }
        Some("sso") => (
            Submitted::Sso {
                idp: field("idp").unwrap_or_default().to_owned(),
            },
            SSO_FIELDS,
        ),
        _ => {
            return bad_request(
                &state,
                &parts,
                &OAuthError::invalid_request("the form names no action"),
            )
        }
    };
    if let Some((name, _)) = all
        .pairs()
        .iter()
        .find(|(k, _)| !expected.contains(&k.as_str()))
    {
        return bad_request(
            &state,
            &parts,
            &OAuthError::invalid_request(format!(
                "'{}' is not a field of this form",
                name.chars().take(64).collect::<String>()
            )),
        );
    }
    // The request in progress comes only from the handle this browser was given.
    let csrf_cookie = pages::cookie(&parts.headers, state.cookies().csrf());
    let opened = match csrf_cookie.zip(field(pending::FIELD)) {
        Some((cookie, handle)) if csrf_ok(state.sealer(), Some(cookie), field("_csrf")) => {
            pending::open(state.sealer(), cookie, handle, state.now())
        }
        _ => None,
    };
    let Some(opened) = opened else {
        let pg = page(&state, &parts, None);
        return pg.error(StatusCode::FORBIDDEN, &pg.lang.text("form_expired"), None);
    };
    // The flow keeps the dialect it started through, sealed in the handle, whatever path the
    // form was posted to.
    let through = Through(
        opened
            .dialect
            .as_deref()
            .and_then(|name| state.config().dialects.get(name).cloned()),
    );
    flow(&state, &parts, opened.params, through, Some(submitted)).await
}

fn accept_language(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

fn page<'a>(state: &'a AppState, parts: &'a Parts, ui_locales: Option<&str>) -> Page<'a> {
    let (csrf_cookie, set) = state
        .cookies()
        .csrf_value(&parts.headers, state.config().session_ttl);
    Page {
        state,
        lang: Lang::choose(ui_locales, accept_language(parts)),
        csrf_cookie,
        set_cookies: set.into_iter().collect(),
        action: action_path(state, parts),
        dialect: None,
        providers: Providers::default(),
    }
}

/// The path the forms post to: the one this request came to when it is a path of the
/// authorization endpoint (the standard one or an enabled dialect's), else the standard one.
fn action_path(state: &AppState, parts: &Parts) -> String {
    let path = parts.uri.path();
    let standard = endpoint::path(EndpointId::Authorize);
    match state.config().dialects.by_path(path) {
        Some((_, EndpointId::Authorize)) => path.to_owned(),
        _ => standard.to_owned(),
    }
}

fn bad_request(state: &AppState, parts: &Parts, e: &OAuthError) -> Response {
    page(state, parts, None).error(
        StatusCode::BAD_REQUEST,
        &e.description,
        Some(e.code.as_str()),
    )
}

async fn flow(
    state: &AppState,
    parts: &Parts,
    params: Params,
    through: Through,
    submitted: Option<Submitted>,
) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&state.host(parts), &keys);
    cx.dialect = through.dialect();
    cx.request = crate::extract::request_meta(parts, &state.http().trusted_proxies);
    let ui_locales = params.get("ui_locales").ok().flatten().map(str::to_owned);
    let mut pg = page(state, parts, ui_locales.as_deref());
    pg.dialect = through.dialect().map(|d| d.name.clone());
    // A flow keeps the path it started on: the dialect's first authorize path when the form
    // reached another one. A dialect that applies on the standard paths also owns the
    // standard authorize path, so a flow started there stays there.
    let standard = endpoint::path(EndpointId::Authorize);
    if let Some(d) = through
        .dialect()
        .filter(|d| !(d.standard_paths && pg.action == standard))
    {
        if !d
            .paths
            .iter()
            .any(|(id, p)| *id == EndpointId::Authorize && *p == pg.action)
        {
            if let Some((_, p)) = d.paths.iter().find(|(id, _)| *id == EndpointId::Authorize) {
                pg.action.clone_from(p);
            }
        }
    }
    // A new request naming `request_uri` stands for its pushed parameters (RFC 9126 §4);
    // a form of our pages carries them already resolved.
    let params = if submitted.is_none() {
        match par::resolve(&cx, params).await {
            Ok(p) => {
                // The pages speak the pushed request's language.
                if p.contains("request_uri") {
                    pg.lang =
                        Lang::choose(p.get("ui_locales").ok().flatten(), accept_language(parts));
                }
                p
            }
            Err(AuthorizeError::Page(e)) => {
                return pg.error(
                    StatusCode::BAD_REQUEST,
                    &e.description,
                    Some(e.code.as_str()),
                )
            }
            Err(AuthorizeError::Redirect(url)) => return pg.redirect(&url),
        }
    } else {
        params
    };
    let req = match authorize::validate(&cx, &params).await {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => {
            return pg.error(
                StatusCode::BAD_REQUEST,
                &e.description,
                Some(e.code.as_str()),
            )
        }
        Err(AuthorizeError::Redirect(url)) => return pg.redirect(&url),
    };
    let ip = client_address(parts, &state.http().trusted_proxies);
    let session_cookie = pages::cookie(&parts.headers, state.cookies().session());
    let mut session = match session::current(cx.store, session_cookie, cx.now).await {
        Ok(s) => s,
        Err(e) => return server_error(&pg, &e.into()),
    };
    // The sign-in page may be shown: it offers the upstream providers.
    if session.is_none() || req.prompt.login || req.max_age.is_some() {
        pg.providers = sso::providers(state, pg.lang).await;
    }
    // A submitted form passed its CSRF check in `post`.
    let answer = match submitted {
        None => Answer::Nothing,
        Some(Submitted::Consent { allow }) => Answer::Consent { allow },
        Some(Submitted::Sso { idp }) => {
            return match cx.store.get_idp(&idp).await {
                Ok(Some(idp)) => to_upstream(&mut pg, &req, &params, &idp, None).await,
                Ok(None) => pg.error(
                    StatusCode::BAD_REQUEST,
                    "no such identity provider",
                    Some("invalid_request"),
                ),
                Err(e) => server_error(&pg, &e.into()),
            };
        }
        Some(Submitted::Upstream(done)) => {
            let (identity, started) = *done;
            tracing::info!(user_id = %identity.user.user_id, client_id = %req.client.client_id, amr = ?identity.amr, "user signed in");
            if let Some(v) = state.cookies().set(
                state.cookies().session(),
                started.value.expose(),
                state.config().session_ttl,
            ) {
                pg.set_cookies.push(v);
            }
            session = Some((started.record, identity.user));
            Answer::SignedIn
        }
        Some(Submitted::Login(form)) => {
            // A user of a domain that signs in elsewhere is sent there.
            match idp_for_email(cx.store, form.username()).await {
                Ok(Some(idp)) => {
                    let hint = Some(form.username());
                    return to_upstream(&mut pg, &req, &params, &idp, hint).await;
                }
                Ok(None) => {}
                Err(e) => return server_error(&pg, &e.into()),
            }
            let refused =
                |status, key| login_page(&pg, &req, &params, status, key, form.username());
            match signin::sign_in(state, &cx, &parts.headers, ip, &form).await {
                Ok(SignIn::SignedIn {
                    identity,
                    session: started,
                    device_cookie,
                }) => {
                    tracing::info!(user_id = %identity.user.user_id, client_id = %req.client.client_id, amr = ?identity.amr, "user signed in");
                    if let Some(v) = state.cookies().set(
                        state.cookies().session(),
                        started.value.expose(),
                        state.config().session_ttl,
                    ) {
                        pg.set_cookies.push(v);
                    }
                    pg.set_cookies.extend(device_cookie);
                    session = Some((started.record, identity.user));
                    Answer::SignedIn
                }
                Ok(SignIn::Failed) => return refused(StatusCode::UNAUTHORIZED, "login_failed"),
                Ok(SignIn::Locked { retry_after }) => {
                    let res = refused(StatusCode::TOO_MANY_REQUESTS, "login_locked");
                    return with_retry_after(res, retry_after);
                }
                Ok(SignIn::Busy) => {
                    let res = refused(StatusCode::SERVICE_UNAVAILABLE, "login_busy");
                    return with_retry_after(res, 1);
                }
                Err(e) => return server_error(&pg, &e),
            }
        }
    };
    let signed_in = session.as_ref().map(|(s, _)| s);
    match authorize::proceed(&cx, &req, signed_in, answer).await {
        Ok(Next::Redirect(url)) => pg.redirect(&url),
        Ok(Next::Consent) => match &session {
            Some((_, user)) => consent_page(&pg, &req, &params, user),
            None => login_page(&pg, &req, &params, StatusCode::OK, "", ""),
        },
        Ok(Next::Login) => {
            let hint = login_hint(&params);
            login_page(&pg, &req, &params, StatusCode::OK, "", hint)
        }
        Err(e) => server_error(&pg, &e),
    }
}

/// The request's `login_hint` (OpenID Connect Core §3.1.2.1), to fill in the username, if it
/// is a plausible one (as an upstream provider's sign-in passes on the address typed there).
fn login_hint(params: &Params) -> &str {
    params
        .get("login_hint")
        .ok()
        .flatten()
        .filter(|h| h.len() <= username::MAX_LEN && !h.chars().any(char::is_control))
        .unwrap_or_default()
}

/// Continues the authorization request `params` after a sign-in through an upstream
/// provider (`identity`, whose session `started`), as after a password sign-in, through the
/// dialect the request started through.
pub async fn continue_after_upstream_sign_in(
    state: &AppState,
    parts: &Parts,
    params: Params,
    through: Through,
    identity: Identity,
    started: Started,
) -> Response {
    let done = Submitted::Upstream(Box::new((identity, started)));
    flow(state, parts, params, through, Some(done)).await
}

/// Sends the browser to `idp` to sign in (`login_hint`: what the user typed).
async fn to_upstream(
    pg: &mut Page<'_>,
    req: &AuthorizeRequest,
    params: &Params,
    idp: &IdpRecord,
    login_hint: Option<&str>,
) -> Response {
    let options = StartOptions {
        login: req.prompt.login,
        login_hint,
        max_age: req.max_age,
    };
    let request = forwarded(params, false);
    let dialect = pg.dialect.as_deref();
    match sso::begin(pg.state, &pg.csrf_cookie, idp, request, dialect, &options).await {
        Ok((url, cookie)) => {
            pg.set_cookies.push(cookie);
            pg.redirect(&url)
        }
        Err(e) => {
            tracing::warn!(idp = %idp.name, error = %e, "an upstream provider cannot be used");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            login_page(pg, req, params, status, "sso_unavailable", "")
        }
    }
}

fn server_error(pg: &Page<'_>, e: &OAuthError) -> Response {
    if crate::error::is_unavailable(e) {
        // RFC 6749 §4.1.2.1: the server cannot handle the request for now.
        let mut res = pg.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            Some("temporarily_unavailable"),
        );
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(crate::error::UNAVAILABLE_RETRY_AFTER),
        );
        return res;
    }
    match &e.source {
        Some(cause) => tracing::error!(error = %cause, "authorization request failed"),
        None => tracing::error!(error = %e, "authorization request failed"),
    }
    pg.error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        Some("server_error"),
    )
}

/// Adds `Retry-After: seconds` to a response.
fn with_retry_after(mut res: Response, seconds: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The request's parameters to seal into the next form's handle. Once the user has signed
/// in, `prompt=login` has been honoured and is not carried into the consent form.
fn forwarded(params: &Params, signed_in: bool) -> Vec<(String, String)> {
    params
        .pairs()
        .iter()
        .filter_map(|(k, v)| {
            if signed_in && k == "prompt" {
                let rest: Vec<&str> = v.split(' ').filter(|p| *p != "login").collect();
                return (!rest.is_empty()).then(|| (k.clone(), rest.join(" ")));
            }
            Some((k.clone(), v.clone()))
        })
        .collect()
}

/// The hidden fields of a form: the sealed handle of the request in progress, alone.
fn hidden(
    pg: &Page<'_>,
    params: &Params,
    signed_in: bool,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let handle = pending::seal(
        pg.state.sealer(),
        &pg.csrf_cookie,
        &forwarded(params, signed_in),
        pg.dialect.as_deref(),
        pg.state.now(),
    )?;
    Ok(vec![(pending::FIELD, handle)])
}

fn targets(req: &AuthorizeRequest) -> Vec<String> {
    origin_of(&req.redirect_uri).into_iter().collect()
}

fn login_page(
    pg: &Page<'_>,
    req: &AuthorizeRequest,
    params: &Params,
    status: StatusCode,
    error_key: &str,
    username: &str,
) -> Response {
    let hidden = match hidden(pg, params, false) {
        Ok(h) => h,
        Err(e) => return server_error(pg, &e),
    };
    let client_name = username::shown(&req.client.name);
    let t = pg.lang.texts(&client_name, "");
    let error = t.get(error_key).cloned();
    let mut targets = targets(req);
    targets.extend(pg.providers.origins.iter().cloned());
    pg.render(
        status,
        "login.html",
        context! {
            lang => pg.lang.tag(),
            t,
            assets => "/assets",
            action => pg.action.as_str(),
            hidden,
            csrf => csrf_token(pg.state.sealer(), &pg.csrf_cookie),
            error,
            username,
            client_name,
            providers => pg.providers.buttons,
        },
        &targets,
    )
}

fn consent_page(
    pg: &Page<'_>,
    req: &AuthorizeRequest,
    params: &Params,
    user: &UserRecord,
) -> Response {
    let hidden = match hidden(pg, params, true) {
        Ok(h) => h,
        Err(e) => return server_error(pg, &e),
    };
    let who = username::shown(user.name.as_deref().unwrap_or(&user.username));
    let client_name = username::shown(&req.client.name);
    let t = pg.lang.texts(&client_name, &who);
    let scopes: Vec<ScopeLine> = req
        .scope
        .iter()
        .map(|s| ScopeLine {
            name: s.to_owned(),
            text: pg.lang.scope_text(s),
        })
        .collect();
    pg.render(
        StatusCode::OK,
        "consent.html",
        context! {
            lang => pg.lang.tag(),
            t,
            assets => "/assets",
            action => pg.action.as_str(),
            hidden,
            csrf => csrf_token(pg.state.sealer(), &pg.csrf_cookie),
            scopes,
            client_name,
        },
        &targets(req),
    )
}
