//! Custom domains and data centres (`[[hosts]]`): one server answering under several public
//! base URLs. A request sent to a configured host (its `Host` header) gets that host's
//! metadata and tokens whose `iss` is that host; tokens of every host verify on every host;
//! an unconfigured `Host` is answered as the main issuer; a host bound to an environment
//! serves that environment's clients alone and is the default environment of `/sdk/token`.
//!
//! The hosts are names that resolve nowhere: each request goes to the server's own address
//! with the host's name in its `Host` header, as a reverse proxy or a DNS name pointing at the
//! server would send it.

use reqwest::header::{HOST, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::jwt_bearer::{claims, sign, trust, vendor_key};
use crate::support::{decode_jwt, Creds, Server};

/// The custom domain, bound to the `prod` environment.
const CUSTOM: &str = "https://api.boltcompany.com";
/// A data centre, serving every environment.
const EU: &str = "https://eu.tessera.test";

/// A server with two hosts besides its issuer (`http://127.0.0.1:PORT`), and the directory
/// of its config file (kept while the server runs).
async fn server() -> (Server, tempfile::TempDir) {
    server_with(&[]).await
}

/// [`server`] with further environment variables.
async fn server_with(extra: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!("[[hosts]]\nurl = \"{CUSTOM}\"\nenv = \"prod\"\n\n[[hosts]]\nurl = \"{EU}:443\"\n"),
    )
    .unwrap();
    let mut env = vec![("TESSERA_CONFIG", path.to_str().unwrap())];
    env.extend_from_slice(extra);
    let server = Server::start_with(&env).await;
    server.cli(&["env", "create", "prod"]).await;
    (server, dir)
}

/// The `Host` header naming `base` (`https://name` -> `name`).
fn host_of(base: &str) -> &str {
    base.split_once("://").map_or(base, |(_, h)| h)
}

