//! HTML pages: templates, security headers, cookies and CSRF tokens.
//!
//! Owns [`Pages`], the template environment (minijinja, HTML auto-escaped). The templates
//! and the stylesheet are built in; an operator restyles them by putting files of the same
//! names (`base.html`, `login.html`, `consent.html`, `device.html`, `error.html`, `logout.html`,
//! `logged_out.html`, `tessera.css`) in the templates directory, which win over the built-in
//! ones. Every page is sent with a strict Content-Security-Policy (no script at all,
//! `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-store`.
//!
//! CSRF protection is a signed double-submit token: a random value in an HttpOnly,
//! SameSite=Lax cookie, and in each form its HMAC under the server's secret, so a value an
//! attacker plants in the cookie is useless without the matching form token.

use std::path::PathBuf;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use minijinja::Environment;
use tessera_core::keys::Sealer;

use crate::i18n::Lang;

const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("device.html", include_str!("../templates/device.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    ("continue.html", include_str!("../templates/continue.html")),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    ("tessera.css", include_str!("../templates/tessera.css")),
];

/// The page templates.
pub struct Pages {
    env: Environment<'static>,
    css: String,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

fn load(dir: Option<&PathBuf>, name: &str) -> Option<String> {
    if let Some(dir) = dir {
        // Names come from our own templates (`extends`), never from a request; still, only
        // plain file names are looked up.
        if !name.contains(['/', '\\']) && !name.starts_with('.') {
            if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
                return Some(text);
            }
        }
    }
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| (*t).to_owned())
}

impl Pages {
    /// The templates, from `dir` where it has them, built in otherwise.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let mut env = Environment::new();
        let css = load(dir.as_ref(), "tessera.css").unwrap_or_default();
        env.set_loader(move |name| Ok(load(dir.as_ref(), name)));
        Self { env, css }
    }

    /// Renders a template.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// The stylesheet.
    pub fn css(&self) -> &str {
        &self.css
    }

    /// A rendered page with the security headers (see [`html`]). A template that fails is
    /// logged and answered with a plain 500 page.
    pub fn page(
        &self,
        status: StatusCode,
        template: &str,
        ctx: minijinja::Value,
        form_targets: &[String],
    ) -> Response {
        match self.render(template, ctx) {
            Ok(body) => html(status, body, form_targets),
            Err(e) => {
                tracing::error!(error = %e, template, "page template failed");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><p>The page could not be shown.</p>"
                        .to_owned(),
                    &[],
                )
            }
        }
    }

    /// The error page, with the protocol error code when there is one.
    pub fn error(
        &self,
        lang: Lang,
        status: StatusCode,
        message: &str,
        code: Option<&str>,
    ) -> Response {
        let ctx = minijinja::context! {
            lang => lang.tag(), t => lang.texts("", ""), assets => "/assets", message, code,
        };
        self.page(status, "error.html", ctx, &[])
    }
}

/// An HTML page with the security headers. `form_targets` are origins (besides our own) a
/// form on the page may lead to: a form's answer may redirect to the client, and browsers
/// apply `form-action` to that redirect.
pub fn html(status: StatusCode, body: String, form_targets: &[String]) -> Response {
    let mut form_action = String::from("'self'");
    for t in form_targets {
        form_action.push(' ');
        form_action.push_str(t);
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    security_headers(h);
    res
}

/// The headers every page and page redirect carries.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A 303 redirect (the browser follows with GET) with the page headers.
pub fn redirect(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    security_headers(res.headers_mut());
    res
}

/// The origin of a redirect URI, as a CSP source (`https://app.example:8443`, or `scheme:`
/// for a private-use scheme).
pub fn origin_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    match rest.strip_prefix("//") {
        Some(after) => {
            let authority = after.split(['/', '?', '#']).next()?;
            let host = authority.rsplit('@').next()?;
            Some(format!("{scheme}://{host}"))
        }
        None => Some(format!("{scheme}:")),
    }
}

