//! The fixture of the handler tests: a [`World`] holding everything a [`Cx`] borrows (the
//! configuration, the in-memory store, a signing key, the sealer, the verified-token cache, a
//! JWKS fetcher serving documents from memory) and a [`FixedClock`] that tests move forward
//! instead of sleeping. It seeds clients, users, environments and trusted issuers directly
//! in the store, and calls the endpoint and grant modules as the HTTP layer does, without
//! HTTP: each call builds a fresh `Cx` reading the clock at that moment.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::Value;

use tessera_core::client_assertion::ClientKeys;
use tessera_core::client_auth::BasicCredentials;
use tessera_core::clock::{Clock, FixedClock};
use tessera_core::config::Config;
use tessera_core::cx::{verified_tokens, Cx, RemoteKeys, VerifiedTokens};
use tessera_core::endpoint::authorize::{self, AuthorizeError, AuthorizeRequest};
use tessera_core::endpoint::{introspect, revoke, token};
use tessera_core::environment::DEFAULT_ENV;
use tessera_core::error::{ErrorCode, OAuthError};
use tessera_core::grant::types as grant_types;
use tessera_core::grant::TokenResponse;
use tessera_core::inspect::{self, ActiveToken};
use tessera_core::keys::{self, KeySet, Sealer, SigningAlg};
use tessera_core::model::{
    ClientRecord, SessionRecord, TokenFormat, TrustRecord, UserFlowSettings, UserRecord,
};
use tessera_core::params::Params;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::{self, generate_id, Secret, SecretHash};
use tessera_core::store::memory::MemoryStore;
use tessera_core::store::{ClientStore, KeyStore, TrustStore, UserStore};

/// Where every test's clock starts.
pub const T0: i64 = 1_800_000_000;
/// The issuer of the server under test.
pub const ISSUER: &str = "https://auth.example.com";
/// The redirect URI code-flow clients are registered with.
pub const REDIRECT: &str = "https://app.example.com/cb";
/// A PKCE verifier (RFC 7636 §4.1) and its S256 challenge ([`challenge`]).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The issuer of JWT assertions registered by [`World::trust`].
pub const VENDOR: &str = "https://vendor.example.com";

/// Runs a future to completion on this thread. The handlers under test wait on nothing but
/// the in-memory store, which never makes them wait, so no runtime is needed.
pub fn run<F: Future>(fut: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// JWKS documents served by URL from memory, counting fetches.
#[derive(Default)]
pub struct StubJwks {
    docs: Mutex<HashMap<String, String>>,
    /// How many times a document was asked for.
    pub fetches: AtomicUsize,
}

impl StubJwks {
    /// Serves `jwks` at `uri` from now on.
    pub fn publish(&self, uri: &str, jwks: &str) {
        self.docs
            .lock()
            .unwrap()
            .insert(uri.to_owned(), jwks.to_owned());
    }
}

#[async_trait::async_trait]
impl RemoteKeys for StubJwks {
    async fn jwks(&self, uri: &str, _refresh: bool) -> Result<String, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.docs
            .lock()
            .unwrap()
            .get(uri)
            .cloned()
            .ok_or_else(|| format!("nothing published at {uri}"))
    }
}

/// A client's credentials as a caller holds them.
#[derive(Debug, Clone)]
pub struct Creds {
    /// The client id.
    pub id: String,
    /// The secret; `None` for a public client.
    pub secret: Option<String>,
}

