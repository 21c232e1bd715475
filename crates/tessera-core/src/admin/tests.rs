//! Table tests of the application layer against the in-memory store, at a fixed time: each
//! rule refused with the variant (and field) a caller maps to its answer, and the happy
//! paths of creating, changing, rotating, revoking and deleting.

use super::clients::{self, AuthMethod, ClientPatch, ClientSettings, ClientSpec};
use super::public_keys::{KeyDocument, PublicKeys};
use super::users::{self, UserSpec};
use super::{envs, keys, tokens, trust, AdminError};
use crate::config::Config;
use crate::cx::{verified_tokens, Cx};
use crate::environment::DEFAULT_ENV;
use crate::grant::types as grant_types;
use crate::keys::{KeySet, Sealer, SigningAlg};
use crate::model::{GrantRecord, RefreshRecord, TokenFormat};
use crate::params::Params;
use crate::secret::SecretHash;
use crate::store::memory::MemoryStore;
use crate::store::{ClientStore, GrantStore, KeyStore, TrustStore, UserStore};

const NOW: i64 = 1_700_000_000;
const REDIRECT: &str = "https://app.example/cb";

fn config() -> Config {
    Config::new("https://issuer.example")
}

fn sealer() -> Sealer {
    Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn spec(settings: ClientSettings) -> ClientSpec {
    ClientSpec {
        name: "app".into(),
        settings,
        ..ClientSpec::default()
    }
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

/// The field of an `Invalid`, or a description of what came instead.
fn invalid_field<T: std::fmt::Debug>(r: Result<T, AdminError>) -> String {
    match r {
        Err(AdminError::Invalid { field, .. }) => field.to_owned(),
        other => format!("not Invalid: {other:?}"),
    }
}

/// An RSA public key of `bits` bits (not a real key: registration reads its size only).
fn rsa_jwk(bits: usize, kid: &str) -> serde_json::Value {
    use base64::Engine as _;
    let mut n = vec![0xc5u8];
    n.resize(bits / 8, 0x35);
    serde_json::json!({
        "kty": "RSA", "kid": kid, "e": "AQAB",
        "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n),
    })
}

fn jwks(keys: &[serde_json::Value]) -> PublicKeys {
    PublicKeys {
        jwks: Some(KeyDocument {
            source: Some("keys.json".into()),
            text: serde_json::json!({ "keys": keys }).to_string(),
        }),
        pems: Vec::new(),
    }
}

#[tokio::test]
async fn every_registration_rule_is_refused_with_its_field() {
    let store = MemoryStore::new();
    let cfg = config();
    let cases: Vec<(&str, ClientSpec, &str)> = vec![
        (
            "unknown grant type",
            spec(ClientSettings {
                grant_types: strings(&["password"]),
                ..Default::default()
            }),
            "grant_types",
        ),
        (
            "no grant type",
            spec(ClientSettings {
                grant_types: strings(&[]),
                ..Default::default()
            }),
            "grant_types",
        ),
        (
            "public client with client_credentials",
            ClientSpec {
                public: true,
                ..spec(ClientSettings {
                    grant_types: strings(&[grant_types::CLIENT_CREDENTIALS]),
                    ..Default::default()
                })
            },
            "grant_types",
        ),
        (
            "public client with the JWT bearer grant",
            ClientSpec {
                public: true,
                ..spec(ClientSettings {
                    grant_types: strings(&[grant_types::JWT_BEARER]),
                    ..Default::default()
                })
            },
            "grant_types",
        ),
        (
            "code flow without a redirect URI",
            spec(ClientSettings {
                grant_types: strings(&[grant_types::AUTHORIZATION_CODE]),
                ..Default::default()
            }),
            "redirect_uris",
        ),
        (
            "public client (code flow by default) without a redirect URI",
            ClientSpec {
                public: true,
                ..spec(ClientSettings::default())
            },
            "redirect_uris",
        ),
        (
            "redirect URI with a fragment",
            spec(ClientSettings {
                grant_types: strings(&[grant_types::AUTHORIZATION_CODE]),
                redirect_uris: strings(&["https://app.example/cb#x"]),
                ..Default::default()
            }),
            "redirect_uris",
        ),
        (
            "plain http redirect URI off loopback",
            spec(ClientSettings {
                grant_types: strings(&[grant_types::AUTHORIZATION_CODE]),
                redirect_uris: strings(&["http://app.example/cb"]),
                ..Default::default()
            }),
            "redirect_uris",
        ),
        (
            "post-logout URI with a fragment",
            spec(ClientSettings {
                post_logout_redirect_uris: strings(&["https://app.example/#bye"]),
                ..Default::default()
            }),
            "post_logout_redirect_uris",
        ),
        (
            "bad scope",
            spec(ClientSettings {
                scope: Some("read \"quoted\"".into()),
                ..Default::default()
            }),
            "scope",
        ),
        (
            "relative audience",
            spec(ClientSettings {
                audiences: strings(&["not-a-uri"]),
                ..Default::default()
            }),
            "audiences",
        ),
        (
            "audience with a fragment",
            spec(ClientSettings {
                audiences: strings(&["https://api.example/#x"]),
                ..Default::default()
            }),
            "audiences",
        ),
        (
            "unknown token format",
            spec(ClientSettings {
                access_token_format: Some("paseto".into()),
                ..Default::default()
            }),
            "access_token_format",
        ),
        (
            "zero access token lifetime",
            spec(ClientSettings {
                access_token_ttl: Some(0),
                ..Default::default()
            }),
            "access_token_ttl",
        ),
        (
            "access token lifetime above the server's maximum",
            spec(ClientSettings {
                access_token_ttl: Some(cfg.max_access_token_ttl + 1),
                ..Default::default()
            }),
            "access_token_ttl",
        ),
        (
            "unknown refresh policy",
            spec(ClientSettings {
                refresh_tokens: Some("sometimes".into()),
                ..Default::default()
            }),
            "refresh_tokens",
        ),
        (
            "zero refresh token lifetime",
            spec(ClientSettings {
                refresh_token_ttl: Some(0),
                ..Default::default()
            }),
            "refresh_token_ttl",
        ),
        (
            "negative idle lifetime",
            spec(ClientSettings {
                refresh_token_idle_ttl: Some(-1),
                ..Default::default()
            }),
            "refresh_token_idle_ttl",
        ),
        (
            "grace period over 300 s",
            spec(ClientSettings {
                refresh_grace_period: Some(301),
                ..Default::default()
            }),
            "refresh_grace_period",
        ),
        (
            "code lifetime over 10 minutes",
            spec(ClientSettings {
                code_ttl: Some(601),
                ..Default::default()
            }),
            "code_ttl",
        ),
        (
            "zero code lifetime",
            spec(ClientSettings {
                code_ttl: Some(0),
                ..Default::default()
            }),
            "code_ttl",
        ),
        (
            "hidden character in the name",
            ClientSpec {
                name: "Re\u{200B}ports".into(),
                ..spec(ClientSettings::default())
            },
            "name",
        ),
        (
            "bad environment name",
            ClientSpec {
                env: Some("Prod!".into()),
                ..spec(ClientSettings::default())
            },
            "env",
        ),
        (
            "unsupported auth method",
            ClientSpec {
                token_endpoint_auth_method: Some("client_secret_jwt".into()),
                ..spec(ClientSettings::default())
            },
            "token_endpoint_auth_method",
        ),
        (
            "private_key_jwt without keys",
            ClientSpec {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                ..spec(ClientSettings::default())
            },
            "keys",
        ),
        (
            "private_key_jwt and public",
            ClientSpec {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                public: true,
                keys: jwks(&[rsa_jwk(2048, "a")]),
                ..spec(ClientSettings::default())
            },
            "public",
        ),
        (
            "keys for a secret client",
            ClientSpec {
                keys: jwks(&[rsa_jwk(2048, "a")]),
                ..spec(ClientSettings::default())
            },
            "keys",
        ),
        (
            "an RSA key too large",
            ClientSpec {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                keys: jwks(&[rsa_jwk(8192, "a")]),
                ..spec(ClientSettings::default())
            },
            "keys",
        ),
        (
            "two keys with one kid",
            ClientSpec {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                keys: jwks(&[rsa_jwk(2048, "a"), rsa_jwk(2048, "a")]),
                ..spec(ClientSettings::default())
            },
            "keys",
        ),
        (
            "eleven keys",
            ClientSpec {
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                keys: jwks(
                    &(0..11)
                        .map(|i| rsa_jwk(2048, &format!("k{i}")))
                        .collect::<Vec<_>>(),
                ),
                ..spec(ClientSettings::default())
            },
            "keys",
        ),
    ];
    for (label, spec, field) in cases {
        let got = invalid_field(clients::create(&store, &cfg, spec, NOW).await);
        assert_eq!(got, field, "{label}");
    }
    assert!(
        store.list_clients().await.unwrap().is_empty(),
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn a_key_error_names_the_document_it_is_about() {
    let store = MemoryStore::new();
    let r = clients::create(
        &store,
        &config(),
        ClientSpec {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            keys: jwks(&[rsa_jwk(8192, "a")]),
            ..spec(ClientSettings::default())
        },
        NOW,
    )
    .await;
    let msg = r.unwrap_err().to_string();
    assert!(msg.starts_with("keys.json: "), "{msg}");
    assert!(msg.contains("8192 bits: 2048 to 4096"), "{msg}");
}

#[tokio::test]
async fn a_new_client_gets_the_defaults_and_a_secret_stored_only_as_its_hash() {
    let store = MemoryStore::new();
    let cfg = config();
    let created = clients::create(&store, &cfg, spec(ClientSettings::default()), NOW)
        .await
        .unwrap();
    let secret = created.secret.expect("a confidential client gets a secret");
    assert!(secret.expose().starts_with(clients::SECRET_PREFIX));
    let stored = store
        .get_client(&created.client.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, created.client);
    assert_eq!(stored.secret_hash, Some(SecretHash::of(secret.expose())));
    assert_eq!(stored.grant_types, [grant_types::CLIENT_CREDENTIALS]);
    assert_eq!(stored.access_token_format, TokenFormat::Jwt);
    assert_eq!(stored.access_token_ttl, cfg.default_access_token_ttl);
    assert_eq!(stored.env, DEFAULT_ENV);
    assert_eq!(stored.created_at, NOW);
    assert_eq!(AuthMethod::of(&stored), AuthMethod::ClientSecretBasic);

    // A public client: no secret, the code flow, in a new environment created on the way.
    let public = clients::create(
        &store,
        &cfg,
        ClientSpec {
            token_endpoint_auth_method: Some("none".into()),
            env: Some("staging".into()),
            ..spec(ClientSettings {
                redirect_uris: strings(&[REDIRECT]),
                ..Default::default()
            })
        },
        NOW,
    )
    .await
    .unwrap();
    assert!(public.secret.is_none());
    assert!(public.client.public);
    assert_eq!(public.client.grant_types, [grant_types::AUTHORIZATION_CODE]);
    assert_eq!(AuthMethod::of(&public.client), AuthMethod::None);
    assert!(store.get_env("staging").await.unwrap().is_some());

    // private_key_jwt: keys, no secret.
    let pk = clients::create(
        &store,
        &cfg,
        ClientSpec {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            keys: jwks(&[rsa_jwk(2048, "a"), rsa_jwk(4096, "b")]),
            ..spec(ClientSettings::default())
        },
        NOW,
    )
    .await
    .unwrap();
    assert!(pk.secret.is_none());
    let kids = super::public_keys::kids(pk.client.jwks.as_deref().unwrap());
    assert_eq!(kids, [Some("a".to_owned()), Some("b".to_owned())]);
    assert_eq!(AuthMethod::of(&pk.client), AuthMethod::PrivateKeyJwt);
}

#[tokio::test]
async fn an_update_changes_only_what_it_names_and_a_refused_one_changes_nothing() {
    let store = MemoryStore::new();
    let cfg = config();
    let c = clients::create(
        &store,
        &cfg,
        spec(ClientSettings {
            scope: Some("read".into()),
            ..Default::default()
        }),
        NOW,
    )
    .await
    .unwrap()
    .client;
    let patch = ClientPatch {
        name: Some("renamed".into()),
        settings: ClientSettings {
            access_token_format: Some("opaque".into()),
            access_token_ttl: Some(120),
            audiences: strings(&["https://api.example.com"]),
            ..Default::default()
        },
    };
    let updated = clients::update(&store, &cfg, &c.client_id, patch, NOW + 1)
        .await
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.access_token_format, TokenFormat::Opaque);
    assert_eq!(updated.access_token_ttl, 120);
    assert_eq!(updated.audiences, ["https://api.example.com"]);
    assert_eq!(updated.scopes.to_string(), "read", "not named, not changed");
    assert_eq!(updated.secret_hash, c.secret_hash);
    assert_eq!(
        store.get_client(&c.client_id).await.unwrap(),
        Some(updated.clone())
    );

    // Moving to the code flow needs a redirect URI; refused, nothing changes.
    let to_code = ClientPatch {
        settings: ClientSettings {
            grant_types: strings(&[grant_types::AUTHORIZATION_CODE]),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = clients::update(&store, &cfg, &c.client_id, to_code, NOW + 2).await;
    assert_eq!(invalid_field(r), "redirect_uris");
    assert_eq!(store.get_client(&c.client_id).await.unwrap(), Some(updated));

    let r = clients::update(&store, &cfg, "nope", ClientPatch::default(), NOW).await;
    assert!(
        matches!(r, Err(AdminError::NotFound { kind: "client", .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn rotating_a_secret_with_and_without_overlap() {
    let store = MemoryStore::new();
    let cfg = config();
    let c = clients::create(&store, &cfg, spec(ClientSettings::default()), NOW)
        .await
        .unwrap();
    let id = c.client.client_id.clone();
    let first = c.secret.unwrap();

    let r = clients::rotate_secret(&store, &id, Some(0), NOW).await;
    assert_eq!(invalid_field(r), "keep_old_secret_for");

    let kept = clients::rotate_secret(&store, &id, Some(60), NOW)
        .await
        .unwrap();
    assert_eq!(kept.old_valid_until, Some(NOW + 60));
    let stored = store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(kept.secret.hash()));
    assert_eq!(stored.old_secret_hash, Some(first.hash()));
    assert_eq!(stored.token_epoch, c.client.token_epoch, "nothing revoked");

    let cut = clients::rotate_secret(&store, &id, None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(cut.old_valid_until, None);
    let stored = store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, Some(cut.secret.hash()));
    assert_eq!(stored.old_secret_hash, None);
    assert!(
        stored.token_epoch > c.client.token_epoch,
        "earlier tokens revoked"
    );

    // Clients without a secret have none to rotate.
    let public = clients::create(
        &store,
        &cfg,
        ClientSpec {
            public: true,
            ..spec(ClientSettings {
                redirect_uris: strings(&[REDIRECT]),
                ..Default::default()
            })
        },
        NOW,
    )
    .await
    .unwrap();
    let r = clients::rotate_secret(&store, &public.client.client_id, None, NOW).await;
    assert!(matches!(r, Err(AdminError::Conflict(_))), "{r:?}");
    let r = clients::rotate_secret(&store, "nope", None, NOW).await;
    assert!(matches!(r, Err(AdminError::NotFound { .. })), "{r:?}");
    // Keys are replaced only for a private_key_jwt client.
    let r = clients::set_keys(&store, &id, &jwks(&[rsa_jwk(2048, "a")]), NOW).await;
    assert!(matches!(r, Err(AdminError::Conflict(_))), "{r:?}");
}

#[tokio::test]
async fn replacing_keys_revoking_tokens_and_deleting_a_client() {
    let store = MemoryStore::new();
    let cfg = config();
    let pk = clients::create(
        &store,
        &cfg,
        ClientSpec {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            keys: jwks(&[rsa_jwk(2048, "old")]),
            ..spec(ClientSettings::default())
        },
        NOW,
    )
    .await
    .unwrap()
    .client;
    let id = pk.client_id.as_str();
    let r = clients::set_keys(&store, id, &PublicKeys::default(), NOW).await;
    assert_eq!(invalid_field(r), "keys");
    let stored = clients::set_keys(&store, id, &jwks(&[rsa_jwk(2048, "new")]), NOW)
        .await
        .unwrap();
    assert_eq!(super::public_keys::kids(&stored), [Some("new".to_owned())]);
    assert_eq!(
        store.get_client(id).await.unwrap().unwrap().jwks,
        Some(stored)
    );

    clients::revoke_tokens(&store, id, NOW).await.unwrap();
    let after = store.get_client(id).await.unwrap().unwrap();
    assert!(after.token_epoch > pk.token_epoch);
    assert!(matches!(
        clients::revoke_tokens(&store, "nope", NOW).await,
        Err(AdminError::NotFound { .. })
    ));

    clients::delete(&store, id, NOW).await.unwrap();
    assert!(store.get_client(id).await.unwrap().is_none());
    assert!(matches!(
        clients::delete(&store, id, NOW).await,
        Err(AdminError::NotFound { kind: "client", .. })
    ));
}

#[tokio::test]
async fn users_are_named_once_and_passwords_are_checked_and_hashed() {
    let store = MemoryStore::new();
    let user = |username: &str, password: &str| UserSpec {
        username: username.into(),
        password: password.into(),
        email: None,
        name: None,
    };
    let alice = users::create(&store, user("Alice", "correct horse"), NOW)
        .await
        .unwrap();
    assert_eq!(alice.username, "alice", "stored prepared (RFC 8265)");
    assert!(crate::password::verify(
        "correct horse",
        &alice.password_hash
    ));
    assert!(!alice.password_hash.contains("correct horse"));

    let refused: [(UserSpec, &str); 5] = [
        (user("ALICE", "correct horse"), "conflict"),
        (user("\u{430}lice", "correct horse"), "username"),
        (user("bob\u{200B}", "correct horse"), "username"),
        (user("bob", "short"), "password"),
        (
            UserSpec {
                name: Some("Bob\u{202E}".into()),
                ..user("bob", "correct horse")
            },
            "name",
        ),
    ];
    for (spec, want) in refused {
        let label = format!("{spec:?}");
        let got = match users::create(&store, spec, NOW).await {
            Err(AdminError::Conflict(_)) => "conflict".to_owned(),
            r => invalid_field(r),
        };
        assert_eq!(got, want, "{label}");
    }
    assert_eq!(users::list(&store).await.unwrap().len(), 1);
    let long = "x".repeat(crate::password::MAX_LENGTH + 1);
    assert_eq!(invalid_field(users::check_password(&long)), "password");

    // Found by another spelling; a new password; deletion.
    assert_eq!(
        users::find(&store, "ＡＬＩＣＥ").await.unwrap().user_id,
        alice.user_id
    );
    let changed = users::set_password(&store, "alice", "battery staple", NOW + 1)
        .await
        .unwrap();
    assert_eq!(changed.user_id, alice.user_id);
    let stored = store.get_user(&alice.user_id).await.unwrap().unwrap();
    assert!(crate::password::verify(
        "battery staple",
        &stored.password_hash
    ));
    assert_eq!(
        invalid_field(users::set_password(&store, "alice", "short", NOW).await),
        "password"
    );
    users::delete(&store, "Alice", NOW + 2).await.unwrap();
    assert!(matches!(
        users::find(&store, "alice").await,
        Err(AdminError::NotFound { kind: "user", .. })
    ));
}

#[tokio::test]
async fn trusted_issuers_are_checked_and_unique_per_environment() {
    let store = MemoryStore::new();
    let base = || trust::TrustSpec {
        issuer: "https://idp.example".into(),
        keys: jwks(&[rsa_jwk(2048, "a")]),
        scope: "sdk".into(),
        ..trust::TrustSpec::default()
    };
    let refused: Vec<(trust::TrustSpec, &str)> = vec![
        (
            trust::TrustSpec {
                env: Some("Bad Env".into()),
                ..base()
            },
            "env",
        ),
        (
            trust::TrustSpec {
                issuer: String::new(),
                ..base()
            },
            "issuer",
        ),
        (
            trust::TrustSpec {
                issuer: "x".repeat(trust::MAX_ISSUER_LEN + 1),
                ..base()
            },
            "issuer",
        ),
        (
            trust::TrustSpec {
                keys: PublicKeys::default(),
                ..base()
            },
            "keys",
        ),
        (
            trust::TrustSpec {
                jwks_url: Some("http://idp.example/jwks".into()),
                ..base()
            },
            "jwks_url",
        ),
        (
            trust::TrustSpec {
                subject_claim: Some(String::new()),
                ..base()
            },
            "subject_claim",
        ),
        (
            trust::TrustSpec {
                claims: vec!["team".into(), "exp".into()],
                ..base()
            },
            "claims",
        ),
        (
            trust::TrustSpec {
                scope: "a\\b".into(),
                ..base()
            },
            "scope",
        ),
    ];
    for (spec, field) in refused {
        let label = format!("{spec:?}");
        assert_eq!(
            invalid_field(trust::add(&store, spec, NOW).await),
            field,
            "{label}"
        );
    }
    for url in [
        "https://idp.example/jwks",
        "http://127.0.0.1:8080/jwks",
        "http://localhost",
    ] {
        trust::check_jwks_url(url).unwrap();
    }
    assert!(trust::check_jwks_url("http://localhost.evil.example").is_err());

    let t = trust::add(
        &store,
        trust::TrustSpec {
            env: Some("prod".into()),
            ..base()
        },
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(t.subject_claim, "sub");
    assert!(
        store.get_env("prod").await.unwrap().is_some(),
        "created on first use"
    );
    let again = trust::add(
        &store,
        trust::TrustSpec {
            env: Some("prod".into()),
            ..base()
        },
        NOW,
    )
    .await;
    assert!(matches!(again, Err(AdminError::Conflict(_))), "{again:?}");
    // A JWKS URL alone is enough.
    trust::add(
        &store,
        trust::TrustSpec {
            keys: PublicKeys::default(),
            jwks_url: Some("https://idp.example/jwks".into()),
            ..base()
        },
        NOW,
    )
    .await
    .unwrap();

    let stored = trust::set_keys(&store, &t.id, &jwks(&[rsa_jwk(2048, "b")]), NOW)
        .await
        .unwrap();
    assert_eq!(super::public_keys::count(&stored), 1);
    assert_eq!(
        invalid_field(trust::set_keys(&store, &t.id, &PublicKeys::default(), NOW).await),
        "keys"
    );
    assert!(matches!(
        trust::set_keys(&store, "nope", &jwks(&[rsa_jwk(2048, "b")]), NOW).await,
        Err(AdminError::NotFound { .. })
    ));
    trust::remove(&store, &t.id, NOW).await.unwrap();
    assert!(matches!(
        trust::remove(&store, &t.id, NOW).await,
        Err(AdminError::NotFound {
            kind: "trust registration",
            ..
        })
    ));
    assert_eq!(trust::list(&store, Some("prod")).await.unwrap().len(), 0);
}

#[tokio::test]
async fn environments_are_named_changed_and_deleted_by_their_rules() {
    let store = MemoryStore::new();
    assert_eq!(
        invalid_field(envs::create(&store, "Prod", NOW).await),
        "name"
    );
    assert_eq!(invalid_field(envs::create(&store, "", NOW).await), "name");
    let e = envs::create(&store, "prod", NOW).await.unwrap();
    assert!(!e.single_use_tokens);
    assert_eq!(
        envs::create(&store, "prod", NOW + 5).await.unwrap(),
        e,
        "idempotent"
    );

    let none = envs::EnvPatch::default();
    assert_eq!(
        invalid_field(envs::update(&store, "prod", none, NOW).await),
        "single_use_tokens"
    );
    let on = || envs::EnvPatch {
        single_use_tokens: Some(true),
    };
    assert!(
        envs::update(&store, "prod", on(), NOW)
            .await
            .unwrap()
            .single_use_tokens
    );
    assert!(matches!(
        envs::update(&store, "nope", on(), NOW).await,
        Err(AdminError::NotFound {
            kind: "environment",
            ..
        })
    ));

    assert!(matches!(
        envs::delete(&store, DEFAULT_ENV, NOW).await,
        Err(AdminError::Conflict(_))
    ));
    let c = clients::create(
        &store,
        &config(),
        ClientSpec {
            env: Some("prod".into()),
            ..spec(ClientSettings::default())
        },
        NOW,
    )
    .await
    .unwrap();
    let r = envs::delete(&store, "prod", NOW).await;
    assert!(
        matches!(&r, Err(AdminError::Conflict(m)) if m.contains("1 client")),
        "{r:?}"
    );
    clients::delete(&store, &c.client.client_id, NOW)
        .await
        .unwrap();
    envs::delete(&store, "prod", NOW).await.unwrap();
    assert!(matches!(
        envs::delete(&store, "prod", NOW).await,
        Err(AdminError::NotFound { .. })
    ));
    assert_eq!(envs::list(&store).await.unwrap().len(), 1);
}

#[tokio::test]
async fn signing_keys_rotate_after_a_lead_time_no_shorter_than_the_jwks_cache() {
    let store = MemoryStore::new();
    let cfg = config();
    let sealer = sealer();
    crate::keys::ensure_key(&store, &sealer, SigningAlg::Es256, NOW)
        .await
        .unwrap();
    let r = keys::rotate(&store, &sealer, &cfg, Some(cfg.jwks_max_age() - 1), NOW).await;
    assert_eq!(invalid_field(r), "lead_time");
    // Too long a lead time is refused too, up to one that would overflow the clock.
    for lead in [keys::MAX_LEAD_TIME + 1, i64::MAX] {
        let r = keys::rotate(&store, &sealer, &cfg, Some(lead), NOW).await;
        assert_eq!(invalid_field(r), "lead_time");
    }
    assert_eq!(store.list_keys().await.unwrap().len(), 1, "nothing written");

    let other = Sealer::from_secret(b"another-secret-of-enough-length").unwrap();
    let r = keys::rotate(&store, &other, &cfg, None, NOW).await;
    assert!(
        matches!(
            r,
            Err(AdminError::Keys(
                crate::keys::KeyRotationError::SealedElsewhere
            ))
        ),
        "{r:?}"
    );

    let new = keys::rotate(&store, &sealer, &cfg, None, NOW)
        .await
        .unwrap();
    assert_eq!(new.activates_at, NOW + cfg.key_rotation_lead_time);
    let states: Vec<keys::KeyState> = keys::list(&store, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        states,
        [keys::KeyState::Superseded, keys::KeyState::Pending]
    );
    let later = NOW + cfg.key_rotation_lead_time + cfg.max_access_token_ttl;
    let states: Vec<&str> = keys::list(&store, later)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(states, ["retired", "active"]);

    assert_eq!(keys::reseal(&store, &sealer, &other, NOW).await.unwrap(), 2);
    assert!(keys::reseal(&store, &sealer, &other, NOW).await.is_err());
}

#[tokio::test]
async fn an_operator_revokes_access_and_refresh_tokens_by_value() {
    let store = MemoryStore::new();
    let cfg = config();
    let sealer = sealer();
    crate::keys::ensure_key(&store, &sealer, SigningAlg::Es256, NOW)
        .await
        .unwrap();
    let keyset = KeySet::load(&store.list_keys().await.unwrap(), &sealer).unwrap();
    let verified = verified_tokens(16);
    let cx = Cx {
        config: &cfg,
        store: &store,
        keys: &keyset,
        verified: &verified,
        sealer: &sealer,
        remote_keys: None,
        now: NOW,
        dialect: None,
        request: Default::default(),
        confirmation: None,
    };
    let params = Params::from_form(b"grant_type=client_credentials").unwrap();
    for format in ["jwt", "opaque"] {
        let client = clients::create(
            &store,
            &cfg,
            spec(ClientSettings {
                access_token_format: Some(format.into()),
                ..Default::default()
            }),
            NOW,
        )
        .await
        .unwrap()
        .client;
        let issue = || crate::grant::client_credentials::handle(&cx, &client, &params);
        let token = issue().await.unwrap().access_token;
        let kept = issue().await.unwrap().access_token;
        assert!(tokens::inspect(&cx, token.expose())
            .await
            .unwrap()
            .is_some());
        assert!(
            tokens::revoke(&cx, token.expose()).await.unwrap(),
            "{format}"
        );
        assert!(tokens::inspect(&cx, token.expose())
            .await
            .unwrap()
            .is_none());
        assert!(
            !tokens::revoke(&cx, token.expose()).await.unwrap(),
            "{format}: again"
        );
        assert!(tokens::inspect(&cx, kept.expose()).await.unwrap().is_some());
    }
    assert!(!tokens::revoke(&cx, "not-a-token").await.unwrap());

    // A refresh token revokes its whole grant, whoever it was issued to.
    let client = clients::create(
        &store,
        &cfg,
        spec(ClientSettings {
            grant_types: strings(&[grant_types::AUTHORIZATION_CODE]),
            redirect_uris: strings(&[REDIRECT]),
            ..Default::default()
        }),
        NOW,
    )
    .await
    .unwrap()
    .client;
    let grant = GrantRecord {
        grant_id: "g1".into(),
        client_id: client.client_id.clone(),
        user_id: "u1".into(),
        scope: "openid".into(),
        auth_time: NOW,
        nonce: None,
        token_epoch: client.token_epoch,
        created_at: NOW,
        refresh_expires_at: NOW + 3600,
        expires_at: NOW + 3600,
        revoked_at: None,
        claims: None,
        sid: None,
        dpop_jkt: None,
    };
    let (value, token_id) = crate::opaque::mint_refresh(NOW + 3600);
    let refresh = RefreshRecord {
        token_id,
        token_hash: value.hash(),
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        scope: "openid".into(),
        issued_at: NOW,
        expires_at: NOW + 3600,
        used_at: None,
        successor_sealed: None,
    };
    store.insert_grant(&grant, Some(&refresh)).await.unwrap();
    // A forged token with the same public id is not it.
    let forged = format!("{}x", value.expose());
    assert!(!tokens::revoke(&cx, &forged).await.unwrap());
    assert!(store
        .get_grant("g1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    assert!(tokens::revoke(&cx, value.expose()).await.unwrap());
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(NOW)
    );
    assert!(
        !tokens::revoke(&cx, value.expose()).await.unwrap(),
        "already revoked"
    );
}
