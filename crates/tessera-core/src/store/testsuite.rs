//! The storage conformance suite: one set of tests that every database implementation runs.
//!
//! Owns the executable form of the `# Contract` docs in [`crate::store`]. A backend crate
//! runs it with [`conformance_tests!`](crate::conformance_tests), giving an async expression
//! that makes a fresh, empty store per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use crate::model::{
    AdminTokenRecord, AuditFilter, AuditRecord, ChangeKind, ClientRecord, CodeRecord, CodeUse,
    ConsentRecord, DeviceApproval, DeviceCodeRecord, DevicePoll, DeviceStatus, EnvDeletion,
    ExternalIdentityRecord, GrantRecord, IdpRecord, KeyRecord, LogoutDeliveryRecord, RefreshPolicy,
    RefreshRecord, SessionRecord, TokenFormat, TokenRecord, TrustRecord, UserFlowSettings,
    UserRecord,
};
use crate::scope::ScopeSet;
use crate::secret::{generate_id, SecretHash};
use crate::store::{Store, StoreError};

/// A confidential client-credentials client with the given secret hash.
pub fn client(secret: &SecretHash) -> ClientRecord {
    ClientRecord {
        client_id: generate_id(),
        name: "conformance".into(),
        secret_hash: Some(secret.clone()),
        old_secret_hash: None,
        old_secret_expires_at: None,
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec!["https://app.example.com/cb".into()],
        scopes: ScopeSet::parse("read write").unwrap(),
        audiences: vec!["https://api.example.com".into()],
        public: false,
        jwks: None,
        access_token_format: TokenFormat::Opaque,
        access_token_ttl: 3600,
        token_epoch: 0,
        env: "default".into(),
        single_use_tokens: false,
        created_at: 1_000,
        user_flow: UserFlowSettings::default(),
    }
}

/// An opaque token record of `client_id`, expiring at `exp`.
pub fn token(client_id: &str, exp: i64) -> (String, TokenRecord) {
    let (value, token_id) = crate::opaque::mint(exp);
    let rec = TokenRecord {
        token_id,
        token_hash: value.hash(),
        jti: crate::jwt::make_jti(0),
        client_id: client_id.into(),
        subject: client_id.into(),
        scope: "read".into(),
        audience: crate::resource::Audience::from_stored("https://api.a https://api.b"),
        issued_at: 1_000,
        expires_at: exp,
        token_epoch: 0,
        revoked_at: None,
        grant_id: Some("g1".into()),
        env: "default".into(),
        claims: None,
        single_use: false,
    };
    (value.expose().to_owned(), rec)
}

pub async fn clients_round_trip(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    assert_eq!(s.get_client(&c.client_id).await.unwrap(), Some(c.clone()));
    assert!(matches!(
        s.insert_client(&c).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.list_clients().await.unwrap(), vec![c.clone()]);
    assert!(s.delete_client(&c.client_id, 2_000).await.unwrap());
    assert!(!s.delete_client(&c.client_id, 2_000).await.unwrap());
    assert_eq!(s.get_client(&c.client_id).await.unwrap(), None);
}

pub async fn a_registration_token_hash_is_set_replaced_and_goes_with_its_client(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    assert_eq!(s.registration_token(&c.client_id).await.unwrap(), None);
    let h1 = SecretHash::of("rat1");
    assert!(s
        .set_registration_token(&c.client_id, Some(&h1), 1_100)
        .await
        .unwrap());
    assert_eq!(s.registration_token(&c.client_id).await.unwrap(), Some(h1));
    let h2 = SecretHash::of("rat2");
    assert!(s
        .set_registration_token(&c.client_id, Some(&h2), 1_200)
        .await
        .unwrap());
    assert_eq!(
        s.registration_token(&c.client_id).await.unwrap(),
        Some(h2.clone())
    );
    // The client itself is unchanged by it.
    assert_eq!(s.get_client(&c.client_id).await.unwrap(), Some(c.clone()));
    assert!(!s
        .set_registration_token("nobody", Some(&h2), 1_200)
        .await
        .unwrap());
    assert_eq!(s.registration_token("nobody").await.unwrap(), None);
    assert!(s
        .set_registration_token(&c.client_id, None, 1_300)
        .await
        .unwrap());
    assert_eq!(s.registration_token(&c.client_id).await.unwrap(), None);
    s.set_registration_token(&c.client_id, Some(&h2), 1_400)
        .await
        .unwrap();
    assert!(s.delete_client(&c.client_id, 1_500).await.unwrap());
    assert_eq!(s.registration_token(&c.client_id).await.unwrap(), None);
}

pub async fn rotation_without_overlap_bumps_the_epoch(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    assert!(s
        .rotate_client_secret(&c.client_id, &SecretHash::of("s2"), None, 2_000)
        .await
        .unwrap());
    let after = s.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(after.token_epoch, 1);
    assert_eq!(after.secret_hash, Some(SecretHash::of("s2")));
    assert_eq!(after.old_secret_hash, None);
    assert!(!s
        .rotate_client_secret("nobody", &SecretHash::of("x"), None, 2_000)
        .await
        .unwrap());
}

pub async fn updating_a_client_changes_its_registration_but_not_its_secret(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    let before = s.latest_change().await.unwrap();
    let changed = ClientRecord {
        name: "renamed".into(),
        grant_types: vec![
            "client_credentials".into(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
        ],
        scopes: ScopeSet::parse("read").unwrap(),
        audiences: vec!["https://a.example".into(), "https://b.example".into()],
        access_token_format: TokenFormat::Jwt,
        access_token_ttl: 60,
        // Fields update must leave alone:
        secret_hash: Some(SecretHash::of("other")),
        token_epoch: 9,
        ..c.clone()
    };
    assert!(s.update_client(&changed, 1_100).await.unwrap());
    let got = s.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(got.name, "renamed");
    assert_eq!(got.grant_types, changed.grant_types);
    assert_eq!(got.scopes, changed.scopes);
    assert_eq!(got.audiences, changed.audiences);
    assert_eq!(got.access_token_format, TokenFormat::Jwt);
    assert_eq!(got.access_token_ttl, 60);
    assert_eq!(got.secret_hash, c.secret_hash);
    assert_eq!(got.token_epoch, 0);
    assert_eq!(s.changes_since(before, 10).await.unwrap().len(), 1);
    let ghost = ClientRecord {
        client_id: "nobody".into(),
        ..c
    };
    assert!(!s.update_client(&ghost, 1_100).await.unwrap());
}

pub async fn revoking_a_clients_tokens_bumps_its_epoch_only(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    assert!(s.revoke_client_tokens(&c.client_id, 1_100).await.unwrap());
    let got = s.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(got.token_epoch, 1);
    assert_eq!(got.secret_hash, c.secret_hash);
    assert!(!s.revoke_client_tokens("nobody", 1_100).await.unwrap());
}

pub async fn client_keys_are_replaced_and_the_change_is_logged(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    let before = s.latest_change().await.unwrap();
    assert!(s
        .set_client_keys(&c.client_id, "{\"keys\":[]}", 1_100)
        .await
        .unwrap());
    assert_eq!(
        s.get_client(&c.client_id)
            .await
            .unwrap()
            .unwrap()
            .jwks
            .as_deref(),
        Some("{\"keys\":[]}")
    );
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].key, c.client_id);
    assert!(!s.set_client_keys("nobody", "{}", 1_100).await.unwrap());
}

pub async fn rotation_with_overlap_keeps_the_old_secret_and_tokens(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    let (_, t) = token(&c.client_id, 10_000);
    s.insert_token(&t).await.unwrap();
    s.rotate_client_secret(&c.client_id, &SecretHash::of("s2"), Some(5_000), 2_000)
        .await
        .unwrap();
    let after = s.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(after.token_epoch, 0);
    assert_eq!(after.old_secret_hash, Some(SecretHash::of("s1")));
    assert_eq!(after.old_secret_expires_at, Some(5_000));
    assert_eq!(
        s.get_token(&t.token_id).await.unwrap().unwrap().revoked_at,
        None
    );
}

pub async fn tokens_are_found_by_id_and_revoked_only_by_their_client(s: &dyn Store) {
    let (_, t) = token("c1", 10_000);
    s.insert_token(&t).await.unwrap();
    assert_eq!(s.get_token(&t.token_id).await.unwrap(), Some(t.clone()));
    assert_eq!(s.get_token("nope").await.unwrap(), None);
    assert!(!s.revoke_token(&t.token_id, "c2", 2_000).await.unwrap());
    assert!(s.revoke_token(&t.token_id, "c1", 2_000).await.unwrap());
    assert!(!s.revoke_token(&t.token_id, "c1", 2_001).await.unwrap());
    assert_eq!(
        s.get_token(&t.token_id).await.unwrap().unwrap().revoked_at,
        Some(2_000)
    );
}

pub async fn concurrent_token_inserts_are_all_stored(s: &dyn Store) {
    let tokens: Vec<TokenRecord> = (0..200).map(|_| token("c1", 10_000).1).collect();
    let results = futures_join_all(tokens.iter().map(|t| s.insert_token(t))).await;
    assert!(results.iter().all(Result::is_ok));
    for t in &tokens {
        assert!(s.get_token(&t.token_id).await.unwrap().is_some());
    }
}

/// Runs two futures at once, so the core needs no futures dependency.
async fn futures_join2<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

/// A tiny join_all, so the core needs no futures dependency.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

pub async fn revoked_jtis_are_idempotent_and_expire(s: &dyn Store) {
    s.revoke_jti("j1", "c1", 5_000, 1_000).await.unwrap();
    s.revoke_jti("j1", "c1", 5_000, 1_001).await.unwrap();
    s.revoke_jti("j2", "c1", 1_500, 1_000).await.unwrap();
    assert!(s.is_jti_revoked("j1").await.unwrap());
    assert!(!s.is_jti_revoked("j3").await.unwrap());
    let mut live = s.revoked_jtis(2_000).await.unwrap();
    live.sort();
    assert_eq!(live, vec!["j1".to_owned()]);
}

pub async fn revoked_jtis_are_listed_a_page_at_a_time(s: &dyn Store) {
    for i in 0..25 {
        let expires_at = if i % 5 == 0 { 1_500 } else { 5_000 };
        s.revoke_jti(&format!("p{i:02}"), "c1", expires_at, 1_000)
            .await
            .unwrap();
    }
    let mut pages = Vec::new();
    let mut after = String::new();
    loop {
        let page = s.revoked_jtis_after(2_000, &after, 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.clone();
        pages.push(page);
    }
    assert_eq!(pages.len(), 3, "20 unexpired ids in pages of 7");
    let all: Vec<String> = pages.concat();
    let expected: Vec<String> = (0..25)
        .filter(|i| i % 5 != 0)
        .map(|i| format!("p{i:02}"))
        .collect();
    assert_eq!(all, expected, "every unexpired id once, in order");
}

pub async fn keys_round_trip_and_retire(s: &dyn Store) {
    let k = KeyRecord {
        kid: "k1".into(),
        alg: "ES256".into(),
        private_sealed: vec![1, 2, 3, 0, 255],
        public_jwk: "{}".into(),
        created_at: 1_000,
        activates_at: 1_000,
        retires_at: None,
        sealed_by: Some("fp-a".into()),
    };
    assert!(s.insert_key(&k).await.unwrap());
    s.retire_key("k1", 9_000).await.unwrap();
    assert!(s
        .reseal_keys(&[("k1".to_owned(), vec![9, 9])], "fp-b", 9_100)
        .await
        .unwrap());
    let keys = s.list_keys().await.unwrap();
    assert_eq!(
        keys,
        vec![KeyRecord {
            retires_at: Some(9_000),
            private_sealed: vec![9, 9],
            sealed_by: Some("fp-b".into()),
            ..k
        }]
    );
}

fn sealed_key(kid: &str, sealed_by: Option<&str>) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        private_sealed: kid.as_bytes().to_vec(),
        public_jwk: "{}".into(),
        created_at: 1_000,
        activates_at: 1_000,
        retires_at: None,
        sealed_by: sealed_by.map(str::to_owned),
    }
}

/// A key is stored only while every stored key names the same sealing secret (keys from
/// before fingerprints were recorded do not count); a re-sealing covers every stored key or
/// changes nothing, and is announced on the change feed.
pub async fn keys_are_stored_only_under_the_secret_of_the_stored_keys(s: &dyn Store) {
    assert!(s.insert_key(&sealed_key("legacy", None)).await.unwrap());
    assert!(s.insert_key(&sealed_key("a1", Some("fp-a"))).await.unwrap());
    let before = s.latest_change().await.unwrap();
    assert!(
        !s.insert_key(&sealed_key("b1", Some("fp-b"))).await.unwrap(),
        "a key sealed under another secret than the stored ones is refused"
    );
    assert_eq!(s.changes_since(before, 10).await.unwrap(), vec![]);
    assert!(s.insert_key(&sealed_key("a2", Some("fp-a"))).await.unwrap());
    let kids = |keys: Vec<KeyRecord>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    let mut stored = kids(s.list_keys().await.unwrap());
    stored.sort();
    assert_eq!(stored, ["a1", "a2", "legacy"]);

    // A re-sealing that misses a stored key changes nothing.
    let partial = [("legacy".to_owned(), vec![1]), ("a1".to_owned(), vec![2])];
    assert!(!s.reseal_keys(&partial, "fp-b", 2_000).await.unwrap());
    assert!(s
        .list_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.sealed_by.as_deref() != Some("fp-b") && k.private_sealed == k.kid.as_bytes()));

    let before = s.latest_change().await.unwrap();
    let all = [
        ("legacy".to_owned(), vec![1]),
        ("a1".to_owned(), vec![2]),
        ("a2".to_owned(), vec![3]),
    ];
    assert!(s.reseal_keys(&all, "fp-b", 2_000).await.unwrap());
    let changes = s.changes_since(before, 10).await.unwrap();
    assert!(
        changes.iter().any(|c| c.kind == ChangeKind::Keys),
        "running servers learn of the re-sealing: {changes:?}"
    );
    assert!(s
        .list_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.sealed_by.as_deref() == Some("fp-b")));
    assert!(
        !s.insert_key(&sealed_key("a3", Some("fp-a"))).await.unwrap(),
        "the old secret can no longer add keys"
    );
    assert!(s.insert_key(&sealed_key("b2", Some("fp-b"))).await.unwrap());
}