/// An issuer of JWT assertions: its ES256 key, and how it signs.
pub struct Signer {
    /// The key id.
    pub kid: String,
    /// The public key as a JWKS document.
    pub jwks: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    /// A new ES256 key.
    pub fn new(sealer: &Sealer) -> Self {
        let rec = keys::generate_key(SigningAlg::Es256, sealer, T0, T0).unwrap();
        let pkcs8 = sealer.open(&rec.kid, &rec.private_sealed).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        Self {
            kid: rec.kid,
            jwks: format!(r#"{{"keys":[{}]}}"#, rec.public_jwk),
            pair,
        }
    }

    /// A compact JWS of `claims` with this key (`kid` in the header).
    pub fn sign(&self, claims: &Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// The stored form of this key for a trust registration.
    pub fn stored(&self) -> String {
        ClientKeys::from_jwks(&self.jwks).unwrap().to_stored()
    }
}

/// Everything a handler is given, with a clock the test moves.
pub struct World {
    /// Protocol settings.
    pub config: Config,
    /// The in-memory store.
    pub store: MemoryStore,
    /// The server's signing keys.
    pub keys: KeySet,
    /// The verified-token cache.
    pub verified: VerifiedTokens,
    /// The sealer.
    pub sealer: Sealer,
    /// Trusted issuers' JWKS, served from memory.
    pub remote: StubJwks,
    /// The clock.
    pub clock: FixedClock,
    /// The dialect every request comes through (none unless a test sets one).
    pub dialect: Option<std::sync::Arc<tessera_core::dialect::Dialect>>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A server at [`ISSUER`] with one ES256 signing key, the default environment and
    /// nothing else, at [`T0`].
    pub fn new() -> Self {
        let sealer = Sealer::from_secret(b"handler-tests-secret-0123456789abc").unwrap();
        let store = MemoryStore::new();
        run(async {
            store.ensure_env(DEFAULT_ENV, T0).await.unwrap();
            keys::ensure_key(&store, &sealer, SigningAlg::Es256, T0)
                .await
                .unwrap();
        });
        let keys = KeySet::load(&run(store.list_keys()).unwrap(), &sealer).unwrap();
        Self {
            config: Config::new(ISSUER),
            store,
            keys,
            verified: verified_tokens(1000),
            sealer,
            remote: StubJwks::default(),
            clock: FixedClock::new(T0),
            dialect: None,
        }
    }

    /// A server whose config file sets the dialects `config` (JSON of `[dialects]`), every
    /// request coming through the dialect `through`.
    pub fn through(config: &str, through: &str) -> Self {
        let mut w = Self::new();
        let changes = serde_json::from_str(config).unwrap();
        let dialects = tessera_core::dialect::Dialects::resolve(&changes).unwrap();
        w.dialect = Some(dialects.get(through).expect("an enabled dialect").clone());
        w.config.dialects = std::sync::Arc::new(dialects);
        w
    }

    /// The context of a request made now.
    pub fn cx(&self) -> Cx<'_> {
        Cx {
            config: &self.config,
            store: &self.store,
            keys: &self.keys,
            verified: &self.verified,
            sealer: &self.sealer,
            remote_keys: Some(&self.remote),
            now: self.clock.now(),
            dialect: self.dialect.as_deref(),
            request: Default::default(),
            confirmation: None,
        }
    }

    /// The time now.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Moves the clock forward.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// Registers a confidential client-credentials client, changed by `f`; a client `f`
    /// makes public gets no secret.
    pub fn client(&self, f: impl FnOnce(&mut ClientRecord)) -> Creds {
        let secret = secret::generate("tcs_");
        let mut rec = ClientRecord {
            client_id: generate_id(),
            name: "handler test".into(),
            secret_hash: Some(secret.hash()),
            old_secret_hash: None,
            old_secret_expires_at: None,
            grant_types: vec![grant_types::CLIENT_CREDENTIALS.into()],
            redirect_uris: vec![REDIRECT.into()],
            scopes: ScopeSet::parse("read write").unwrap(),
            audiences: Vec::new(),
            public: false,
            jwks: None,
            access_token_format: TokenFormat::Jwt,
            access_token_ttl: 3600,
            token_epoch: 0,
            env: DEFAULT_ENV.into(),
            single_use_tokens: false,
            created_at: self.now(),
            user_flow: UserFlowSettings::default(),
        };
        f(&mut rec);
        if rec.public {
            rec.secret_hash = None;
        }
        run(self.store.insert_client(&rec)).unwrap();
        Creds {
            id: rec.client_id,
            secret: (!rec.public).then(|| secret.expose().to_owned()),
        }
    }

    /// Registers a confidential code-flow client (scopes `openid profile email
    /// offline_access read`), changed by `f`.
    pub fn code_client(&self, f: impl FnOnce(&mut ClientRecord)) -> Creds {
        self.client(|c| {
            c.grant_types = vec![grant_types::AUTHORIZATION_CODE.into()];
            c.scopes = ScopeSet::parse("openid profile email offline_access read").unwrap();
            f(c);
        })
    }

    /// The stored record of a client.
    pub fn client_record(&self, c: &Creds) -> ClientRecord {
        run(self.store.get_client(&c.id)).unwrap().unwrap()
    }

    /// Replaces a client's registration with what `f` makes of it.
    pub fn update_client(&self, c: &Creds, f: impl FnOnce(&mut ClientRecord)) {
        let mut rec = self.client_record(c);
        f(&mut rec);
        assert!(run(self.store.update_client(&rec, self.now())).unwrap());
    }

    /// Adds a user with an e-mail address and a name.
    pub fn user(&self, username: &str) -> UserRecord {
        let user = UserRecord {
            user_id: generate_id(),
            username: username.into(),
            // Never checked here: signing in is not a handler of the core.
            password_hash: String::new(),
            email: Some(format!("{username}@example.com")),
            name: Some(format!("User {username}")),
            created_at: self.now(),
            updated_at: self.now(),
        };
        run(self.store.insert_user(&user)).unwrap();
        user
    }

    /// Registers [`VENDOR`] as a trusted issuer in `env` with a new key, carrying
    /// `anyflow_team_id`, for scope `read`; changed by `f`.
    pub fn trust(&self, env: &str, f: impl FnOnce(&mut TrustRecord, &Signer)) -> Signer {
        let signer = Signer::new(&self.sealer);
        run(self.store.ensure_env(env, self.now())).unwrap();
        let mut rec = TrustRecord {
            id: generate_id(),
            env: env.into(),
            issuer: VENDOR.into(),
            keys: signer.stored(),
            jwks_uri: None,
            subject_claim: "sub".into(),
            claims: vec!["anyflow_team_id".into()],
            scopes: ScopeSet::parse("read").unwrap(),
            created_at: self.now(),
        };
        f(&mut rec, &signer);
        run(self.store.insert_trust(&rec)).unwrap();
        signer
    }

    /// The body parameters of a request by `c` authenticating in the body
    /// (`client_secret_post`, or only `client_id` for a public client), plus `pairs`.
    pub fn params(c: &Creds, pairs: &[(&str, &str)]) -> Params {
        let mut all: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push(("client_id".into(), c.id.clone()));
        if let Some(s) = &c.secret {
            all.push(("client_secret".into(), s.clone()));
        }
        Params::from_pairs(all).unwrap()
    }

    /// Params of exactly `pairs`.
    pub fn raw(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    /// A token request by `c` with `pairs`.
    pub fn token(&self, c: &Creds, pairs: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        run(token::handle(&self.cx(), None, &Self::params(c, pairs)))
    }

    /// A token request authenticated with HTTP Basic, body `pairs`.
    pub fn token_basic(
        &self,
        id: &str,
        secret: &str,
        pairs: &[(&str, &str)],
    ) -> Result<TokenResponse, OAuthError> {
        let basic = BasicCredentials {
            client_id: id.into(),
            secret: Secret::new(secret),
        };
        run(token::handle(&self.cx(), Some(&basic), &Self::raw(pairs)))
    }

    /// An introspection request by `caller`, as JSON.
    pub fn introspect(&self, caller: &Creds, token: &str) -> Result<Value, OAuthError> {
        let params = Self::params(caller, &[("token", token)]);
        run(introspect::handle(&self.cx(), None, &params))
            .map(|r| serde_json::to_value(&r).unwrap())
    }

    /// Whether `caller`'s introspection says `token` is active.
    pub fn active(&self, caller: &Creds, token: &str) -> bool {
        self.introspect(caller, token).unwrap()["active"] == true
    }

    /// A revocation request by `caller`.
    pub fn revoke(&self, caller: &Creds, token: &str) -> Result<(), OAuthError> {
        run(revoke::handle(
            &self.cx(),
            None,
            &Self::params(caller, &[("token", token)]),
        ))
    }

    /// What the server's own checks say of an access token now, consuming nothing.
    pub fn look(&self, token: &str) -> Option<ActiveToken> {
        run(inspect::look(&self.cx(), token, None)).unwrap()
    }

    /// A session of `user` who signed in at `auth_time`, lasting the configured session
    /// lifetime.
    pub fn session(&self, user: &UserRecord, auth_time: i64) -> SessionRecord {
        SessionRecord {
            session_hash: SecretHash::of(&generate_id()),
            user_id: user.user_id.clone(),
            auth_time,
            expires_at: auth_time + self.config.session_ttl,
        }
    }

    /// The parameters of an authorization request by `c` for `scope`, with S256 PKCE on
    /// [`VERIFIER`], `state` and `nonce`, plus `extra` (which replace defaults of the same
    /// name; an empty value drops one).
    pub fn authorize_params(c: &Creds, scope: &str, extra: &[(&str, &str)]) -> Params {
        let challenge = challenge(VERIFIER);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st-123"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("nonce", "n-456"),
        ];
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        Self::raw(&pairs)
    }

    /// Validates an authorization request.
    pub fn validate(&self, params: &Params) -> Result<AuthorizeRequest, AuthorizeError> {
        run(authorize::validate(&self.cx(), params))
    }

    /// A code issued now for `user` (signed in at `auth_time`) through the authorization
    /// endpoint, for a request by `c` for `scope` with `extra` parameters.
    pub fn code_at(
        &self,
        c: &Creds,
        user: &UserRecord,
        auth_time: i64,
        scope: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let req = self
            .validate(&Self::authorize_params(c, scope, extra))
            .unwrap_or_else(|e| panic!("authorization request refused: {e:?}"));
        let session = self.session(user, auth_time);
        let location = run(authorize::issue_code(&self.cx(), &req, &session)).unwrap();
        query(&location)["code"].clone()
    }

    /// A code issued now for `user`, signed in now.
    pub fn code(&self, c: &Creds, user: &UserRecord, scope: &str) -> String {
        self.code_at(c, user, self.now(), scope, &[])
    }

    /// Exchanges a code with the redirect URI and [`VERIFIER`], plus `extra`.
    pub fn exchange(
        &self,
        c: &Creds,
        code: &str,
        extra: &[(&str, &str)],
    ) -> Result<TokenResponse, OAuthError> {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        self.token(c, &pairs)
    }

    /// Refreshes with `refresh_token`, plus `extra`.
    pub fn refresh(
        &self,
        c: &Creds,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> Result<TokenResponse, OAuthError> {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        pairs.extend_from_slice(extra);
        self.token(c, &pairs)
    }

    /// Codes and tokens from a code-flow sign-in of `user` now, for `scope`.
    pub fn tokens(&self, c: &Creds, user: &UserRecord, scope: &str) -> TokenResponse {
        let code = self.code(c, user, scope);
        self.exchange(c, &code, &[]).unwrap()
    }
}

/// The query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The payload of a JWT, not verified.
pub fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The refresh token of a response.
pub fn rt(r: &TokenResponse) -> String {
    r.refresh_token
        .as_ref()
        .expect("a refresh token")
        .expose()
        .to_owned()
}

/// The access token of a response.
pub fn at(r: &TokenResponse) -> String {
    r.access_token.expose().to_owned()
}

/// The error code of a refusal; panics with `case` on success.
pub fn code_of<T: std::fmt::Debug>(case: &str, r: Result<T, OAuthError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("{case}: expected a refusal, got {v:?}"),
        Err(e) => e.code,
    }
}

/// Asserts that `r` is a refusal with `code`, whose description contains `why` (when not
/// empty).
pub fn refused<T: std::fmt::Debug>(
    case: &str,
    r: Result<T, OAuthError>,
    code: ErrorCode,
    why: &str,
) {
    match r {
        Ok(v) => panic!("{case}: expected {code}, got {v:?}"),
        Err(e) => {
            assert_eq!(e.code, code, "{case}: {e}");
            assert!(e.description.contains(why), "{case}: {e}");
        }
    }
}
