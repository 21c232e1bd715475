//! `GET|POST /device`: the device verification page (RFC 8628 §3.3).
//!
//! Owns the browser side of a device authorization: the user types the user code shown on
//! the device (or arrives from `verification_uri_complete` with it filled in, and still
//! confirms it: §5.4, remote phishing), signs in with the sign-in page and session of the
//! authorization pages ([`crate::signin`], `login.html`), or through an upstream provider
//! offered there ([`crate::sso`]; its callback comes back to
//! [`continue_after_upstream_sign_in`]), and approves or denies on the
//! consent page (`consent.html`), which shows the client, the scope and the code with a
//! warning to check it against the device. The rules are the core's
//! ([`tessera_core::endpoint::device_verification`]).
//!
//! The forms are those of the authorization pages, with the same protections: a CSRF token
//! bound to the browser's cookie ([`crate::pages`]); the code being decided on travels only
//! in the sealed handle of a request in progress ([`crate::pending`]), never in a field the
//! user (or another site) could change between pages; a post with a repeated or unknown
//! field is refused (400). The code entry form has `_csrf`, `_action=code`, `ui_locales` (the
//! page's language, so the next page speaks it too) and `user_code`;
//! the sign-in form `_request`, `_csrf`, `_action=login`, `username`, `password`; the
//! consent form `_request`, `_csrf`, `_action=consent`, `decision=allow|deny`; a provider's
//! button `_request`, `_csrf`, `_action=sso`, `idp`.
//!
//! Guessing user codes (§5.1) is throttled per client address: each code typed takes an
//! attempt from the address's budget (`user_code_failures_per_address` per
//! `login_lockout_window`, in the shared store, so every node counts together) before it is
//! looked up, and a code that names a device authorization gives its attempt back. A spent
//! budget refuses that address only, with `429` and `Retry-After`; other addresses, and the
//! device's polls, are untouched; each refusal is a `user_code_locked_out` audit event. An unknown, expired or already decided code gets a page
//! saying so.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde::Serialize;
use tessera_core::audit::{self, Actor, AuditEvent, AuditKind};
use tessera_core::cx::Cx;
use tessera_core::endpoint::device_verification::{self, Found};
use tessera_core::endpoint::{self, EndpointId};
use tessera_core::model::{ClientRecord, DeviceCodeRecord, IdpRecord, UserRecord};
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
use crate::pages::{self, csrf_ok, csrf_token};
use crate::pending;
use crate::signin::{self, SignIn};
use crate::sso;
use crate::state::AppState;
use crate::throttle;

/// The fields of the code entry form (`templates/device.html`), each exactly once.
const CODE_FIELDS: &[&str] = &["_csrf", "_action", "ui_locales", "user_code"];
/// The fields of the sign-in form (`templates/login.html`), each exactly once.
const LOGIN_FIELDS: &[&str] = &[pending::FIELD, "_csrf", "_action", "username", "password"];
/// The fields of the consent form (`templates/consent.html`), each exactly once.
const CONSENT_FIELDS: &[&str] = &[pending::FIELD, "_csrf", "_action", "decision"];
/// The fields of a provider's button on the sign-in form, each exactly once.
const SSO_FIELDS: &[&str] = &[pending::FIELD, "_csrf", "_action", "idp"];
/// The name, in the sealed handle, of the user code being decided on.
const SEALED_CODE: &str = "device_user_code";

/// What the user did on one of the forms.
enum Submitted {
    Code(String),
    Login(PasswordForm),
    Consent {
        allow: bool,
    },
    /// Sign in through this upstream provider.
    Sso {
        idp: String,
    },
}

/// Per-request page context.
struct Page<'a> {
    state: &'a AppState,
    lang: Lang,
    csrf_cookie: String,
    set_cookies: Vec<HeaderValue>,
}

#[derive(Serialize)]
struct ScopeLine {
    name: String,
    text: String,
}

impl<'a> Page<'a> {
    fn new(state: &'a AppState, parts: &Parts, ui_locales: Option<&str>) -> Self {
        let (csrf_cookie, set) = state
            .cookies()
            .csrf_value(&parts.headers, state.config().session_ttl);
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Page {
            state,
            lang: Lang::choose(ui_locales, accept),
            csrf_cookie,
            set_cookies: set.into_iter().collect(),
        }
    }

    fn finish(&self, mut res: Response) -> Response {
        for c in &self.set_cookies {
            res.headers_mut().append(header::SET_COOKIE, c.clone());
        }
        res
    }