/// Keys added under the old secret while the keys are re-sealed under a new one: whatever the
/// order, no key is left sealed under the old secret once the re-sealing succeeded.
pub async fn concurrent_key_inserts_and_a_reseal_leave_no_key_under_the_old_secret(s: &dyn Store) {
    assert!(s
        .insert_key(&sealed_key("first", Some("old")))
        .await
        .unwrap());
    let reseal = async {
        for _ in 0..100 {
            let keys = s.list_keys().await.unwrap();
            let sealed: Vec<(String, Vec<u8>)> =
                keys.iter().map(|k| (k.kid.clone(), vec![7])).collect();
            if s.reseal_keys(&sealed, "new", 2_000).await.unwrap() {
                return true;
            }
        }
        false
    };
    let inserts = futures_join_all((0..30).map(|i| async move {
        s.insert_key(&sealed_key(&format!("k{i}"), Some("old")))
            .await
    }));
    let (resealed, inserted) = futures_join2(reseal, inserts).await;
    assert!(resealed, "the re-sealing went through");
    assert!(inserted.iter().all(Result::is_ok));
    let keys = s.list_keys().await.unwrap();
    let under_old: Vec<&str> = keys
        .iter()
        .filter(|k| k.sealed_by.as_deref() != Some("new"))
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(
        under_old,
        Vec::<&str>::new(),
        "keys left under the old secret"
    );
    let accepted = inserted.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(keys.len(), accepted + 1);
}

pub async fn every_shared_write_appears_in_the_change_feed(s: &dyn Store) {
    let start = s.latest_change().await.unwrap();
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    s.rotate_client_secret(&c.client_id, &SecretHash::of("s2"), None, 1_100)
        .await
        .unwrap();
    let (_, t) = token(&c.client_id, 10_000);
    s.insert_token(&t).await.unwrap();
    s.revoke_token(&t.token_id, &c.client_id, 1_200)
        .await
        .unwrap();
    s.revoke_jti("j9", &c.client_id, 10_000, 1_300)
        .await
        .unwrap();
    s.delete_client(&c.client_id, 1_400).await.unwrap();
    let changes = s.changes_since(start, 100).await.unwrap();
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Client,
            ChangeKind::Client,
            ChangeKind::Token,
            ChangeKind::Jti,
            ChangeKind::Client
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(changes[2].key, t.token_id);
    assert_eq!(s.changes_since(start, 2).await.unwrap().len(), 2);
    assert_eq!(s.latest_change().await.unwrap(), changes[4].seq);
}

/// The feed is purged as a prefix, behind a horizon that readers can check (the default
/// retention of one hour is assumed).
pub async fn the_feed_horizon_follows_the_purge(s: &dyn Store) {
    let start = s.latest_change().await.unwrap();
    let h0 = s.feed_horizon().await.unwrap();
    assert!(h0 <= start);
    s.revoke_jti("old1", "c1", 99_000, 1_000).await.unwrap();
    s.revoke_jti("old2", "c1", 99_000, 1_000).await.unwrap();
    let old_end = s.latest_change().await.unwrap();
    s.revoke_jti("new", "c1", 99_000, 50_000).await.unwrap();
    let end = s.latest_change().await.unwrap();
    assert_eq!(end, old_end + 1);
    // Nothing is older than the retention yet.
    assert_eq!(s.purge_expired(1_000).await.unwrap().changes, 0);
    assert_eq!(s.feed_horizon().await.unwrap(), h0);
    // The two old entries (and any before them) go; the horizon says so.
    assert!(s.purge_expired(5_000).await.unwrap().changes >= 2);
    assert_eq!(s.feed_horizon().await.unwrap(), old_end);
    let rest = s.changes_since(start, 100).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].seq, rest[0].key.as_str()), (end, "new"));
    // With everything purged, the position is kept and new entries follow it.
    s.purge_expired(60_000).await.unwrap();
    assert_eq!(s.feed_horizon().await.unwrap(), end);
    assert_eq!(s.latest_change().await.unwrap(), end);
    assert!(s.changes_since(start, 100).await.unwrap().is_empty());
    s.revoke_jti("later", "c1", 99_000, 60_000).await.unwrap();
    let later = s.changes_since(end, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert!(later[0].seq > end);
    assert_eq!(s.latest_change().await.unwrap(), later[0].seq);
    assert_eq!(
        s.feed_horizon().await.unwrap(),
        end,
        "the horizon never goes back"
    );
}

pub async fn purge_removes_only_what_expired(s: &dyn Store) {
    let (_, old) = token("c1", 1_500);
    let (_, live) = token("c1", 9_000);
    s.insert_token(&old).await.unwrap();
    s.insert_token(&live).await.unwrap();
    s.revoke_jti("old", "c1", 1_500, 1_000).await.unwrap();
    s.revoke_jti("live", "c1", 9_000, 1_000).await.unwrap();
    let r = s.purge_expired(2_000).await.unwrap();
    assert_eq!((r.tokens, r.revoked_jtis), (1, 1));
    assert!(s.get_token(&old.token_id).await.unwrap().is_none());
    assert!(s.get_token(&live.token_id).await.unwrap().is_some());
    assert!(s.is_jti_revoked("live").await.unwrap());
    assert!(!s.is_jti_revoked("old").await.unwrap());
    s.ping().await.unwrap();
}

pub async fn an_assertion_id_is_used_once_until_it_is_purged(s: &dyn Store) {
    assert!(s.use_once("c1:j1", 1_500).await.unwrap());
    assert!(!s.use_once("c1:j1", 1_500).await.unwrap());
    assert!(s.use_once("c2:j1", 1_500).await.unwrap());
    let r = s.purge_expired(2_000).await.unwrap();
    assert_eq!(r.used_jtis, 2);
    assert!(s.use_once("c1:j1", 3_000).await.unwrap());
}

pub async fn a_use_is_seen_without_using_and_only_once_made(s: &dyn Store) {
    assert!(!s.was_used("c1:look").await.unwrap());
    // Looking does not use: the first use still wins.
    assert!(!s.was_used("c1:look").await.unwrap());
    assert!(s.use_once("c1:look", 1_500).await.unwrap());
    assert!(s.was_used("c1:look").await.unwrap());
    assert!(!s.was_used("c2:look").await.unwrap());
    assert!(!s.use_once("c1:look", 1_500).await.unwrap());
    s.purge_expired(2_000).await.unwrap();
    assert!(!s.was_used("c1:look").await.unwrap());
}

pub async fn concurrent_uses_of_one_assertion_id_have_one_winner(s: &dyn Store) {
    let results = futures_join_all((0..50).map(|_| s.use_once("c1:race", 9_000))).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(wins, 1);
    assert!(results.iter().all(Result::is_ok));
}

/// Concurrent uses of many keys at once, as a store batching its writes would gather them:
/// every distinct key is first once, a key named by many callers has one winner, and each key
/// is refused afterwards.
pub async fn concurrent_uses_of_many_assertion_ids_each_have_one_winner(s: &dyn Store) {
    let distinct: Vec<String> = (0..200).map(|i| format!("c1:many-{i}")).collect();
    let calls = distinct
        .iter()
        .map(String::as_str)
        .chain(std::iter::repeat_n("c1:shared", 100))
        .chain(distinct.iter().take(50).map(String::as_str));
    let results = futures_join_all(
        calls.map(|key| async move { (key, s.use_once(key, 9_000).await.unwrap()) }),
    )
    .await;
    for key in &distinct {
        let wins = results
            .iter()
            .filter(|(k, first)| k == key && *first)
            .count();
        assert_eq!(wins, 1, "{key}");
    }
    let shared = results
        .iter()
        .filter(|(k, first)| *k == "c1:shared" && *first)
        .count();
    assert_eq!(shared, 1);
    // Only the keys named once were all first.
    assert!(results.iter().skip(50).take(150).all(|(_, first)| *first));
    for key in distinct.iter().map(String::as_str).chain(["c1:shared"]) {
        assert!(!s.use_once(key, 9_000).await.unwrap(), "{key} used again");
        assert!(s.was_used(key).await.unwrap(), "{key}");
    }
}

pub async fn a_throttle_budget_holds_limit_attempts_per_window(s: &dyn Store) {
    use crate::store::Attempt;
    for n in 1..=3 {
        assert_eq!(
            s.take_attempt("k1", 3, 60, 1_000).await.unwrap(),
            Attempt::Taken(n)
        );
    }
    // Spent: refused until the window's end, and a refusal does not move that end.
    assert_eq!(
        s.take_attempt("k1", 3, 60, 1_030).await.unwrap(),
        Attempt::Refused { until: 1_060 }
    );
    assert_eq!(
        s.take_attempt("k1", 3, 60, 1_059).await.unwrap(),
        Attempt::Refused { until: 1_060 }
    );
    // Another key has a budget of its own.
    assert_eq!(
        s.take_attempt("k2", 3, 60, 1_030).await.unwrap(),
        Attempt::Taken(1)
    );
    // A returned attempt can be taken again; returns never go below zero.
    s.return_attempt("k1", 1_040).await.unwrap();
    assert_eq!(
        s.take_attempt("k1", 3, 60, 1_041).await.unwrap(),
        Attempt::Taken(3)
    );
    for _ in 0..5 {
        s.return_attempt("k2", 1_042).await.unwrap();
    }
    s.return_attempt("never-taken", 1_042).await.unwrap();
    assert_eq!(
        s.take_attempt("k2", 3, 60, 1_043).await.unwrap(),
        Attempt::Taken(1)
    );
    // The window ends: the budget is full again, with a new window.
    assert_eq!(
        s.take_attempt("k1", 3, 60, 1_060).await.unwrap(),
        Attempt::Taken(1)
    );
    assert_eq!(
        s.take_attempt("k1", 3, 60, 1_061).await.unwrap(),
        Attempt::Taken(2)
    );
}

pub async fn concurrent_attempts_take_exactly_the_budget(s: &dyn Store) {
    use crate::store::Attempt;
    let results =
        futures_join_all((0..40).map(|_| s.take_attempt("signin:race", 5, 300, 1_000))).await;
    let taken: Vec<u32> = results
        .iter()
        .filter_map(|r| match r.as_ref().unwrap() {
            Attempt::Taken(n) => Some(*n),
            Attempt::Refused { until } => {
                assert_eq!(*until, 1_300);
                None
            }
        })
        .collect();
    let mut sorted = taken.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![1, 2, 3, 4, 5]);
}

pub async fn a_spent_budget_stays_spent_however_many_others_are_tracked(s: &dyn Store) {
    use crate::store::Attempt;
    for _ in 0..2 {
        s.take_attempt("blocked", 2, 300, 1_000).await.unwrap();
    }
    // Many other budgets, some already ended: nothing but the end of a window frees one.
    for i in 0..600 {
        s.take_attempt(
            &format!("other:{i}"),
            2,
            if i % 2 == 0 { 10 } else { 300 },
            1_000,
        )
        .await
        .unwrap();
    }
    let r = s.purge_expired(1_100).await.unwrap();
    assert_eq!(r.throttle, 300);
    assert_eq!(
        s.take_attempt("blocked", 2, 300, 1_100).await.unwrap(),
        Attempt::Refused { until: 1_300 }
    );
    assert_eq!(
        s.take_attempt("other:1", 2, 300, 1_100).await.unwrap(),
        Attempt::Taken(2)
    );
    let r = s.purge_expired(1_300).await.unwrap();
    assert_eq!(r.throttle, 301);
    assert_eq!(
        s.take_attempt("blocked", 2, 300, 1_300).await.unwrap(),
        Attempt::Taken(1)
    );
}