/// A client-credentials token request sent to `host` (none: the server's own address).
async fn token_at(server: &Server, host: Option<&str>, c: &Creds) -> (StatusCode, Value, String) {
    let mut req = server
        .http
        .post(server.url("/oauth2/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(h) = host {
        req = req.header(HOST, h);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap(), challenge)
}

async fn token_iss(server: &Server, host: Option<&str>, c: &Creds) -> String {
    let (status, body, _) = token_at(server, host, c).await;
    assert_eq!(status, StatusCode::OK, "{host:?}: {body}");
    let token = body["access_token"].as_str().unwrap();
    decode_jwt(token).claims["iss"].as_str().unwrap().to_owned()
}

async fn metadata_at(server: &Server, host: &str) -> Value {
    let res = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .header(HOST, host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn introspect_at(server: &Server, host: &str, caller: &Creds, token: &str) -> Value {
    let res = server
        .http
        .post(server.url("/oauth2/introspect"))
        .header(HOST, host)
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn each_host_issues_tokens_and_metadata_under_its_own_name() {
    let (server, _dir) = server().await;
    let client = server.create_client(&["--env", "prod"]).await;
    let main = server.issuer().to_owned();
    assert_eq!(token_iss(&server, None, &client).await, main);
    assert_eq!(
        token_iss(&server, Some(host_of(CUSTOM)), &client).await,
        CUSTOM
    );
    assert_eq!(token_iss(&server, Some(host_of(EU)), &client).await, EU);
    // Case-insensitive, and the scheme's default port may be named.
    assert_eq!(
        token_iss(&server, Some("API.BoltCompany.COM:443"), &client).await,
        CUSTOM
    );
    assert_eq!(
        token_iss(&server, Some("eu.tessera.test:443"), &client).await,
        EU
    );
    for base in [CUSTOM, EU] {
        let meta = metadata_at(&server, host_of(base)).await;
        assert_eq!(meta["issuer"], base);
        assert_eq!(meta["token_endpoint"], format!("{base}/oauth2/token"));
        assert_eq!(meta["jwks_uri"], format!("{base}/.well-known/jwks.json"));
        assert_eq!(
            meta["introspection_endpoint"],
            format!("{base}/oauth2/introspect")
        );
        // RFC 8414 §3.3: the document at a host names that host's endpoints.
        let mut endpoints = 0;
        for (key, value) in meta.as_object().unwrap() {
            if key.ends_with("_endpoint") || key == "jwks_uri" {
                let url = value.as_str().unwrap();
                assert!(url.starts_with(&format!("{base}/")), "{key}: {url}");
                endpoints += 1;
            }
        }
        assert!(endpoints >= 6, "{meta}");
    }
    let meta = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["issuer"], main.as_str());
    // One JWKS for every host.
    let jwks = server.get_json("/.well-known/jwks.json").await;
    let eu_jwks: Value = server
        .http
        .get(server.url("/.well-known/jwks.json"))
        .header(HOST, host_of(EU))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, eu_jwks);
}

#[tokio::test]
async fn tokens_of_one_host_verify_on_every_host_and_introspection_names_their_issuer() {
    let (server, _dir) = server().await;
    let client = server.create_client(&[]).await;
    let api = server.create_client(&[]).await;
    let opaque = server
        .create_client(&["--access-token-format", "opaque"])
        .await;
    let main = server.issuer().to_owned();
    let main_host = host_of(&main).to_owned();
    for (issued_at, iss) in [(host_of(EU), EU), (main_host.as_str(), main.as_str())] {
        for c in [&client, &opaque] {
            let (status, body, _) = token_at(&server, Some(issued_at), c).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let token = body["access_token"].as_str().unwrap();
            for asked_at in [host_of(EU), main_host.as_str()] {
                let info = introspect_at(&server, asked_at, &api, token).await;
                assert_eq!(info["active"], true, "{issued_at} at {asked_at}: {info}");
                assert_eq!(info["iss"], iss, "{issued_at} at {asked_at}: {info}");
                assert_eq!(info["client_id"], c.id.as_str());
            }
            // The operator's look (the CLI, configured with the same hosts) names it too.
            let info = server
                .cli_json(&["token", "introspect", token, "--json"])
                .await;
            assert_eq!(info["active"], true, "{info}");
            assert_eq!(info["iss"], iss, "{info}");
        }
    }
    // Revoking a token at another host than its own revokes it everywhere.
    let token = server
        .http
        .post(server.url("/oauth2/token"))
        .header(HOST, host_of(EU))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(server.revoke(&client, &token).await, StatusCode::OK);
    assert_eq!(
        introspect_at(&server, host_of(EU), &api, &token).await["active"],
        false
    );
}

#[tokio::test]
async fn an_unconfigured_host_is_answered_as_the_main_issuer_never_reflected() {
    let (server, _dir) = server().await;
    let client = server.create_client(&[]).await;
    let main = server.issuer().to_owned();
    for hostile in [
        "evil.example",
        "api.boltcompany.com.evil.example",
        "api.boltcompany.com:8443",
        "eu.tessera.test:80",
    ] {
        let meta = metadata_at(&server, hostile).await;
        assert_eq!(meta["issuer"], main.as_str(), "{hostile}");
        assert!(!meta.to_string().contains("evil"), "{hostile}: {meta}");
        assert_eq!(
            token_iss(&server, Some(hostile), &client).await,
            main,
            "{hostile}"
        );
    }
    // X-Forwarded-Host is believed only from a configured trusted proxy: this test is not one.
    let res = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .header("x-forwarded-host", host_of(EU))
        .send()
        .await
        .unwrap();
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["issuer"], main.as_str());
    // The authorization response's `iss` (RFC 9207) follows the host too, and an unknown one
    // gets the main issuer.
    let app = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--scope",
            "openid",
        ])
        .await;
    for (host, iss) in [
        (host_of(EU), EU),
        ("evil.example", main.as_str()),
        (host_of(&main), main.as_str()),
    ] {
        let res = server
            .http
            .get(server.url(&format!(
                "/oauth2/authorize?client_id={}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb\
                 &response_type=token&state=s1",
                app.id
            )))
            .header(HOST, host)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{host}");
        let location = reqwest::Url::parse(
            res.headers()
                .get(reqwest::header::LOCATION)
                .unwrap()
                .to_str()
                .unwrap(),
        )
        .unwrap();
        let params: std::collections::HashMap<String, String> =
            location.query_pairs().into_owned().collect();
        assert_eq!(params["error"], "unsupported_response_type", "{location}");
        assert_eq!(params["iss"], iss, "{host}: {location}");
    }
}