    fn render(&self, status: StatusCode, template: &str, ctx: minijinja::Value) -> Response {
        self.finish(self.state.pages().page(status, template, ctx, &[]))
    }

    fn csrf(&self) -> String {
        csrf_token(self.state.sealer(), &self.csrf_cookie)
    }

    /// The code entry form, with `user_code` filled in and an error (a text key) if any.
    fn entry(&self, status: StatusCode, user_code: &str, prefilled: bool, error: &str) -> Response {
        let t = self.lang.texts("", "");
        let error = t.get(error).cloned();
        self.render(
            status,
            "device.html",
            context! {
                lang => self.lang.tag(), t, assets => "/assets", action => action(),
                csrf => self.csrf(), form => true, user_code, prefilled, error,
            },
        )
    }

    /// A page that only says something (a text key): the code's fate, or the decision.
    fn message(&self, status: StatusCode, key: &str) -> Response {
        let t = self.lang.texts("", "");
        let message = t.get(key).cloned();
        self.render(
            status,
            "device.html",
            context! {
                lang => self.lang.tag(), t, assets => "/assets", form => false, message,
                failed => status != StatusCode::OK,
            },
        )
    }

    fn error(&self, status: StatusCode, message: &str, code: Option<&str>) -> Response {
        self.finish(self.state.pages().error(self.lang, status, message, code))
    }

    /// The hidden fields carrying the code being decided on, sealed for this browser.
    fn hidden(&self, record: &DeviceCodeRecord) -> Result<Vec<(&'static str, String)>, OAuthError> {
        let params = [
            (SEALED_CODE.to_owned(), record.user_code.clone()),
            ("ui_locales".to_owned(), self.lang.tag().to_owned()),
        ];
        let handle = pending::seal(
            self.state.sealer(),
            &self.csrf_cookie,
            &params,
            None,
            self.state.now(),
        )?;
        Ok(vec![(pending::FIELD, handle)])
    }

    /// The sign-in page, with the upstream providers' buttons.
    async fn login(
        &self,
        status: StatusCode,
        record: &DeviceCodeRecord,
        client: &ClientRecord,
        error_key: &str,
        username: &str,
    ) -> Response {
        let hidden = match self.hidden(record) {
            Ok(h) => h,
            Err(e) => return self.server_error(&e),
        };
        let providers = sso::providers(self.state, self.lang).await;
        let client_name = username::shown(&client.name);
        let t = self.lang.texts(&client_name, "");
        let error = t.get(error_key).cloned();
        let res = self.state.pages().page(
            status,
            "login.html",
            context! {
                lang => self.lang.tag(), t, assets => "/assets", action => action(), hidden,
                csrf => self.csrf(), error, username, client_name,
                providers => providers.buttons,
            },
            &providers.origins,
        );
        self.finish(res)
    }

    /// Sends the browser to `idp` to sign in, the code being decided on sealed in the
    /// sign-in in progress ([`sso::begin`]); the callback comes back to
    /// [`continue_after_upstream_sign_in`].
    async fn send_upstream(
        &mut self,
        record: &DeviceCodeRecord,
        client: &ClientRecord,
        idp: &IdpRecord,
        login_hint: Option<&str>,
    ) -> Response {
        let request = vec![
            (SEALED_CODE.to_owned(), record.user_code.clone()),
            ("ui_locales".to_owned(), self.lang.tag().to_owned()),
        ];
        let options = StartOptions {
            login: false,
            login_hint,
            max_age: None,
        };
        match sso::begin(self.state, &self.csrf_cookie, idp, request, None, &options).await {
            Ok((url, cookie)) => {
                self.set_cookies.push(cookie);
                self.finish(pages::redirect(&url))
            }
            Err(e) => {
                tracing::warn!(idp = %idp.name, error = %e, "an upstream provider cannot be used");
                let status = StatusCode::SERVICE_UNAVAILABLE;
                self.login(status, record, client, "sso_unavailable", "")
                    .await
            }
        }
    }

