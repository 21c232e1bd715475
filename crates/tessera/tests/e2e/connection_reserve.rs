//! The connection cap held by requests that never finish sending their bodies: health probes
//! still answer, on the small reserve of connections kept for them, and anything else sent
//! there gets `503` with `Retry-After`.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::{raw_exchange, raw_status, unread_by_server, wait_until, Server};

/// A token request whose body is announced but never sent: the connection stays busy.
const SLOW_BODY: &[u8] = b"POST /oauth2/token HTTP/1.1\r\nHost: tessera\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=";

#[tokio::test]
async fn with_every_connection_busy_a_health_probe_still_answers() {
    let server = Server::start_with(&[
        ("TESSERA_MAX_CONNECTIONS", "2"),
        ("TESSERA_REQUEST_TIMEOUT", "60"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(SLOW_BODY).await.unwrap();
        held.push(stream);
    }
    // Wait until the server has read both requests' headers (nothing of them is left unread
    // in its end of either connection): both connections are then answering. A probe sent
    // before that would find them idle and take the place of one of them.
    let port = server.port();
    let clients: Vec<u16> = held
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    wait_until(
        Duration::from_secs(20),
        "the server read both held requests' headers",
        || {
            let clients = clients.clone();
            async move {
                clients
                    .iter()
                    .all(|c| unread_by_server(port, *c) == Some(0))
            }
        },
    )
    .await;

    for path in ["/health/alive", "/health/ready"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\n\r\n");
        let response = raw_exchange(&server.addr(), request.as_bytes()).await;
        assert_eq!(raw_status(&response), 200, "{path}: {response}");
    }

    // Anything else on a reserve connection: 503, Retry-After, in the RFC's error shape.
    let response = raw_exchange(
        &server.addr(),
        b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: tessera\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&response), 503, "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("\r\nretry-after: 1\r\n"), "{response}");
    assert!(
        lower.contains("\"error\":\"temporarily_unavailable\""),
        "{response}"
    );

    // Once the held requests are gone, other requests are served as before.
    drop(held);
    let addr = server.addr();
    wait_until(Duration::from_secs(5), "requests are served again", || {
        let addr = addr.clone();
        async move {
            let response = raw_exchange(
                &addr,
                b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: tessera\r\n\
                  Connection: close\r\n\r\n",
            )
            .await;
            raw_status(&response) == 200
        }
    })
    .await;
}
