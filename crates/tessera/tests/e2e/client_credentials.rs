//! The client credentials grant, as a real OAuth client library and as raw HTTP in the four
//! request styles of the API platforms Tessera stands in for.

use std::collections::HashSet;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, IntrospectionUrl, Scope, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{decode_jwt, unix_now, verify_es256, Server};

fn oauth2_http() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("oauth2 http client")
}

#[tokio::test]
async fn oauth2_crate_gets_an_es256_jwt_whose_claims_and_signature_check_out() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read write"]).await;
    let http = oauth2_http();
    let client = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(s.url("/oauth2/introspect")).unwrap());
    let before = unix_now().floor() as i64;
    let tok = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("the oauth2 crate gets a token with HTTP Basic");
    let after = unix_now().ceil() as i64;
    assert_eq!(tok.token_type().as_ref(), "bearer");
    assert_eq!(tok.expires_in().map(|d| d.as_secs()), Some(3600));
    assert_eq!(
        tok.scopes()
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["read".to_owned()])
    );
    assert!(
        tok.refresh_token().is_none(),
        "no refresh token (RFC 6749 §4.4.3)"
    );

    let at = tok.access_token().secret();
    let jwt = decode_jwt(at);
    assert_eq!(jwt.header["typ"], "at+jwt");
    assert_eq!(jwt.header["alg"], "ES256");
    let kid = jwt.header["kid"].as_str().expect("kid in the header");
    let claims = &jwt.claims;
    assert_eq!(claims["iss"], s.issuer());
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["aud"], s.issuer());
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(claims["scope"], "read");
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() >= 16),
        "{claims}"
    );
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!(
        (before..=after).contains(&iat),
        "iat {iat} not in [{before}, {after}]"
    );
    assert_eq!(exp - iat, 3600);

    // The signature verifies against the published key, and would not if the token changed.
    let jwks = s.get_json("/.well-known/jwks.json").await;
    assert_eq!(verify_es256(&jwks, at), Ok(kid.to_owned()));
    let parts: Vec<&str> = at.split('.').collect();
    let mut other = claims.clone();
    other["scope"] = json!("read write");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(&other.to_string()),
        parts[2]
    );
    assert!(
        verify_es256(&jwks, &forged).is_err(),
        "a changed payload must not verify"
    );

    // The same library can introspect it. (It refuses to revoke over plain http, RFC 7009
    // §2 asks for TLS, so revocation is a raw request here.)
    let info = client
        .introspect(tok.access_token())
        .request_async(&http)
        .await
        .expect("introspection through the oauth2 crate");
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.as_str()), Some(c.id.as_str()));
    assert_eq!(info.sub(), Some(c.id.as_str()));
    assert_eq!(info.iss(), Some(s.issuer()));
    assert_eq!(info.aud(), Some(&vec![s.issuer().to_owned()]));
    assert_eq!(s.revoke(&c, at).await, StatusCode::OK);
    let info = client
        .introspect(tok.access_token())
        .request_async(&http)
        .await
        .expect("introspection after revocation");
    assert!(!info.active());
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn oauth2_crate_with_credentials_in_the_body_gets_an_opaque_token() {
    let s = Server::start().await;
    let c = s
        .create_client(&["--scope", "read", "--access-token-format", "opaque"])
        .await;
    let observer = s.create_client(&[]).await;
    let http = oauth2_http();
    let client = BasicClient::new(ClientId::new(c.id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap());
    let tok = client
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .expect("the oauth2 crate gets a token with client_secret_post");
    let at = tok.access_token().secret();
    assert!(
        at.starts_with("tat_"),
        "opaque tokens start with tat_: {at}"
    );
    assert!(at.len() >= 4 + 43, "256 bits of randomness: {at}");
    assert_eq!(
        tok.scopes()
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["read".to_owned()]),
        "no scope asked: the registered scope"
    );
    let info = s.introspect(&observer, at).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], c.id.as_str());
}

