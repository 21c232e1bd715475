//! PostgreSQL-only behaviour: what several nodes over one database rely on (skipped, with a
//! note, when `TESSERA_TEST_POSTGRES_URL` is unset outside CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use sqlx::{Connection, PgConnection};
use tessera_core::model::ChangeKind;
use tessera_core::secret::SecretHash;
use tessera_core::store::testsuite;
use tessera_core::store::{ChangeFeed, ClientStore, ReplayStore, TokenStore};
use tessera_store_postgres::testing::TestDatabase;
use tessera_store_postgres::{PgOptions, PgStore};

fn small() -> PgOptions {
    PgOptions {
        max_connections: 4,
        token_writers: 1,
    }
}

/// A transaction that drew its feed entry first but commits last must still be delivered to a
/// reader that has already moved past the entry of the transaction that committed first.
#[tokio::test]
async fn a_change_that_commits_after_a_later_one_is_still_delivered() {
    let Some(db) = TestDatabase::create("out_of_order_commit").await else {
        return;
    };
    let store = PgStore::connect(&db.url, small()).await.unwrap();
    let mut cursor = store.latest_change().await.unwrap();

    // Transaction A writes its entry first and stays open.
    let mut a = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut a).await.unwrap();
    let a_id: i64 = sqlx::query_scalar(
        "INSERT INTO changes (kind, key, created_at) VALUES ('client', 'late', 1) RETURNING id",
    )
    .fetch_one(&mut a)
    .await
    .unwrap();

    // Transaction B writes after it and commits first.
    let c = testsuite::client(&SecretHash::of("s"));
    store.insert_client(&c).await.unwrap();
    let b_id: i64 = sqlx::query_scalar("SELECT max(id) FROM changes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(a_id < b_id, "A drew its number before B");

    let first = store.changes_since(cursor, 100).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].kind, first[0].key.as_str()),
        (ChangeKind::Client, c.client_id.as_str())
    );
    cursor = first[0].seq;

    // A commits now; a reader past B's entry still gets A's.
    sqlx::query("COMMIT").execute(&mut a).await.unwrap();
    let second = store.changes_since(cursor, 100).await.unwrap();
    assert_eq!(second.len(), 1, "the late commit was skipped: {second:?}");
    assert_eq!(second[0].key, "late");
    assert!(second[0].seq > cursor);
    assert_eq!(store.latest_change().await.unwrap(), second[0].seq);
    store.close().await;
}

/// Many writers on several stores (nodes) and readers polling meanwhile: every reader sees
/// every entry exactly once, in increasing positions.
#[tokio::test]
async fn readers_polling_during_concurrent_writes_miss_nothing() {
    let Some(db) = TestDatabase::create("feed_under_concurrency").await else {
        return;
    };
    let nodes = [
        PgStore::connect(&db.url, small()).await.unwrap(),
        PgStore::connect(&db.url, small()).await.unwrap(),
    ];
    let start = nodes[0].latest_change().await.unwrap();
    let mut writers = Vec::new();
    for w in 0..8 {
        let node = nodes[w % 2].clone();
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                node.revoke_jti(&format!("w{w}-{i}"), "c", 9_000, 1_000)
                    .await
                    .unwrap();
            }
        }));
    }
    let mut readers = Vec::new();
    for node in &nodes {
        let node = node.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut cursor = start;
            while seen.len() < 200 {
                for c in node.changes_since(cursor, 17).await.unwrap() {
                    assert!(c.seq > cursor);
                    cursor = c.seq;
                    seen.push(c.key);
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            seen
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for r in readers {
        let mut seen = tokio::time::timeout(std::time::Duration::from_secs(30), r)
            .await
            .expect("a reader missed entries")
            .unwrap();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 200);
    }
}

/// Nodes that start at once: every one connects, and each migration is applied once.
#[tokio::test]
async fn nodes_starting_at_once_apply_the_migrations_once() {
    let Some(db) = TestDatabase::create("concurrent_migrations").await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::connect(&url, small()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("a node failed to start"));
    }
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(applied, files);
    for s in stores {
        s.close().await;
    }
}

/// One assertion id presented to two nodes at once: exactly one accepts it.
#[tokio::test]
async fn one_assertion_id_raced_on_two_nodes_has_one_winner() {
    let Some(db) = TestDatabase::create("replay_race").await else {
        return;
    };
    let a = PgStore::connect(&db.url, small()).await.unwrap();
    let b = PgStore::connect(&db.url, small()).await.unwrap();
    for round in 0..20 {
        let key = format!("client:jti-{round}");
        let (ra, rb) = tokio::join!(a.use_once(&key, 9_000), b.use_once(&key, 9_000));
        assert!(
            ra.unwrap() ^ rb.unwrap(),
            "round {round}: not exactly one winner"
        );
    }
}

/// Two nodes recording the same many keys at once, each in the opposite order, so that their
/// batches overlap: every key has exactly one winner, and no batch fails (two batches that
/// took shared keys in different orders would deadlock, and PostgreSQL would abort one).
#[tokio::test]
async fn overlapping_batches_on_two_nodes_have_one_winner_per_key_and_no_deadlock() {
    let Some(db) = TestDatabase::create("replay_batches").await else {
        return;
    };
    let a = PgStore::connect(&db.url, small()).await.unwrap();
    let b = PgStore::connect(&db.url, small()).await.unwrap();
    // Many keys, so that batches overlapping in opposite orders are likely (without the
    // writer's sorting this fails about one run in three).
    let keys: Vec<String> = (0..2_000).map(|i| format!("dpop:key-{i:04}")).collect();
    let mut calls = tokio::task::JoinSet::new();
    for (node, order) in [(a, keys.clone()), (b, keys.iter().rev().cloned().collect())] {
        for key in order {
            let node = node.clone();
            calls.spawn(async move {
                let first = node.use_once(&key, 9_000).await;
                (key, first)
            });
        }
    }
    let mut wins = std::collections::HashMap::<String, u32>::new();
    while let Some(joined) = calls.join_next().await {
        let (key, result) = joined.unwrap();
        let first = result.unwrap_or_else(|e| panic!("{key}: {e}"));
        *wins.entry(key).or_default() += u32::from(first);
    }
    assert_eq!(wins.len(), keys.len());
    for (key, n) in wins {
        assert_eq!(n, 1, "{key}: {n} winners");
    }
}
