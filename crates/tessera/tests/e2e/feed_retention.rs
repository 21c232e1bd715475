//! Two `tessera serve` nodes over one SQLite file, one of them stopped (SIGSTOP) for longer
//! than the change feed keeps its entries: when it resumes, it finds that it missed entries,
//! drops its caches and reloads, and honours what was revoked meanwhile.

use std::time::Duration;

use reqwest::StatusCode;
use sqlx::Connection as _;

use crate::support::{wait_until, Server};

/// One number from the database.
async fn scalar(url: &str, sql: &str) -> i64 {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.ok();
    n
}

fn signal(server: &Server, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_past_the_feed_retention_honours_the_revocation_it_missed() {
    // Node A keeps feed entries one second and purges every second.
    let a = Server::start_with(&[
        ("TESSERA_CHANGE_RETENTION", "1"),
        ("TESSERA_PURGE_INTERVAL", "1"),
    ])
    .await;
    let db = format!("sqlite://{}", a.dir_path().join("tessera.db").display());
    // Node B shares its database and issuer, and does not purge during the test.
    let b = Server::start_with(&[
        ("TESSERA_DATABASE_URL", &db),
        ("TESSERA_ISSUER", a.issuer()),
        ("TESSERA_CHANGE_RETENTION", "1"),
        ("TESSERA_PURGE_INTERVAL", "3600"),
    ])
    .await;
    let client = a.create_client(&[]).await;
    b.wait_known(&client).await;
    let token = a.access_token(&client).await;
    assert!(b.is_active(&client, &token).await);

    let before = scalar(&db, "SELECT MAX(seq) FROM changes").await;
    signal(&b, "-STOP");
    assert_eq!(a.revoke(&client, &token).await, StatusCode::OK);
    assert!(!a.is_active(&client, &token).await);
    // A's purge removes the revocation's feed entry and moves the horizon past it.
    wait_until(
        Duration::from_secs(15),
        "the revocation's feed entry is purged",
        || async {
            scalar(&db, "SELECT seq FROM change_feed_horizon").await > before
                && scalar(&db, "SELECT count(*) FROM changes WHERE kind = 'jti'").await == 0
        },
    )
    .await;
    signal(&b, "-CONT");

    wait_until(
        Duration::from_secs(2),
        "the resumed node honours the revocation it missed",
        || async { !b.is_active(&client, &token).await },
    )
    .await;
    // The line is written once the reload is done, which may be just after the first answer.
    wait_until(
        Duration::from_secs(2),
        "the resumed node logs the reload",
        || async { b.logs().contains("fell behind the change feed's retention") },
    )
    .await;
    let logs = b.logs();
    assert_eq!(
        logs.matches("fell behind the change feed's retention")
            .count(),
        1,
        "logged once:\n{logs}"
    );
    // Back in step: a later revocation reaches it through the feed as usual.
    let second = a.access_token(&client).await;
    assert!(b.is_active(&client, &second).await);
    assert_eq!(a.revoke(&client, &second).await, StatusCode::OK);
    wait_until(Duration::from_secs(1), "a later revocation", || async {
        !b.is_active(&client, &second).await
    })
    .await;
}
