//! The storage conformance suite of `tessera-core`, run against SQLite: a fresh database file
//! per test.
#![allow(clippy::unwrap_used)]

use tessera_store_sqlite::SqliteStore;

struct Fresh {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fresh {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Fresh {
        store: SqliteStore::connect(&url).await.unwrap(),
        _dir: dir,
    }
}

tessera_core::conformance_tests!(fresh().await);
