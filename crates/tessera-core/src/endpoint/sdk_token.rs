//! `POST /sdk/token`: the exchange of a vendor-signed JWT for a short-lived access token, for
//! SDKs that hold no client credentials.
//!
//! Owns every rule of the endpoint, gathered here. It is a JWT-bearer exchange (the checks of
//! [`crate::grant::jwt_bearer::verify_assertion`], RFC 7523 §3) that differs from the grant at
//! the token endpoint in four things, kept as data in one [`Exchange`]: the `sdk` keys of the
//! dialect the request came through ([`crate::dialect::SdkRules`]; the Anyflow dialect's
//! are [`SDK_TOKEN`]):
//! - its path: the dialect's `sdk_token` paths (the Anyflow dialect's `/sdk/token`; the row
//!   [`EndpointId::SdkToken`] of the endpoint table has no path of its own);
//! - its body: a JSON object (`{"jwt": "...", "env": "..."}`, member names from the dialect,
//!   [`JsonBody`]) instead of a form,
//!   with no client credentials; the environment is the request's `env` (none =
//!   [`DEFAULT_ENV`], or, on a host bound to an environment, that one; there another `env` is
//!   refused) and must exist;
//! - its lifetime: 5 minutes, or 10 minutes when the environment's tokens are single-use
//!   (invalid once used, or 10 minutes after issue) ([`Lifetime`]);
//! - its audience rule: the JWT's `aud` is optional (the vendors' JWTs name none) and checked
//!   when present ([`AudienceRule::Optional`]); `jti`, `exp` and the signature are always
//!   required, and a JWT already used is refused.
//!
//! The token is issued to the environment's SDK client ([`sdk_client_id`], made on first use;
//! when requests or nodes make it at the same moment, every one issues under the one stored).
//! Its scope is the trust registration's, and the response names none.
//!
//! A request with a `DPoP` header gets its proof checked as at the token endpoint
//! ([`crate::dpop::check`], before the JWT is used up) and the token bound to the proof's
//! key (RFC 9449 §5: `cnf.jkt`, `token_type` `DPoP`), so that an SDK holding a key in the
//! browser or on the device gets a token only it can use.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::EndpointId;
use crate::audience::Audience;
use crate::confirmation::Confirmation;
use crate::cx::Cx;
use crate::dialect::{Dialect, SdkAudience, SdkRules};
use crate::environment::{valid_env_name, DEFAULT_ENV};
use crate::error::OAuthError;
use crate::grant::jwt_bearer::{verify_assertion, AudienceRule};
use crate::grant::types;
use crate::grant::TokenResponse;
use crate::issue::{issue_access_token_with, Extras};
use crate::model::{ClientRecord, RefreshPolicy, TokenFormat, UserFlowSettings};
use crate::scope::ScopeSet;
use crate::store::StoreError;

/// A JWT-bearer exchange with rules of its own: what sets `/sdk/token` apart from the grant at
/// the token endpoint.
#[derive(Debug)]
pub struct Exchange {
    /// Where it is served: its row of the endpoint table ([`super::ENDPOINTS`]).
    pub endpoint: EndpointId,
    /// A short name for metrics labels and logs.
    pub label: &'static str,
    /// The shape of its request body.
    pub body: JsonBody,
    /// How long its tokens live.
    pub lifetime: Lifetime,
    /// Whether its assertions must name an audience.
    pub audience: AudienceRule,
}

/// A request body that is a JSON object: the assertion and the environment under the names
/// given; other members are ignored, a member given twice is refused.
#[derive(Debug)]
pub struct JsonBody {
    /// The media type the body must be sent as.
    pub media_type: &'static str,
    /// The member holding the assertion, a string.
    pub assertion: Cow<'static, str>,
    /// The member naming the environment, a string or absent (or `null`): the default one.
    pub env: Cow<'static, str>,
}

/// Lifetimes of an exchange's tokens, seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// Of its tokens.
    pub ttl: i64,
    /// Of its tokens in an environment whose tokens are single-use.
    pub single_use_ttl: i64,
}

/// Lifetime of the tokens of `/sdk/token`, seconds: 5 minutes.
pub const TTL: i64 = 300;
/// Lifetime of single-use tokens of `/sdk/token`, seconds: 10 minutes.
pub const SINGLE_USE_TTL: i64 = 600;

/// `/sdk/token` of the Anyflow dialect as it ships.
pub const SDK_TOKEN: Exchange = Exchange {
    endpoint: EndpointId::SdkToken,
    label: "sdk_token",
    body: JsonBody {
        media_type: "application/json",
        assertion: Cow::Borrowed("jwt"),
        env: Cow::Borrowed("env"),
    },
    lifetime: Lifetime {
        ttl: TTL,
        single_use_ttl: SINGLE_USE_TTL,
    },
    audience: AudienceRule::Optional,
};

pub use crate::environment::sdk_client_id;