    fn consent(
        &self,
        record: &DeviceCodeRecord,
        client: &ClientRecord,
        user: &UserRecord,
    ) -> Response {
        let hidden = match self.hidden(record) {
            Ok(h) => h,
            Err(e) => return self.server_error(&e),
        };
        let who = username::shown(user.name.as_deref().unwrap_or(&user.username));
        let client_name = username::shown(&client.name);
        let t = self.lang.texts(&client_name, &who);
        let scopes: Vec<ScopeLine> = record
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| ScopeLine {
                name: s.to_owned(),
                text: self.lang.scope_text(s),
            })
            .collect();
        self.render(
            StatusCode::OK,
            "consent.html",
            context! {
                lang => self.lang.tag(), t, assets => "/assets", action => action(), hidden,
                csrf => self.csrf(), scopes, client_name,
                user_code => device_verification::shown(record),
            },
        )
    }

    fn server_error(&self, e: &OAuthError) -> Response {
        if crate::error::is_unavailable(e) {
            let res = self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                Some("temporarily_unavailable"),
            );
            return with_retry_after(res, 1);
        }
        match &e.source {
            Some(cause) => tracing::error!(error = %cause, "device verification failed"),
            None => tracing::error!(error = %e, "device verification failed"),
        }
        self.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            Some("server_error"),
        )
    }
}

fn action() -> &'static str {
    endpoint::path(EndpointId::DeviceVerification)
}