/// A user named `name`.
pub fn user(name: &str) -> UserRecord {
    UserRecord {
        user_id: generate_id(),
        username: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        email: Some(format!("{name}@example.com")),
        name: Some(format!("User {name}")),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

/// A code of `user_id` for client `c1`, expiring at `exp`.
pub fn code(value: &str, user_id: &str, exp: i64) -> CodeRecord {
    CodeRecord {
        code_hash: SecretHash::of(value),
        client_id: "c1".into(),
        user_id: user_id.into(),
        redirect_uri: "https://app.example.com/cb".into(),
        scope: "openid offline_access".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some("S256".into()),
        auth_time: 900,
        grant_id: "g1".into(),
        sid: Some("sid-1".into()),
        extra: r#"{"productId":"p1"}"#.into(),
        issued_at: 1_000,
        expires_at: exp,
    }
}

/// A grant of `user_id` for client `c1`.
pub fn grant(grant_id: &str, user_id: &str, exp: i64) -> GrantRecord {
    GrantRecord {
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        user_id: user_id.into(),
        scope: "openid offline_access".into(),
        auth_time: 900,
        nonce: None,
        token_epoch: 3,
        created_at: 1_000,
        refresh_expires_at: exp,
        expires_at: exp,
        revoked_at: None,
        claims: Some(r#"{"productId":"p-1"}"#.into()),
        sid: Some("sid-1".into()),
        dpop_jkt: Some("jkt-1".into()),
        x5t_s256: Some("x5t-1".into()),
    }
}

/// A refresh token of `grant_id`, expiring at `exp`.
pub fn refresh(grant_id: &str, exp: i64) -> RefreshRecord {
    let (value, token_id) = crate::opaque::mint(exp);
    RefreshRecord {
        token_id,
        token_hash: value.hash(),
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        scope: "openid offline_access".into(),
        issued_at: 1_000,
        expires_at: exp,
        used_at: None,
        successor_sealed: None,
    }
}

pub async fn users_round_trip_with_unique_usernames(s: &dyn Store) {
    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.get_user(&u.user_id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.find_user("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(s.find_user("Alice").await.unwrap(), None);
    let mut twin = user("alice");
    twin.user_id = generate_id();
    assert!(matches!(
        s.insert_user(&twin).await,
        Err(StoreError::Conflict)
    ));
    let bob = user("bob");
    s.insert_user(&bob).await.unwrap();
    assert_eq!(s.list_users().await.unwrap().len(), 2);
}

pub async fn stored_usernames_move_to_their_prepared_form(s: &dyn Store) {
    // Users stored before usernames were prepared (RFC 8265).
    let upper = user("Carol");
    s.insert_user(&upper).await.unwrap();
    let taken = user("Alice");
    s.insert_user(&taken).await.unwrap();
    let alice = user("alice");
    s.insert_user(&alice).await.unwrap();
    let hidden = user("dave\u{200B}");
    s.insert_user(&hidden).await.unwrap();
    assert!(matches!(
        s.rename_user(&upper.user_id, "alice").await,
        Err(StoreError::Conflict)
    ));
    assert!(!s.rename_user("nobody", "x").await.unwrap());
    let mut left = crate::username::prepare_stored(s).await.unwrap();
    left.sort();
    let mut expected = vec![taken.user_id.clone(), hidden.user_id.clone()];
    expected.sort();
    assert_eq!(left, expected, "a taken or unpreparable name stays");
    let carol = s.find_user("carol").await.unwrap().unwrap();
    assert_eq!(carol.user_id, upper.user_id);
    assert_eq!(carol.password_hash, upper.password_hash);
    assert_eq!(s.find_user("Carol").await.unwrap(), None);
    assert_eq!(
        s.find_user("alice").await.unwrap().unwrap().user_id,
        alice.user_id
    );
    assert_eq!(
        s.find_user("Alice").await.unwrap().unwrap().user_id,
        taken.user_id
    );
    // Done once: nothing moves the second time.
    assert_eq!(crate::username::prepare_stored(s).await.unwrap().len(), 2);
}

pub async fn sessions_end_with_a_password_change(s: &dyn Store) {
    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    let sess = SessionRecord {
        session_hash: SecretHash::of("cookie"),
        user_id: u.user_id.clone(),
        auth_time: 1_000,
        expires_at: 5_000,
    };
    s.insert_session(&sess).await.unwrap();
    assert_eq!(
        s.get_session(&sess.session_hash).await.unwrap(),
        Some(sess.clone())
    );
    assert!(s
        .set_password(&u.user_id, "$argon2id$new", 2_000)
        .await
        .unwrap());
    assert_eq!(s.get_session(&sess.session_hash).await.unwrap(), None);
    assert_eq!(
        s.get_user(&u.user_id).await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    s.insert_session(&sess).await.unwrap();
    assert!(s.delete_session(&sess.session_hash).await.unwrap());
    assert!(!s.delete_session(&sess.session_hash).await.unwrap());
    assert!(!s.set_password("nobody", "x", 2_000).await.unwrap());
}

pub async fn consents_are_per_user_and_client_and_replaced(s: &dyn Store) {
    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.get_consent(&u.user_id, "c1").await.unwrap(), None);
    s.put_consent(&u.user_id, "c1", "openid", 1_000)
        .await
        .unwrap();
    s.put_consent(&u.user_id, "c1", "openid email", 1_001)
        .await
        .unwrap();
    assert_eq!(
        s.get_consent(&u.user_id, "c1").await.unwrap().as_deref(),
        Some("openid email")
    );
    assert_eq!(s.get_consent(&u.user_id, "c2").await.unwrap(), None);
}

pub async fn deleting_a_user_ends_everything_of_theirs(s: &dyn Store) {
    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    s.insert_session(&SessionRecord {
        session_hash: SecretHash::of("cookie"),
        user_id: u.user_id.clone(),
        auth_time: 1_000,
        expires_at: 5_000,
    })
    .await
    .unwrap();
    s.put_consent(&u.user_id, "c1", "openid", 1_000)
        .await
        .unwrap();
    s.insert_grant(&grant("g1", &u.user_id, 9_000), None)
        .await
        .unwrap();
    let start = s.latest_change().await.unwrap();
    assert!(s.delete_user(&u.user_id, 2_000).await.unwrap());
    assert!(!s.delete_user(&u.user_id, 2_000).await.unwrap());
    assert_eq!(s.get_user(&u.user_id).await.unwrap(), None);
    assert_eq!(
        s.get_session(&SecretHash::of("cookie")).await.unwrap(),
        None
    );
    assert_eq!(s.get_consent(&u.user_id, "c1").await.unwrap(), None);
    assert_eq!(
        s.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(2_000)
    );
    let changes = s.changes_since(start, 10).await.unwrap();
    assert!(changes
        .iter()
        .any(|c| c.kind == ChangeKind::Grant && c.key == "g1"));
}

pub async fn a_code_is_spent_once(s: &dyn Store) {
    let c = code("code-1", "u1", 1_120);
    s.insert_code(&c).await.unwrap();
    assert_eq!(
        s.use_code(&c.code_hash, 1_010).await.unwrap(),
        CodeUse::Fresh(c.clone())
    );
    assert_eq!(
        s.use_code(&c.code_hash, 1_011).await.unwrap(),
        CodeUse::Replayed(c.clone())
    );
    assert_eq!(
        s.use_code(&SecretHash::of("other"), 1_011).await.unwrap(),
        CodeUse::Unknown
    );
}

pub async fn concurrent_uses_of_one_code_have_one_winner(s: &dyn Store) {
    let c = code("code-race", "u1", 9_000);
    s.insert_code(&c).await.unwrap();
    let results = futures_join_all((0..20).map(|_| s.use_code(&c.code_hash, 1_010))).await;
    let fresh = results
        .iter()
        .filter(|r| matches!(r, Ok(CodeUse::Fresh(_))))
        .count();
    let replayed = results
        .iter()
        .filter(|r| matches!(r, Ok(CodeUse::Replayed(_))))
        .count();
    assert_eq!((fresh, replayed), (1, 19));
}

/// A pending device authorization with a 5 s interval, expiring at `exp`.
pub fn device(device_code: &str, user_code: &str, exp: i64) -> DeviceCodeRecord {
    DeviceCodeRecord {
        device_code_hash: SecretHash::of(device_code),
        user_code: user_code.into(),
        client_id: "tv".into(),
        scope: "openid read".into(),
        issued_at: 1_000,
        expires_at: exp,
        interval: 5,
        last_poll_at: None,
        status: DeviceStatus::Pending,
        user_id: None,
        auth_time: None,
    }
}

fn approval() -> DeviceApproval {
    DeviceApproval {
        user_id: "u1".into(),
        scope: "openid".into(),
        auth_time: 1_005,
    }
}

pub async fn device_codes_are_found_by_user_code_and_unique(s: &dyn Store) {
    let d = device("dc-1", "WDJBMJHT", 1_600);
    s.insert_device_code(&d).await.unwrap();
    assert_eq!(s.find_device_user_code("WDJBMJHT").await.unwrap(), Some(d));
    assert_eq!(s.find_device_user_code("BCDFGHJK").await.unwrap(), None);
    assert!(matches!(
        s.insert_device_code(&device("dc-2", "WDJBMJHT", 1_600))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.insert_device_code(&device("dc-1", "BCDFGHJK", 1_600))
            .await,
        Err(StoreError::Conflict)
    ));
}

pub async fn a_device_code_is_decided_once_while_pending(s: &dyn Store) {
    s.insert_device_code(&device("dc-1", "WDJBMJHT", 1_600))
        .await
        .unwrap();
    assert!(s
        .decide_device_code("WDJBMJHT", Some(&approval()), 1_010)
        .await
        .unwrap());
    // Decided: neither a second approval nor a denial changes it.
    assert!(!s.decide_device_code("WDJBMJHT", None, 1_011).await.unwrap());
    let got = s.find_device_user_code("WDJBMJHT").await.unwrap().unwrap();
    assert_eq!(got.status, DeviceStatus::Approved);
    assert_eq!(got.user_id.as_deref(), Some("u1"));
    assert_eq!(got.scope, "openid");
    assert_eq!(got.auth_time, Some(1_005));
    // An expired one cannot be decided; an unknown one neither.
    s.insert_device_code(&device("dc-2", "BCDFGHJK", 1_600))
        .await
        .unwrap();
    assert!(!s.decide_device_code("BCDFGHJK", None, 1_600).await.unwrap());
    assert!(!s.decide_device_code("ZZZZZZZZ", None, 1_010).await.unwrap());
    assert!(s.decide_device_code("BCDFGHJK", None, 1_599).await.unwrap());
    let denied = s.find_device_user_code("BCDFGHJK").await.unwrap().unwrap();
    assert_eq!(denied.status, DeviceStatus::Denied);
    assert_eq!(denied.user_id, None);
    assert_eq!(denied.scope, "openid read");
}

pub async fn device_polls_answer_pending_slow_down_and_issue_once(s: &dyn Store) {
    let d = device("dc-1", "WDJBMJHT", 1_600);
    s.insert_device_code(&d).await.unwrap();
    let h = &d.device_code_hash;
    assert_eq!(
        s.poll_device_code(h, "tv", 1_010, 5).await.unwrap(),
        DevicePoll::Pending
    );
    // 4 s later is too soon: slow_down, and the interval grows by 5 s.
    assert_eq!(
        s.poll_device_code(h, "tv", 1_014, 5).await.unwrap(),
        DevicePoll::SlowDown { interval: 10 }
    );
    // Measured from the last poll, with the raised interval.
    assert_eq!(
        s.poll_device_code(h, "tv", 1_023, 5).await.unwrap(),
        DevicePoll::SlowDown { interval: 15 }
    );
    assert_eq!(
        s.poll_device_code(h, "tv", 1_038, 5).await.unwrap(),
        DevicePoll::Pending
    );
    s.decide_device_code("WDJBMJHT", Some(&approval()), 1_040)
        .await
        .unwrap();
    // Too soon even though approved: no tokens yet, and the code stays approved.
    assert_eq!(
        s.poll_device_code(h, "tv", 1_040, 5).await.unwrap(),
        DevicePoll::SlowDown { interval: 20 }
    );
    let DevicePoll::Issued(issued) = s.poll_device_code(h, "tv", 1_060, 5).await.unwrap() else {
        panic!("an approved device code polled in time is issued");
    };
    assert_eq!(issued.status, DeviceStatus::Used);
    assert_eq!(issued.user_id.as_deref(), Some("u1"));
    assert_eq!(issued.scope, "openid");
    assert_eq!(issued.client_id, "tv");
    assert_eq!(
        s.poll_device_code(h, "tv", 1_080, 5).await.unwrap(),
        DevicePoll::Used
    );
    // Another client's poll finds nothing and spends nothing.
    let d2 = device("dc-2", "BCDFGHJK", 1_600);
    s.insert_device_code(&d2).await.unwrap();
    s.decide_device_code("BCDFGHJK", Some(&approval()), 1_040)
        .await
        .unwrap();
    assert_eq!(
        s.poll_device_code(&d2.device_code_hash, "other-client", 1_080, 5)
            .await
            .unwrap(),
        DevicePoll::Unknown
    );
    assert!(matches!(
        s.poll_device_code(&d2.device_code_hash, "tv", 1_080, 5)
            .await
            .unwrap(),
        DevicePoll::Issued(_)
    ));
    assert_eq!(
        s.poll_device_code(&SecretHash::of("other"), "tv", 1_080, 5)
            .await
            .unwrap(),
        DevicePoll::Unknown
    );
}

pub async fn denied_and_expired_device_codes_are_told_apart(s: &dyn Store) {
    let d = device("dc-1", "WDJBMJHT", 1_600);
    s.insert_device_code(&d).await.unwrap();
    s.decide_device_code("WDJBMJHT", None, 1_010).await.unwrap();
    let h = &d.device_code_hash;
    assert_eq!(
        s.poll_device_code(h, "tv", 1_020, 5).await.unwrap(),
        DevicePoll::Denied
    );
    assert_eq!(
        s.poll_device_code(h, "tv", 1_600, 5).await.unwrap(),
        DevicePoll::Expired
    );
    // An expired poll records nothing.
    let after = s.find_device_user_code("WDJBMJHT").await.unwrap().unwrap();
    assert_eq!((after.last_poll_at, after.interval), (Some(1_020), 5));
}

pub async fn concurrent_polls_of_an_approved_device_code_have_one_winner(s: &dyn Store) {
    let d = device("dc-race", "WDJBMJHT", 9_000);
    s.insert_device_code(&d).await.unwrap();
    s.decide_device_code("WDJBMJHT", Some(&approval()), 1_010)
        .await
        .unwrap();
    let results =
        futures_join_all((0..20).map(|_| s.poll_device_code(&d.device_code_hash, "tv", 1_020, 5)))
            .await;
    let issued = results
        .iter()
        .filter(|r| matches!(r, Ok(DevicePoll::Issued(_))))
        .count();
    let slowed = results
        .iter()
        .filter(|r| matches!(r, Ok(DevicePoll::SlowDown { .. })))
        .count();
    assert_eq!((issued, slowed), (1, 19));
}

pub async fn expired_device_codes_are_purged_and_free_their_user_code(s: &dyn Store) {
    s.insert_device_code(&device("dc-1", "WDJBMJHT", 1_600))
        .await
        .unwrap();
    s.insert_device_code(&device("dc-2", "BCDFGHJK", 1_700))
        .await
        .unwrap();
    assert_eq!(s.purge_expired(1_600).await.unwrap().device_codes, 1);
    assert_eq!(s.find_device_user_code("WDJBMJHT").await.unwrap(), None);
    assert!(s.find_device_user_code("BCDFGHJK").await.unwrap().is_some());
    s.insert_device_code(&device("dc-3", "WDJBMJHT", 2_200))
        .await
        .unwrap();
}

pub async fn grants_are_revoked_once_and_logged(s: &dyn Store) {
    let r = refresh("g1", 9_000);
    s.insert_grant(&grant("g1", "u1", 9_000), Some(&r))
        .await
        .unwrap();
    assert_eq!(
        s.get_grant("g1").await.unwrap(),
        Some(grant("g1", "u1", 9_000))
    );
    assert_eq!(
        s.get_refresh_token(&r.token_id).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(s.get_grant("nope").await.unwrap(), None);
    let start = s.latest_change().await.unwrap();
    assert!(s.revoke_grant("g1", 2_000).await.unwrap());
    assert!(!s.revoke_grant("g1", 2_001).await.unwrap());
    assert_eq!(
        s.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(2_000)
    );
    let changes = s.changes_since(start, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str()),
        (ChangeKind::Grant, "g1")
    );
}

/// A grant of `user_id` for `client_id`, created at `created_at`.
fn grant_to(grant_id: &str, user_id: &str, client_id: &str, created_at: i64) -> GrantRecord {
    GrantRecord {
        client_id: client_id.into(),
        created_at,
        claims: None,
        ..grant(grant_id, user_id, 9_000)
    }
}

/// The `Grant` changes logged after `start`, by key.
async fn grant_changes_since(s: &dyn Store, start: i64) -> Vec<String> {
    let mut keys: Vec<String> = s
        .changes_since(start, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Grant)
        .map(|c| c.key)
        .collect();
    keys.sort();
    keys
}

pub async fn a_users_consents_are_listed_by_client(s: &dyn Store) {
    let alice = user("alice");
    let bob = user("bob");
    s.insert_user(&alice).await.unwrap();
    s.insert_user(&bob).await.unwrap();
    assert_eq!(s.list_consents(&alice.user_id).await.unwrap(), vec![]);
    s.put_consent(&alice.user_id, "c2", "openid", 1_000)
        .await
        .unwrap();
    s.put_consent(&alice.user_id, "c1", "openid", 1_001)
        .await
        .unwrap();
    // A replaced consent keeps one row, with the new scope and time.
    s.put_consent(&alice.user_id, "c1", "openid email", 1_002)
        .await
        .unwrap();
    s.put_consent(&bob.user_id, "c1", "profile", 1_003)
        .await
        .unwrap();
    let consent = |client_id: &str, scope: &str, granted_at| ConsentRecord {
        user_id: alice.user_id.clone(),
        client_id: client_id.into(),
        scope: scope.into(),
        granted_at,
    };
    assert_eq!(
        s.list_consents(&alice.user_id).await.unwrap(),
        vec![
            consent("c1", "openid email", 1_002),
            consent("c2", "openid", 1_000)
        ]
    );
    assert_eq!(s.list_consents(&bob.user_id).await.unwrap().len(), 1);
    assert_eq!(s.list_consents("nobody").await.unwrap(), vec![]);
}

pub async fn a_users_grants_are_listed_oldest_first_live_and_revoked(s: &dyn Store) {
    let newer = grant_to("g-a", "u1", "c2", 1_500);
    let older = grant_to("g-b", "u1", "c1", 1_100);
    let same_time = grant_to("g-c", "u1", "c1", 1_500);
    for g in [
        &newer,
        &older,
        &same_time,
        &grant_to("g-d", "u2", "c1", 1_000),
    ] {
        s.insert_grant(g, None).await.unwrap();
    }
    assert!(s.revoke_grant("g-b", 2_000).await.unwrap());
    let listed = s.list_user_grants("u1").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids, ["g-b", "g-a", "g-c"]);
    assert_eq!(listed[0].revoked_at, Some(2_000));
    assert_eq!(listed[1], newer);
    assert_eq!(s.list_user_grants("nobody").await.unwrap(), vec![]);
}

pub async fn a_sessions_grants_are_the_clients_it_signed_into(s: &dyn Store) {
    let in_session = |id: &str, client: &str, at: i64, sid: Option<&str>| GrantRecord {
        sid: sid.map(str::to_owned),
        ..grant_to(id, "u1", client, at)
    };
    let second = in_session("g-a", "c2", 1_500, Some("s-1"));
    let first = in_session("g-b", "c1", 1_100, Some("s-1"));
    for g in [
        &second,
        &first,
        &in_session("g-c", "c1", 1_200, Some("s-2")),
        &in_session("g-d", "c3", 1_300, None),
    ] {
        s.insert_grant(g, None).await.unwrap();
    }
    assert!(s.revoke_grant("g-b", 2_000).await.unwrap());
    let listed = s.session_grants("s-1").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids, ["g-b", "g-a"]);
    assert_eq!(listed[0].revoked_at, Some(2_000));
    assert_eq!(listed[1], second);
    assert_eq!(s.session_grants("s-2").await.unwrap().len(), 1);
    assert_eq!(s.session_grants("nobody").await.unwrap(), vec![]);
}

pub async fn logout_deliveries_queue_retry_end_and_drop_the_oldest_past_the_bound(s: &dyn Store) {
    let row = |id: &str, created_at: i64, due: i64| LogoutDeliveryRecord {
        id: id.into(),
        client_id: "c1".into(),
        uri: "https://rp.example/bc".into(),
        sub: "u1".into(),
        sid: (id != "d3").then(|| "s1".to_owned()),
        attempts: 0,
        next_attempt_at: due,
        created_at,
    };
    let leased = |r: &LogoutDeliveryRecord, until: i64| LogoutDeliveryRecord {
        next_attempt_at: until,
        ..r.clone()
    };
    let (d1, d2, d3) = (
        row("d1", 1_000, 1_000),
        row("d2", 1_001, 1_005),
        row("d3", 1_002, 1_001),
    );
    assert_eq!(
        s.queue_logouts(&[d1.clone(), d2.clone()], 10)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.queue_logouts(std::slice::from_ref(&d3), 10)
            .await
            .unwrap(),
        0
    );
    // Earliest due first, within the limit; a claim leases what it returns.
    assert_eq!(
        s.claim_logouts(1_001, 1_030, 1).await.unwrap(),
        [leased(&d1, 1_030)]
    );
    assert_eq!(
        s.claim_logouts(1_001, 1_030, 10).await.unwrap(),
        [leased(&d3, 1_030)]
    );
    // Leased rows are not due again before their lease ends.
    assert_eq!(
        s.claim_logouts(1_010, 1_040, 10).await.unwrap(),
        [leased(&d2, 1_040)]
    );
    assert!(s.retry_logout("d1", 1, 1_020).await.unwrap());
    assert!(!s.retry_logout("nope", 1, 1_020).await.unwrap());
    let retried = s.claim_logouts(1_020, 1_050, 10).await.unwrap();
    assert_eq!(
        retried
            .iter()
            .map(|r| (r.id.as_str(), r.attempts, r.next_attempt_at))
            .collect::<Vec<_>>(),
        [("d1", 1, 1_050)]
    );
    // d3's claimer never came back: its lease ends and it is due again.
    assert_eq!(
        s.claim_logouts(1_030, 1_060, 10).await.unwrap(),
        [leased(&d3, 1_060)]
    );
    assert!(s.end_logout("d3").await.unwrap());
    assert!(!s.end_logout("d3").await.unwrap());
    // Past the bound, the oldest queued go first.
    let d4 = row("d4", 1_003, 1_000);
    assert_eq!(
        s.queue_logouts(std::slice::from_ref(&d4), 2).await.unwrap(),
        1
    );
    let left: Vec<String> = s
        .claim_logouts(9_999, 10_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ["d2", "d4"]);
    // Queueing nothing applies a (smaller) bound to what waits.
    assert_eq!(s.queue_logouts(&[], 1).await.unwrap(), 1);
    assert_eq!(s.queue_logouts(&[], 1).await.unwrap(), 0);
    let left = s.claim_logouts(20_000, 20_001, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["d4"]
    );
}

pub async fn concurrent_claims_of_logout_deliveries_take_each_row_once(s: &dyn Store) {
    let rows: Vec<LogoutDeliveryRecord> = (0..30)
        .map(|i| LogoutDeliveryRecord {
            id: format!("race-{i:02}"),
            client_id: "c1".into(),
            uri: "https://rp.example/bc".into(),
            sub: "u1".into(),
            sid: Some("s1".into()),
            attempts: 0,
            next_attempt_at: 1_000,
            created_at: 1_000 + i,
        })
        .collect();
    s.queue_logouts(&rows, 100).await.unwrap();
    let results = futures_join_all((0..8).map(|_| s.claim_logouts(1_000, 2_000, 4))).await;
    let mut claimed: Vec<String> = results
        .into_iter()
        .flat_map(|r| r.unwrap())
        .map(|r| r.id)
        .collect();
    // A claim may pass over rows another is taking; what nobody took is still due.
    let rest = s.claim_logouts(1_000, 2_000, 100).await.unwrap();
    claimed.extend(rest.into_iter().map(|r| r.id));
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    // No row went to two claimers.
    assert_eq!((claimed.len(), total), (30, 30));
    assert_eq!(s.claim_logouts(1_999, 3_000, 100).await.unwrap(), vec![]);
    assert_eq!(s.claim_logouts(2_000, 3_000, 100).await.unwrap().len(), 30);
}

pub async fn revoking_a_users_grants_counts_and_logs_each(s: &dyn Store) {
    for g in [
        grant_to("g1", "u1", "c1", 1_000),
        grant_to("g2", "u1", "c2", 1_001),
        grant_to("g3", "u1", "c1", 1_002),
        grant_to("g4", "u2", "c1", 1_003),
    ] {
        s.insert_grant(&g, None).await.unwrap();
    }
    assert!(s.revoke_grant("g3", 1_500).await.unwrap());
    // Read once first, so that a cache in front holds the live grants.
    for id in ["g1", "g2", "g4"] {
        assert_eq!(s.get_grant(id).await.unwrap().unwrap().revoked_at, None);
    }
    let start = s.latest_change().await.unwrap();
    // One client: only its live grant; the one revoked before keeps its time.
    assert_eq!(
        s.revoke_user_grants("u1", Some("c1"), 2_000).await.unwrap(),
        1
    );
    assert_eq!(grant_changes_since(s, start).await, ["g1"]);
    let revoked_at =
        |id: &'static str| async move { s.get_grant(id).await.unwrap().unwrap().revoked_at };
    assert_eq!(revoked_at("g1").await, Some(2_000));
    assert_eq!(revoked_at("g2").await, None);
    assert_eq!(revoked_at("g3").await, Some(1_500));
    // Every client: what is left of the user's.
    let start = s.latest_change().await.unwrap();
    assert_eq!(s.revoke_user_grants("u1", None, 2_100).await.unwrap(), 1);
    assert_eq!(grant_changes_since(s, start).await, ["g2"]);
    assert_eq!(revoked_at("g2").await, Some(2_100));
    // Idempotent, and nobody else's.
    let start = s.latest_change().await.unwrap();
    assert_eq!(s.revoke_user_grants("u1", None, 2_200).await.unwrap(), 0);
    assert_eq!(
        s.revoke_user_grants("nobody", None, 2_200).await.unwrap(),
        0
    );
    assert_eq!(s.latest_change().await.unwrap(), start);
    assert_eq!(revoked_at("g4").await, None);
}

pub async fn deleting_a_consent_revokes_that_clients_grants(s: &dyn Store) {
    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    let uid = u.user_id.as_str();
    s.put_consent(uid, "c1", "openid", 1_000).await.unwrap();
    s.put_consent(uid, "c2", "openid", 1_000).await.unwrap();
    for g in [
        grant_to("g1", uid, "c1", 1_000),
        grant_to("g2", uid, "c2", 1_000),
    ] {
        s.insert_grant(&g, None).await.unwrap();
    }
    // Read once first, so that a cache in front holds the live grants.
    assert_eq!(s.get_grant("g1").await.unwrap().unwrap().revoked_at, None);
    let start = s.latest_change().await.unwrap();
    assert!(s.delete_consent(uid, "c1", 2_000).await.unwrap());
    assert_eq!(s.get_consent(uid, "c1").await.unwrap(), None);
    assert_eq!(
        s.get_consent(uid, "c2").await.unwrap().as_deref(),
        Some("openid")
    );
    assert_eq!(
        s.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(2_000)
    );
    assert_eq!(s.get_grant("g2").await.unwrap().unwrap().revoked_at, None);
    assert_eq!(grant_changes_since(s, start).await, ["g1"]);
    // Gone: nothing to forget, nothing left to revoke.
    let start = s.latest_change().await.unwrap();
    assert!(!s.delete_consent(uid, "c1", 2_100).await.unwrap());
    assert_eq!(s.latest_change().await.unwrap(), start);
    // A grant without a consent (one given before consents were recorded) is revoked too.
    s.insert_grant(&grant_to("g3", uid, "c3", 1_000), None)
        .await
        .unwrap();
    assert!(!s.delete_consent(uid, "c3", 2_200).await.unwrap());
    assert_eq!(
        s.get_grant("g3").await.unwrap().unwrap().revoked_at,
        Some(2_200)
    );
}

pub async fn a_refresh_token_rotates_once(s: &dyn Store) {
    let first = refresh("g1", 9_000);
    s.insert_grant(&grant("g1", "u1", 9_000), Some(&first))
        .await
        .unwrap();
    let second = refresh("g1", 9_000);
    assert!(s
        .rotate_refresh_token(&first.token_id, &second, Some(&[7, 0, 7]), 2_000)
        .await
        .unwrap());
    let used = s.get_refresh_token(&first.token_id).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(2_000));
    assert_eq!(used.successor_sealed.as_deref(), Some(&[7u8, 0, 7][..]));
    assert_eq!(
        s.get_refresh_token(&second.token_id).await.unwrap(),
        Some(second.clone())
    );
    let third = refresh("g1", 9_000);
    assert!(!s
        .rotate_refresh_token(&first.token_id, &third, None, 2_001)
        .await
        .unwrap());
    assert_eq!(s.get_refresh_token(&third.token_id).await.unwrap(), None);
}

pub async fn an_unused_refresh_token_is_extended_and_a_used_one_is_not(s: &dyn Store) {
    let first = refresh("g1", 3_000);
    s.insert_grant(&grant("g1", "u1", 9_000), Some(&first))
        .await
        .unwrap();
    assert!(s
        .extend_refresh_token(&first.token_id, 4_000)
        .await
        .unwrap());
    let got = s.get_refresh_token(&first.token_id).await.unwrap().unwrap();
    assert_eq!(got.expires_at, 4_000);
    assert_eq!(got.used_at, None);
    let second = refresh("g1", 9_000);
    assert!(s
        .rotate_refresh_token(&first.token_id, &second, None, 2_000)
        .await
        .unwrap());
    assert!(!s
        .extend_refresh_token(&first.token_id, 5_000)
        .await
        .unwrap());
    let got = s.get_refresh_token(&first.token_id).await.unwrap().unwrap();
    assert_eq!(got.expires_at, 4_000);
    assert!(!s
        .extend_refresh_token("no-such-token", 5_000)
        .await
        .unwrap());
}

pub async fn concurrent_rotations_of_one_refresh_token_have_one_winner(s: &dyn Store) {
    let first = refresh("g1", 9_000);
    s.insert_grant(&grant("g1", "u1", 9_000), Some(&first))
        .await
        .unwrap();
    let successors: Vec<RefreshRecord> = (0..20).map(|_| refresh("g1", 9_000)).collect();
    let results = futures_join_all(
        successors
            .iter()
            .map(|n| s.rotate_refresh_token(&first.token_id, n, None, 2_000)),
    )
    .await;
    let wins = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(wins, 1, "{results:?}");
    let mut stored = 0;
    for n in &successors {
        stored += usize::from(s.get_refresh_token(&n.token_id).await.unwrap().is_some());
    }
    assert_eq!(stored, 1);
}

pub async fn purge_removes_expired_user_flow_records(s: &dyn Store) {
    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    for (cookie, exp) in [("old", 1_500), ("live", 9_000)] {
        s.insert_session(&SessionRecord {
            session_hash: SecretHash::of(cookie),
            user_id: u.user_id.clone(),
            auth_time: 1_000,
            expires_at: exp,
        })
        .await
        .unwrap();
    }
    s.insert_code(&code("old", &u.user_id, 1_500))
        .await
        .unwrap();
    s.insert_code(&code("live", &u.user_id, 9_000))
        .await
        .unwrap();
    let old_refresh = refresh("g-old", 1_500);
    let live_refresh = refresh("g-live", 9_000);
    s.insert_grant(&grant("g-old", &u.user_id, 1_500), Some(&old_refresh))
        .await
        .unwrap();
    s.insert_grant(&grant("g-live", &u.user_id, 9_000), Some(&live_refresh))
        .await
        .unwrap();
    let r = s.purge_expired(2_000).await.unwrap();
    assert_eq!(
        (r.sessions, r.codes, r.grants, r.refresh_tokens),
        (1, 1, 1, 1)
    );
    assert!(s
        .get_session(&SecretHash::of("old"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .get_session(&SecretHash::of("live"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.use_code(&SecretHash::of("old"), 2_000).await.unwrap(),
        CodeUse::Unknown
    );
    assert!(matches!(
        s.use_code(&SecretHash::of("live"), 2_000).await.unwrap(),
        CodeUse::Fresh(_)
    ));
    assert!(s.get_grant("g-old").await.unwrap().is_none());
    assert!(s.get_grant("g-live").await.unwrap().is_some());
    assert!(s
        .get_refresh_token(&old_refresh.token_id)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .get_refresh_token(&live_refresh.token_id)
        .await
        .unwrap()
        .is_some());
}

pub async fn user_flow_settings_round_trip(s: &dyn Store) {
    let mut c = client(&SecretHash::of("s1"));
    c.user_flow = UserFlowSettings {
        refresh_tokens: RefreshPolicy::Always,
        refresh_token_ttl: 60,
        refresh_token_idle_ttl: 30,
        refresh_grace_period: 5,
        code_ttl: 600,
        require_pkce: true,
        allow_plain_pkce: true,
        post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
        skip_consent: true,
        backchannel_logout_uri: Some("https://app.example.com/bc".into()),
        backchannel_logout_session_required: true,
        token_exchange_audiences: vec!["https://api.example.com".into()],
        require_par: true,
        certificate_auth: Some(crate::model::CertificateAuth::TlsClientAuth(
            crate::model::CertificateSubject::SubjectDn("CN=client,O=Example".into()),
        )),
        certificate_bound_access_tokens: Some(false),
        dpop_bound_access_tokens: true,
        profile: crate::model::ClientProfile::Fapi2,
    };
    s.insert_client(&c).await.unwrap();
    assert_eq!(s.get_client(&c.client_id).await.unwrap(), Some(c.clone()));
    c.user_flow.refresh_tokens = RefreshPolicy::Never;
    assert!(s.update_client(&c, 2_000).await.unwrap());
    assert_eq!(s.get_client(&c.client_id).await.unwrap(), Some(c));
}

/// A trust registration of `issuer` in `env`.
pub fn trust(env: &str, issuer: &str) -> TrustRecord {
    TrustRecord {
        id: generate_id(),
        env: env.into(),
        issuer: issuer.into(),
        keys: r#"{"keys":[],"pems":["-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"]}"#
            .into(),
        jwks_uri: None,
        subject_claim: "anyflow_user_id".into(),
        claims: vec!["anyflow_team_id".into(), "anyflow_user_id".into()],
        scopes: ScopeSet::parse("sdk").unwrap(),
        created_at: 1_000,
    }
}

pub async fn the_default_env_exists_and_envs_are_created_once(s: &dyn Store) {
    let d = s.get_env("default").await.unwrap().unwrap();
    assert_eq!(d.name, "default");
    assert!(!d.single_use_tokens);
    assert_eq!(s.get_env("staging").await.unwrap(), None);
    let before = s.latest_change().await.unwrap();
    let created = s.ensure_env("staging", 1_500).await.unwrap();
    assert_eq!(created.name, "staging");
    assert_eq!(created.created_at, 1_500);
    let again = s.ensure_env("staging", 1_600).await.unwrap();
    assert_eq!(again, created, "a second ensure returns the first row");
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1, "only the creation is logged");
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str()),
        (ChangeKind::Env, "staging")
    );
    let names: Vec<String> = s
        .list_envs()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["default".to_owned(), "staging".to_owned()]);
}

pub async fn concurrent_ensures_of_one_env_all_succeed(s: &dyn Store) {
    let results = futures_join_all((0..20).map(|_| s.ensure_env("race", 1_000))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        s.list_envs()
            .await
            .unwrap()
            .iter()
            .filter(|e| e.name == "race")
            .count(),
        1
    );
}

pub async fn single_use_is_set_per_env_and_logged(s: &dyn Store) {
    s.ensure_env("hosted", 1_000).await.unwrap();
    let before = s.latest_change().await.unwrap();
    assert!(s.set_env_single_use("hosted", true, 1_100).await.unwrap());
    assert!(
        s.get_env("hosted")
            .await
            .unwrap()
            .unwrap()
            .single_use_tokens
    );
    assert!(!s.set_env_single_use("nowhere", true, 1_100).await.unwrap());
    let changes = s.changes_since(before, 10).await.unwrap();
    assert!(changes
        .iter()
        .any(|c| c.kind == ChangeKind::Env && c.key == "hosted"));
}

pub async fn trust_registrations_round_trip_per_env(s: &dyn Store) {
    s.ensure_env("staging", 1_000).await.unwrap();
    let a = trust("default", "https://vendor.example");
    let b = TrustRecord {
        created_at: 1_001,
        jwks_uri: Some("https://vendor.example/.well-known/jwks.json".into()),
        ..trust("staging", "https://vendor.example")
    };
    let before = s.latest_change().await.unwrap();
    s.insert_trust(&a).await.unwrap();
    s.insert_trust(&b).await.unwrap();
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.kind == ChangeKind::Trust));
    assert_eq!(changes[1].key, "staging");
    let dup = TrustRecord {
        id: generate_id(),
        ..a.clone()
    };
    assert!(matches!(
        s.insert_trust(&dup).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        s.insert_trust(&trust("no-such-env", "x")).await.is_err(),
        "the environment must exist"
    );
    assert_eq!(
        s.find_trust("default", "https://vendor.example")
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        s.find_trust("staging", "https://vendor.example")
            .await
            .unwrap(),
        Some(b.clone())
    );
    assert_eq!(s.find_trust("default", "other").await.unwrap(), None);
    assert_eq!(
        s.list_trust(None).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        s.list_trust(Some("staging")).await.unwrap(),
        vec![b.clone()]
    );
    let before = s.latest_change().await.unwrap();
    let new_keys = r#"{"keys":[],"pems":["new"]}"#;
    assert!(s.set_trust_keys(&b.id, new_keys, 1_900).await.unwrap());
    assert!(!s.set_trust_keys("nobody", new_keys, 1_900).await.unwrap());
    let rotated = s
        .find_trust("staging", "https://vendor.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.keys, new_keys);
    assert_eq!(rotated.id, b.id);
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str()),
        (ChangeKind::Trust, "staging")
    );
    let before = s.latest_change().await.unwrap();
    assert!(s.delete_trust(&a.id, 2_000).await.unwrap());
    assert!(!s.delete_trust(&a.id, 2_000).await.unwrap());
    assert_eq!(
        s.find_trust("default", "https://vendor.example")
            .await
            .unwrap(),
        None
    );
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str()),
        (ChangeKind::Trust, "default")
    );
}

