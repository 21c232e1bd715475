//! The storage conformance suite, run against [`MemoryStore`]: the in-memory store that
//! handler tests use keeps every contract the database stores keep (a fresh store per test).

use tessera_core::store::memory::MemoryStore;

tessera_core::conformance_tests!(Box::new(MemoryStore::new()));
