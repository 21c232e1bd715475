//! A PostgreSQL crash under load: two nodes over a PostgreSQL server of the test's own,
//! stopped with `pg_ctl stop -m immediate` while token requests and introspections run, and
//! started again once both nodes have shown how they behave without it.
//!
//! While it is down, what needs the database fails at once with 503, `Retry-After` and the
//! RFC 6749 error shape; JWT issuance and introspection answered from the caches go on;
//! `/health/ready` answers 503 within a second; each node logs the outage once and the
//! recovery once. Nothing acknowledged is lost, and both nodes serve again once it is back.
//!
//! The test starts its own server (`initdb` and `pg_ctl` from Debian's `postgresql` package,
//! as the `postgres` user when run as root) so that the shared one is never stopped. Without
//! the PostgreSQL binaries it is skipped with a note on stderr, or fails when `CI` is set.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{free_port, http_client, wait_until, Creds, Server};

/// A PostgreSQL server of one test, on a free port, removed when dropped.
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/VERSION/bin` holding `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl OwnPostgres {
    /// Starts a fresh server, or returns `None` (with a note) when PostgreSQL is not installed.
    fn start(test: &str) -> Option<OwnPostgres> {
        let Some(bin) = postgres_bin() else {
            if std::env::var_os("CI").is_some() {
                panic!("no PostgreSQL under /usr/lib/postgresql, and CI is set: {test} must run");
            }
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (PostgreSQL): {test} needs PostgreSQL's server binaries \
                 (/usr/lib/postgresql/*/bin, Debian's postgresql package)"
            );
            return None;
        };
        // PostgreSQL refuses to run as root: then it runs as the `postgres` user.
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("tessera-outage-pg")
            .tempdir()
            .expect("tempdir");
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL directory");
        }
        let pg = OwnPostgres {
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            bin,
            port: free_port(),
            as_postgres,
            _dir: dir,
        };
        let data = pg.data.display().to_string();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "tessera",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        pg.pg_ctl_start();
        Some(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections=50",
            self.port,
            self.data.display()
        );
        let data = self.data.display().to_string();
        let log = self.log.display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        );
    }

    /// Stops the server the hard way: every backend killed, no checkpoint (a crash).
    fn crash(&self) {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://tessera@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

/// Whether this process runs as root (`id -u`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One answer seen by the load.
#[derive(Debug)]
struct Seen {
    what: &'static str,
    node: usize,
    started: Instant,
    took: Duration,
    status: u16,
    retry_after: bool,
    body: Value,
}

/// Sends one request and records what came back (a transport error is recorded as 0).
async fn record(
    seen: &Mutex<Vec<Seen>>,
    what: &'static str,
    node: usize,
    req: reqwest::RequestBuilder,
) -> Value {
    let started = Instant::now();
    let (status, retry_after, body) = match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after = res.headers().contains_key("retry-after");
            let body = res.json::<Value>().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }
        Err(_) => (0, false, Value::Null),
    };
    seen.lock().unwrap().push(Seen {
        what,
        node,
        started,
        took: started.elapsed(),
        status,
        retry_after,
        body: body.clone(),
    });
    body
}

/// What each worker asks for, in turn.
const KINDS: [&str; 4] = ["jwt", "opaque", "introspect-jwt", "introspect-opaque"];