/// Adds `Retry-After: seconds` to a response.
fn with_retry_after(mut res: Response, seconds: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// `GET /device[?user_code=...]`: the code entry form, filled in from
/// `verification_uri_complete` (RFC 8628 §3.3.1) when it names the code.
pub async fn get(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let params = Params::from_form(parts.uri.query().unwrap_or("").as_bytes());
    let one = |name: &str| {
        params
            .as_ref()
            .ok()
            .and_then(|p| p.get(name).ok().flatten())
            .map(str::to_owned)
    };
    let pg = Page::new(&state, &parts, one("ui_locales").as_deref());
    let typed = one("user_code").unwrap_or_default();
    // Shown back only as a plausible code: the page prints what it is given.
    let typed: String = typed.chars().take(32).filter(|c| !c.is_control()).collect();
    let prefilled = !typed.is_empty();
    pg.entry(StatusCode::OK, &typed, prefilled, "")
}

/// `POST /device`: one of the page's forms.
pub async fn post(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut pg = Page::new(&state, &parts, None);
    let bad = |pg: &Page<'_>, e: OAuthError| {
        pg.error(
            StatusCode::BAD_REQUEST,
            &e.description,
            Some(e.code.as_str()),
        )
    };
    let body: Bytes =
        match crate::pages::form_body(&parts.headers, body, state.http().body_limit).await {
            Some(b) => b,
            None => {
                return bad(
                    &pg,
                    OAuthError::invalid_request("expected a form of this page"),
                )
            }
        };
    let all = match Params::from_form(&body) {
        Ok(p) => p,
        Err(e) => return bad(&pg, e),
    };
    if let Err(e) = all.reject_duplicates() {
        return bad(&pg, e);
    }
    let field = |name: &str| all.get(name).ok().flatten();
    let (submitted, expected) = match field("_action") {
        Some("code") => (
            Submitted::Code(field("user_code").unwrap_or_default().to_owned()),
            CODE_FIELDS,
        ),
        Some("login") => (
            Submitted::Login(PasswordForm::new(
                field("username").unwrap_or_default(),
                field("password").unwrap_or_default(),
            )),
            LOGIN_FIELDS,
        ),
        Some("consent") => match field("decision") {
            Some("allow") => (Submitted::Consent { allow: true }, CONSENT_FIELDS),
            Some("deny") => (Submitted::Consent { allow: false }, CONSENT_FIELDS),
            _ => {
                return bad(
                    &pg,
                    OAuthError::invalid_request("the consent form names no decision"),
                )
            }
        },
        Some("sso") => (
            Submitted::Sso {
                idp: field("idp").unwrap_or_default().to_owned(),
            },
            SSO_FIELDS,
        ),
        _ => return bad(&pg, OAuthError::invalid_request("the form names no action")),
    };
    if let Some((name, _)) = all
        .pairs()
        .iter()
        .find(|(k, _)| !expected.contains(&k.as_str()))
    {
        return bad(
            &pg,
            OAuthError::invalid_request(format!(
                "'{}' is not a field of this form",
                name.chars().take(64).collect::<String>()
            )),
        );
    }
    if let Some(l) = field("ui_locales") {
        pg.lang = Lang::choose(Some(l), None);
    }
    // Every form carries the CSRF token of this browser's cookie.
    let cookie = pages::cookie(&parts.headers, state.cookies().csrf());
    if !csrf_ok(state.sealer(), cookie, field("_csrf")) {
        return pg.error(StatusCode::FORBIDDEN, &pg.lang.text("form_expired"), None);
    }
    let keys = state.keys();
    let mut cx = state.cx_for(&state.host(&parts), &keys);
    let ip = client_address(&parts, &state.http().trusted_proxies);
    cx.request = crate::request_id::meta(&parts.headers, ip);
    let typed = match submitted {
        Submitted::Code(typed) => return code_entered(&pg, &cx, &parts, &typed).await,
        Submitted::Login(_) | Submitted::Consent { .. } | Submitted::Sso { .. } => {
            // The code comes only from the handle this browser was given.
            let opened = cookie
                .zip(field(pending::FIELD))
                .and_then(|(c, h)| pending::open(state.sealer(), c, h, state.now()));
            let Some(opened) = opened else {
                return pg.error(StatusCode::FORBIDDEN, &pg.lang.text("form_expired"), None);
            };
            let code = opened
                .params
                .get(SEALED_CODE)
                .ok()
                .flatten()
                .map(str::to_owned);
            let lang = opened
                .params
                .get("ui_locales")
                .ok()
                .flatten()
                .map(str::to_owned);
            let Some(code) = code else {
                return pg.error(StatusCode::FORBIDDEN, &pg.lang.text("form_expired"), None);
            };
            (code, lang, submitted)
        }
    };
    let (code, lang, submitted) = typed;
    let mut pg = Page::new(&state, &parts, lang.as_deref());
    let (record, client) = match device_verification::find(&cx, &code).await {
        Ok(Found::Pending(found)) => *found,
        Ok(other) => return fate(&pg, &other),
        Err(e) => return pg.server_error(&e),
    };
    let session_cookie = pages::cookie(&parts.headers, state.cookies().session());
    let mut current = match session::current(cx.store, session_cookie, cx.now).await {
        Ok(s) => s,
        Err(e) => return pg.server_error(&e.into()),
    };
    match submitted {
        Submitted::Sso { idp } => {
            return match cx.store.get_idp(&idp).await {
                Ok(Some(idp)) => pg.send_upstream(&record, &client, &idp, None).await,
                Ok(None) => bad(
                    &pg,
                    OAuthError::invalid_request("no such identity provider"),
                ),
                Err(e) => pg.server_error(&e.into()),
            };
        }
        Submitted::Login(form) => {
            // A user of a domain that signs in elsewhere is sent there.
            match idp_for_email(cx.store, form.username()).await {
                Ok(Some(idp)) => {
                    let hint = Some(form.username());
                    return pg.send_upstream(&record, &client, &idp, hint).await;
                }
                Ok(None) => {}
                Err(e) => return pg.server_error(&e.into()),
            }
            match signin::sign_in(&state, &cx, &parts.headers, ip, &form).await {
                Ok(SignIn::SignedIn {
                    identity,
                    session: started,
                    device_cookie,
                }) => {
                    tracing::info!(user_id = %identity.user.user_id, client_id = %client.client_id, amr = ?identity.amr, "user signed in");
                    if let Some(v) = state.cookies().set(
                        state.cookies().session(),
                        started.value.expose(),
                        state.config().session_ttl,
                    ) {
                        pg.set_cookies.push(v);
                    }
                    pg.set_cookies.extend(device_cookie);
                    current = Some((started.record, identity.user));
                }
                Ok(SignIn::Failed) => {
                    let status = StatusCode::UNAUTHORIZED;
                    return pg
                        .login(status, &record, &client, "login_failed", form.username())
                        .await;
                }
                Ok(SignIn::Locked { retry_after }) => {
                    let status = StatusCode::TOO_MANY_REQUESTS;
                    let res = pg
                        .login(status, &record, &client, "login_locked", form.username())
                        .await;
                    return with_retry_after(res, retry_after);
                }
                Ok(SignIn::Busy) => {
                    let status = StatusCode::SERVICE_UNAVAILABLE;
                    let res = pg
                        .login(status, &record, &client, "login_busy", form.username())
                        .await;
                    return with_retry_after(res, 1);
                }
                Err(e) => return pg.server_error(&e),
            }
        }
        Submitted::Consent { allow } => {
            let Some((session, user)) = &current else {
                return pg.login(StatusCode::OK, &record, &client, "", "").await;
            };
            return match device_verification::decide(&cx, &record, user, session.auth_time, allow)
                .await
            {
                Ok(true) => {
                    tracing::info!(user_id = %user.user_id, client_id = %client.client_id, approved = allow, "device authorization decided");
                    let key = if allow {
                        "device_approved"
                    } else {
                        "device_denied"
                    };
                    pg.message(StatusCode::OK, key)
                }
                Ok(false) => pg.message(StatusCode::BAD_REQUEST, "device_decided"),
                Err(e) => pg.server_error(&e),
            };
        }
        Submitted::Code(_) => {}
    }
    match &current {
        Some((_, user)) => pg.consent(&record, &client, user),
        None => pg.login(StatusCode::OK, &record, &client, "", "").await,
    }
}

