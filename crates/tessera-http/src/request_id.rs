//! The request id: one name for one request in the logs, the audit trail and the response.
//!
//! Owns the middleware [`assign`]: a request keeps the `X-Request-Id` it came with when that
//! is a plain token ([`tessera_core::audit::is_valid_request_id`]: nothing that could forge a
//! log line), and otherwise gets a new random one; handlers read it back with
//! [`of`] (or [`meta`], with the client's address, for [`tessera_core::audit`]), and the
//! response carries it in `X-Request-Id`.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tessera_core::audit::{is_valid_request_id, RequestMeta};

/// The header carrying the request id, in and out.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Gives the request its id (the client's when acceptable, else a new one) and echoes it on
/// the response.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let kept = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v))
        .and_then(|v| HeaderValue::from_str(v).ok());
    let id = match kept {
        Some(v) => v,
        None => match HeaderValue::from_str(&tessera_core::secret::generate_id()) {
            Ok(v) => v,
            // Hex is always a valid header value.
            Err(_) => return next.run(req).await,
        },
    };
    req.headers_mut().insert(HEADER, id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert(HEADER, id);
    res
}

/// The id [`assign`] gave the request with these headers.
pub fn of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v))
        .map(str::to_owned)
}

/// The request's id and the client's address, for the audit trail.
pub fn meta(headers: &HeaderMap, source: Option<std::net::IpAddr>) -> RequestMeta {
    RequestMeta {
        request_id: of(headers),
        source,
        ..RequestMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    async fn echo(headers: HeaderMap) -> String {
        of(&headers).unwrap_or_default()
    }

    async fn call(sent: Option<&str>) -> (String, String) {
        let app = Router::new()
            .route("/", get(echo))
            .layer(axum::middleware::from_fn(assign));
        let mut req = Request::builder().uri("/");
        if let Some(v) = sent {
            req = req.header("x-request-id", v);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let header = res.headers()[&HEADER].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        (header, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_plain_id_is_kept_and_echoed() {
        let (header, seen) = call(Some("abc-123")).await;
        assert_eq!(header, "abc-123");
        assert_eq!(seen, "abc-123");
    }

    #[tokio::test]
    async fn a_missing_or_hostile_id_is_replaced_by_a_new_one() {
        for sent in [
            None,
            Some("a b"),
            Some("x\",\"kind\":\"forged"),
            Some(&*"a".repeat(65)),
        ] {
            let (header, seen) = call(sent).await;
            assert_eq!(header.len(), 32, "{sent:?}");
            assert!(header.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(seen, header, "the handler sees the id the response names");
        }
        assert_ne!(call(None).await.0, call(None).await.0);
    }
}
