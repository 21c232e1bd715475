//! `POST /oauth2/introspect` (RFC 7662), answered as JSON or, when the caller's `Accept`
//! asks for it, as a signed JWT (RFC 9701 §4, §5).
//!
//! Owns the content negotiation: [`wants_jwt`] reads every `Accept` header of the request.
//! The JWT is chosen when `application/token-introspection+jwt` is named with a non-zero
//! quality that no acceptable JSON type (`application/json`, `application/*`, `*/*`)
//! outranks; any other `Accept`, or none, gets the plain JSON of RFC 7662. Errors are always
//! the JSON of RFC 6749 §5.2, whatever was asked for. Both answers say `Vary: Accept`, since
//! the same request may get either.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::introspect;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;

/// The media type of a signed introspection response (RFC 9701 §4, §5).
pub const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

enum Answer {
    Json(String),
    Jwt(String),
}

/// Handles an introspection request.
pub async fn handle(
    State(state): State<AppState>,
    host: Host,
    headers: HeaderMap,
    req: OAuthRequest,
) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = req.meta();
    let jwt = wants_jwt(&headers);
    let result = introspect::handle(&cx, req.basic.as_ref(), &req.params)
        .await
        .and_then(|r| {
            if jwt {
                introspect::signed(&cx, &r).map(Answer::Jwt)
            } else {
                Ok(Answer::Json(crate::response::introspection_json(&r)))
            }
        });
    respond(&state, &req, result, |a| {
        let mut res = match a {
            Answer::Json(body) => json_no_store(StatusCode::OK, body),
            Answer::Jwt(body) => {
                let mut res = json_no_store(StatusCode::OK, body);
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(JWT_MEDIA_TYPE),
                );
                res
            }
        };
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("accept"));
        res
    })
    .await
}

/// Whether the `Accept` headers ask for a signed response (RFC 9701 §4): the JWT type is
/// named (exactly; a wildcard never selects it) with a quality above zero, and no JSON type
/// has a higher one.
pub fn wants_jwt(headers: &HeaderMap) -> bool {
    let mut jwt_q: f32 = 0.0;
    let mut json_q: f32 = 0.0;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(0.0);
            if media.eq_ignore_ascii_case(JWT_MEDIA_TYPE) {
                jwt_q = jwt_q.max(q);
            } else if ["application/json", "application/*", "*/*"]
                .iter()
                .any(|m| media.eq_ignore_ascii_case(m))
            {
                json_q = json_q.max(q);
            }
        }
    }
    jwt_q > 0.0 && jwt_q >= json_q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        wants_jwt(&h)
    }

    #[test]
    fn the_jwt_is_chosen_only_when_named_and_not_outranked() {
        assert!(!accept(&[]));
        assert!(!accept(&["application/json"]));
        assert!(!accept(&["*/*"]));
        assert!(!accept(&["application/jwt"]));
        assert!(accept(&["application/token-introspection+jwt"]));
        assert!(accept(&["Application/Token-Introspection+JWT"]));
        assert!(accept(&[
            "application/json;q=0.5, application/token-introspection+jwt"
        ]));
        assert!(accept(&[
            "application/token-introspection+jwt;q=0.9, */*;q=0.1"
        ]));
        assert!(!accept(&[
            "application/token-introspection+jwt;q=0.4, application/json"
        ]));
        assert!(!accept(&["application/token-introspection+jwt;q=0"]));
        assert!(!accept(&["application/token-introspection+jwt;q=oops"]));
        assert!(!accept(&["application/token-introspection+jwt;q=2"]));
        assert!(accept(&[
            "text/html",
            "application/token-introspection+jwt"
        ]));
        assert!(accept(&[
            "application/json; q=0.2",
            "application/token-introspection+jwt ; q=0.8"
        ]));
    }
}
