//! Which public base URL a request was sent to: the main issuer, or one of the configured
//! hosts (custom domains, data centres; `[[hosts]]` in the config file, see the README's
//! configuration section and [`tessera_core::config::Host`]).
//!
//! Owns [`Hosts`], the table built once at start (one prepared [`Config`] per host, its
//! `issuer` that host's URL), and [`Host`], naming the entry a request is answered as (an
//! extractor: `crate::state` implements it, with the state's table). The request's host is
//! its URI authority (HTTP/2 `:authority`, or an absolute-form request line) or else its
//! `Host` header (RFC 9110 §7.2); from a trusted reverse proxy (`trusted_proxies`), the last
//! `X-Forwarded-Host` it added wins. It matches a host exactly, ignoring ASCII case
//! (RFC 3986 §3.2.2), with the scheme's default port optional (RFC 3986 §6.2.3). A request naming no configured host, whatever it names, is
//! answered as the main issuer: a `Host` header is never reflected into a URL or a token.
//!
//! Resolution allocates nothing: with no host configured it reads no header, and otherwise it
//! compares the header's bytes with the prepared authorities.

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Uri};
use tessera_core::config::Config;

/// The configured hosts, prepared once.
#[derive(Debug, Default)]
pub struct Hosts {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// `host[:port]`, lower case, without the scheme's default port.
    authority: String,
    /// The scheme's default port, which a request may name or leave out.
    default_port: &'static str,
    /// The configuration it answers with.
    config: Config,
}

/// The entry of [`Hosts`] a request is answered as; the default is the main issuer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host(Option<usize>);

impl Host {
    /// The main issuer.
    pub const MAIN: Host = Host(None);

    /// Whether this is the main issuer.
    pub fn is_main(self) -> bool {
        self.0.is_none()
    }
}

impl Hosts {
    /// One entry per host of `config` ([`Config::hosts`]), each with its configuration
    /// ([`Config::for_host`]).
    pub fn new(config: &Config) -> Self {
        let entries = config
            .hosts
            .iter()
            .map(|h| Entry {
                authority: h.authority().to_ascii_lowercase(),
                default_port: h.default_port(),
                config: config.for_host(h),
            })
            .collect();
        Self { entries }
    }

    /// Whether any host is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The host whose authority `authority` names, else the main issuer.
    pub fn resolve(&self, authority: &str) -> Host {
        let authority = authority.trim();
        Host(self.entries.iter().position(|e| e.matches(authority)))
    }

