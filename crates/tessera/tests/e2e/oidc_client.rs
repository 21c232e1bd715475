//! Interoperability with the `openidconnect` crate: discovery, the authorization URL it
//! builds (PKCE S256, nonce, state), the code exchange, and its validation of the ID token
//! (signature from the JWKS, issuer, audience, nonce, expiry, `at_hash`) and of userinfo.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};

use crate::browser_support::{setup, Browser, REDIRECT};
use crate::support::{http_client, Creds, Server};

/// An authorization URL made by the library, and what it needs to finish.
pub struct Started {
    pub url: String,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// What the library validated.
pub struct Finished {
    pub subject: String,
    pub email: Option<String>,
    pub access_token: String,
    pub userinfo_name: Option<String>,
}

/// Discovers the server and builds the authorization URL for `scopes`.
pub async fn start(
    server: &Server,
    client: &Creds,
    redirect: &str,
    extra: &[(&str, &str)],
) -> Started {
    let http = http_client();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.issuer().to_owned()).unwrap(),
        &http,
    )
    .await
    .expect("discovery");
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        Some(ClientSecret::new(client.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    for (k, v) in extra {
        req = req.add_extra_param(*k, *v);
    }
    let (url, state, nonce) = req.url();
    Started {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

/// Exchanges the code and validates everything the library can.
pub async fn finish(
    server: &Server,
    client: &Creds,
    redirect: &str,
    started: Started,
    code: &str,
    state: &str,
) -> Finished {
    assert_eq!(state, started.state.secret(), "state round-trips");
    let http = http_client();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.issuer().to_owned()).unwrap(),
        &http,
    )
    .await
    .expect("discovery");
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        Some(ClientSecret::new(client.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap());
    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .expect("token endpoint known")
        .set_pkce_verifier(started.verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = oidc
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token
        .claims(&verifier, &started.nonce)
        .expect("the library accepts the ID token");
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected, "at_hash matches the access token");
    assert!(claims.auth_time().is_some());
    let info: CoreUserInfoClaims = oidc
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo");
    Finished {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        access_token: tokens.access_token().secret().clone(),
        userinfo_name: info.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
    }
}

#[tokio::test]
async fn the_openidconnect_crate_completes_the_flow_and_validates_the_id_token() {
    let (server, client) = setup(&[]).await;
    let started = start(&server, &client, REDIRECT, &[("productId", "p-1")]).await;
    let path = started.url.trim_start_matches(server.issuer()).to_owned();
    let mut b = Browser::new(&server);
    let mut page = b.get(&path).await;
    page = b
        .sign_in(&page, "alice", crate::browser_support::PASSWORD)
        .await;
    page = b.consent(&page, true).await;
    let p = page.redirect_params();
    let done = finish(&server, &client, REDIRECT, started, &p["code"], &p["state"]).await;
    assert_eq!(done.email.as_deref(), Some("alice@example.com"));
    assert_eq!(done.userinfo_name.as_deref(), Some("User alice"));
    assert!(!done.subject.is_empty());
    assert!(!done.access_token.is_empty());
}
