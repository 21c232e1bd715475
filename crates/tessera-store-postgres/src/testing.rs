//! A fresh PostgreSQL database per test (feature `testing`).
//!
//! Owns [`TestDatabase`]. Tests that need PostgreSQL read the server's URL from
//! `TESSERA_TEST_POSTGRES_URL` (a role that may create databases, and a database to connect
//! to for that, e.g. `postgres://tessera:tessera@127.0.0.1:5432/tessera_test`). Each test gets
//! a database of its own, created from that URL and dropped when the test ends, so tests run
//! in parallel. When the variable is unset, a test is skipped with a note on stderr, unless
//! `CI` is set: then it fails, so that CI cannot pass without having run them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The variable naming the PostgreSQL server tests use.
pub const URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";

/// The server URL, or `None` (with a note) when PostgreSQL tests are skipped.
///
/// # Panics
/// When the variable is unset and `CI` is set.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{URL_VAR} is not set, and CI is: PostgreSQL tests must run in CI")
        }
        _ => {
            // Straight to stderr, not through `eprintln!`, which the test harness captures
            // (and shows only for failing tests); once per test binary.
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (PostgreSQL): {URL_VAR} is not set, so the PostgreSQL tests of \
                     this binary pass without running (first: {test}). See the README's Tests \
                     section to run them."
                );
            });
            None
        }
    }
}

/// A database made for one test, dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database, or returns `None` when PostgreSQL tests are skipped (see
    /// [`server_url`]).
    pub async fn create(test: &str) -> Option<Self> {
        let server = server_url(test)?;
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tessera_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let mut admin = PgConnectOptions::from_str(&server)
            .expect("TESSERA_TEST_POSTGRES_URL is not a PostgreSQL URL")
            .connect()
            .await
            .expect("cannot connect to TESSERA_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await.ok();
        Some(Self {
            url: with_database(&server, &name),
            server,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its
        // own does it.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(opts) = PgConnectOptions::from_str(&server) {
                    if let Ok(mut admin) = opts.connect().await {
                        let _ = sqlx::query(&sql).execute(&mut admin).await;
                        let _ = admin.close().await;
                    }
                }
            });
        });
        let _ = done.join();
    }
}

/// `postgres://u:p@h:5432/old?x=y` with database `name` instead of `old`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/db?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