impl Exchange {
    /// The exchange a dialect's `sdk` keys describe.
    pub fn of(rules: &SdkRules) -> Self {
        Self {
            body: JsonBody {
                media_type: SDK_TOKEN.body.media_type,
                assertion: Cow::Owned(rules.assertion.clone()),
                env: Cow::Owned(rules.env.clone()),
            },
            lifetime: Lifetime {
                ttl: rules.ttl,
                single_use_ttl: rules.single_use_ttl,
            },
            audience: match rules.audience {
                SdkAudience::Optional => AudienceRule::Optional,
                SdkAudience::Required => AudienceRule::Required,
            },
            ..SDK_TOKEN
        }
    }

    /// The exchange of a request through `dialect` (none: the Anyflow dialect's as it ships).
    pub fn through(dialect: Option<&Dialect>) -> Self {
        dialect.map_or(SDK_TOKEN, |d| Self::of(&d.sdk))
    }
}

/// A request: the JWT and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkTokenRequest {
    /// The vendor-signed JWT naming the end user.
    pub jwt: String,
    /// The deployment environment; none = the default one.
    pub env: Option<String>,
}

impl SdkTokenRequest {
    /// Parses the JSON body of `/sdk/token`; anything else is `invalid_request`.
    pub fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        SDK_TOKEN.body.parse(body)
    }

    /// The environment it names, or the default one.
    pub fn env(&self) -> &str {
        self.env.as_deref().unwrap_or(DEFAULT_ENV)
    }
}

impl JsonBody {
    /// Parses a body of this shape; anything else is `invalid_request`.
    pub fn parse(&self, body: &[u8]) -> Result<SdkTokenRequest, OAuthError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let parsed = self.deserialize(&mut de).and_then(|r| de.end().map(|()| r));
        parsed.map_err(|_| {
            OAuthError::invalid_request(format!(
                "the body must be a JSON object with a string \"{}\" and an optional string \
                 \"{}\"",
                self.assertion, self.env
            ))
        })
    }
}

