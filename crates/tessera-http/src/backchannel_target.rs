//! Where the server may send a logout token: the address rules checked at send time (the
//! fetches of remote key sets, [`crate::remote_keys`], apply the same rules, loopback and
//! private addresses allowed).
//!
//! Owns [`permitted`], the rule for one IP address, [`Guard`], the `reqwest` resolver that
//! applies it to every address a host name resolves to (so the rule holds for the address
//! actually connected to, not for one looked up earlier), and [`check`], the same rule before
//! a request, so that a refused target ends its delivery instead of being retried.
//!
//! A `backchannel_logout_uri` is checked when registered (`https`, or `http` on a loopback
//! host), but a host name may later resolve to an address inside the server's network: a
//! registration must not turn the server into a way to reach it (server-side request forgery,
//! RFC 9700 §4.16 in spirit; Back-Channel Logout 1.0 §4 leaves the transport to the OP). So:
//!
//! - **always refused**: unspecified (`0.0.0.0/8`, `::`), link-local (`169.254.0.0/16`,
//!   `fe80::/10`, where cloud metadata services answer), multicast, broadcast, reserved
//!   (`240.0.0.0/4`) and the cloud metadata addresses (`169.254.169.254`, `fd00:ec2::254`);
//! - **refused unless allowed** (the setting `backchannel_logout_private_addresses`; on by
//!   default only when the issuer itself is on loopback, as for development): loopback
//!   (`127.0.0.0/8`, `::1`), private (RFC 1918 `10/8`, `172.16/12`, `192.168/16`; shared
//!   `100.64.0.0/10`; unique local `fc00::/7`);
//! - everything else is allowed. An IPv4-mapped IPv6 address, or a NAT64 one (`64:ff9b::/96`,
//!   RFC 6052), is judged as its IPv4 address.
//!
//! The client of the worker uses no proxy (an HTTP proxy would resolve the name itself, past
//! this rule) and follows no redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never a delivery target (unspecified, link-local, metadata, multicast, broadcast,
    /// reserved).
    Forbidden,
    /// Loopback or private, and the server does not allow those.
    Private,
}

impl Refusal {
    /// A name for logs and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden_address",
            Self::Private => "private_address",
        }
    }
}

/// Whether the server may connect to `ip` for a logout token; `allow_private` allows
/// loopback and private addresses.
pub fn permitted(ip: IpAddr, allow_private: bool) -> Result<(), Refusal> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| nat64(v6)) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let class = match ip {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => class_v6(v6),
    };
    match class {
        Some(Refusal::Private) if allow_private => Ok(()),
        Some(r) => Err(r),
        None => Ok(()),
    }
}

/// The IPv4 address inside a NAT64 address (`64:ff9b::/96`, RFC 6052), which a NAT64
/// gateway would connect to.
fn nat64(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [.., a, b, c, d] = ip.octets();
        Ipv4Addr::new(a, b, c, d)
    })
}

fn class_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified()
        || a == 0
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240
    {
        return Some(Refusal::Forbidden);
    }
    if ip.is_loopback() || ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        return Some(Refusal::Private);
    }
    None
}

/// The AWS instance metadata service's IPv6 address.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn class_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let first = ip.segments()[0];
    if ip.is_unspecified() || ip.is_multicast() || (first & 0xffc0) == 0xfe80 || ip == METADATA_V6 {
        return Some(Refusal::Forbidden);
    }
    if ip.is_loopback() || (first & 0xfe00) == 0xfc00 {
        return Some(Refusal::Private);
    }
    None
}

/// A resolver that keeps only the permitted addresses of a name; none left is an error, so
/// the connection is never made.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Whether loopback and private addresses are allowed.
    pub allow_private: bool,
}

