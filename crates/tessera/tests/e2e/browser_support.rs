//! A scripted browser over HTTP: keeps cookies, reads the hidden fields of Tessera's forms and
//! submits them, follows nothing by itself (each redirect is checked by the test).

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::support::{http_client, Creds, Server};

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";
/// The PKCE example of RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 challenge.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The redirect URI test clients register.
pub const REDIRECT: &str = "https://app.example.com/cb";

/// One response.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> Option<String> {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The query parameters of the `Location` header.
    pub fn redirect_params(&self) -> BTreeMap<String, String> {
        let loc = self
            .location()
            .unwrap_or_else(|| panic!("no redirect: {self:?}"));
        let url = reqwest::Url::parse(&loc).expect("absolute Location");
        url.query_pairs().into_owned().collect()
    }

    /// The hidden fields of the page's (first) form: the sign-in page's second form, the
    /// upstream providers' buttons, has its own.
    pub fn hidden(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let first_form = self.body.split("</form>").next().unwrap_or_default();
        for part in first_form.split("<input type=\"hidden\" ").skip(1) {
            let name = attr(part, "name");
            let value = attr(part, "value");
            if let (Some(n), Some(v)) = (name, value) {
                out.push((n, v));
            }
        }
        out
    }

    /// Whether the page is the sign-in form.
    pub fn is_login(&self) -> bool {
        self.body.contains("name=\"password\"")
    }

    /// Whether the page is the consent form.
    pub fn is_consent(&self) -> bool {
        self.body.contains("value=\"allow\"")
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + tag.get(start..)?.find('"')?;
    Some(unescape(tag.get(start..end)?))
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A browser with a cookie jar.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: Option<String>,
}

impl Browser {
    pub fn new(server: &Server) -> Self {
        Self {
            http: http_client(),
            base: server.base.clone(),
            cookies: BTreeMap::new(),
            accept_language: None,
        }
    }

    /// A browser whose requests come from `ip` (a loopback address other than 127.0.0.1).
    pub fn from_address(server: &Server, ip: [u8; 4]) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("build reqwest client");
        Self {
            http,
            ..Self::new(server)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all(SET_COOKIE) {
            let text = v.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap_or_default(),
        }
    }

    /// GET a path (or absolute URL) of the server.
    pub async fn get(&mut self, path_or_url: &str) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let mut req = self.http.get(url).header(COOKIE, self.cookie_header());
        if let Some(l) = &self.accept_language {
            req = req.header("accept-language", l);
        }
        let res = req.send().await.expect("GET");
        self.keep(res).await
    }

    /// POST a form to a path.
    pub async fn post(&mut self, path: &str, fields: &[(String, String)]) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header());
        if let Some(l) = &self.accept_language {
            req = req.header("accept-language", l);
        }
        let res = req.form(fields).send().await.expect("POST");
        self.keep(res).await
    }

    /// Submits the sign-in form of `page`.
    pub async fn sign_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        assert!(
            page.is_login(),
            "not a sign-in page: {} {}",
            page.status,
            page.body
        );
        let mut fields = page.hidden();
        fields.push(("username".into(), username.into()));
        fields.push(("password".into(), password.into()));
        self.post("/oauth2/authorize", &fields).await
    }

    /// Answers the consent form of `page`.
    pub async fn consent(&mut self, page: &Page, allow: bool) -> Page {
        assert!(
            page.is_consent(),
            "not a consent page: {} {}",
            page.status,
            page.body
        );
        let mut fields = page.hidden();
        fields.push((
            "decision".into(),
            if allow { "allow" } else { "deny" }.into(),
        ));
        self.post("/oauth2/authorize", &fields).await
    }

    /// Goes through the whole flow (sign in if asked, allow if asked) and returns the code.
    pub async fn code(&mut self, authorize_path: &str, username: &str) -> String {
        let mut page = self.get(authorize_path).await;
        if page.is_login() {
            page = self.sign_in(&page, username, PASSWORD).await;
        }
        if page.is_consent() {
            page = self.consent(&page, true).await;
        }
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let p = page.redirect_params();
        p.get("code")
            .unwrap_or_else(|| panic!("no code in {:?}", page.location()))
            .clone()
    }
}

/// An authorization request path for `client` with S256 PKCE and `scope`.
pub fn authorize_path(client: &Creds, scope: &str, extra: &str) -> String {
    let mut ser = url_encode(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-123"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("nonce", "n-456"),
    ]);
    if !extra.is_empty() {
        ser.push('&');
        ser.push_str(extra);
    }
    format!("/oauth2/authorize?{ser}")
}

pub fn url_encode(pairs: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params("http://x/", pairs)
        .expect("url")
        .query()
        .unwrap_or_default()
        .to_owned()
}

/// A server with one user (`alice`) and one confidential code-flow client; returns both.
pub async fn setup(client_args: &[&str]) -> (Server, Creds) {
    setup_with(&[], client_args).await
}

/// Like [`setup`], with server environment overrides.
pub async fn setup_with(env: &[(&str, &str)], client_args: &[&str]) -> (Server, Creds) {
    let server = Server::start_with(env).await;
    server.create_user("alice", PASSWORD).await;
    let mut args = vec![
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "openid profile email offline_access read",
    ];
    args.extend_from_slice(client_args);
    let creds = server.create_client(&args).await;
    (server, creds)
}

/// Exchanges a code at the token endpoint (HTTP Basic, form body).
pub async fn exchange(
    server: &Server,
    c: &Creds,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let req = server.http.post(server.url("/oauth2/token"));
    let req = if c.secret.is_empty() {
        form.push(("client_id", &c.id));
        req
    } else {
        req.basic_auth(&c.id, Some(&c.secret))
    };
    req.form(&form).send().await.expect("token request")
}

/// Refreshes at the token endpoint.
pub async fn refresh(server: &Server, c: &Creds, refresh_token: &str) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let req = server.http.post(server.url("/oauth2/token"));
    let req = if c.secret.is_empty() {
        form.push(("client_id", &c.id));
        req
    } else {
        req.basic_auth(&c.id, Some(&c.secret))
    };
    req.form(&form).send().await.expect("refresh request")
}
