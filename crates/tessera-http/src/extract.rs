//! Parsing a request body at the edge, once.
//!
//! Owns [`OAuthRequest`], the extractor of the token, introspection and revocation endpoints:
//! it reads the body within the size limit, checks that `Content-Type` is present and matches
//! the body (form, JSON or multipart, as API platforms' token endpoints accept), refuses parameters in the
//! query string (RFC 6749 §2.3.1: credentials never in the URL), and parses an
//! `Authorization: Basic` header. Every failure is an RFC 6749 error, never a panic.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use tessera_core::client_auth::{self, BasicCredentials};
use tessera_core::params::{Params, MAX_PARAMS};
use tessera_core::OAuthError;

use crate::error::HttpError;
use crate::state::AppState;

/// A parsed OAuth request: its parameters and its Basic credentials, if any.
#[derive(Debug)]
pub struct OAuthRequest {
    /// Body parameters.
    pub params: Params,
    /// Credentials from `Authorization: Basic`.
    pub basic: Option<BasicCredentials>,
    /// The client's address, when the server was started with connection info.
    pub peer: Option<std::net::IpAddr>,
    /// The request's id ([`crate::request_id`]).
    pub request_id: Option<String>,
    /// The path the request was sent to (for the audit trail).
    pub path: String,
    /// The request's `DPoP` headers and what they must match (RFC 9449 §4.3).
    pub dpop: Option<tessera_core::audit::DpopInput>,
    /// The client certificate of the request's mutual TLS connection (RFC 8705 §2).
    pub client_cert: Option<std::sync::Arc<[u8]>>,
}

impl OAuthRequest {
    /// The request's id and address, for the audit trail ([`tessera_core::cx::Cx::request`]).
    pub fn meta(&self) -> tessera_core::audit::RequestMeta {
        tessera_core::audit::RequestMeta {
            request_id: self.request_id.clone(),
            source: self.peer,
            dpop: self.dpop.clone(),
            client_cert: self.client_cert.clone(),
        }
    }
}

impl FromRequest<AppState> for OAuthRequest {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let peer = client_address(&parts, &state.http().trusted_proxies);
        let request_id = crate::request_id::of(&parts.headers);
        let path = parts.uri.path().to_owned();
        let dpop = dpop_input(&parts);
        let client_cert = client_certificate(&parts, state);
        if parts.uri.query().is_some_and(|q| !q.is_empty()) {
            return Err(OAuthError::invalid_request(
                "parameters must be sent in the request body, not in the URL",
            )
            .into());
        }
        let basic = match parts.headers.get(header::AUTHORIZATION) {
            Some(v) if client_auth::is_basic(v.as_bytes()) => {
                Some(client_auth::parse_basic(v.as_bytes()).map_err(HttpError::basic)?)
            }
            _ => None,
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_body(body, state.http().body_limit).await?;
        let params = parse_body(content_type.as_deref(), bytes).await?;
        Ok(Self {
            params,
            basic,
            peer,
            request_id,
            path,
            dpop,
            client_cert,
        })
    }
}

/// The request's `DPoP` headers, method and path (RFC 9449 §4.3), if it has any `DPoP`
/// header.
pub fn dpop_input(parts: &axum::http::request::Parts) -> Option<tessera_core::audit::DpopInput> {
    let proofs: Vec<String> = parts
        .headers
        .get_all("dpop")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!proofs.is_empty()).then(|| tessera_core::audit::DpopInput {
        proofs,
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
    })
}

/// The certificate a client presented in the TLS handshake of a request's connection (its
/// leaf, DER), which the listener puts in each request's extensions. The handshake proved
/// that the client holds its private key; whether the certificate is trusted is decided per
/// client ([`tessera_core::mtls`]).
#[derive(Debug, Clone)]
pub struct TlsClientCertificate(pub std::sync::Arc<[u8]>);

