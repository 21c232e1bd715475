//! The cache's view of other nodes' writes: two nodes (two `CachedStore`s, each over a
//! connection of its own) over one database (SQLite, and PostgreSQL when
//! `TESSERA_TEST_POSTGRES_URL` names a server), one of them polling the change feed only when
//! the test says so.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use tessera_core::audit::{Actor, AuditEvent, AuditKind};
use tessera_core::clock::SystemClock;
use tessera_core::config::Config;
use tessera_core::keys::Sealer;
use tessera_core::store::{AuditStore, ChangeFeed, Store, TokenStore, TrustStore};
use tessera_node::cache::CachedStore;
use tessera_node::{Node, PURGE_INTERVAL};
use tessera_store_postgres::testing::TestDatabase;
use tessera_store_postgres::{PgOptions, PgStore};
use tessera_store_sqlite::{SqliteStore, CHANGE_RETENTION_SECS};

struct Db {
    url: String,
    _dir: tempfile::TempDir,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        _dir: dir,
    }
}

async fn connect(db: &Db) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::connect(&db.url).await.unwrap())
}

/// Applies every feed entry after `from` to `node`; returns the new position.
async fn poll(node: &CachedStore, from: i64) -> i64 {
    let mut at = from;
    for c in node.changes_since(from, 100_000).await.unwrap() {
        node.apply(&c);
        at = c.seq;
    }
    at
}

fn now() -> i64 {
    tessera_core::clock::Clock::now(&SystemClock)
}

#[tokio::test]
async fn a_revoked_jwt_stays_revoked_on_another_node_whose_filter_is_saturated() {
    let db = db();
    let a = CachedStore::new(connect(&db).await);
    // A filter of 64 bits: full after a few dozen revocations.
    let b = CachedStore::with_revocation_filter(connect(&db).await, 64);
    let now = now();
    b.warm(now).await.unwrap();
    let from = b.latest_change().await.unwrap();
    for i in 0..200 {
        a.revoke_jti(&format!("filler-{i}"), "c1", now + 600, now)
            .await
            .unwrap();
    }
    let from = poll(&b, from).await;
    assert_eq!(b.revocation_filter_memory(), 8, "the filter does not grow");
    // Saturated: it says "maybe" to everything, and the database answers.
    assert!(!b.is_jti_revoked("never-revoked").await.unwrap());
    assert!(!b.is_jti_revoked("revoked-later").await.unwrap());
    a.revoke_jti("revoked-later", "c1", now + 600, now)
        .await
        .unwrap();
    poll(&b, from).await;
    assert!(
        b.is_jti_revoked("revoked-later").await.unwrap(),
        "the 'not revoked' answer cached before was dropped with the feed entry"
    );
    assert!(b.is_jti_revoked("filler-7").await.unwrap());
    assert!(b.is_jti_revoked("filler-7").await.unwrap(), "cached answer");
    assert!(!b.is_jti_revoked("never-revoked").await.unwrap());
    // A node starting now loads the revocations from the database into its own filter.
    let c = CachedStore::with_revocation_filter(connect(&db).await, 64);
    c.warm(now).await.unwrap();
    assert!(c.is_jti_revoked("revoked-later").await.unwrap());
    assert!(c.is_jti_revoked("filler-199").await.unwrap());
}

#[tokio::test]
async fn revocations_learnt_from_the_feed_are_honoured_with_the_default_filter() {
    let db = db();
    let a = CachedStore::new(connect(&db).await);
    let b = CachedStore::new(connect(&db).await);
    let now = now();
    a.revoke_jti("before-start", "c1", now + 600, now)
        .await
        .unwrap();
    b.warm(now).await.unwrap();
    let from = b.latest_change().await.unwrap();
    assert!(b.is_jti_revoked("before-start").await.unwrap());
    assert!(!b.is_jti_revoked("after-start").await.unwrap());
    a.revoke_jti("after-start", "c1", now + 600, now)
        .await
        .unwrap();
    assert!(
        !b.is_jti_revoked("after-start").await.unwrap(),
        "not yet polled"
    );
    poll(&b, from).await;
    assert!(b.is_jti_revoked("after-start").await.unwrap());
    // A revocation made through a node is honoured by it at once.
    a.revoke_jti("here", "c1", now + 600, now).await.unwrap();
    assert!(a.is_jti_revoked("here").await.unwrap());
}

