//! The storage conformance suite of `tessera-core`, run against [`CachedStore`] over each
//! database: the cache must keep every contract of the store it wraps. Over SQLite, a fresh
//! database file per test; over PostgreSQL (module [`postgres`]), a fresh database per test,
//! skipped with a note when `TESSERA_TEST_POSTGRES_URL` is unset outside CI.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tessera_node::cache::CachedStore;
use tessera_store_sqlite::SqliteStore;

struct Fresh {
    store: CachedStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fresh {
    type Target = CachedStore;
    fn deref(&self) -> &CachedStore {
        &self.store
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = CachedStore::new(Arc::new(SqliteStore::connect(&url).await.unwrap()));
    store.warm(0).await.unwrap();
    Fresh { store, _dir: dir }
}

tessera_core::conformance_tests!(fresh().await);

/// The same suite against [`CachedStore`] over PostgreSQL.
mod postgres {
    use std::sync::Arc;

    use tessera_node::cache::CachedStore;
    use tessera_store_postgres::testing::TestDatabase;
    use tessera_store_postgres::{PgOptions, PgStore};

    /// The cache over a store of its own database; the store (and its connections) goes
    /// before the database is dropped.
    struct Fresh {
        store: CachedStore,
        _db: TestDatabase,
    }

    impl std::ops::Deref for Fresh {
        type Target = CachedStore;
        fn deref(&self) -> &CachedStore {
            &self.store
        }
    }

    async fn fresh(test: &str) -> Option<Fresh> {
        let db = TestDatabase::create(&format!("cache_{test}")).await?;
        // Small pools: the tests run in parallel on one server.
        let options = PgOptions {
            max_connections: 4,
            token_writers: 2,
        };
        let store = CachedStore::new(Arc::new(PgStore::connect(&db.url, options).await.unwrap()));
        store.warm(0).await.unwrap();
        Some(Fresh { store, _db: db })
    }

    tessera_core::conformance_tests!(optional | test | fresh(test).await);
}