/// The client certificate (DER) of a request (RFC 8705 §2), with mutual TLS on: from a
/// trusted proxy (`trusted_proxies`) with a configured `mtls_client_cert_header`, the
/// certificate that header carries (none without it); from anyone else, the one its own
/// TLS connection presented ([`TlsClientCertificate`]). The header is never believed from
/// a peer that is not a trusted proxy.
pub fn client_certificate(
    parts: &axum::http::request::Parts,
    state: &AppState,
) -> Option<std::sync::Arc<[u8]>> {
    if !state.config().mtls.enabled {
        return None;
    }
    let http = state.http();
    if let Some(name) = &http.mtls_client_cert_header {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if peer.is_some_and(|p| http.trusted_proxies.contains(&p)) {
            return parts
                .headers
                .get(name)
                .and_then(|v| forwarded_certificate(v.as_bytes()))
                .map(std::sync::Arc::from);
        }
    }
    parts
        .extensions
        .get::<TlsClientCertificate>()
        .map(|c| std::sync::Arc::clone(&c.0))
}

/// The DER of a certificate as a TLS-terminating proxy forwards it in a header: URL-escaped
/// PEM (nginx's `$ssl_client_escaped_cert`), PEM (its line breaks as spaces, or none), or
/// base64 DER. `None` for an empty value or one that is none of these (`(null)`, `-`).
pub fn forwarded_certificate(value: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(value).ok()?.trim();
    let unescaped;
    let text = if text.contains('%') {
        unescaped = percent_decode(text)?;
        unescaped.as_str()
    } else {
        text
    };
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let body = match text.find(BEGIN) {
        Some(start) => {
            let rest = text.get(start + BEGIN.len()..)?;
            rest.get(..rest.find(END)?)?
        }
        None => text,
    };
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if b64.is_empty() {
        return None;
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&b64))
        .ok()?;
    // A DER certificate is a SEQUENCE.
    (der.first() == Some(&0x30)).then_some(der)
}

/// `%XX` escapes decoded (a `+` stays a `+`: it is base64, not a space).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The request's id and the client's address ([`client_address`]), for the audit trail
/// ([`tessera_core::cx::Cx::request`]), for handlers that read the request's parts
/// themselves rather than through [`OAuthRequest`].
pub fn request_meta(
    parts: &axum::http::request::Parts,
    trusted_proxies: &[std::net::IpAddr],
) -> tessera_core::audit::RequestMeta {
    let mut meta = crate::request_id::meta(&parts.headers, client_address(parts, trusted_proxies));
    meta.dpop = dpop_input(parts);
    meta
}

/// The client's address: the connection's peer, or, when the peer is a trusted reverse proxy,
/// the last address of its `X-Forwarded-For` (the one that proxy saw; earlier entries are
/// whatever the client wrote).
pub fn client_address(
    parts: &axum::http::request::Parts,
    trusted_proxies: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|a| a.trim().parse().ok());
    Some(forwarded.unwrap_or(peer))
}

/// The access token a request carries: `Authorization: Bearer` (RFC 6750 §2.1), or one of
/// the headers the enabled dialects name (`sessionID: <token>`). Two different tokens, or a
/// header that is not text, is `invalid_request` (RFC 6750 §2: one method only).
pub fn access_token(
    headers: &axum::http::HeaderMap,
    dialects: &tessera_core::dialect::Dialects,
) -> Result<Option<String>, OAuthError> {
    let text = |name: &str| -> Result<Vec<&str>, OAuthError> {
        headers
            .get_all(name)
            .iter()
            .map(|v| {
                v.to_str().map_err(|_| {
                    OAuthError::invalid_request(format!("the {name} header is not text"))
                })
            })
            .collect()
    };
    let authorization = text(header::AUTHORIZATION.as_str())?;
    let mut others = Vec::new();
    for name in dialects.token_headers() {
        others.extend(text(name)?);
    }
    tessera_core::dialect::access_token_from(&authorization, &others).map(|t| t.map(str::to_owned))
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, OAuthError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        OAuthError::invalid_request(format!(
            "the request body is larger than {limit} bytes or could not be read"
        ))
    })
}