/// Whether a request in progress sealed by an upstream sign-in is this page's: the code and
/// the language, and nothing else (an authorization request naming the code's field is not).
pub fn is_device_request(params: &Params) -> bool {
    params.contains(SEALED_CODE)
        && params
            .pairs()
            .iter()
            .all(|(k, _)| k == SEALED_CODE || k == "ui_locales")
}

/// Continues on the consent page after a sign-in through an upstream provider started on the
/// sign-in page of this flow: `params` is the sealed request in progress (the code), the user
/// `identity` has the session `started`.
pub async fn continue_after_upstream_sign_in(
    state: &AppState,
    parts: &Parts,
    params: &Params,
    identity: Identity,
    started: Started,
) -> Response {
    let lang = params.get("ui_locales").ok().flatten();
    let mut pg = Page::new(state, parts, lang);
    let keys = state.keys();
    let cx = state.cx_for(&state.host(parts), &keys);
    tracing::info!(user_id = %identity.user.user_id, amr = ?identity.amr, "user signed in");
    if let Some(v) = state.cookies().set(
        state.cookies().session(),
        started.value.expose(),
        state.config().session_ttl,
    ) {
        pg.set_cookies.push(v);
    }
    let code = params.get(SEALED_CODE).ok().flatten().unwrap_or_default();
    match device_verification::find(&cx, code).await {
        Ok(Found::Pending(found)) => pg.consent(&found.0, &found.1, &identity.user),
        Ok(other) => fate(&pg, &other),
        Err(e) => pg.server_error(&e),
    }
}

/// A user code typed on the entry form: paid from the address's budget, looked up, and
/// answered with the sign-in page (or the consent page for a signed-in browser).
async fn code_entered(pg: &Page<'_>, cx: &Cx<'_>, parts: &Parts, typed: &str) -> Response {
    let state = pg.state;
    let ip = client_address(parts, &state.http().trusted_proxies);
    let shown: String = typed.chars().take(32).filter(|c| !c.is_control()).collect();
    let reservation = match throttle::take_user_code_attempt(state, ip).await {
        Ok(Ok(r)) => r,
        Ok(Err(until)) => {
            let event = AuditEvent::new(cx.now, AuditKind::UserCodeLockedOut, Actor::Anonymous)
                .failed()
                .request(&cx.request)
                .detail(serde_json::json!({ "until": until }));
            audit::record(cx.store, event).await;
            let res = pg.entry(
                StatusCode::TOO_MANY_REQUESTS,
                &shown,
                false,
                "device_locked",
            );
            return with_retry_after(res, until - cx.now);
        }
        Err(e) => return pg.server_error(&e.into()),
    };
    let found = match device_verification::find(cx, typed).await {
        Ok(f) => f,
        Err(e) => return pg.server_error(&e),
    };
    // Only a code that names nothing is a wrong guess.
    if !matches!(found, Found::Unknown) {
        if let Err(e) = reservation.give_back(state.store(), cx.now).await {
            return pg.server_error(&e.into());
        }
    }
    let (record, client) = match found {
        Found::Pending(found) => *found,
        Found::Unknown => {
            return pg.entry(StatusCode::BAD_REQUEST, &shown, false, "device_unknown")
        }
        other => return fate(pg, &other),
    };
    let session_cookie = pages::cookie(&parts.headers, state.cookies().session());
    match session::current(cx.store, session_cookie, cx.now).await {
        Ok(Some((_, user))) => pg.consent(&record, &client, &user),
        Ok(None) => pg.login(StatusCode::OK, &record, &client, "", "").await,
        Err(e) => pg.server_error(&e.into()),
    }
}

/// The page for a code that cannot be decided on (any more).
fn fate(pg: &Page<'_>, found: &Found) -> Response {
    let key = match found {
        Found::Expired => "device_expired",
        Found::Decided => "device_decided",
        Found::Unknown | Found::Pending(_) => "device_unknown",
    };
    pg.message(StatusCode::BAD_REQUEST, key)
}
