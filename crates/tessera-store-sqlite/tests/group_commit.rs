//! The group-commit writer with both kinds of writes at once: concurrent opaque-token inserts
//! and device-code polls land in shared transactions, and every caller gets its own answer.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use tessera_core::model::DevicePoll;
use tessera_core::store::testsuite::{device, token};
use tessera_core::store::{DeviceStore, TokenStore};
use tessera_store_sqlite::SqliteStore;

#[tokio::test]
async fn token_inserts_and_device_polls_share_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let codes: Vec<_> = (0..20)
        .map(|i| device(&format!("dc-{i}"), &format!("BCDFGH{:02}", i), 9_000))
        .collect();
    for d in &codes {
        store.insert_device_code(d).await.unwrap();
    }
    let tokens: Vec<_> = (0..40).map(|_| token("c1", 9_000).1).collect();

    // All sent at once: each a task, so the writer finds them queued together.
    let inserts: Vec<_> = tokens
        .iter()
        .map(|t| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move { store.insert_token(&t).await })
        })
        .collect();
    // Each code polled twice at the same second: the first is pending, the second too soon.
    let polls: Vec<_> = codes
        .iter()
        .chain(codes.iter())
        .map(|d| {
            let (store, hash) = (store.clone(), d.device_code_hash.clone());
            tokio::spawn(async move { store.poll_device_code(&hash, "tv", 1_020, 5).await })
        })
        .collect();
    let mut inserted = Vec::new();
    for task in inserts {
        inserted.push(task.await.unwrap());
    }
    let mut polled = Vec::new();
    for task in polls {
        polled.push(task.await.unwrap());
    }

    assert!(inserted.iter().all(Result::is_ok), "{inserted:?}");
    for t in &tokens {
        assert!(store.get_token(&t.token_id).await.unwrap().is_some());
    }
    let pending = polled
        .iter()
        .filter(|r| matches!(r, Ok(DevicePoll::Pending)))
        .count();
    let slowed = polled
        .iter()
        .filter(|r| matches!(r, Ok(DevicePoll::SlowDown { interval: 10 })))
        .count();
    assert_eq!((pending, slowed), (20, 20), "{polled:?}");
    // And each code's own two polls got one of each.
    for i in 0..codes.len() {
        let pair = [&polled[i], &polled[i + codes.len()]];
        assert!(
            pair.iter().any(|r| matches!(r, Ok(DevicePoll::Pending)))
                && pair
                    .iter()
                    .any(|r| matches!(r, Ok(DevicePoll::SlowDown { .. }))),
            "code {i}: {pair:?}"
        );
    }
    // Unknown and another client's codes are still told apart from live ones.
    let other = store
        .poll_device_code(&codes[0].device_code_hash, "radio", 1_030, 5)
        .await
        .unwrap();
    assert!(matches!(other, DevicePoll::Unknown), "{other:?}");
}
