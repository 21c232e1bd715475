//! The HTTP server's edges: metric labels a client cannot multiply, `/metrics` off the public
//! listener, connections that cannot use up the server, and a port that is not shared.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{http_client, metric, raw_status, Server, BIN, METRICS_TOKEN};

/// Reads one HTTP/1.1 response (head and `Content-Length` body) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf).into_owned();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes the connection (end of file or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn invented_methods_paths_and_grant_types_add_no_metric_label() {
    let s = Server::start().await;
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    let mut rng = crate::support::Rng::new(7);
    let mut invented = Vec::new();
    for _ in 0..300 {
        let method: String = (0..10)
            .map(|_| char::from(b'A' + (rng.below(26) as u8)))
            .collect();
        let request = format!("{method} /health/alive HTTP/1.1\r\nHost: tessera\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await;
        assert_eq!(raw_status(&response), 405, "{response}");
        invented.push(method);
    }
    // Nor do invented paths or grant types.
    let c = s.create_client(&[]).await;
    for _ in 0..50 {
        let word: String = (0..12)
            .map(|_| char::from(b'a' + (rng.below(26) as u8)))
            .collect();
        let res = s.http.get(s.url(&format!("/{word}"))).send().await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND);
        let res = s
            .http
            .post(s.url("/oauth2/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", word.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::BAD_REQUEST);
        invented.push(word);
    }
    let text = s.metrics().await;
    for method in &invented {
        assert!(
            !text.contains(method.as_str()),
            "{method} became a label:\n{text:.2000}"
        );
    }
    let other = metric(
        &text,
        "tessera_http_requests_total",
        &[
            ("endpoint", "/health/alive"),
            ("method", "other"),
            ("status", "405"),
        ],
    );
    assert_eq!(other, 300.0, "{text:.3000}");
}

#[tokio::test]
async fn metrics_are_read_on_the_public_listener_only_with_the_token() {
    // No token configured: /metrics is not on the public listener; the probes are.
    let s = Server::start_with(&[("TESSERA_METRICS_TOKEN", "")]).await;
    let http = http_client();
    let res = http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND);
    for path in ["/health/alive", "/health/ready"] {
        let res = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
    }
    drop(s);

    // A token configured: only a request bearing it reads them.
    let s = Server::start().await;
    let res = http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    for wrong in ["wrong", "e2e-metrics-toke", "e2e-metrics-tokenX"] {
        let res = http
            .get(s.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED, "{wrong}");
    }
    let res = http
        .get(s.url("/metrics"))
        .basic_auth(METRICS_TOKEN, Some(METRICS_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED, "Basic");
    let res = http
        .get(s.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("tessera_http_requests_total"));
}

#[tokio::test]
async fn a_second_server_on_a_port_in_use_exits_with_an_error() {
    let s = Server::start().await;
    let c = s.create_client(&[]).await;
    // The same listen address, a database of its own.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("other.db").display());
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        s.cli_output_with(&["serve"], &[("TESSERA_DATABASE_URL", db.as_str())]),
    )
    .await
    .expect("the second server exits instead of serving");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&s.addr()), "{stderr}");
    // Every request still reaches the first server.
    for _ in 0..20 {
        s.token_ok(&c).await;
    }
}

/// A `tessera serve` started under a file-descriptor limit of `nofile`, with its own
/// environment; killed when dropped.
struct Limited {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_limited(nofile: u32, extra: &[(&str, &str)]) -> Limited {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" serve"))
        .arg(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("TESSERA_LISTEN", &addr)
        .env("TESSERA_ISSUER", format!("http://{addr}"))
        .env(
            "TESSERA_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env(
            "TESSERA_SECRET",
            "e2e-test-sealing-secret-not-for-production",
        )
        .env("TESSERA_WORKERS", "2")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
    let child = cmd.spawn().unwrap();
    let server = Limited {
        child,
        addr,
        _dir: dir,
    };
    let http = http_client();
    let url = format!("http://{}/health/ready", server.addr);
    crate::support::wait_until(Duration::from_secs(20), "the server is ready", || {
        let req = http.get(&url).send();
        async move { req.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    server
}

#[tokio::test]
async fn idle_connections_past_the_descriptor_limit_keep_no_probe_out() {
    // 200 descriptors; the header timeout far longer than the test, so nothing closes idle
    // connections but the server's cap.
    let s = start_limited(200, &[("TESSERA_HEADER_READ_TIMEOUT", "120")]).await;
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(&s.addr).await.unwrap());
    }
    // Wait until the server has accepted every one of them (closing the oldest idle ones
    // to make room): nothing is left in its listener's accept queue.
    let port: u16 = s.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    crate::support::wait_until(
        Duration::from_secs(20),
        "the server accepted the idle connections",
        || async move { crate::support::accept_queue(port) == 0 },
    )
    .await;
    let probe = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for path in ["/health/alive", "/health/ready"] {
        let res = probe
            .get(format!("http://{}{path}", s.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} behind 400 idle connections: {e}"));
        assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
    }
    // The oldest idle connections were closed to make room.
    let mut first = idle.swap_remove(0);
    assert!(closed_within(&mut first, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_connection_that_sends_no_request_is_closed_after_the_header_timeout() {
    let ops = format!("127.0.0.1:{}", crate::support::free_port());
    let s = Server::start_with(&[
        ("TESSERA_HEADER_READ_TIMEOUT", "1"),
        ("TESSERA_OPS_LISTEN", ops.as_str()),
    ])
    .await;
    // Nothing sent at all, on either listener.
    let mut silent = TcpStream::connect(s.addr()).await.unwrap();
    let mut silent_ops = TcpStream::connect(&ops).await.unwrap();
    // Half a request head.
    let mut partial = TcpStream::connect(s.addr()).await.unwrap();
    partial
        .write_all(b"GET /health/alive HTTP/1.1\r\nHost: tessera\r\nX-Slow: ")
        .await
        .unwrap();
    // A kept-alive connection after its response.
    let mut kept = TcpStream::connect(s.addr()).await.unwrap();
    kept.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: tessera\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(raw_status(&read_response(&mut kept).await), 200);
    for (what, stream) in [
        ("silent", &mut silent),
        ("silent operational", &mut silent_ops),
        ("partial", &mut partial),
        ("kept alive", &mut kept),
    ] {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "the {what} connection is still open"
        );
    }
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let s = Server::start().await;
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    let head = format!(
        "GET /health/alive HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // The server may refuse and close before all of it is written.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the server answers or closes within 10 s");
    let response = String::from_utf8_lossy(&out);
    assert!(
        response.is_empty() || raw_status(&response) == 431,
        "{response:.300}"
    );
    // A head within the limit is served.
    let ok = crate::support::raw_exchange(
        &s.addr(),
        format!(
            "GET /health/alive HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
            "a".repeat(8 * 1024)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(raw_status(&ok), 200, "{ok:.300}");
}