/// Parses a body by its `Content-Type`.
pub async fn parse_body(content_type: Option<&str>, body: Bytes) -> Result<Params, OAuthError> {
    let Some(ct) = content_type else {
        return Err(OAuthError::invalid_request(
            "the Content-Type header is required",
        ));
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match media.as_str() {
        "application/x-www-form-urlencoded" => {
            if matches!(first, Some(b'{') | Some(b'[')) {
                return Err(mismatch(&media));
            }
            Params::from_form(&body)
        }
        "application/json" => Params::from_json(&body).map_err(|e| {
            if matches!(first, Some(b'{') | Some(b'[')) {
                e
            } else {
                mismatch(&media)
            }
        }),
        "multipart/form-data" => parse_multipart(ct, body).await,
        "" => Err(OAuthError::invalid_request("the Content-Type header is empty")),
        _ => Err(OAuthError::invalid_request(
            "unsupported Content-Type: use application/x-www-form-urlencoded, application/json or multipart/form-data",
        )),
    }
}

fn mismatch(media: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "the request body does not match its Content-Type {media}"
    ))
}

async fn parse_multipart(content_type: &str, body: Bytes) -> Result<Params, OAuthError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        OAuthError::invalid_request("multipart/form-data Content-Type without a valid boundary")
    })?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Err(mismatch("multipart/form-data")),
        };
        if pairs.len() >= MAX_PARAMS {
            return Err(OAuthError::invalid_request("too many parameters"));
        }
        let name = field
            .name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("a multipart field has no name"))?;
        let value = field
            .text()
            .await
            .map_err(|_| mismatch("multipart/form-data"))?;
        pairs.push((name, value));
    }
    if pairs.is_empty() {
        return Err(mismatch("multipart/form-data"));
    }
    Params::from_pairs(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_core::ErrorCode;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_forwarded_certificate_is_read_in_each_proxy_encoding() {
        use base64::Engine as _;
        let der: Vec<u8> = [0x30, 0x82].iter().copied().chain(0..=200u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        // nginx's $ssl_client_escaped_cert: every reserved byte escaped, `+` and `/` too.
        let escaped: String = pem
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let spaced = pem.replace('\n', " ");
        for value in [escaped.as_str(), spaced.as_str(), b64.as_str()] {
            assert_eq!(
                forwarded_certificate(value.as_bytes()),
                Some(der.clone()),
                "{value}"
            );
        }
        for junk in ["", "(null)", "-", "%zz", "bm90IGEgY2VydA==", "%FF%FE"] {
            assert_eq!(forwarded_certificate(junk.as_bytes()), None, "{junk}");
        }
    }

    #[test]
    fn each_body_style_parses() {
        let form = run(parse_body(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            Bytes::from_static(b"grant_type=client_credentials"),
        ))
        .unwrap();
        assert_eq!(form.get("grant_type").unwrap(), Some("client_credentials"));
        let json = run(parse_body(
            Some("application/json"),
            Bytes::from_static(br#"{"grant_type":"client_credentials"}"#),
        ))
        .unwrap();
        assert_eq!(json.get("grant_type").unwrap(), Some("client_credentials"));
        let mp = b"--XX\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--XX--\r\n";
        let multi = run(parse_body(
            Some("multipart/form-data; boundary=XX"),
            Bytes::from_static(mp),
        ))
        .unwrap();
        assert_eq!(multi.get("grant_type").unwrap(), Some("client_credentials"));
    }

    #[test]
    fn missing_or_mismatched_content_type_is_invalid_request() {
        let cases: [(Option<&str>, &[u8]); 5] = [
            (None, b"grant_type=x"),
            (
                Some("application/x-www-form-urlencoded"),
                br#"{"grant_type":"x"}"#,
            ),
            (Some("application/json"), b"grant_type=x"),
            (Some("multipart/form-data; boundary=XX"), b"grant_type=x"),
            (Some("text/plain"), b"grant_type=x"),
        ];
        for (ct, body) in cases {
            let e = run(parse_body(ct, Bytes::copy_from_slice(body))).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{ct:?}");
        }
    }

    proptest! {
        #[test]
        fn any_bytes_with_any_content_type_is_ok_or_invalid_request(
            ct in prop_oneof![
                Just("application/x-www-form-urlencoded".to_owned()),
                Just("application/json".to_owned()),
                Just("multipart/form-data; boundary=b".to_owned()),
                "\\PC{0,40}",
            ],
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            if let Err(e) = run(parse_body(Some(&ct), Bytes::from(body))) {
                prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
            }
        }
    }
}
