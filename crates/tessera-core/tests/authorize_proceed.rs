//! [`authorize::proceed`], the authorization endpoint's step after each page, against the
//! in-memory store with a fixed `now`: when the user is asked to sign in or to consent, when
//! consent is remembered (and merged), and when a code is issued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tessera_core::config::Config;
use tessera_core::cx::{verified_tokens, Cx, VerifiedTokens};
use tessera_core::endpoint::authorize::{self, Answer, AuthorizeRequest, Next, Prompt};
use tessera_core::keys::{KeySet, Sealer};
use tessera_core::model::{CodeUse, SessionRecord, UserRecord};
use tessera_core::scope::ScopeSet;
use tessera_core::secret::SecretHash;
use tessera_core::store::memory::MemoryStore;
use tessera_core::store::{testsuite, ClientStore, GrantStore, UserStore};

const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.example";

struct World {
    config: Config,
    store: MemoryStore,
    keys: KeySet,
    verified: VerifiedTokens,
    sealer: Sealer,
}

impl World {
    async fn new() -> Self {
        let sealer = Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let store = MemoryStore::new();
        store
            .insert_user(&UserRecord {
                user_id: "u1".into(),
                username: "alice".into(),
                password_hash: String::new(),
                email: None,
                name: None,
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
        Self {
            config: Config::new(ISSUER),
            store,
            keys: KeySet::load(&[], &sealer).unwrap(),
            verified: verified_tokens(16),
            sealer,
        }
    }

    fn cx(&self) -> Cx<'_> {
        Cx {
            config: &self.config,
            store: &self.store,
            keys: &self.keys,
            verified: &self.verified,
            sealer: &self.sealer,
            remote_keys: None,
            now: NOW,
            dialect: None,
            request: Default::default(),
            confirmation: None,
        }
    }

    /// A request of a new client registered for `scope`; public and answered at a loopback
    /// redirect URI when `native`.
    async fn request(&self, scope: &str, native: bool) -> AuthorizeRequest {
        let mut client = testsuite::client(&SecretHash::of("s"));
        client.scopes = ScopeSet::parse("openid profile email").unwrap();
        client.public = native;
        let redirect_uri = if native {
            "http://127.0.0.1:7000/cb"
        } else {
            "https://app.example.com/cb"
        };
        client.redirect_uris = vec![redirect_uri.into()];
        self.store.insert_client(&client).await.unwrap();
        AuthorizeRequest {
            client,
            redirect_uri: redirect_uri.into(),
            redirect_uri_named: true,
            scope: ScopeSet::parse(scope).unwrap(),
            state: Some("st".into()),
            nonce: None,
            pkce: None,
            prompt: Prompt::default(),
            max_age: None,
            ui_locales: None,
            extra: Default::default(),
        }
    }

    async fn proceed(
        &self,
        req: &AuthorizeRequest,
        session: Option<&SessionRecord>,
        answer: Answer,
    ) -> Next {
        authorize::proceed(&self.cx(), req, session, answer)
            .await
            .unwrap()
    }

    async fn consent_of(&self, req: &AuthorizeRequest) -> Option<String> {
        self.store
            .get_consent("u1", &req.client.client_id)
            .await
            .unwrap()
    }
}

fn session(auth_time: i64) -> SessionRecord {
    SessionRecord {
        session_hash: SecretHash::of("cookie"),
        user_id: "u1".into(),
        auth_time,
        expires_at: NOW + 3600,
    }
}

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The redirect's error code, or `"code"` when it carries a code (checked to be stored for
/// the user and client, unspent).
async fn outcome(w: &World, req: &AuthorizeRequest, next: &Next) -> String {
    let Next::Redirect(url) = next else {
        return format!("{next:?}");
    };
    assert!(url.starts_with(&req.redirect_uri), "{url}");
    assert_eq!(param(url, "iss").as_deref(), Some(ISSUER));
    assert_eq!(param(url, "state").as_deref(), Some("st"));
    if let Some(e) = param(url, "error") {
        return e;
    }
    let code = param(url, "code").expect("a code or an error");
    match w.store.use_code(&SecretHash::of(&code), NOW).await.unwrap() {
        CodeUse::Fresh(c) => {
            assert_eq!(c.user_id, "u1");
            assert_eq!(c.client_id, req.client.client_id);
            assert_eq!(c.scope, req.scope.to_string());
        }
        other => panic!("code not stored fresh: {other:?}"),
    }
    "code".into()
}

#[tokio::test]
async fn without_a_session_the_user_signs_in_or_the_client_hears_login_required() {
    let w = World::new().await;
    let mut req = w.request("openid", false).await;
    for answer in [Answer::Nothing, Answer::Consent { allow: true }] {
        assert_eq!(w.proceed(&req, None, answer).await, Next::Login);
    }
    // Consent answered without a session is not remembered.
    assert_eq!(w.consent_of(&req).await, None);
    req.prompt.none = true;
    let next = w.proceed(&req, None, Answer::Nothing).await;
    assert_eq!(outcome(&w, &req, &next).await, "login_required");
}

#[tokio::test]
async fn max_age_and_prompt_login_ask_for_a_fresh_sign_in_once() {
    let w = World::new().await;
    let mut req = w.request("openid", false).await;
    let old = session(NOW - 600);
    req.max_age = Some(300);
    assert_eq!(
        w.proceed(&req, Some(&old), Answer::Nothing).await,
        Next::Login
    );
    req.max_age = Some(600);
    assert_eq!(
        w.proceed(&req, Some(&old), Answer::Nothing).await,
        Next::Consent
    );
    req.max_age = None;
    req.prompt.login = true;
    assert_eq!(
        w.proceed(&req, Some(&old), Answer::Nothing).await,
        Next::Login
    );
    let fresh = session(NOW);
    assert_eq!(
        w.proceed(&req, Some(&fresh), Answer::SignedIn).await,
        Next::Consent
    );
}

#[tokio::test]
async fn consent_is_asked_given_merged_and_then_not_asked_again() {
    let w = World::new().await;
    let s = session(NOW);
    let req = w.request("openid profile", false).await;
    assert_eq!(
        w.proceed(&req, Some(&s), Answer::SignedIn).await,
        Next::Consent
    );
    let mut none = req.clone();
    none.prompt.none = true;
    let next = w.proceed(&none, Some(&s), Answer::Nothing).await;
    assert_eq!(outcome(&w, &none, &next).await, "consent_required");

    let denied = w
        .proceed(&req, Some(&s), Answer::Consent { allow: false })
        .await;
    assert_eq!(outcome(&w, &req, &denied).await, "access_denied");
    assert_eq!(w.consent_of(&req).await, None);

    let allowed = w
        .proceed(&req, Some(&s), Answer::Consent { allow: true })
        .await;
    assert_eq!(outcome(&w, &req, &allowed).await, "code");
    assert_eq!(w.consent_of(&req).await.as_deref(), Some("openid profile"));

    // Covered now: a code without a page, also for a part of the scope.
    for scope in ["openid profile", "profile"] {
        let mut again = req.clone();
        again.scope = ScopeSet::parse(scope).unwrap();
        let next = w.proceed(&again, Some(&s), Answer::Nothing).await;
        assert_eq!(outcome(&w, &again, &next).await, "code", "{scope}");
    }
    // A new scope is asked for, and consent to it is merged into the record.
    let mut more = req.clone();
    more.scope = ScopeSet::parse("openid email").unwrap();
    assert_eq!(
        w.proceed(&more, Some(&s), Answer::Nothing).await,
        Next::Consent
    );
    let next = w
        .proceed(&more, Some(&s), Answer::Consent { allow: true })
        .await;
    assert_eq!(outcome(&w, &more, &next).await, "code");
    assert_eq!(
        w.consent_of(&req).await.as_deref(),
        Some("openid profile email")
    );
    // prompt=consent asks even when covered.
    let mut ask = req.clone();
    ask.prompt.consent = true;
    assert_eq!(
        w.proceed(&ask, Some(&s), Answer::Nothing).await,
        Next::Consent
    );
}

#[tokio::test]
async fn a_native_client_at_a_loopback_uri_is_asked_every_time() {
    let w = World::new().await;
    let s = session(NOW);
    let mut req = w.request("openid", true).await;
    req.client.user_flow.skip_consent = true;
    let next = w
        .proceed(&req, Some(&s), Answer::Consent { allow: true })
        .await;
    assert_eq!(outcome(&w, &req, &next).await, "code");
    assert_eq!(w.consent_of(&req).await, None);
    assert_eq!(
        w.proceed(&req, Some(&s), Answer::Nothing).await,
        Next::Consent
    );
}

#[tokio::test]
async fn a_first_party_client_skips_consent() {
    let w = World::new().await;
    let s = session(NOW);
    let mut req = w.request("openid", false).await;
    req.client.user_flow.skip_consent = true;
    let next = w.proceed(&req, Some(&s), Answer::SignedIn).await;
    assert_eq!(outcome(&w, &req, &next).await, "code");
    assert_eq!(w.consent_of(&req).await, None);
}
