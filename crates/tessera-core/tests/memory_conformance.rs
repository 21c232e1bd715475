//! The storage conformance suite, run against [`MemoryStore`]: the in-memory store that
//! handler tests use keeps every contract the database stores keep (a fresh store per test);
//! then what is the memory store's own: its setting of the feed's retention.
#![allow(clippy::unwrap_used)]

use tessera_core::store::memory::MemoryStore;
use tessera_core::store::{ChangeFeed, Maintenance, TokenStore, TrustStore};

tessera_core::conformance_tests!(Box::new(MemoryStore::new()));

#[tokio::test]
async fn change_feed_entries_are_kept_as_long_as_configured() {
    let s = MemoryStore::new().with_change_retention(10);
    s.revoke_jti("j1", "c1", 99_000, 1_000).await.unwrap();
    let seq = s.latest_change().await.unwrap();
    assert_eq!(s.purge_expired(1_009).await.unwrap().changes, 0);
    assert_eq!(s.feed_horizon().await.unwrap(), 0);
    assert_eq!(s.purge_expired(1_010).await.unwrap().changes, 1);
    assert_eq!(s.feed_horizon().await.unwrap(), seq);
    assert_eq!(s.latest_change().await.unwrap(), seq);

    // At least a second: an entry is never purged in the second it was logged.
    let s = MemoryStore::new().with_change_retention(0);
    s.revoke_jti("j1", "c1", 99_000, 1_000).await.unwrap();
    assert_eq!(s.purge_expired(1_000).await.unwrap().changes, 0);
    assert_eq!(s.purge_expired(1_001).await.unwrap().changes, 1);
}

#[tokio::test]
async fn a_default_store_is_a_new_one() {
    let s = MemoryStore::default();
    assert_eq!(
        s.list_envs()
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.single_use_tokens, e.created_at))
            .collect::<Vec<_>>(),
        vec![("default".to_owned(), false, 0)]
    );
    assert_eq!(s.latest_change().await.unwrap(), 0);
    assert_eq!(s.recorded_issuer().await.unwrap(), None);
}