    /// The host a request was sent to ([`request_authority`]), else the main issuer.
    pub fn of_request(&self, parts: &Parts, trusted_proxies: &[IpAddr]) -> Host {
        if self.entries.is_empty() {
            return Host::MAIN;
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        match request_authority(&parts.uri, &parts.headers, peer, trusted_proxies) {
            Some(a) => self.resolve(a),
            None => Host::MAIN,
        }
    }

    /// The configuration of `host`; `main` for the main issuer.
    pub fn config<'a>(&'a self, host: Host, main: &'a Config) -> &'a Config {
        host.0
            .and_then(|i| self.entries.get(i))
            .map_or(main, |e| &e.config)
    }
}

impl Entry {
    fn matches(&self, authority: &str) -> bool {
        if authority.eq_ignore_ascii_case(&self.authority) {
            return true;
        }
        // `host:443` names `https://host`, `host:80` names `http://host`.
        authority
            .strip_suffix(self.default_port)
            .and_then(|a| a.strip_suffix(':'))
            .is_some_and(|a| a.eq_ignore_ascii_case(&self.authority))
    }
}

/// The authority a request names: from a trusted proxy (`peer` in `trusted_proxies`), the
/// last value of its `X-Forwarded-Host`; else the URI's authority; else `Host`. `None` when
/// there is none, or it is not text.
pub fn request_authority<'a>(
    uri: &'a Uri,
    headers: &'a HeaderMap,
    peer: Option<IpAddr>,
    trusted_proxies: &[IpAddr],
) -> Option<&'a str> {
    if peer.is_some_and(|p| trusted_proxies.contains(&p)) {
        let forwarded = headers
            .get_all("x-forwarded-host")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    if let Some(a) = uri.authority() {
        return Some(a.as_str());
    }
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request};
    use tessera_core::config::Host as HostUrl;

    fn config() -> Config {
        Config::new("http://127.0.0.1:8080").with_hosts(vec![
            HostUrl::parse("https://API.boltcompany.com", Some("prod".into())).unwrap(),
            HostUrl::parse("http://localhost:8080", None).unwrap(),
            HostUrl::parse("https://eu.example.com:8443", None).unwrap(),
            HostUrl::parse("http://[::1]:8080", None).unwrap(),
        ])
    }

    #[test]
    fn hosts_match_exactly_ignoring_case_and_the_default_port() {
        let main = config();
        let hosts = Hosts::new(&main);
        let iss = |a: &str| hosts.config(hosts.resolve(a), &main).issuer.clone();
        assert_eq!(iss("api.boltcompany.com"), "https://api.boltcompany.com");
        assert_eq!(iss("API.BoltCompany.COM"), "https://api.boltcompany.com");
        assert_eq!(
            iss("api.boltcompany.com:443"),
            "https://api.boltcompany.com"
        );
        assert_eq!(iss("localhost:8080"), "http://localhost:8080");
        assert_eq!(iss("LOCALHOST:8080"), "http://localhost:8080");
        assert_eq!(iss("eu.example.com:8443"), "https://eu.example.com:8443");
        assert_eq!(iss("[::1]:8080"), "http://[::1]:8080");
        assert_eq!(
            hosts
                .config(hosts.resolve("api.boltcompany.com"), &main)
                .host_env
                .as_deref(),
            Some("prod")
        );
        // Anything else is the main issuer, never reflected.
        for other in [
            "127.0.0.1:8080",
            "evil.example",
            "api.boltcompany.com:80",
            "api.boltcompany.com:4430",
            "api.boltcompany.com.evil.example",
            "evil.example.api.boltcompany.com",
            "xapi.boltcompany.com",
            "localhost",
            "localhost:80",
            "localhost:8081",
            "eu.example.com",
            "eu.example.com:443",
            "api.boltcompany.com.",
            "",
            ":443",
        ] {
            let h = hosts.resolve(other);
            assert!(h.is_main(), "{other}");
            assert_eq!(hosts.config(h, &main).issuer, "http://127.0.0.1:8080");
        }
    }

    fn parts(host: Option<&str>, forwarded: Option<&str>, peer: &str) -> Parts {
        let mut req = Request::builder().uri("/oauth2/token");
        if let Some(h) = host {
            req = req.header(header::HOST, h);
        }
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-host", f);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let addr: std::net::SocketAddr = format!("{peer}:5000").parse().unwrap();
        parts.extensions.insert(axum::extract::ConnectInfo(addr));
        parts
    }

    #[test]
    fn forwarded_host_is_believed_only_from_a_trusted_proxy() {
        let main = config();
        let hosts = Hosts::new(&main);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = [proxy];
        let iss = |p: &Parts, trusted: &[IpAddr]| {
            hosts
                .config(hosts.of_request(p, trusted), &main)
                .issuer
                .clone()
        };
        // From anyone else, X-Forwarded-Host is ignored and Host decides.
        let p = parts(
            Some("localhost:8080"),
            Some("api.boltcompany.com"),
            "192.0.2.1",
        );
        assert_eq!(iss(&p, &trusted), "http://localhost:8080");
        let p = parts(
            Some("evil.example"),
            Some("api.boltcompany.com"),
            "192.0.2.1",
        );
        assert_eq!(iss(&p, &trusted), "http://127.0.0.1:8080");
        // From the proxy, the last value it added decides.
        let p = parts(
            Some("internal:8080"),
            Some("evil.example, api.boltcompany.com"),
            "10.0.0.5",
        );
        assert_eq!(iss(&p, &trusted), "https://api.boltcompany.com");
        let p = parts(
            Some("localhost:8080"),
            Some("api.boltcompany.com, evil.example"),
            "10.0.0.5",
        );
        assert_eq!(iss(&p, &trusted), "http://127.0.0.1:8080");
        // The proxy sent none: Host decides.
        let p = parts(Some("localhost:8080"), None, "10.0.0.5");
        assert_eq!(iss(&p, &trusted), "http://localhost:8080");
        // No Host at all, or not text.
        let p = parts(None, None, "192.0.2.1");
        assert_eq!(iss(&p, &trusted), "http://127.0.0.1:8080");
        let mut p = parts(None, None, "192.0.2.1");
        p.headers.insert(
            header::HOST,
            HeaderValue::from_bytes(b"localhost:8080\xff").unwrap(),
        );
        assert_eq!(iss(&p, &trusted), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_uri_authority_of_http2_names_the_host() {
        let main = config();
        let hosts = Hosts::new(&main);
        let (parts, ()) = Request::builder()
            .uri("https://api.boltcompany.com/oauth2/token")
            .header(header::HOST, "evil.example")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(
            hosts.config(hosts.of_request(&parts, &[]), &main).issuer,
            "https://api.boltcompany.com"
        );
    }

    #[test]
    fn without_hosts_every_request_is_the_main_issuer() {
        let main = Config::new("https://auth.example.com");
        let hosts = Hosts::new(&main);
        assert!(hosts.is_empty());
        let p = parts(Some("api.boltcompany.com"), None, "192.0.2.1");
        assert!(hosts.of_request(&p, &[]).is_main());
    }
}