fn count(logs: &str, text: &str) -> usize {
    logs.lines().filter(|l| l.contains(text)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_crash_under_load_fails_fast_and_recovers() {
    let Some(pg) = OwnPostgres::start("a_postgres_crash_under_load_fails_fast_and_recovers") else {
        return;
    };
    let url = pg.url();
    let mut env: Vec<(&str, &str)> = vec![
        ("TESSERA_DATABASE_URL", &url),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
    ];
    let a = Server::start_with(&env).await;
    let issuer = a.issuer().to_owned();
    env.push(("TESSERA_ISSUER", &issuer));
    let b = Server::start_with(&env).await;
    let nodes = Arc::new([a, b]);

    let jwt = nodes[0].create_client(&[]).await;
    let opaque = nodes[0]
        .create_client(&["--access-token-format", "opaque"])
        .await;
    nodes[1].wait_known(&jwt).await;
    nodes[1].wait_known(&opaque).await;
    // Tokens from before the outage, introspected once on each node (so cached there).
    let old_jwt = nodes[0].access_token(&jwt).await;
    let old_opaque = nodes[0].access_token(&opaque).await;
    for n in nodes.iter() {
        assert!(n.is_active(&jwt, &old_jwt).await);
        assert!(n.is_active(&opaque, &old_opaque).await);
    }

    // The load: on each node, a JWT request, an opaque-token request and an introspection of
    // each old token, in a loop, from 3 workers per node, until told to stop.
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for node in 0..2 {
        for _ in 0..3 {
            let (nodes, seen, stop) = (nodes.clone(), seen.clone(), stop.clone());
            let (jwt, opaque) = (jwt.clone(), opaque.clone());
            let (old_jwt, old_opaque) = (old_jwt.clone(), old_opaque.clone());
            workers.push(tokio::spawn(async move {
                let n = &nodes[node];
                let http = http_client();
                let token = |c: &Creds| {
                    http.post(n.url("/oauth2/token"))
                        .basic_auth(&c.id, Some(&c.secret))
                        .form(&[("grant_type", "client_credentials")])
                };
                let introspect = |c: &Creds, t: &str| {
                    http.post(n.url("/oauth2/introspect"))
                        .basic_auth(&c.id, Some(&c.secret))
                        .form(&[("token", t)])
                };
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    record(&seen, "jwt", node, token(&jwt)).await;
                    record(&seen, "opaque", node, token(&opaque)).await;
                    record(&seen, "introspect-jwt", node, introspect(&jwt, &old_jwt)).await;
                    record(
                        &seen,
                        "introspect-opaque",
                        node,
                        introspect(&opaque, &old_opaque),
                    )
                    .await;
                }
            }));
        }
    }

    // The crash comes once every kind of request has been answered on both nodes.
    wait_until(
        Duration::from_secs(20),
        "the load answered on both nodes",
        || async {
            let seen = seen.lock().unwrap();
            KINDS.iter().all(|what| {
                (0..2).all(|node| {
                    seen.iter()
                        .any(|s| s.what == *what && s.node == node && s.status == 200)
                })
            })
        },
    )
    .await;
    let crashed = Instant::now();
    pg.crash();
    // While it is down, each node's readiness probe answers 503 within a second (the probe's
    // own timeout); the first probes may still find a connection that has not failed yet.
    // The database stays down until every node has shown each behaviour asserted below for
    // the outage: readiness 503, and, a second after the crash, answers from the caches and
    // opaque tokens refused.
    let probe = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut ready_down = [false, false];
    let outage_shown = || {
        let known = crashed + Duration::from_secs(1);
        let seen = seen.lock().unwrap();
        let during: Vec<&Seen> = seen.iter().filter(|s| s.started > known).collect();
        (0..2).all(|node| {
            let shown = |what: &str, status: u16| {
                during
                    .iter()
                    .any(|s| s.what == what && s.node == node && s.status == status)
            };
            shown("opaque", 503)
                && ["jwt", "introspect-jwt", "introspect-opaque"]
                    .iter()
                    .all(|what| shown(what, 200))
        })
    };
    while ready_down != [true, true] || !outage_shown() {
        assert!(
            crashed.elapsed() < Duration::from_secs(30),
            "30 s after the crash, the outage's behaviour was still not shown on both nodes \
             (readiness said 503 while the database was down: {ready_down:?})"
        );
        for (i, n) in nodes.iter().enumerate() {
            let res = probe
                .get(n.url("/health/ready"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("node {i}: /health/ready did not answer: {e}"));
            if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                assert!(res.headers().contains_key("retry-after"));
                ready_down[i] = true;
            } else {
                assert!(
                    !ready_down[i],
                    "node {i}: ready again while the database is down"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let restarted = Instant::now();
    pg.pg_ctl_start();
    let back = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        wait_until(
            Duration::from_secs(10),
            &format!("node {i} ready again"),
            || async {
                probe
                    .get(n.url("/health/ready"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            },
        )
        .await;
    }
    eprintln!(
        "outage: PostgreSQL restarted in {:?}; both nodes ready {:?} after that",
        back - restarted,
        back.elapsed()
    );
    // Both nodes issue opaque tokens again.
    for n in nodes.iter() {
        wait_until(
            Duration::from_secs(5),
            "opaque tokens issued again",
            || async { n.token_status(&opaque).await == StatusCode::OK },
        )
        .await;
    }
    // The load goes on until every worker's kind of request has been answered again on
    // both nodes since the database came back.
    wait_until(
        Duration::from_secs(20),
        "the load answered again on both nodes",
        || async {
            let seen = seen.lock().unwrap();
            KINDS.iter().all(|what| {
                (0..2).all(|node| {
                    seen.iter().any(|s| {
                        s.what == *what && s.node == node && s.status == 200 && s.started > back
                    })
                })
            })
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    // Never a 500, never a dropped connection: every answer is a success or a 503.
    for s in &seen {
        assert!(
            s.status == 200 || s.status == 503,
            "{} on node {}: status {} {}",
            s.what,
            s.node,
            s.status,
            s.body
        );
        if s.status == 503 {
            assert!(s.retry_after, "503 without Retry-After: {s:?}");
            assert_eq!(s.body["error"], "server_error", "{s:?}");
            assert!(s.body["error_description"].is_string(), "{s:?}");
        }
    }
    // A second after the crash the outage is known: from then until the restart, requests
    // that need the database fail at once (not after the pool's connection timeout), and
    // what the caches answer goes on.
    let known = crashed + Duration::from_secs(1);
    let outage: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.started > known && s.started + s.took < restarted)
        .collect();
    for what in ["jwt", "introspect-jwt", "introspect-opaque"] {
        for node in 0..2 {
            let ok = outage
                .iter()
                .filter(|s| s.what == what && s.node == node && s.status == 200)
                .count();
            assert!(
                ok > 0,
                "no {what} answered on node {node} during the outage"
            );
        }
    }
    for s in outage.iter().filter(|s| s.what.starts_with("introspect")) {
        if s.status == 200 {
            assert_eq!(s.body["active"], true, "{s:?}");
        }
    }
    let opaque_down: Vec<&&Seen> = outage.iter().filter(|s| s.what == "opaque").collect();
    assert!(!opaque_down.is_empty());
    for s in &opaque_down {
        assert_eq!(
            s.status, 503,
            "an opaque token issued without a database: {s:?}"
        );
        assert!(
            s.took < Duration::from_secs(1),
            "a request waited {:?} for a database known to be down",
            s.took
        );
    }

    let slowest = opaque_down.iter().map(|s| s.took).max().unwrap_or_default();
    let ok_during: usize = outage.iter().filter(|s| s.status == 200).count();
    eprintln!(
        "outage: {} requests while down ({ok_during} answered 200 from the caches), slowest \
         503 {slowest:?}; {} answers in all",
        outage.len(),
        seen.len()
    );

    // Nothing acknowledged is lost: every opaque token handed out is active on both nodes.
    let issued: Vec<String> = seen
        .iter()
        .filter(|s| s.what == "opaque" && s.status == 200)
        .map(|s| s.body["access_token"].as_str().unwrap().to_owned())
        .collect();
    assert!(!issued.is_empty());
    for (i, t) in issued.iter().enumerate() {
        assert!(
            nodes[i % 2].is_active(&opaque, t).await,
            "an acknowledged token was lost"
        );
    }

    // The log says once that the database went away and once that it is back, and never
    // once per request.
    for (i, n) in nodes.iter().enumerate() {
        let logs = n.logs();
        assert_eq!(
            count(&logs, "database unreachable:"),
            1,
            "node {i}:\n{logs}"
        );
        assert_eq!(
            count(&logs, "database reachable again"),
            1,
            "node {i}:\n{logs}"
        );
        assert_eq!(count(&logs, "request failed"), 0, "node {i}:\n{logs}");
        assert_eq!(
            count(&logs, "change feed poll failed"),
            0,
            "node {i}:\n{logs}"
        );
    }
}
