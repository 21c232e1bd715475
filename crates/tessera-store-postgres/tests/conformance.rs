//! The storage conformance suite of `tessera-core`, run against PostgreSQL: a fresh database
//! per test (skipped, with a note, when `TESSERA_TEST_POSTGRES_URL` is unset outside CI).
#![allow(clippy::unwrap_used)]

use tessera_store_postgres::testing::TestDatabase;
use tessera_store_postgres::{PgOptions, PgStore};

struct Fresh {
    store: PgStore,
    _db: TestDatabase,
}

impl std::ops::Deref for Fresh {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

async fn fresh(test: &str) -> Option<Fresh> {
    let db = TestDatabase::create(test).await?;
    let options = PgOptions {
        max_connections: 4,
        token_writers: 2,
    };
    Some(Fresh {
        store: PgStore::connect(&db.url, options).await.unwrap(),
        _db: db,
    })
}

tessera_core::conformance_tests!(optional | test | fresh(test).await);
