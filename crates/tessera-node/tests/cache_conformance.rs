//! The storage conformance suite of `tessera-core`, run against [`CachedStore`] over SQLite:
//! the cache must keep every contract of the store it wraps (a fresh database file per test).
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