/// The Workato-style client credentials requests (docs/dialects/workato.toml): HTTP Basic
/// with a form body; client_id/client_secret in a JSON body, in a form body, in a multipart
/// body. Each gets its own new token, with the no-store headers.
#[tokio::test]
async fn the_four_seed_request_styles_each_get_a_new_token() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read"]).await;
    let url = s.url("/oauth2/token");
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let handmade_multipart = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n{id}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\n{secret}\r\n\
         --{b}--\r\n",
        b = boundary,
        id = c.id,
        secret = c.secret
    );
    let styles: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "HTTP Basic + form body",
            s.http
                .post(&url)
                .basic_auth(&c.id, Some(&c.secret))
                .form(&[("grant_type", "client_credentials")]),
        ),
        (
            "JSON body",
            s.http.post(&url).json(&json!({
                "grant_type": "client_credentials",
                "client_id": c.id,
                "client_secret": c.secret,
            })),
        ),
        (
            "form body",
            s.http.post(&url).form(&[
                ("client_secret", c.secret.as_str()),
                ("client_id", c.id.as_str()),
                ("grant_type", "client_credentials"),
            ]),
        ),
        (
            "multipart body",
            s.http.post(&url).multipart(
                reqwest::multipart::Form::new()
                    .text("grant_type", "client_credentials")
                    .text("client_id", c.id.clone())
                    .text("client_secret", c.secret.clone()),
            ),
        ),
        (
            "multipart body written by hand with the seed's boundary",
            s.http
                .post(&url)
                .header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(handmade_multipart),
        ),
    ];
    let mut tokens = HashSet::new();
    for (style, req) in styles {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{style}");
        let h = res.headers().clone();
        assert_eq!(h.get(CACHE_CONTROL).unwrap(), "no-store", "{style}");
        assert_eq!(h.get(PRAGMA).unwrap(), "no-cache", "{style}");
        assert!(
            h.get(CONTENT_TYPE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{style}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer", "{style}: {body}");
        assert_eq!(body["expires_in"], 3600, "{style}: {body}");
        assert_eq!(body["scope"], "read", "{style}: {body}");
        assert!(body.get("refresh_token").is_none(), "{style}: {body}");
        let at = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        assert_eq!(
            decode_jwt(&at).claims["client_id"],
            c.id.as_str(),
            "{style}"
        );
        assert!(
            tokens.insert(at),
            "{style}: the token repeats an earlier one"
        );
    }
}

#[tokio::test]
async fn scope_defaults_to_the_registration_and_any_subset_can_be_asked() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read write admin"]).await;
    let scope_of = |body: Value| body["scope"].as_str().unwrap().to_owned();
    let default = scope_of(s.token(&c, None).await.json().await.unwrap());
    let mut words: Vec<&str> = default.split(' ').collect();
    words.sort_unstable();
    assert_eq!(words, ["admin", "read", "write"]);
    for asked in ["read", "write admin", "admin"] {
        let res = s.token(&c, Some(asked)).await;
        assert_eq!(res.status(), StatusCode::OK, "{asked}");
        let body: Value = res.json().await.unwrap();
        let got = scope_of(body.clone());
        let mut got: Vec<&str> = got.split(' ').collect();
        let mut want: Vec<&str> = asked.split(' ').collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{asked}");
        let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
        assert_eq!(claims["scope"], body["scope"], "{asked}");
    }
}

#[tokio::test]
async fn registered_token_lifetime_sets_expires_in_and_exp() {
    let s = Server::start().await;
    let jwt = s.create_client(&["--access-token-ttl", "120"]).await;
    let opaque = s
        .create_client(&[
            "--access-token-ttl",
            "90",
            "--access-token-format",
            "opaque",
        ])
        .await;
    let body = s.token_ok(&jwt).await;
    assert_eq!(body["expires_in"], 120);
    let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    let body = s.token_ok(&opaque).await;
    assert_eq!(body["expires_in"], 90);
    let info = s
        .introspect(&jwt, body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        90
    );
}

/// RFC 8707 resource indicators: the token's `aud` is what was asked for, within what the
/// client was registered for.
#[tokio::test]
async fn resource_indicators_restrict_the_audience_of_both_token_formats() {
    let s = Server::start().await;
    let apis = ["https://billing.example.com", "https://reports.example.com"];
    let jwt = s
        .create_client(&["--audience", apis[0], "--audience", apis[1]])
        .await;
    let opaque = s
        .create_client(&[
            "--audience",
            apis[0],
            "--audience",
            apis[1],
            "--access-token-format",
            "opaque",
        ])
        .await;
    let plain = s.create_client(&[]).await;
    let http = crate::support::http_client();
    let ask = |c: &crate::support::Creds, body: String| {
        let req = http
            .post(s.url("/oauth2/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let enc = |u: &str| u.replace(':', "%3A").replace('/', "%2F");

    // One resource: a string `aud`, in the JWT and in introspection, for both formats.
    for c in [&jwt, &opaque] {
        let res = ask(
            c,
            format!("grant_type=client_credentials&resource={}", enc(apis[1])),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        if c.id == jwt.id {
            assert_eq!(decode_jwt(&token).claims["aud"], json!(apis[1]));
        }
        assert_eq!(s.introspect(c, &token).await["aud"], json!(apis[1]));
    }
    // Two resources (the parameter repeats, as RFC 8707 allows): an array.
    let res = ask(
        &jwt,
        format!(
            "grant_type=client_credentials&resource={}&resource={}",
            enc(apis[0]),
            enc(apis[1])
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(decode_jwt(&token).claims["aud"], json!(apis));
    // The Hydra/Auth0-style `audience` parameter works too.
    let res = ask(
        &jwt,
        format!("grant_type=client_credentials&audience={}", enc(apis[0])),
    )
    .await;
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(decode_jwt(&token).claims["aud"], json!(apis[0]));
    // Nothing asked: the registered audiences; a client registered with none: the issuer.
    let token = s.access_token(&jwt).await;
    assert_eq!(decode_jwt(&token).claims["aud"], json!(apis));
    let token = s.access_token(&plain).await;
    assert_eq!(decode_jwt(&token).claims["aud"], json!(s.issuer()));
    // Anything else is invalid_target.
    for (case, c, resource) in [
        ("unregistered resource", &jwt, "https://other.example.com"),
        (
            "resource with a fragment",
            &jwt,
            "https://billing.example.com#x",
        ),
        ("relative resource", &jwt, "billing"),
        (
            "client registered with none",
            &plain,
            "https://billing.example.com",
        ),
    ] {
        let res = ask(
            c,
            format!(
                "grant_type=client_credentials&resource={}",
                enc(resource).replace('#', "%23")
            ),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_target", "{case}: {body}");
    }
}