pub async fn clients_and_tokens_keep_their_env_and_single_use(s: &dyn Store) {
    s.ensure_env("hosted", 1_000).await.unwrap();
    let c = ClientRecord {
        env: "hosted".into(),
        single_use_tokens: true,
        ..client(&SecretHash::of("s1"))
    };
    s.insert_client(&c).await.unwrap();
    assert_eq!(s.get_client(&c.client_id).await.unwrap(), Some(c.clone()));
    let updated = ClientRecord {
        single_use_tokens: false,
        ..c.clone()
    };
    assert!(s.update_client(&updated, 1_100).await.unwrap());
    assert!(
        !s.get_client(&c.client_id)
            .await
            .unwrap()
            .unwrap()
            .single_use_tokens
    );
    let (_, rec) = token(&c.client_id, 9_000);
    let rec = TokenRecord {
        env: "hosted".into(),
        claims: Some(r#"{"anyflow_team_id":"t1"}"#.into()),
        single_use: true,
        ..rec
    };
    s.insert_token(&rec).await.unwrap();
    assert_eq!(s.get_token(&rec.token_id).await.unwrap(), Some(rec));
}

pub async fn deleting_an_env_cascades_to_trust_and_its_sdk_client_but_not_past_clients(
    s: &dyn Store,
) {
    assert_eq!(
        s.delete_env("nowhere", 1_000).await.unwrap(),
        EnvDeletion::NotFound
    );
    s.ensure_env("staging", 1_000).await.unwrap();
    s.insert_trust(&trust("staging", "iss")).await.unwrap();
    let sdk = ClientRecord {
        client_id: crate::endpoint::sdk_token::sdk_client_id("staging"),
        env: "staging".into(),
        ..client(&SecretHash::of("x"))
    };
    s.insert_client(&sdk).await.unwrap();
    let user = ClientRecord {
        env: "staging".into(),
        ..client(&SecretHash::of("s1"))
    };
    s.insert_client(&user).await.unwrap();
    assert_eq!(
        s.delete_env("staging", 1_100).await.unwrap(),
        EnvDeletion::InUse(1)
    );
    assert!(
        s.get_env("staging").await.unwrap().is_some(),
        "refused: nothing deleted"
    );
    assert_eq!(s.list_trust(Some("staging")).await.unwrap().len(), 1);
    assert!(s.delete_client(&user.client_id, 1_200).await.unwrap());
    let before = s.latest_change().await.unwrap();
    assert_eq!(
        s.delete_env("staging", 1_300).await.unwrap(),
        EnvDeletion::Deleted
    );
    assert_eq!(s.get_env("staging").await.unwrap(), None);
    assert!(s.list_trust(Some("staging")).await.unwrap().is_empty());
    assert_eq!(s.get_client(&sdk.client_id).await.unwrap(), None);
    let kinds: Vec<ChangeKind> = s
        .changes_since(before, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    for k in [ChangeKind::Env, ChangeKind::Trust, ChangeKind::Client] {
        assert!(kinds.contains(&k), "{k:?} logged");
    }
    assert!(
        s.delete_env("default", 1_400).await.is_err()
            || s.get_env("default").await.unwrap().is_some(),
        "the default environment stays"
    );
    assert!(s.get_env("default").await.unwrap().is_some());
}

/// A key set of RSA JWKs with these modulus sizes (bits) and kids, as stored; only their
/// number, sizes and kids matter here.
fn rsa_keys(keys: &[(usize, Option<&str>)]) -> String {
    use base64::Engine as _;
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(bits, kid)| {
            let mut n = vec![0xc5u8];
            n.resize(bits / 8, 0x35);
            let mut jwk = serde_json::json!({
                "kty": "RSA", "e": "AQAB",
                "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n),
            });
            if let Some(kid) = kid {
                jwk["kid"] = (*kid).into();
            }
            jwk
        })
        .collect();
    serde_json::json!({ "keys": keys, "pems": [] }).to_string()
}

pub async fn key_sets_breaking_the_registration_rules_are_refused(s: &dyn Store) {
    let kids: Vec<String> = (0..11).map(|i| format!("k{i}")).collect();
    let of = |n: usize| -> Vec<(usize, Option<&str>)> {
        kids[..n].iter().map(|k| (2048, Some(k.as_str()))).collect()
    };
    let ten = rsa_keys(&of(10));
    let bad = [
        ("eleven keys", rsa_keys(&of(11))),
        ("an RSA key of 8192 bits", rsa_keys(&[(8192, Some("big"))])),
        (
            "an RSA key of 1024 bits",
            rsa_keys(&[(1024, Some("small"))]),
        ),
        (
            "two keys, one without kid",
            rsa_keys(&[(2048, Some("a")), (2048, None)]),
        ),
        (
            "two keys with one kid",
            rsa_keys(&[(2048, Some("a")), (2048, Some("a"))]),
        ),
        ("not a key set", "[1, 2]".to_owned()),
    ];
    for (case, keys) in &bad {
        let c = ClientRecord {
            jwks: Some(keys.clone()),
            secret_hash: None,
            ..client(&SecretHash::of("unused"))
        };
        assert!(
            matches!(s.insert_client(&c).await, Err(StoreError::Invalid(_))),
            "insert_client with {case}"
        );
        assert!(
            s.get_client(&c.client_id).await.unwrap().is_none(),
            "{case}"
        );
        let t = TrustRecord {
            keys: keys.clone(),
            ..trust("default", &format!("https://{}.example", generate_id()))
        };
        assert!(
            matches!(s.insert_trust(&t).await, Err(StoreError::Invalid(_))),
            "insert_trust with {case}"
        );
        assert!(s.find_trust("default", &t.issuer).await.unwrap().is_none());
    }
    let c = ClientRecord {
        jwks: Some(ten.clone()),
        secret_hash: None,
        ..client(&SecretHash::of("unused"))
    };
    s.insert_client(&c).await.unwrap();
    let t = TrustRecord {
        keys: ten.clone(),
        ..trust("default", "https://ten.example")
    };
    s.insert_trust(&t).await.unwrap();
    for (case, keys) in &bad {
        assert!(
            matches!(
                s.set_client_keys(&c.client_id, keys, 1_100).await,
                Err(StoreError::Invalid(_))
            ),
            "set_client_keys with {case}"
        );
        assert!(
            matches!(
                s.set_trust_keys(&t.id, keys, 1_100).await,
                Err(StoreError::Invalid(_))
            ),
            "set_trust_keys with {case}"
        );
    }
    let stored = s.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(stored.jwks.as_deref(), Some(ten.as_str()), "unchanged");
    let stored = s.find_trust("default", &t.issuer).await.unwrap().unwrap();
    assert_eq!(stored.keys, ten, "unchanged");
}

/// A client naming an environment that does not exist is refused as an invalid record (not a
/// database failure), so that a caller racing `env delete` can say what happened.
pub async fn a_client_in_a_missing_env_is_an_invalid_record(s: &dyn Store) {
    let c = ClientRecord {
        env: "never-made".into(),
        ..client(&SecretHash::of("s1"))
    };
    assert!(
        matches!(s.insert_client(&c).await, Err(StoreError::Invalid(_))),
        "a client in a missing environment"
    );
    assert!(s.get_client(&c.client_id).await.unwrap().is_none());
}

/// `env delete` racing `client create --env` (which ensures the environment, then inserts the
/// client), many pairs at once: whatever wins, no client is left in a missing environment, and
/// a client whose insert succeeded is stored.
pub async fn env_deletions_racing_client_creations_leave_no_client_in_a_missing_env(s: &dyn Store) {
    const PAIRS: usize = 150;
    let create = |env: String| async move {
        s.ensure_env(&env, 1_000).await?;
        let c = ClientRecord {
            env,
            ..client(&SecretHash::of("s1"))
        };
        s.insert_client(&c).await.map(|()| c.client_id)
    };
    // Each pair: the environment exists (made by an earlier command), then one command
    // creates a client in it while another deletes it.
    let pair = |i: usize| async move {
        let env = format!("race-{i}");
        s.ensure_env(&env, 1_000).await.unwrap();
        futures_join2(create(env.clone()), s.delete_env(&env, 1_100)).await
    };
    let (created, deleted): (Vec<_>, Vec<_>) = futures_join_all((0..PAIRS).map(pair))
        .await
        .into_iter()
        .unzip();
    let outcomes = format!(
        "{} clients created, {} environments deleted, {} deletions refused",
        created.iter().filter(|r| r.is_ok()).count(),
        deleted
            .iter()
            .filter(|r| matches!(r, Ok(EnvDeletion::Deleted)))
            .count(),
        deleted
            .iter()
            .filter(|r| matches!(r, Ok(EnvDeletion::InUse(_))))
            .count(),
    );
    assert!(
        deleted.iter().all(Result::is_ok),
        "a deletion failed rather than waiting: {outcomes}"
    );
    assert!(
        deleted
            .iter()
            .any(|r| matches!(r, Ok(EnvDeletion::Deleted))),
        "the race was run: {outcomes}"
    );
    let clients = s.list_clients().await.unwrap();
    let mut orphans = Vec::new();
    for c in &clients {
        if s.get_env(&c.env).await.unwrap().is_none() {
            orphans.push(c.env.clone());
        }
    }
    assert_eq!(
        orphans,
        Vec::<String>::new(),
        "clients in a deleted environment"
    );
    for id in created.iter().flatten() {
        assert!(
            clients.iter().any(|c| &c.client_id == id),
            "an acknowledged client is stored"
        );
    }
    for (i, d) in deleted.iter().enumerate() {
        if let Ok(EnvDeletion::Deleted) = d {
            let env = format!("race-{i}");
            let has_clients = clients.iter().any(|c| c.env == env);
            assert!(
                !has_clients || s.get_env(&env).await.unwrap().is_some(),
                "a deleted environment has no clients"
            );
        }
    }
}

/// A fresh store's feed is empty, at position 0, with nothing purged.
pub async fn an_empty_feed_starts_at_zero(s: &dyn Store) {
    assert_eq!(s.latest_change().await.unwrap(), 0);
    assert_eq!(s.feed_horizon().await.unwrap(), 0);
    assert_eq!(s.changes_since(0, 10).await.unwrap(), vec![]);
    s.revoke_jti("j1", "c1", 5_000, 1_000).await.unwrap();
    let changes = s.changes_since(0, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].seq > 0);
    assert_eq!(s.latest_change().await.unwrap(), changes[0].seq);
}

