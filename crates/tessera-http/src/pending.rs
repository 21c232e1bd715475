//! The authorization request in progress between the sign-in and consent pages.
//!
//! Owns [`seal`] and [`open`]: the pages never copy the request's parameters into form
//! fields (a field the request could name would then be posted back as if the user had set
//! it: a smuggled `decision=allow` or `username`, a login CSRF of RFC 6749 §10.12 and RFC 9700
//! §4.7). Instead each form carries one opaque handle, `_request`: the request's parameters
//! and an expiry, sealed (AES-256-GCM, [`Sealer`]) under the server's secret and bound (as
//! associated data) to the browser's CSRF cookie. The handle also carries the dialect the
//! flow started through, so that no form field can change it. So the handle is unreadable, cannot be
//! altered, is useless in another browser, expires after [`TTL`] seconds, and works on every
//! node sharing `TESSERA_SECRET`, with nothing stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_core::keys::Sealer;
use tessera_core::params::Params;
use tessera_core::OAuthError;

/// How long a sign-in or consent page may stay open before its form is refused, seconds.
pub const TTL: i64 = 30 * 60;

/// The name of the form field that carries the handle.
pub const FIELD: &str = "_request";

#[derive(Serialize, Deserialize)]
struct Pending {
    exp: i64,
    params: Vec<(String, String)>,
    /// The dialect the flow started through ([`tessera_core::dialect`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dialect: Option<String>,
}

/// A request in progress, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The authorization request's parameters.
    pub params: Params,
    /// The name of the dialect the flow started through, if any.
    pub dialect: Option<String>,
}

fn binding(csrf_cookie: &str) -> String {
    format!("tessera/authorize-request/v1:{csrf_cookie}")
}

/// The handle of `params` of a flow started through `dialect`, for the browser whose CSRF
/// cookie is `csrf_cookie`, valid until `now + TTL`.
pub fn seal(
    sealer: &Sealer,
    csrf_cookie: &str,
    params: &[(String, String)],
    dialect: Option<&str>,
    now: i64,
) -> Result<String, OAuthError> {
    let plain = serde_json::to_vec(&Pending {
        exp: now + TTL,
        params: params.to_vec(),
        dialect: dialect.map(str::to_owned),
    })
    .map_err(OAuthError::server_error)?;
    // The error would name the binding, which holds the cookie: say nothing of it.
    let sealed = sealer
        .seal(&binding(csrf_cookie), &plain)
        .map_err(|_| OAuthError::server_error(std::io::Error::other("sealing failed")))?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// The parameters and dialect sealed in `handle`, if it was made by a server sharing this
/// secret for this browser's CSRF cookie and has not expired.
pub fn open(sealer: &Sealer, csrf_cookie: &str, handle: &str, now: i64) -> Option<Opened> {
    let sealed = URL_SAFE_NO_PAD.decode(handle).ok()?;
    let plain = sealer.open(&binding(csrf_cookie), &sealed).ok()?;
    let p: Pending = serde_json::from_slice(&plain).ok()?;
    if p.exp <= now {
        return None;
    }
    Some(Opened {
        params: Params::from_pairs(p.params).ok()?,
        dialect: p.dialect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secret: &[u8]) -> Sealer {
        Sealer::from_secret(secret).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_handle_opens_only_for_its_cookie_its_secret_and_before_it_expires() {
        let s = sealer(b"0123456789abcdef0123456789abcdef");
        let params = Params::from_pairs(vec![
            ("client_id".into(), "c".into()),
            ("state".into(), "s".into()),
        ])
        .unwrap_or_default();
        let h = seal(&s, "cookie-a", params.pairs(), Some("workfront"), 1000).unwrap_or_default();
        let opened = Opened {
            params: params.clone(),
            dialect: Some("workfront".into()),
        };
        assert_eq!(open(&s, "cookie-a", &h, 1000), Some(opened.clone()));
        assert_eq!(open(&s, "cookie-a", &h, 1000 + TTL - 1), Some(opened));
        let plain = seal(&s, "cookie-a", params.pairs(), None, 1000).unwrap_or_default();
        assert_eq!(
            open(&s, "cookie-a", &plain, 1000).and_then(|o| o.dialect),
            None
        );
        assert_eq!(open(&s, "cookie-a", &h, 1000 + TTL), None, "expired");
        assert_eq!(open(&s, "cookie-b", &h, 1000), None, "another browser");
        let other = sealer(b"another secret of thirty-two by!");
        assert_eq!(open(&other, "cookie-a", &h, 1000), None, "another secret");
        // Any change to the handle breaks it.
        let mut bytes = URL_SAFE_NO_PAD.decode(&h).unwrap_or_default();
        if let Some(b) = bytes.last_mut() {
            *b ^= 1;
        }
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(open(&s, "cookie-a", &tampered, 1000), None, "tampered");
        assert_eq!(open(&s, "cookie-a", "!!", 1000), None);
    }
}