#[tokio::test]
async fn a_host_bound_to_an_environment_refuses_other_clients_as_unknown_ones() {
    let (server, _dir) = server().await;
    let prod = server.create_client(&["--env", "prod"]).await;
    let other = server.create_client(&[]).await;
    let custom = host_of(CUSTOM);
    let (status, _, _) = token_at(&server, Some(custom), &prod).await;
    assert_eq!(status, StatusCode::OK);
    let unknown = Creds {
        id: "no-such-client".into(),
        secret: other.secret.clone(),
    };
    let refused = token_at(&server, Some(custom), &other).await;
    let as_unknown = token_at(&server, Some(custom), &unknown).await;
    assert_eq!(refused.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.1["error"], "invalid_client");
    assert_eq!(
        refused, as_unknown,
        "a client of another environment is answered exactly as an unknown client"
    );
    // The same client is served by the main issuer and the unbound host.
    for host in [None, Some(host_of(EU))] {
        let (status, body, _) = token_at(&server, host, &other).await;
        assert_eq!(status, StatusCode::OK, "{host:?}: {body}");
    }
    // Introspection there refuses it too.
    let token = server.access_token(&prod).await;
    let res = server
        .http
        .post(server.url("/oauth2/introspect"))
        .header(HOST, custom)
        .basic_auth(&other.id, Some(&other.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let info = introspect_at(&server, custom, &prod, &token).await;
    assert_eq!(info["active"], true);
}

#[tokio::test]
async fn sdk_token_on_a_bound_host_defaults_to_its_environment_and_refuses_another() {
    let (server, _dir) = server().await;
    let key = vendor_key();
    trust(&server, &key, "prod", &[]).await;
    let fresh = || {
        let mut c = claims(&server);
        c.as_object_mut().unwrap().remove("aud");
        sign(&key, &c)
    };
    let sdk = |host: Option<&'static str>, body: Value| {
        let mut req = server.http.post(server.url("/sdk/token")).json(&body);
        if let Some(h) = host {
            req = req.header(HOST, h);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let custom = host_of(CUSTOM);
    // No env: the host's.
    let (status, body) = sdk(Some(custom), json!({ "jwt": fresh() })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(at["env"], "prod");
    assert_eq!(at["iss"], CUSTOM);
    // Its own env named: the same.
    let (status, body) = sdk(Some(custom), json!({ "jwt": fresh(), "env": "prod" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Another env: refused before the assertion is looked at.
    let (status, body) = sdk(Some(custom), json!({ "jwt": fresh(), "env": "default" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    // Elsewhere no env is the default environment, where this vendor is not trusted.
    let (status, body) = sdk(None, json!({ "jwt": fresh() })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = sdk(Some(host_of(EU)), json!({ "jwt": fresh(), "env": "prod" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        decode_jwt(body["access_token"].as_str().unwrap()).claims["iss"],
        EU
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_host_decides() {
    // The test client's address, 127.0.0.1, is the proxy.
    let (server, _dir) = server_with(&[("TESSERA_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let meta_for = |forwarded: &'static str| {
        let req = server
            .http
            .get(server.url("/.well-known/openid-configuration"))
            .header("x-forwarded-host", forwarded);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(meta_for(host_of(EU)).await["issuer"], EU);
    // The value the proxy added (the last) decides, not one the client wrote before it.
    assert_eq!(
        meta_for("eu.tessera.test, api.boltcompany.com").await["issuer"],
        CUSTOM
    );
    assert_eq!(
        meta_for("api.boltcompany.com, evil.example").await["issuer"],
        server.issuer()
    );
}

#[tokio::test]
async fn a_library_discovers_a_host_by_its_own_url_and_its_tokens_name_it() {
    // `localhost` resolves to the loopback address the server listens on, so a client given
    // `http://localhost:PORT` sends that as its `Host` itself.
    let server = Server::start_with_config(&[], &|port| {
        format!("[[hosts]]\nurl = \"http://localhost:{port}\"\n")
    })
    .await;
    let base = format!("http://localhost:{}", server.port());
    // OpenID Connect Discovery §4.3: the library refuses metadata whose issuer is not the URL
    // it was asked at.
    let metadata = openidconnect::core::CoreProviderMetadata::discover_async(
        openidconnect::IssuerUrl::new(base.clone()).unwrap(),
        &crate::support::http_client(),
    )
    .await
    .expect("discovery at the host");
    assert_eq!(metadata.issuer().as_str(), base);
    assert_eq!(
        metadata.token_endpoint().unwrap().as_str(),
        format!("{base}/oauth2/token")
    );
    let client = server.create_client(&[]).await;
    let res = server
        .http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(decode_jwt(&token).claims["iss"], base.as_str());
    // The host's JWKS (the one JWKS) verifies it.
    let jwks: Value = server
        .http
        .get(metadata.jwks_uri().as_str())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    crate::support::verify_es256(&jwks, &token).unwrap();
    // The main issuer still answers as itself.
    let main = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(main["issuer"], server.issuer());
}