/// The writes of keys and client epochs other nodes cache are on the feed; a revocation that
/// changed nothing is not.
pub async fn key_and_epoch_writes_are_logged_and_no_ops_are_not(s: &dyn Store) {
    let c = client(&SecretHash::of("s1"));
    s.insert_client(&c).await.unwrap();
    let (_, t) = token(&c.client_id, 10_000);
    s.insert_token(&t).await.unwrap();
    let before = s.latest_change().await.unwrap();
    assert!(s.insert_key(&sealed_key("k1", Some("fp"))).await.unwrap());
    s.retire_key("k1", 9_000).await.unwrap();
    assert!(s.revoke_client_tokens(&c.client_id, 1_100).await.unwrap());
    assert!(s
        .revoke_token(&t.token_id, &c.client_id, 1_200)
        .await
        .unwrap());
    let logged: Vec<(ChangeKind, String)> = s
        .changes_since(before, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.key))
        .collect();
    assert_eq!(
        logged,
        vec![
            (ChangeKind::Keys, String::new()),
            (ChangeKind::Keys, String::new()),
            (ChangeKind::Client, c.client_id.clone()),
            (ChangeKind::Token, t.token_id.clone()),
        ]
    );
    let before = s.latest_change().await.unwrap();
    assert!(!s
        .revoke_token(&t.token_id, &c.client_id, 1_300)
        .await
        .unwrap());
    assert!(!s.revoke_token("nope", &c.client_id, 1_300).await.unwrap());
    assert!(!s.revoke_grant("nope", 1_300).await.unwrap());
    assert!(!s
        .set_trust_keys("nope", "{\"keys\":[]}", 1_300)
        .await
        .unwrap());
    assert!(!s.delete_trust("nope", 1_300).await.unwrap());
    assert_eq!(s.ensure_env("default", 1_300).await.unwrap().created_at, 0);
    assert_eq!(
        s.changes_since(before, 10).await.unwrap(),
        vec![],
        "nothing changed, nothing logged"
    );
}