/// No permitted address for a host.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to no address a logout token may be sent to ({})", .refusal.as_str())]
pub struct Refused {
    /// The host name.
    pub host: String,
    /// Why its (last) address was refused.
    pub refusal: Refusal,
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_permitted(name.as_str(), 0, allow_private).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The permitted addresses of `host`, or why there are none.
async fn resolve_permitted(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let mut kept = Vec::new();
    let mut refusal = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match permitted(addr.ip(), allow_private) {
            Ok(()) => kept.push(addr),
            Err(r) => refusal = Some(r),
        }
    }
    match (kept.is_empty(), refusal) {
        (true, Some(refusal)) => Err(Box::new(Refused {
            host: host.to_owned(),
            refusal,
        })),
        _ => Ok(kept),
    }
}

/// Checks the target of `uri` before sending: an IP literal against [`permitted`] (the
/// resolver is not asked for those), a host name by resolving it. `Err` is a refusal (the
/// delivery ends); a name that does not resolve is not a refusal (it is retried).
pub async fn check(uri: &str, allow_private: bool) -> Result<(), Refusal> {
    check_literal(uri, allow_private)?;
    let Some(url) = reqwest::Url::parse(uri).ok() else {
        return Err(Refusal::Forbidden);
    };
    let Some(host) = url.host_str().filter(|h| literal(h).is_none()) else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    match resolve_permitted(host, port, allow_private).await {
        Err(e) => match e.downcast_ref::<Refused>() {
            Some(r) => Err(r.refusal),
            None => Ok(()),
        },
        Ok(_) => Ok(()),
    }
}

/// Checks the part of `uri`'s target a [`Guard`] resolver never sees: a URL without a host
/// is refused, an IP literal is judged by [`permitted`]; a host name passes here (the
/// resolver judges its addresses when it is connected to).
pub fn check_literal(uri: &str, allow_private: bool) -> Result<(), Refusal> {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return Err(Refusal::Forbidden);
    };
    let Some(host) = url.host_str() else {
        return Err(Refusal::Forbidden);
    };
    match literal(host) {
        Some(ip) => permitted(ip, allow_private),
        None => Ok(()),
    }
}

/// The address a URL's host names literally (`[…]` for IPv6), if it is one.
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

/// The HTTP client of the worker: `timeout` per request, the [`Guard`] resolver, no proxy, no
/// redirects. An error, never a client without the resolver: the worker then sends nothing.
pub fn client(
    timeout: std::time::Duration,
    allow_private: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(Guard { allow_private }))
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_class_is_judged() {
        let forbidden = [
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "64:ff9b::a9fe:a9fe",
        ];
        let private = [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:10.1.2.3",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ];
        let public = [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
        ];
        for a in forbidden {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(permitted(ip, false), Err(Refusal::Forbidden), "{a}");
            assert_eq!(permitted(ip, true), Err(Refusal::Forbidden), "{a}");
        }
        for a in private {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(permitted(ip, false), Err(Refusal::Private), "{a}");
            assert_eq!(permitted(ip, true), Ok(()), "{a}");
        }
        for a in public {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(permitted(ip, false), Ok(()), "{a}");
        }
    }

    #[tokio::test]
    async fn literals_and_resolved_names_are_checked_before_sending() {
        assert_eq!(
            check("https://169.254.169.254/bc", true).await,
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            check("https://[fe80::1]/bc", true).await,
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            check("http://127.0.0.1:9/bc", false).await,
            Err(Refusal::Private)
        );
        assert_eq!(check("http://127.0.0.1:9/bc", true).await, Ok(()));
        // A name: judged by what it resolves to (localhost is loopback everywhere).
        assert_eq!(
            check("http://localhost:9/bc", false).await,
            Err(Refusal::Private)
        );
        assert_eq!(check("http://localhost:9/bc", true).await, Ok(()));
    }

    #[tokio::test]
    async fn the_resolver_keeps_no_refused_address() {
        let guard = Guard {
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        let err = match guard.resolve(name).await {
            Ok(_) => panic!("localhost resolved to a permitted address"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
        let open = Guard {
            allow_private: true,
        };
        let addrs: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