impl<'de> DeserializeSeed<'de> for &JsonBody {
    type Value = SdkTokenRequest;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &JsonBody {
    type Value = SdkTokenRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut jwt: Option<String> = None;
        let mut env: Option<Option<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == *self.assertion {
                if jwt.is_some() {
                    return Err(de::Error::duplicate_field("assertion"));
                }
                jwt = Some(map.next_value()?);
            } else if key == *self.env {
                if env.is_some() {
                    return Err(de::Error::duplicate_field("env"));
                }
                env = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let jwt = jwt.ok_or_else(|| de::Error::missing_field("assertion"))?;
        Ok(SdkTokenRequest {
            jwt,
            env: env.flatten(),
        })
    }
}

/// Handles an `/sdk/token` request, by the rules of the dialect it came through
/// ([`Exchange::through`]).
pub async fn handle(cx: &Cx<'_>, req: &SdkTokenRequest) -> Result<TokenResponse, OAuthError> {
    let exchange = &Exchange::through(cx.dialect);
    // A host bound to an environment serves that one: it is the default, another is refused.
    let env = match (req.env.as_deref(), cx.config.host_env.as_deref()) {
        (Some(asked), Some(bound)) if asked != bound => {
            return Err(OAuthError::invalid_request(
                "this host serves another environment",
            ))
        }
        (None, Some(bound)) => bound,
        _ => req.env(),
    };
    if !valid_env_name(env) || cx.store.get_env(env).await?.is_none() {
        return Err(OAuthError::invalid_request("unknown env"));
    }
    if req.jwt.is_empty() {
        return Err(OAuthError::invalid_request("jwt is required"));
    }
    // RFC 9449 §5: a proof binds the token; checked before the JWT is used up.
    let mut bound = cx.clone();
    if let Some(input) = &cx.request.dpop {
        let proof = crate::dpop::check(cx, input, None).await?;
        bound.confirmation = Some(Confirmation::Jkt(proof.jkt));
    }
    let verified = verify_assertion(cx, env, &req.jwt, exchange.audience).await?;
    let client = sdk_client(cx, env, exchange.lifetime).await?;
    let extras = Extras {
        claims: verified.claims,
        ttl: Some(exchange.lifetime.ttl),
        single_use_ttl: Some(exchange.lifetime.single_use_ttl),
        grant: None,
    };
    let token = issue_access_token_with(
        &bound,
        &client,
        &verified.subject,
        &verified.trust.scopes,
        Audience::one(cx.config.default_audience.clone()),
        extras,
    )
    .await?;
    let mut response = TokenResponse::access_only(token).through(cx.dialect);
    response.scope = String::new();
    if let Some(c) = &bound.confirmation {
        c.token_type().clone_into(&mut response.token_type);
    }
    Ok(response)
}

/// A random token epoch (48 bits, so that `jti`s stay short).
fn random_epoch() -> i64 {
    let b = crate::secret::random_bytes::<6>();
    b.iter()
        .fold(0i64, |acc, byte| (acc << 8) | i64::from(*byte))
}

/// The environment's SDK client, registered on first use.
async fn sdk_client(
    cx: &Cx<'_>,
    env: &str,
    lifetime: Lifetime,
) -> Result<ClientRecord, OAuthError> {
    let id = sdk_client_id(env);
    if let Some(c) = cx.store.get_client(&id).await? {
        return Ok(c);
    }
    let client = ClientRecord {
        client_id: id.clone(),
        name: format!("/sdk/token of environment {env}"),
        // No secret and no keys: nothing can authenticate as this client.
        secret_hash: None,
        old_secret_hash: None,
        old_secret_expires_at: None,
        grant_types: vec![types::JWT_BEARER.to_owned()],
        redirect_uris: Vec::new(),
        scopes: ScopeSet::default(),
        audiences: Vec::new(),
        public: false,
        jwks: None,
        access_token_format: TokenFormat::Jwt,
        access_token_ttl: lifetime.ttl,
        // The id is the same every time the client is made; a random first epoch keeps the
        // tokens of a deleted one (with its environment, say) from coming back to life.
        token_epoch: random_epoch(),
        env: env.to_owned(),
        single_use_tokens: false,
        created_at: cx.now,
        user_flow: UserFlowSettings {
            refresh_tokens: RefreshPolicy::Never,
            ..Default::default()
        },
    };
    match cx.store.insert_client(&client).await {
        Ok(()) => Ok(client),
        // Made at the same moment by another request or node: that one's record, with its
        // own random token epoch, is the one stored, and tokens are only good under the
        // stored epoch, so it is read back (a conflicting insert makes the cache forget the
        // id, so the read reaches the database).
        // Gone again already: the environment was deleted meanwhile.
        Err(StoreError::Conflict) => cx
            .store
            .get_client(&id)
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown env")),
        // The environment was deleted between its lookup and this insert.
        Err(StoreError::Invalid(_)) => Err(OAuthError::invalid_request("unknown env")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn the_body_is_a_json_object_with_a_string_jwt_and_an_optional_string_env() {
        let ok = |text: &str| SdkTokenRequest::from_json(text.as_bytes());
        assert_eq!(
            ok(r#"{"jwt": "a.b.c"}"#).unwrap(),
            SdkTokenRequest {
                jwt: "a.b.c".into(),
                env: None
            }
        );
        let with_env = ok(r#"{"env": "staging", "other": [1, {"x": 2}], "jwt": "j"}"#).unwrap();
        assert_eq!(with_env.env(), "staging");
        assert_eq!(with_env.jwt, "j");
        assert_eq!(
            ok(r#"{"jwt": "j", "env": null}"#).unwrap().env(),
            DEFAULT_ENV
        );
        for bad in [
            "",
            "{not json",
            "{}",
            r#"{"jwt": 5}"#,
            r#"{"jwt": "x", "env": 3}"#,
            r#"{"jwt": null}"#,
            "[1]",
            r#"["x"]"#,
            r#""x""#,
            r#"{"jwt": "x", "jwt": "y"}"#,
            r#"{"jwt": "x", "env": "a", "env": "b"}"#,
            r#"{"jwt": "x"} {}"#,
        ] {
            let e = ok(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{bad}");
            assert!(e.description.contains("\"jwt\""), "{bad}: {e:?}");
        }
    }

    #[test]
    fn the_exchange_is_served_at_its_own_row_and_differs_from_the_grant_in_data_only() {
        let anyflow = crate::dialect::Dialects::presets();
        let (d, id) = anyflow.by_path("/sdk/token").unwrap();
        assert_eq!(id, SDK_TOKEN.endpoint);
        let from_preset = Exchange::through(Some(d));
        assert_eq!(from_preset.body.assertion, SDK_TOKEN.body.assertion);
        assert_eq!(from_preset.body.env, SDK_TOKEN.body.env);
        assert_eq!(from_preset.lifetime.ttl, TTL);
        assert_eq!(from_preset.lifetime.single_use_ttl, SINGLE_USE_TTL);
        assert_eq!(from_preset.audience, SDK_TOKEN.audience);
        let other = Exchange::of(&SdkRules {
            assertion: "token".into(),
            env: "environment".into(),
            ttl: 60,
            single_use_ttl: 120,
            audience: SdkAudience::Required,
        });
        let parsed = other
            .body
            .parse(br#"{"token": "a.b.c", "environment": "staging", "jwt": "x"}"#)
            .unwrap();
        assert_eq!((parsed.jwt.as_str(), parsed.env()), ("a.b.c", "staging"));
        assert!(other.body.parse(br#"{"jwt": "a.b.c"}"#).is_err());
        assert_eq!(other.audience, AudienceRule::Required);
        assert_eq!(SDK_TOKEN.audience, AudienceRule::Optional);
        assert_eq!(SDK_TOKEN.lifetime.ttl, 300);
        assert_eq!(SDK_TOKEN.lifetime.single_use_ttl, 600);
        assert_eq!(SDK_TOKEN.body.media_type, "application/json");
        assert_eq!(sdk_client_id("staging"), "sdk:staging");
    }
}