/// Every list is oldest first (keys: by activation), whatever the order of insertion.
pub async fn lists_are_oldest_first(s: &dyn Store) {
    let mut clients = Vec::new();
    let mut users = Vec::new();
    let mut trusts = Vec::new();
    for (i, at) in [3_000, 1_000, 2_000].into_iter().enumerate() {
        let c = ClientRecord {
            created_at: at,
            ..client(&SecretHash::of("s1"))
        };
        s.insert_client(&c).await.unwrap();
        clients.push(c);
        let u = UserRecord {
            created_at: at,
            ..user(&format!("user{i}"))
        };
        s.insert_user(&u).await.unwrap();
        users.push(u);
        let t = TrustRecord {
            created_at: at,
            ..trust("default", &format!("https://iss{i}.example"))
        };
        s.insert_trust(&t).await.unwrap();
        trusts.push(t);
        let k = KeyRecord {
            activates_at: at,
            created_at: at,
            ..sealed_key(&format!("k{i}"), None)
        };
        assert!(s.insert_key(&k).await.unwrap());
    }
    let by_age = |ids: Vec<String>| vec![ids[1].clone(), ids[2].clone(), ids[0].clone()];
    let listed: Vec<String> = s
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(
        listed,
        by_age(clients.into_iter().map(|c| c.client_id).collect())
    );
    let listed: Vec<String> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(
        listed,
        by_age(users.into_iter().map(|u| u.user_id).collect())
    );
    let listed: Vec<String> = s
        .list_trust(None)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, by_age(trusts.into_iter().map(|t| t.id).collect()));
    let listed: Vec<String> = s
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(listed, ["k1", "k2", "k0"]);
}

/// A retired key is purged once its retirement has passed; a key not retired stays.
pub async fn purge_removes_retired_keys(s: &dyn Store) {
    for kid in ["old", "later", "current"] {
        assert!(s.insert_key(&sealed_key(kid, Some("fp"))).await.unwrap());
    }
    s.retire_key("old", 1_500).await.unwrap();
    s.retire_key("later", 5_000).await.unwrap();
    assert_eq!(s.purge_expired(2_000).await.unwrap().keys, 1);
    let mut left: Vec<String> = s
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    left.sort();
    assert_eq!(left, ["current", "later"]);
    assert_eq!(s.purge_expired(5_000).await.unwrap().keys, 1);
    assert_eq!(s.list_keys().await.unwrap().len(), 1);
}

