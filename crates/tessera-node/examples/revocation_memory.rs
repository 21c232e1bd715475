//! Measures what the revocations of JWTs cost a node's memory: the heap that
//! [`CachedStore`] holds after it learnt of a million revoked JWT ids from the change feed,
//! measured as the growth of the
//! process's resident memory (Linux).
//!
//! Run with `cargo run --release -p tessera-http --example revocation_memory [COUNT]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;

use tessera_core::model::{Change, ChangeKind};
use tessera_core::store::TokenStore;
use tessera_node::cache::CachedStore;
use tessera_store_sqlite::SqliteStore;

/// The process's resident memory, bytes (Linux).
fn rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .expect("VmRSS in /proc/self/status")
        * 1024
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("COUNT is a number"));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let before = rss();
    let cache = CachedStore::new(store);
    let empty = rss();
    let mut change = Change {
        seq: 0,
        kind: ChangeKind::Jti,
        key: String::new(),
    };
    for i in 0..count {
        change.seq = i as i64 + 1;
        // The shape of `tessera_core::jwt::make_jti`: 22 characters of base64url and an epoch.
        change.key = format!("{:022}.0", i);
        cache.apply(&change);
    }
    let after = rss();
    // Lookups of ids never revoked that the filter cannot rule out go to the database.
    let probes = 100_000;
    let mut misses = 0;
    for i in 0..probes {
        if cache.is_jti_revoked(&format!("never-{i}")).await.unwrap() {
            misses += 1;
        }
    }
    assert_eq!(misses, 0, "an id never revoked is never reported revoked");
    let grown = after - empty;
    println!(
        "cache at start: {} B; after {count} revocations: {} B more ({:.1} B per revocation, \
         {:.1} MiB per million); estimated share of lookups sent to the database: {:.3} %",
        empty - before,
        grown,
        grown as f64 / count as f64,
        grown as f64 / count as f64 * 1e6 / (1024.0 * 1024.0),
        cache.revocation_filter_false_positive_rate() * 100.0,
    );
    drop(cache);
}