/// Cookie names and attributes for this deployment.
#[derive(Debug, Clone)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    /// Secure cookies (and the `__Host-` prefix) behind an https issuer.
    pub fn new(issuer: &str) -> Self {
        Self {
            secure: issuer.starts_with("https://"),
        }
    }

    /// The session cookie's name.
    pub fn session(&self) -> &'static str {
        if self.secure {
            "__Host-tessera_session"
        } else {
            "tessera_session"
        }
    }

    /// The CSRF cookie's name.
    pub fn csrf(&self) -> &'static str {
        if self.secure {
            "__Host-tessera_csrf"
        } else {
            "tessera_csrf"
        }
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure behind https.
    pub fn set(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}"
        ))
        .ok()
    }

    /// The browser's CSRF cookie value; a fresh one, with the `Set-Cookie` that sets it, when
    /// the browser has none.
    pub fn csrf_value(&self, headers: &HeaderMap, max_age: i64) -> (String, Option<HeaderValue>) {
        match cookie(headers, self.csrf()) {
            Some(v) => (v.to_owned(), None),
            None => {
                let v = tessera_core::secret::generate("").expose().to_owned();
                let set = self.set(self.csrf(), &v, max_age);
                (v, set)
            }
        }
    }

    /// A `Set-Cookie` value that removes a cookie.
    pub fn clear(&self, name: &str) -> Option<HeaderValue> {
        self.set(name, "", 0)
    }
}

/// The body of a form posted to one of the server's pages: `None` unless it is declared
/// `application/x-www-form-urlencoded` (what a browser sends for the pages' forms) and fits
/// in `limit` bytes.
pub async fn form_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Option<axum::body::Bytes> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return None;
    }
    axum::body::to_bytes(body, limit).await.ok()
}

/// The value of a request cookie.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The form token for a CSRF cookie value.
pub fn csrf_token(sealer: &Sealer, cookie_value: &str) -> String {
    URL_SAFE_NO_PAD.encode(sealer.mac(format!("csrf:{cookie_value}").as_bytes()))
}

/// Whether a form token matches the CSRF cookie (constant time).
pub fn csrf_ok(sealer: &Sealer, cookie_value: Option<&str>, form_token: Option<&str>) -> bool {
    let (Some(c), Some(f)) = (cookie_value, form_token) else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(f) else {
        return false;
    };
    sealer.mac_matches(format!("csrf:{c}").as_bytes(), &tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_redirect_uris() {
        assert_eq!(
            origin_of("https://app.example:8443/cb?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9/cb").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            origin_of("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
    }

    #[test]
    fn csrf_tokens_bind_to_the_cookie() {
        let s = Sealer::from_secret(b"0123456789abcdef0123456789abcdef")
            .unwrap_or_else(|_| unreachable!());
        let t = csrf_token(&s, "abc");
        assert!(csrf_ok(&s, Some("abc"), Some(&t)));
        assert!(!csrf_ok(&s, Some("abd"), Some(&t)));
        assert!(!csrf_ok(&s, None, Some(&t)));
        assert!(!csrf_ok(&s, Some("abc"), None));
        assert!(!csrf_ok(&s, Some("abc"), Some("!!")));
    }

    #[test]
    fn every_built_in_template_renders() {
        let p = Pages::new(None);
        for name in [
            "login.html",
            "consent.html",
            "device.html",
            "error.html",
            "logout.html",
            "logged_out.html",
        ] {
            let t = crate::i18n::Lang::Ja.texts("c", "u");
            let out = p
                .render(
                    name,
                    minijinja::context! { lang => "ja", t, hidden => vec![("state", "<x>")] },
                )
                .unwrap_or_else(|e| format!("{e:#}"));
            assert!(out.contains("<html lang=\"ja\""), "{name}: {out}");
            assert!(!out.contains("<x>"), "{name}: not escaped");
        }
        assert!(p.css().contains("--accent"));
    }
}
