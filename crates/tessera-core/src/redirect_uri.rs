//! Redirect URIs: what may be registered.
//!
//! Owns [`validate_registration`]: an absolute URI without a fragment (RFC 6749 §3.1.2);
//! `https`, or `http` only on a loopback host for native apps (RFC 9700 §2.6, RFC 8252 §7.3),
//! or a private-use scheme with a dot (RFC 8252 §7.1); and [`matches()`], the comparison at the
//! authorization endpoint: exact string match, except that the port of a loopback IP literal
//! may differ (RFC 8252 §7.3: native apps listen on a port the OS picks at run time).

/// Why a redirect URI cannot be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("redirect URI '{uri}' {reason}")]
pub struct RedirectUriError {
    uri: String,
    reason: &'static str,
}

/// Checks a redirect URI for registration.
pub fn validate_registration(uri: &str) -> Result<(), RedirectUriError> {
    let err = |reason| {
        Err(RedirectUriError {
            uri: uri.chars().take(200).collect(),
            reason,
        })
    };
    if uri.contains('#') {
        return err("must not contain a fragment");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return err("must not contain whitespace");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return err("must be an absolute URI");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return err("must be an absolute URI");
    }
    match scheme {
        "https" | "http" => {
            let Some(after) = rest.strip_prefix("//") else {
                return err("must be an absolute URI with a host");
            };
            let authority = after.split(['/', '?']).next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let port = if host.starts_with('[') {
                host.split_once("]:").map(|(_, p)| p)
            } else {
                host.split_once(':').map(|(_, p)| p)
            };
            if port.is_some_and(|p| canonical_port(p).is_none()) {
                return err("must have a port from 1 to 65535 written without leading zeros");
            }
            let host = if host.starts_with('[') {
                host.split(']')
                    .next()
                    .map(|h| format!("{h}]"))
                    .unwrap_or_default()
            } else {
                host.split(':').next().unwrap_or_default().to_owned()
            };
            if host.is_empty() {
                return err("must name a host");
            }
            // Matching is exact (RFC 9700 §4.1.3): a `*` would never match anything, and a
            // registrant who writes one means a pattern this server does not offer.
            if host.contains('*') || authority.contains('*') {
                return err("must name its host exactly (no wildcards)");
            }
            if scheme == "http" && !is_loopback(&host) {
                return err("must use https (plain http is only for loopback native apps)");
            }
            Ok(())
        }
        "javascript" | "data" | "file" | "vbscript" => err("uses a forbidden scheme"),
        // RFC 8252 §7.1: private-use schemes are reverse domain names.
        _ if scheme.contains('.') => Ok(()),
        _ => err("must use https, loopback http, or a reverse-domain private-use scheme"),
    }
}

/// Whether a requested redirect URI is the registered one: byte for byte, or, for a
/// registered `http://127.0.0.1` or `http://[::1]` URI, the same except for the port.
pub fn matches(registered: &str, asked: &str) -> bool {
    if registered == asked {
        return true;
    }
    match (loopback_parts(registered), loopback_parts(asked)) {
        (Some((h1, rest1)), Some((h2, rest2))) => h1 == h2 && rest1 == rest2,
        _ => false,
    }
}

/// For `http://127.0.0.1[:port]/rest` or `http://[::1][:port]/rest`: the host and the rest.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let (host, tail) = if after.starts_with("[::1]") {
        after.split_at_checked(5)?
    } else {
        after
            .split_at_checked(9)
            .filter(|(h, _)| *h == "127.0.0.1")?
    };
    let rest = match tail.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            let (port, rest) = p.split_at_checked(digits)?;
            canonical_port(port)?;
            rest
        }
        None => tail,
    };
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((host, rest))
}

/// A port as RFC 8252 §7.3 lets a native app vary it: a TCP port, 1 to 65535, written in
/// canonical form (decimal digits, no leading zero), so that one port has one spelling.
fn canonical_port(port: &str) -> Option<u16> {
    if port.starts_with('0') || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().filter(|p| *p != 0)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        let ok = [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:7777/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth2redirect",
        ];
        for u in ok {
            assert!(validate_registration(u).is_ok(), "{u}");
        }
        let bad = [
            "http://example.com/cb",
            "https://a/cb#frag",
            "/relative",
            "javascript:alert(1)",
            "myapp:/cb",
            "https:///nohost",
            "https://a/ c",
            "https://*.example.com/cb",
            "https://app.example.com:*/cb",
        ];
        for u in bad {
            assert!(validate_registration(u).is_err(), "{u}");
        }
    }

    #[test]
    fn only_loopback_ip_ports_may_vary() {
        assert!(matches("https://a/cb", "https://a/cb"));
        assert!(!matches("https://a/cb", "https://a/cb/"));
        assert!(!matches("https://a:1/cb", "https://a:2/cb"));
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(matches("http://127.0.0.1:1/cb", "http://127.0.0.1:2/cb"));
        assert!(matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!matches(
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:2/other"
        ));
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.com/cb"
        ));
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80@evil.com/cb"
        ));
        assert!(!matches("http://localhost:1/cb", "http://localhost:2/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://[::1]/cb"));
    }

    #[test]
    fn a_varying_loopback_port_must_be_a_canonical_tcp_port() {
        for port in ["1", "8080", "65535"] {
            assert!(
                matches(
                    "http://127.0.0.1/cb",
                    &format!("http://127.0.0.1:{port}/cb")
                ),
                "{port}"
            );
            assert!(matches(
                "http://[::1]/cb",
                &format!("http://[::1]:{port}/cb")
            ));
        }
        for port in ["0", "00", "08080", "65536", "99999", "", "+80", "123456"] {
            assert!(
                !matches(
                    "http://127.0.0.1/cb",
                    &format!("http://127.0.0.1:{port}/cb")
                ),
                "{port}"
            );
            assert!(
                !matches("http://[::1]:1/cb", &format!("http://[::1]:{port}/cb")),
                "{port}"
            );
        }
    }

    #[test]
    fn a_registered_port_must_be_a_canonical_tcp_port() {
        for uri in [
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:08080/cb",
            "http://127.0.0.1:99999/cb",
            "http://[::1]:0/cb",
            "https://app.example.com:/cb",
            "https://app.example.com:65536/cb",
        ] {
            assert!(validate_registration(uri).is_err(), "{uri}");
        }
        for uri in ["http://127.0.0.1:1/cb", "https://app.example.com:65535/cb"] {
            assert!(validate_registration(uri).is_ok(), "{uri}");
        }
    }
}