/// A node that stops polling for longer than the feed keeps entries misses them: it must see
/// that (the feed's horizon passed its position), drop its caches and reload. `node` and
/// `other` are two connections to one database.
async fn a_node_that_fell_behind_reloads(node: Arc<dyn Store>, other: Arc<dyn Store>) {
    let state = Node::start(
        Config::new("http://127.0.0.1:1"),
        node,
        Sealer::from_secret(b"feed-test-secret-0123456789").unwrap(),
        Arc::new(SystemClock),
        PURGE_INTERVAL,
    )
    .await
    .unwrap();
    let now = now();
    let node = state.store();
    assert!(!node.is_jti_revoked("missed").await.unwrap());
    assert!(node.get_env("prod").await.unwrap().is_none(), "cached miss");
    // Meanwhile, elsewhere: a revocation and a new environment, whose feed entries are purged
    // (an hour later) before this node polls again.
    other
        .revoke_jti("missed", "c1", now + 7_200, now)
        .await
        .unwrap();
    other.ensure_env("prod", now).await.unwrap();
    // The other node polls (on PostgreSQL, that gives the entries their positions), then
    // purges.
    other.latest_change().await.unwrap();
    other
        .purge_expired(now + CHANGE_RETENTION_SECS + 1)
        .await
        .unwrap();
    assert!(other.feed_horizon().await.unwrap() > 0);
    state.sync_once().await.unwrap();
    assert!(
        node.is_jti_revoked("missed").await.unwrap(),
        "the revocation whose feed entry was purged is honoured"
    );
    assert!(
        node.get_env("prod").await.unwrap().is_some(),
        "the cached miss was dropped"
    );
    // Back in step: later entries are applied as usual, without another reload.
    other
        .revoke_jti("later", "c1", now + 7_200, now + CHANGE_RETENTION_SECS + 2)
        .await
        .unwrap();
    state.sync_once().await.unwrap();
    assert!(node.is_jti_revoked("later").await.unwrap());
}

#[tokio::test]
async fn a_node_that_fell_behind_the_feed_retention_reloads_and_honours_what_it_missed() {
    let db = db();
    a_node_that_fell_behind_reloads(connect(&db).await, connect(&db).await).await;
}

#[tokio::test]
async fn a_node_that_fell_behind_the_feed_retention_reloads_on_postgres() {
    let Some(db) = TestDatabase::create("cache_fell_behind").await else {
        return;
    };
    let pg = || async {
        let options = PgOptions {
            max_connections: 4,
            token_writers: 1,
        };
        Arc::new(PgStore::connect(&db.url, options).await.unwrap()) as Arc<dyn Store>
    };
    a_node_that_fell_behind_reloads(pg().await, pg().await).await;
}

#[tokio::test]
async fn a_node_logs_each_command_line_change_made_after_it_started_once() {
    let db = db();
    let other = connect(&db).await;
    let now = now();
    let cli = |n: usize| {
        AuditEvent::new(now, AuditKind::ClientCreated, Actor::Cli)
            .target(format!("c{n}"))
            .to_record()
    };
    // Before the start: not logged.
    other.insert_audit(&cli(0)).await.unwrap();
    let node = Node::start(
        Config::new("http://127.0.0.1:1"),
        connect(&db).await,
        Sealer::from_secret(b"feed-test-secret-0123456789").unwrap(),
        Arc::new(SystemClock),
        PURGE_INTERVAL,
    )
    .await
    .unwrap();
    assert_eq!(node.log_cli_changes().await.unwrap(), 0);
    // More than a page of them, among entries of other actors (logged where they happened).
    for n in 1..=250 {
        other.insert_audit(&cli(n)).await.unwrap();
        let served = AuditEvent::new(now, AuditKind::ClientAuthFailed, Actor::Anonymous)
            .target(format!("c{n}"))
            .failed()
            .to_record();
        other.insert_audit(&served).await.unwrap();
    }
    assert_eq!(node.log_cli_changes().await.unwrap(), 250);
    assert_eq!(node.log_cli_changes().await.unwrap(), 0, "logged once");
    other.insert_audit(&cli(251)).await.unwrap();
    assert_eq!(node.log_cli_changes().await.unwrap(), 1);
}
