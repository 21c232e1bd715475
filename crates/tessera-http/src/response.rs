//! The bodies of successful JSON responses.
//!
//! Owns the wire form of a token response (RFC 6749 §5.1: `access_token`, `token_type`,
//! `expires_in`, and `scope`, `refresh_token`, `id_token` when there are any, and a dialect's
//! extra fields, `wid`; a token exchange's `issued_token_type`, RFC 8693 §2.2.1) and of an
//! introspection response (RFC 7662 §2.2). The core hands over typed values; only this
//! module turns them into bytes.

use serde::Serialize;
use tessera_core::endpoint::introspect::IntrospectionResponse;
use tessera_core::grant::TokenResponse;
use tessera_core::secret::Secret;

#[derive(Serialize)]
struct TokenWire<'a> {
    access_token: &'a str,
    token_type: &'a str,
    expires_in: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'a str>,
}

/// The JSON body of a token response.
pub fn token_json(r: &TokenResponse) -> String {
    serde_json::to_string(&TokenWire {
        access_token: r.access_token.expose(),
        token_type: &r.token_type,
        expires_in: r.expires_in,
        scope: &r.scope,
        refresh_token: r.refresh_token.as_ref().map(Secret::expose),
        id_token: r.id_token.as_deref(),
        wid: r.wid.as_deref(),
        issued_token_type: r.issued_token_type.as_deref(),
    })
    .unwrap_or_default()
}

/// The JSON body of an introspection response; `{"active":false}` should it not serialize.
pub fn introspection_json(r: &IntrospectionResponse) -> String {
    serde_json::to_string(r).unwrap_or_else(|_| r#"{"active":false}"#.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_names_only_what_it_has() {
        let r = TokenResponse {
            access_token: Secret::new("at".to_owned()),
            token_type: "bearer".to_owned(),
            expires_in: 300,
            scope: String::new(),
            refresh_token: None,
            id_token: None,
            user: Some("u1".to_owned()),
            wid: None,
            issued_token_type: None,
        };
        let v: serde_json::Value = serde_json::from_str(&token_json(&r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"access_token": "at", "token_type": "bearer", "expires_in": 300})
        );
        let r = TokenResponse {
            scope: "openid".to_owned(),
            refresh_token: Some(Secret::new("rt".to_owned())),
            id_token: Some("idt".to_owned()),
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&token_json(&r)).unwrap();
        assert_eq!(v["scope"], "openid");
        assert_eq!(v["refresh_token"], "rt");
        assert_eq!(v["id_token"], "idt");
        let r = TokenResponse {
            token_type: "sessionID".to_owned(),
            wid: Some("u1".to_owned()),
            ..r
        };
        let v: serde_json::Value = serde_json::from_str(&token_json(&r)).unwrap();
        assert_eq!(v["token_type"], "sessionID");
        assert_eq!(v["wid"], "u1");
    }
}
