//! Clients imported from another server (`admin::clients::create` with a `client_id` and a
//! `secret_hash`): each hash format authenticates at the token endpoint with the original
//! secret, by HTTP Basic and in the body; a wrong secret is `invalid_client`; bad input at
//! import is refused naming its field; a rotation gives a native secret.

use tessera_core::admin::clients::{self, ClientSettings, ClientSpec};
use tessera_core::admin::AdminError;
use tessera_core::error::ErrorCode;

use crate::support::*;

const CC: &[(&str, &str)] = &[("grant_type", "client_credentials")];

/// One hash of each accepted form, with the secret it was made from (made outside Tessera:
/// Python's hashlib for SHA-256 and PBKDF2, PHP's documentation for bcrypt `$2y$`, the
/// OpenBSD test vector for `$2a$`).
fn vectors() -> Vec<(&'static str, String, &'static str)> {
    let argon = tessera_core::password::hash("argon secret").unwrap();
    vec![
        (
            "bcrypt-2a",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "U*U",
        ),
        (
            "bcrypt-2y",
            "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a".into(),
            "rasmuslerdorf",
        ),
        (
            "pbkdf2-phc",
            "$pbkdf2-sha256$i=1,l=32$c2FsdA$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs".into(),
            "password",
        ),
        (
            "pbkdf2-django",
            "pbkdf2_sha256$1$salt$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=".into(),
            "password",
        ),
        ("argon2id", argon, "argon secret"),
        (
            "sha256",
            "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".into(),
            "password",
        ),
        (
            "sha256-salted",
            "$sha256$salt$13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322".into(),
            "password",
        ),
    ]
}

fn import(w: &World, id: &str, hash: &str) -> Result<clients::Created, AdminError> {
    let spec = ClientSpec {
        name: "imported".into(),
        client_id: Some(id.into()),
        secret_hash: Some(hash.into()),
        settings: ClientSettings {
            scope: Some("read".into()),
            ..ClientSettings::default()
        },
        ..ClientSpec::default()
    };
    run(clients::create(&w.store, &w.config, spec, w.now()))
}

fn creds(id: &str, secret: &str) -> Creds {
    Creds {
        id: id.into(),
        secret: Some(secret.into()),
    }
}

#[test]
fn every_imported_format_authenticates_with_its_original_secret_only() {
    let w = World::new();
    for (id, hash, secret) in vectors() {
        let created = import(&w, id, &hash).unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert!(created.secret.is_none(), "{id}: no secret is generated");
        assert_eq!(created.client.client_id, id);
        let r = w.token(&creds(id, secret), CC);
        assert!(r.is_ok(), "{id} in the body: {r:?}");
        let r = w.token_basic(id, secret, CC);
        assert!(r.is_ok(), "{id} by Basic: {r:?}");
        for wrong in ["wrong", "", &format!("{secret} "), &hash] {
            assert_eq!(
                code_of(id, w.token(&creds(id, wrong), CC)),
                ErrorCode::InvalidClient,
                "{id}: {wrong:?}"
            );
            assert_eq!(
                code_of(id, w.token_basic(id, wrong, CC)),
                ErrorCode::InvalidClient,
                "{id}: {wrong:?} by Basic"
            );
        }
    }
}

#[test]
fn the_stored_hash_itself_is_not_a_secret() {
    // A hostile caller who read the old server's hash table presents the hash, or the
    // native hash of it: neither is the secret.
    let w = World::new();
    let hash = "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    import(&w, "leaked", hash).unwrap();
    for presented in [
        hash,
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
    ] {
        assert_eq!(
            code_of("leaked", w.token(&creds("leaked", presented), CC)),
            ErrorCode::InvalidClient
        );
    }
}

#[test]
fn bad_imports_are_refused_naming_the_field() {
    let w = World::new();
    let field = |r: Result<clients::Created, AdminError>| match r {
        Err(AdminError::Invalid { field, .. }) => field.to_owned(),
        other => format!("not Invalid: {other:?}"),
    };
    for bad in [
        "plaintext-secret",
        "$md5$x",
        "$2b$05$short",
        "$pbkdf2-sha256$i=0,l=32$c2FsdA$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "$argon2id$v=19$m=16,t=2,p=1$c29tZXNhbHQ",
        "$sha256$nothex",
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
    ] {
        assert_eq!(field(import(&w, "c1", bad)), "secret_hash", "{bad:?}");
    }
    let good = "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    for bad_id in ["", "has space", "a:b", "é", &"x".repeat(129), "a/b"] {
        assert_eq!(field(import(&w, bad_id, good)), "client_id", "{bad_id:?}");
    }
    // A public client has no secret to import.
    let spec = ClientSpec {
        name: "p".into(),
        public: true,
        secret_hash: Some(good.into()),
        settings: ClientSettings {
            redirect_uris: Some(vec![REDIRECT.into()]),
            ..ClientSettings::default()
        },
        ..ClientSpec::default()
    };
    assert_eq!(
        field(run(clients::create(&w.store, &w.config, spec, w.now()))),
        "secret_hash"
    );
    // A taken client id is a conflict, and the first client keeps its secret.
    import(&w, "taken", good).unwrap();
    let other = "$sha256$13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322";
    assert!(matches!(
        import(&w, "taken", other),
        Err(AdminError::Conflict(_))
    ));
    assert!(w.token(&creds("taken", "password"), CC).is_ok());
}

#[test]
fn rotating_an_imported_secret_gives_a_native_one() {
    let w = World::new();
    let hash = "$pbkdf2-sha256$i=1,l=32$c2FsdA$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs";
    import(&w, "rotated", hash).unwrap();
    // With an overlap both work until it ends.
    let kept = run(clients::rotate_secret(
        &w.store,
        "rotated",
        Some(60),
        w.now(),
    ))
    .unwrap();
    let new = kept.secret.expose().to_owned();
    assert!(new.starts_with(clients::SECRET_PREFIX));
    assert!(w.token(&creds("rotated", &new), CC).is_ok());
    assert!(w.token(&creds("rotated", "password"), CC).is_ok());
    w.advance(61);
    assert_eq!(
        code_of("old", w.token(&creds("rotated", "password"), CC)),
        ErrorCode::InvalidClient
    );
    assert!(w.token(&creds("rotated", &new), CC).is_ok());
    let stored = w.client_record(&creds("rotated", &new));
    assert_eq!(
        stored.secret_hash,
        Some(tessera_core::secret::SecretHash::of(&new))
    );
    // Without an overlap the imported secret stops at once.
    import(&w, "cut", hash).unwrap();
    let cut = run(clients::rotate_secret(&w.store, "cut", None, w.now())).unwrap();
    assert_eq!(
        code_of("cut", w.token(&creds("cut", "password"), CC)),
        ErrorCode::InvalidClient
    );
    assert!(w.token(&creds("cut", cut.secret.expose()), CC).is_ok());
}