/// A user's id is unique as well as their username; a password change ends only that user's
/// sessions, and an expired session is still found (the caller checks its expiry).
pub async fn users_are_unique_by_id_and_their_sessions_are_their_own(s: &dyn Store) {
    let alice = user("alice");
    s.insert_user(&alice).await.unwrap();
    let same_id = UserRecord {
        username: "someone-else".into(),
        ..alice.clone()
    };
    assert!(matches!(
        s.insert_user(&same_id).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.find_user("someone-else").await.unwrap(), None);
    let bob = user("bob");
    s.insert_user(&bob).await.unwrap();
    let session = |cookie: &str, u: &UserRecord| SessionRecord {
        session_hash: SecretHash::of(cookie),
        user_id: u.user_id.clone(),
        auth_time: 1_000,
        expires_at: 1_500,
    };
    s.insert_session(&session("a", &alice)).await.unwrap();
    s.insert_session(&session("b", &bob)).await.unwrap();
    assert!(s
        .set_password(&alice.user_id, "$argon2id$new", 2_000)
        .await
        .unwrap());
    assert_eq!(s.get_session(&SecretHash::of("a")).await.unwrap(), None);
    assert_eq!(
        s.get_session(&SecretHash::of("b")).await.unwrap(),
        Some(session("b", &bob)),
        "another user's session stays, expired or not"
    );
    assert!(s.rename_user(&bob.user_id, "bob").await.unwrap());
    assert_eq!(
        s.find_user("bob").await.unwrap().map(|u| u.user_id),
        Some(bob.user_id)
    );
}

/// A rotation of a refresh token that is not there stores nothing; a user's grants of
/// another user stay when a user is deleted.
pub async fn missing_refresh_tokens_rotate_nothing_and_users_keep_their_own_grants(s: &dyn Store) {
    let successor = refresh("g1", 9_000);
    assert!(!s
        .rotate_refresh_token("nope", &successor, None, 2_000)
        .await
        .unwrap());
    assert_eq!(
        s.get_refresh_token(&successor.token_id).await.unwrap(),
        None
    );
    let alice = user("alice");
    let bob = user("bob");
    s.insert_user(&alice).await.unwrap();
    s.insert_user(&bob).await.unwrap();
    s.insert_grant(&grant("ga", &alice.user_id, 9_000), None)
        .await
        .unwrap();
    s.insert_grant(&grant("gb", &bob.user_id, 9_000), None)
        .await
        .unwrap();
    s.put_consent(&bob.user_id, "c1", "openid", 1_000)
        .await
        .unwrap();
    assert!(s.delete_user(&alice.user_id, 2_000).await.unwrap());
    assert_eq!(s.get_grant("gb").await.unwrap().unwrap().revoked_at, None);
    assert_eq!(
        s.get_consent(&bob.user_id, "c1").await.unwrap().as_deref(),
        Some("openid")
    );
}

/// A client's update leaves its keys, environment and public flag alone and replaces its
/// redirect URIs; a deleted client's tokens stay stored until they expire (they are no
/// longer active: their client is gone).
pub async fn updates_leave_keys_and_env_and_deletion_leaves_tokens(s: &dyn Store) {
    s.ensure_env("other", 1_000).await.unwrap();
    let c = ClientRecord {
        jwks: Some("{\"keys\":[]}".into()),
        ..client(&SecretHash::of("s1"))
    };
    s.insert_client(&c).await.unwrap();
    let changed = ClientRecord {
        redirect_uris: vec!["https://new.example/cb".into()],
        jwks: None,
        env: "other".into(),
        public: true,
        ..c.clone()
    };
    assert!(s.update_client(&changed, 1_100).await.unwrap());
    let got = s.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(got.redirect_uris, changed.redirect_uris);
    assert_eq!(
        (got.jwks, got.env, got.public),
        (c.jwks.clone(), c.env.clone(), c.public)
    );
    let (_, t) = token(&c.client_id, 10_000);
    s.insert_token(&t).await.unwrap();
    assert!(s.delete_client(&c.client_id, 1_200).await.unwrap());
    assert_eq!(s.get_token(&t.token_id).await.unwrap(), Some(t));
}

/// A second record under a taken key is a conflict and leaves the first as it was (a grant
/// whose refresh token is taken is not stored either: one transaction); a session or consent
/// of a user who is not there, or a registration in an environment that is not, is an
/// invalid record.
pub async fn taken_keys_conflict_and_missing_owners_are_invalid(s: &dyn Store) {
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict));
    let c = code("code-1", "u1", 9_000);
    s.insert_code(&c).await.unwrap();
    let other = CodeRecord {
        scope: "other".into(),
        ..c.clone()
    };
    assert!(conflict(s.insert_code(&other).await), "a second code");
    assert_eq!(
        s.use_code(&c.code_hash, 1_010).await.unwrap(),
        CodeUse::Fresh(c)
    );

    let first = refresh("g1", 9_000);
    s.insert_grant(&grant("g1", "u1", 9_000), Some(&first))
        .await
        .unwrap();
    assert!(
        conflict(s.insert_grant(&grant("g1", "u2", 9_000), None).await),
        "a second grant"
    );
    assert_eq!(s.get_grant("g1").await.unwrap().unwrap().user_id, "u1");
    let taken = RefreshRecord {
        grant_id: "g2".into(),
        ..first.clone()
    };
    assert!(
        conflict(
            s.insert_grant(&grant("g2", "u1", 9_000), Some(&taken))
                .await
        ),
        "a grant whose refresh token is taken"
    );
    assert_eq!(s.get_grant("g2").await.unwrap(), None);
    assert_eq!(
        s.get_refresh_token(&first.token_id).await.unwrap(),
        Some(first.clone())
    );
    let successor = refresh("g1", 9_000);
    s.insert_grant(&grant("g3", "u1", 9_000), Some(&successor))
        .await
        .unwrap();
    assert!(
        matches!(
            s.rotate_refresh_token(&first.token_id, &successor, None, 2_000)
                .await,
            Err(StoreError::Conflict)
        ),
        "a rotation to a taken successor"
    );
    assert_eq!(
        s.get_refresh_token(&first.token_id).await.unwrap(),
        Some(first),
        "not used"
    );

    assert!(s.insert_key(&sealed_key("k1", Some("fp"))).await.unwrap());
    let twin = KeyRecord {
        alg: "RS256".into(),
        ..sealed_key("k1", Some("fp"))
    };
    assert!(matches!(
        s.insert_key(&twin).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.list_keys().await.unwrap()[0].alg, "ES256");

    let (_, t) = token("c1", 10_000);
    s.insert_token(&t).await.unwrap();
    let twin = TokenRecord {
        subject: "someone-else".into(),
        ..t.clone()
    };
    assert!(s.insert_token(&twin).await.is_err(), "a second token");
    assert_eq!(s.get_token(&t.token_id).await.unwrap(), Some(t));

    let u = user("alice");
    s.insert_user(&u).await.unwrap();
    let sess = SessionRecord {
        session_hash: SecretHash::of("cookie"),
        user_id: u.user_id.clone(),
        auth_time: 1_000,
        expires_at: 5_000,
    };
    s.insert_session(&sess).await.unwrap();
    assert!(conflict(s.insert_session(&sess).await), "a second session");
    let orphan = SessionRecord {
        session_hash: SecretHash::of("orphan"),
        user_id: "nobody".into(),
        ..sess
    };
    assert!(matches!(
        s.insert_session(&orphan).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.get_session(&orphan.session_hash).await.unwrap(), None);
    assert!(matches!(
        s.put_consent("nobody", "c1", "openid", 1_000).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.get_consent("nobody", "c1").await.unwrap(), None);
    let before = s.latest_change().await.unwrap();
    assert!(matches!(
        s.insert_trust(&trust("no-such-env", "https://iss.example"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.changes_since(before, 10).await.unwrap(), vec![]);
}

/// What is refused changes nothing, so it is not on the feed: an environment's deletion
/// refused or of a missing one, a re-sealing that misses a key, a key under another secret.
pub async fn refused_writes_are_not_logged(s: &dyn Store) {
    s.ensure_env("busy", 1_000).await.unwrap();
    let c = ClientRecord {
        env: "busy".into(),
        ..client(&SecretHash::of("s1"))
    };
    s.insert_client(&c).await.unwrap();
    assert!(s.insert_key(&sealed_key("k1", Some("fp-a"))).await.unwrap());
    let before = s.latest_change().await.unwrap();
    assert_eq!(
        s.delete_env("busy", 1_100).await.unwrap(),
        EnvDeletion::InUse(1)
    );
    assert_eq!(
        s.delete_env("nowhere", 1_100).await.unwrap(),
        EnvDeletion::NotFound
    );
    assert!(!s.reseal_keys(&[], "fp-b", 1_100).await.unwrap());
    assert!(!s.insert_key(&sealed_key("k2", Some("fp-b"))).await.unwrap());
    assert_eq!(s.changes_since(before, 10).await.unwrap(), vec![]);
    assert_eq!(s.latest_change().await.unwrap(), before);
    assert_eq!(
        s.list_keys().await.unwrap()[0].sealed_by.as_deref(),
        Some("fp-a")
    );
}

/// Generates one `#[tokio::test]` per conformance test, each on a fresh store.
///
/// - `conformance_tests!(make)`: `make` is an async expression yielding something that
///   derefs to a `Store`.
/// - `conformance_tests!(optional |test| make)`: `make` may use `test` (the test's name, a
///   `&str`) and yields an `Option` of such a thing; `None` skips the test (for a backend
///   that needs a server the environment may not have).
pub async fn the_served_issuer_is_recorded_once_and_replaced_only_on_request(s: &dyn Store) {
    assert_eq!(s.recorded_issuer().await.unwrap(), None);
    // Servers starting at once with different issuers: one is recorded, and all see that one.
    let racing = ["https://a.example.com", "https://b.example.com"];
    let seen: Vec<String> =
        futures_join_all(racing.iter().map(|i| s.record_issuer(i, false, 1_000)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let first = seen[0].clone();
    assert!(racing.contains(&first.as_str()), "{seen:?}");
    assert_eq!(seen[1], first);
    // A later server with another issuer does not replace it: the one on record is returned.
    let other = "https://other.example.com";
    assert_eq!(s.record_issuer(other, false, 1_001).await.unwrap(), first);
    assert_eq!(s.recorded_issuer().await.unwrap(), Some(first));
    // A deliberate change replaces it.
    assert_eq!(s.record_issuer(other, true, 1_002).await.unwrap(), other);
    assert_eq!(s.recorded_issuer().await.unwrap().as_deref(), Some(other));
}

/// An upstream provider named `name` with the given e-mail domains.
pub fn idp(name: &str, domains: &[&str]) -> IdpRecord {
    IdpRecord {
        name: name.into(),
        display_name: format!("Provider {name}"),
        issuer: format!("https://{name}.idp.example"),
        client_id: format!("tessera-at-{name}"),
        client_secret_sealed: vec![0, 1, 2, 0xff, name.len() as u8],
        email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        link_by_email: true,
        created_at: 1_000,
    }
}

/// A link of (`issuer`, `subject`) to `user_id`.
pub fn external_identity(issuer: &str, subject: &str, user_id: &str) -> ExternalIdentityRecord {
    ExternalIdentityRecord {
        issuer: issuer.into(),
        subject: subject.into(),
        idp: "corp".into(),
        user_id: user_id.into(),
        created_at: 1_000,
    }
}

pub async fn identity_providers_round_trip_with_unique_names_and_domains(s: &dyn Store) {
    assert_eq!(s.list_idps().await.unwrap(), vec![]);
    let corp = idp("corp", &["corp.example", "corp.example.org"]);
    let bare = IdpRecord {
        link_by_email: false,
        ..idp("bare", &[])
    };
    s.insert_idp(&corp).await.unwrap();
    s.insert_idp(&bare).await.unwrap();
    assert_eq!(s.get_idp("corp").await.unwrap(), Some(corp.clone()));
    assert_eq!(s.get_idp("bare").await.unwrap(), Some(bare.clone()));
    assert_eq!(s.get_idp("nope").await.unwrap(), None);
    // By name.
    assert_eq!(
        s.list_idps().await.unwrap(),
        vec![bare.clone(), corp.clone()]
    );

    // A used name, whatever else it has.
    assert!(matches!(
        s.insert_idp(&idp("corp", &["other.example"])).await,
        Err(StoreError::Conflict)
    ));
    // A domain of another provider, even among free ones: nothing of it is stored.
    assert!(matches!(
        s.insert_idp(&idp("second", &["free.example", "corp.example.org"]))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get_idp("second").await.unwrap(), None);
    s.insert_idp(&idp("third", &["free.example"]))
        .await
        .unwrap();
    // A domain given twice to one provider.
    assert!(matches!(
        s.insert_idp(&idp("twice", &["twice.example", "twice.example"]))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get_idp("twice").await.unwrap(), None);

    // The sealed secret is replaced, and nothing else.
    assert!(s.set_idp_secret("corp", &[9, 9, 9]).await.unwrap());
    assert!(!s.set_idp_secret("nope", &[9]).await.unwrap());
    assert_eq!(
        s.get_idp("corp").await.unwrap(),
        Some(IdpRecord {
            client_secret_sealed: vec![9, 9, 9],
            ..corp.clone()
        })
    );
    assert_eq!(s.get_idp("bare").await.unwrap(), Some(bare.clone()));

    // Deleting frees the name and the domains.
    assert!(s.delete_idp("corp").await.unwrap());
    assert!(!s.delete_idp("corp").await.unwrap());
    assert_eq!(s.get_idp("corp").await.unwrap(), None);
    let again = idp("again", &["corp.example"]);
    s.insert_idp(&again).await.unwrap();
    s.insert_idp(&corp_without_domains()).await.unwrap();
    let names: Vec<String> = s
        .list_idps()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["again", "bare", "corp", "third"]);
}

fn corp_without_domains() -> IdpRecord {
    idp("corp", &[])
}

pub async fn concurrent_providers_claiming_one_domain_have_one_winner(s: &dyn Store) {
    let a = idp("a", &["shared.example", "a.example"]);
    let b = idp("b", &["b.example", "shared.example"]);
    let (ra, rb) = futures_join2(s.insert_idp(&a), s.insert_idp(&b)).await;
    let won = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{ra:?} {rb:?}");
    assert!(
        matches!(ra, Err(StoreError::Conflict)) || matches!(rb, Err(StoreError::Conflict)),
        "{ra:?} {rb:?}"
    );
    let stored = s.list_idps().await.unwrap();
    assert_eq!(stored.len(), 1);
    let owners = stored
        .iter()
        .filter(|p| p.email_domains.contains(&"shared.example".to_owned()))
        .count();
    assert_eq!(owners, 1);
}

pub async fn external_identities_link_once_and_go_with_their_user(s: &dyn Store) {
    let alice = user("alice");
    let bob = user("bob");
    s.insert_user(&alice).await.unwrap();
    s.insert_user(&bob).await.unwrap();
    let iss = "https://corp.idp.example";
    assert_eq!(s.find_external_identity(iss, "sub-a").await.unwrap(), None);
    let link = external_identity(iss, "sub-a", &alice.user_id);
    s.insert_external_identity(&link).await.unwrap();
    assert_eq!(
        s.find_external_identity(iss, "sub-a").await.unwrap(),
        Some(link.clone())
    );
    // The same upstream identity cannot be linked twice, to anyone.
    assert!(matches!(
        s.insert_external_identity(&external_identity(iss, "sub-a", &bob.user_id))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.find_external_identity(iss, "sub-a").await.unwrap(),
        Some(link.clone())
    );
    // An identity is its issuer and subject together.
    assert_eq!(s.find_external_identity(iss, "sub-b").await.unwrap(), None);
    assert_eq!(
        s.find_external_identity("https://other.example", "sub-a")
            .await
            .unwrap(),
        None
    );
    let other_iss = external_identity("https://other.example", "sub-a", &bob.user_id);
    s.insert_external_identity(&other_iss).await.unwrap();
    // A user may have several.
    let second = external_identity(iss, "sub-a2", &alice.user_id);
    s.insert_external_identity(&second).await.unwrap();
    // A link to a user who is not there is refused.
    assert!(matches!(
        s.insert_external_identity(&external_identity(iss, "sub-x", "no-such-user"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.find_external_identity(iss, "sub-x").await.unwrap(), None);

    // Removing a provider leaves the links; deleting a user removes theirs, only theirs.
    s.insert_idp(&idp("corp", &[])).await.unwrap();
    assert!(s.delete_idp("corp").await.unwrap());
    assert!(s
        .find_external_identity(iss, "sub-a")
        .await
        .unwrap()
        .is_some());
    assert!(s.delete_user(&alice.user_id, 2_000).await.unwrap());
    assert_eq!(s.find_external_identity(iss, "sub-a").await.unwrap(), None);
    assert_eq!(s.find_external_identity(iss, "sub-a2").await.unwrap(), None);
    assert_eq!(
        s.find_external_identity("https://other.example", "sub-a")
            .await
            .unwrap(),
        Some(other_iss)
    );
    // The identity is free again: a new user may have it.
    let carol = user("carol");
    s.insert_user(&carol).await.unwrap();
    s.insert_external_identity(&external_identity(iss, "sub-a", &carol.user_id))
        .await
        .unwrap();
}

pub async fn concurrent_links_of_one_identity_have_one_winner(s: &dyn Store) {
    let users: Vec<UserRecord> = (0..8).map(|i| user(&format!("racer{i}"))).collect();
    for u in &users {
        s.insert_user(u).await.unwrap();
    }
    let links: Vec<ExternalIdentityRecord> = users
        .iter()
        .map(|u| external_identity("https://corp.idp.example", "sub-race", &u.user_id))
        .collect();
    let results = futures_join_all(links.iter().map(|l| s.insert_external_identity(l))).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict))));
    let winner = results.iter().position(Result::is_ok).unwrap();
    assert_eq!(
        s.find_external_identity("https://corp.idp.example", "sub-race")
            .await
            .unwrap()
            .map(|l| l.user_id),
        Some(users[winner].user_id.clone())
    );
}

/// The linking of upstream identities ([`crate::signin::external::resolve_user`]) over this
/// store: concurrent first sign-ins of one identity make one user and one link, and a second
/// identity with the same verified e-mail address gets its own user, not the first one's.
pub async fn concurrent_first_sign_ins_through_an_upstream_make_one_user(s: &dyn Store) {
    use crate::signin::external::{resolve_user, ExternalClaims};
    let corp = IdpRecord {
        link_by_email: false,
        ..idp("corp", &["corp.example"])
    };
    s.insert_idp(&corp).await.unwrap();
    let claims = ExternalClaims {
        issuer: corp.issuer.clone(),
        subject: "sub-race".into(),
        email: Some("racer@corp.example".into()),
        email_verified: true,
        name: Some("Racer".into()),
        preferred_username: None,
    };
    let results = futures_join_all((0..6).map(|_| resolve_user(s, &corp, &claims, 1_000))).await;
    let ids: Vec<String> = results.into_iter().map(|r| r.unwrap().user_id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let users = s.list_users().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    // The address, unless the racer that won the link created its user while a loser's user
    // still held the address: then the winner's is the provider's fallback name.
    assert!(
        users[0].username == "racer@corp.example" || users[0].username.starts_with("corp-"),
        "{users:?}"
    );
    assert_eq!(
        s.find_external_identity(&corp.issuer, "sub-race")
            .await
            .unwrap()
            .map(|l| l.user_id),
        Some(ids[0].clone())
    );
    let other = ExternalClaims {
        subject: "sub-other".into(),
        ..claims
    };
    let second = resolve_user(s, &corp, &other, 1_001).await.unwrap();
    assert_ne!(second.user_id, ids[0]);
    assert_eq!(second.username, "corp-1");
}

/// An audit row at `at` of `kind`, by `actor`, on `target`.
pub fn audit(at: i64, kind: &str, actor: &str, target: Option<&str>) -> AuditRecord {
    AuditRecord {
        id: 0,
        at,
        kind: kind.into(),
        actor: actor.into(),
        target: target.map(str::to_owned),
        outcome: "success".into(),
        request_id: None,
        source: None,
        detail: "{}".into(),
    }
}

fn audit_filter(limit: i64) -> AuditFilter {
    AuditFilter {
        limit,
        ..AuditFilter::default()
    }
}

pub async fn audit_entries_round_trip_newest_first(s: &dyn Store) {
    assert!(s.list_audit(&audit_filter(10)).await.unwrap().is_empty());
    let mut first = audit(1_000, "client_auth_failed", "anonymous", Some("c1"));
    first.outcome = "failure".into();
    first.request_id = Some("req-1".into());
    first.source = Some("2001:db8::7".into());
    first.detail = r#"{"endpoint":"token"}"#.into();
    let a = s.insert_audit(&first).await.unwrap();
    let b = s
        .insert_audit(&audit(1_000, "client_created", "cli", None))
        .await
        .unwrap();
    assert!(b > a, "ids increase");
    let all = s.list_audit(&audit_filter(10)).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, b, "newest first");
    assert_eq!(all[0].target, None);
    assert_eq!(all[1], AuditRecord { id: a, ..first });
    // A limit below 1 still lists one; a huge one is capped, not refused.
    assert_eq!(s.list_audit(&audit_filter(0)).await.unwrap().len(), 1);
    assert_eq!(
        s.list_audit(&audit_filter(i64::MAX)).await.unwrap().len(),
        2
    );
}

pub async fn audit_entries_are_filtered(s: &dyn Store) {
    s.insert_audit(&audit(1_000, "client_created", "cli", Some("c1")))
        .await
        .unwrap();
    s.insert_audit(&audit(2_000, "client_deleted", "cli", Some("c1")))
        .await
        .unwrap();
    s.insert_audit(&audit(
        3_000,
        "client_created",
        "admin_token:t1",
        Some("c2"),
    ))
    .await
    .unwrap();
    let mut replay = audit(4_000, "code_replayed", "client:c2", None);
    replay.outcome = "failure".into();
    s.insert_audit(&replay).await.unwrap();
    let list = |f: AuditFilter| async move {
        s.list_audit(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.at)
            .collect::<Vec<_>>()
    };
    let f = || audit_filter(100);
    assert_eq!(list(f()).await, [4_000, 3_000, 2_000, 1_000]);
    assert_eq!(
        list(AuditFilter {
            from: Some(2_000),
            to: Some(3_000),
            ..f()
        })
        .await,
        [3_000, 2_000],
        "the range includes both ends"
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("cli".into()),
            ..f()
        })
        .await,
        [2_000, 1_000]
    );
    assert_eq!(
        list(AuditFilter {
            target: Some("c1".into()),
            ..f()
        })
        .await,
        [2_000, 1_000]
    );
    assert_eq!(
        list(AuditFilter {
            kind: Some("client_created".into()),
            actor: Some("admin_token:t1".into()),
            ..f()
        })
        .await,
        [3_000]
    );
    assert_eq!(
        list(AuditFilter {
            outcome: Some("failure".into()),
            ..f()
        })
        .await,
        [4_000]
    );
    assert_eq!(
        list(AuditFilter {
            outcome: Some("success".into()),
            to: Some(1_500),
            ..f()
        })
        .await,
        [1_000]
    );
    // Exact matches only: a prefix or a pattern matches nothing.
    for actor in ["admin_token", "admin_token:%", "%"] {
        assert!(list(AuditFilter {
            actor: Some(actor.into()),
            ..f()
        })
        .await
        .is_empty());
    }
    assert!(list(AuditFilter {
        target: Some("c%".into()),
        ..f()
    })
    .await
    .is_empty());
}

pub async fn audit_entries_page_without_gaps_or_repeats(s: &dyn Store) {
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            s.insert_audit(&audit(1_000 + i, "user_created", "cli", None))
                .await
                .unwrap(),
        );
    }
    // Another kind interleaved, filtered out of every page.
    s.insert_audit(&audit(1_003, "user_deleted", "cli", None))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .list_audit(&AuditFilter {
                kind: Some("user_created".into()),
                before_id: before,
                limit: 3,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page.iter().map(|r| r.id));
    }
    ids.reverse();
    assert_eq!(seen, ids);
}

pub async fn audit_purge_removes_only_entries_past_retention(s: &dyn Store) {
    for at in [1_000, 1_999, 2_000, 3_000] {
        s.insert_audit(&audit(at, "key_rotated", "cli", None))
            .await
            .unwrap();
    }
    assert_eq!(s.purge_audit(2_000).await.unwrap(), 2);
    let left: Vec<i64> = s
        .list_audit(&audit_filter(10))
        .await
        .unwrap()
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(left, [3_000, 2_000]);
    assert_eq!(s.purge_audit(2_000).await.unwrap(), 0);
    // Ids are not reused after a purge.
    let max = s.list_audit(&audit_filter(1)).await.unwrap()[0].id;
    s.purge_audit(i64::MAX).await.unwrap();
    let next = s
        .insert_audit(&audit(5_000, "key_rotated", "cli", None))
        .await
        .unwrap();
    assert!(next > max);
}

pub fn admin_token(id: &str, created_at: i64) -> AdminTokenRecord {
    AdminTokenRecord {
        id: id.to_owned(),
        token_hash: SecretHash::of(&format!("value-of-{id}")),
        name: format!("token {id}"),
        scopes: vec!["clients:write".to_owned(), "users:read".to_owned()],
        expires_at: Some(created_at + 3600),
        created_at,
        revoked_at: None,
        last_used_at: None,
    }
}

pub async fn admin_tokens_round_trip_and_are_revoked_once(s: &dyn Store) {
    assert!(s.list_admin_tokens().await.unwrap().is_empty());
    let b = admin_token("bbbb", 20);
    let a = AdminTokenRecord {
        expires_at: None,
        ..admin_token("aaaa", 30)
    };
    let c = admin_token("cccc", 20);
    for t in [&a, &b, &c] {
        s.insert_admin_token(t).await.unwrap();
    }
    assert!(matches!(
        s.insert_admin_token(&admin_token("aaaa", 40)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get_admin_token("aaaa").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_admin_token("zzzz").await.unwrap(), None);
    let ids: Vec<String> = s
        .list_admin_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["bbbb", "cccc", "aaaa"]);

    assert!(s.revoke_admin_token("bbbb", 50).await.unwrap());
    assert!(!s.revoke_admin_token("bbbb", 60).await.unwrap());
    assert!(!s.revoke_admin_token("zzzz", 60).await.unwrap());
    let revoked = s.get_admin_token("bbbb").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(50));
    assert_eq!(revoked.token_hash, b.token_hash);
    assert_eq!(
        s.get_admin_token("cccc").await.unwrap().unwrap().revoked_at,
        None
    );

    assert!(s.touch_admin_token("cccc", 70).await.unwrap());
    assert!(!s.touch_admin_token("zzzz", 70).await.unwrap());
    assert_eq!(
        s.get_admin_token("cccc")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(70)
    );
}

#[macro_export]
macro_rules! conformance_tests {
    (optional |$test:ident| $make:expr) => {
        $crate::conformance_tests!(@each $test, $make;
            clients_round_trip,
            a_registration_token_hash_is_set_replaced_and_goes_with_its_client,
            rotation_without_overlap_bumps_the_epoch,
            rotation_with_overlap_keeps_the_old_secret_and_tokens,
            tokens_are_found_by_id_and_revoked_only_by_their_client,
            concurrent_token_inserts_are_all_stored,
            revoked_jtis_are_idempotent_and_expire,
            revoked_jtis_are_listed_a_page_at_a_time,
            keys_round_trip_and_retire,
            keys_are_stored_only_under_the_secret_of_the_stored_keys,
            concurrent_key_inserts_and_a_reseal_leave_no_key_under_the_old_secret,
            every_shared_write_appears_in_the_change_feed,
            purge_removes_only_what_expired,
            the_feed_horizon_follows_the_purge,
            an_assertion_id_is_used_once_until_it_is_purged,
            a_use_is_seen_without_using_and_only_once_made,
            client_keys_are_replaced_and_the_change_is_logged,
            revoking_a_clients_tokens_bumps_its_epoch_only,
            updating_a_client_changes_its_registration_but_not_its_secret,
            concurrent_uses_of_one_assertion_id_have_one_winner,
            concurrent_uses_of_many_assertion_ids_each_have_one_winner,
            users_round_trip_with_unique_usernames,
            stored_usernames_move_to_their_prepared_form,
            sessions_end_with_a_password_change,
            consents_are_per_user_and_client_and_replaced,
            deleting_a_user_ends_everything_of_theirs,
            a_code_is_spent_once,
            concurrent_uses_of_one_code_have_one_winner,
            device_codes_are_found_by_user_code_and_unique,
            a_device_code_is_decided_once_while_pending,
            device_polls_answer_pending_slow_down_and_issue_once,
            denied_and_expired_device_codes_are_told_apart,
            concurrent_polls_of_an_approved_device_code_have_one_winner,
            expired_device_codes_are_purged_and_free_their_user_code,
            grants_are_revoked_once_and_logged,
            a_users_consents_are_listed_by_client,
            a_users_grants_are_listed_oldest_first_live_and_revoked,
            a_sessions_grants_are_the_clients_it_signed_into,
            logout_deliveries_queue_retry_end_and_drop_the_oldest_past_the_bound,
            concurrent_claims_of_logout_deliveries_take_each_row_once,
            revoking_a_users_grants_counts_and_logs_each,
            deleting_a_consent_revokes_that_clients_grants,
            a_refresh_token_rotates_once,
            an_unused_refresh_token_is_extended_and_a_used_one_is_not,
            concurrent_rotations_of_one_refresh_token_have_one_winner,
            purge_removes_expired_user_flow_records,
            user_flow_settings_round_trip,
            the_default_env_exists_and_envs_are_created_once,
            concurrent_ensures_of_one_env_all_succeed,
            single_use_is_set_per_env_and_logged,
            trust_registrations_round_trip_per_env,
            clients_and_tokens_keep_their_env_and_single_use,
            deleting_an_env_cascades_to_trust_and_its_sdk_client_but_not_past_clients,
            key_sets_breaking_the_registration_rules_are_refused,
            env_deletions_racing_client_creations_leave_no_client_in_a_missing_env,
            a_client_in_a_missing_env_is_an_invalid_record,
            the_served_issuer_is_recorded_once_and_replaced_only_on_request,
            a_throttle_budget_holds_limit_attempts_per_window,
            concurrent_attempts_take_exactly_the_budget,
            a_spent_budget_stays_spent_however_many_others_are_tracked,
            an_empty_feed_starts_at_zero,
            key_and_epoch_writes_are_logged_and_no_ops_are_not,
            lists_are_oldest_first,
            purge_removes_retired_keys,
            users_are_unique_by_id_and_their_sessions_are_their_own,
            missing_refresh_tokens_rotate_nothing_and_users_keep_their_own_grants,
            updates_leave_keys_and_env_and_deletion_leaves_tokens,
            taken_keys_conflict_and_missing_owners_are_invalid,
            refused_writes_are_not_logged,
            identity_providers_round_trip_with_unique_names_and_domains,
            concurrent_providers_claiming_one_domain_have_one_winner,
            external_identities_link_once_and_go_with_their_user,
            concurrent_links_of_one_identity_have_one_winner,
            concurrent_first_sign_ins_through_an_upstream_make_one_user,
            audit_entries_round_trip_newest_first,
            audit_entries_are_filtered,
            audit_entries_page_without_gaps_or_repeats,
            audit_purge_removes_only_entries_past_retention,
            admin_tokens_round_trip_and_are_revoked_once,
        );
    };
    ($make:expr) => {
        $crate::conformance_tests!(optional |_test| Some($make));
    };
    (@each $test:ident, $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let $test: &str = stringify!($name);
                let Some(store) = $make else {
                    return;
                };
                $crate::store::testsuite::$name(&*store).await;
            }
        )*
    };
}
