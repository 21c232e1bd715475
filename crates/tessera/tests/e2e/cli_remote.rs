//! The management commands run both ways: against the database, and with `--server URL`
//! through the admin API (with no database reachable at all), printing the same output and
//! exiting with the same codes; a refused or missing admin token fails the command with the
//! server's words.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{free_port, Creds, Server};

/// The bootstrap admin token of these tests.
const BOOTSTRAP: &str = "e2e-remote-cli-bootstrap-token-0123456789";

/// A server with the admin API on its own listener.
struct Setup {
    server: Server,
    admin: String,
}

async fn setup() -> Setup {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&[
        ("TESSERA_ADMIN_LISTEN", addr.as_str()),
        ("TESSERA_ADMIN_TOKEN", BOOTSTRAP),
    ])
    .await;
    Setup {
        server,
        admin: format!("http://{addr}"),
    }
}

/// How a command reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Database,
    Remote,
}

const BOTH: [Way; 2] = [Way::Database, Way::Remote];

/// What a command printed, and whether it succeeded.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Setup {
    /// Runs `tessera ARGS` the given way. Through the admin API the database URL points
    /// nowhere, so nothing can have come from the database.
    async fn run(&self, way: Way, args: &[&str]) -> Ran {
        self.run_with(way, args, &[]).await
    }

    async fn run_with(&self, way: Way, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut all: Vec<&str> = Vec::new();
        let mut vars: Vec<(&str, &str)> = env.to_vec();
        if way == Way::Remote {
            all.extend(["--server", &self.admin]);
            vars.push(("TESSERA_DATABASE_URL", "sqlite:///nonexistent/tessera.db"));
        }
        all.extend_from_slice(args);
        let out = self.server.cli_output_with(&all, &vars).await;
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn json(&self, way: Way, args: &[&str]) -> Value {
        let r = self.run(way, args).await;
        assert!(r.ok, "{way:?} {args:?}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    }
}

#[tokio::test]
async fn client_commands_print_the_same_either_way() {
    let s = setup().await;
    let mut shown = Vec::new();
    let mut refusals = Vec::new();
    for way in BOTH {
        let name = format!("svc-{way:?}");
        let made = s
            .json(
                way,
                &[
                    "client",
                    "create",
                    "--name",
                    &name,
                    "--grant-type",
                    "client_credentials",
                    "--scope",
                    "read",
                    "--json",
                ],
            )
            .await;
        let id = made["client_id"].as_str().unwrap().to_owned();
        let creds = Creds {
            id: id.clone(),
            secret: made["client_secret"].as_str().unwrap().to_owned(),
        };
        assert!(creds.secret.starts_with("tcs_"), "{way:?}");
        s.server.wait_known(&creds).await;
        s.server.token_ok(&creds).await;

        // list: the same line for the client.
        let list = s.run(way, &["client", "list"]).await;
        assert!(list.ok, "{}", list.stderr);
        assert!(
            list.stdout
                .contains(&format!("{id}  {name}  [client_credentials]  jwt\n")),
            "{way:?}: {}",
            list.stdout
        );
        let update = s
            .run(way, &["client", "update", &id, "--scope", "read write"])
            .await;
        assert!(update.ok, "{}", update.stderr);
        assert_eq!(update.stdout, format!("updated client {id}\n"));
        let show = s.json(way, &["client", "show", &id, "--json"]).await;
        assert_eq!(show["scope"], "read write");
        shown.push(show);

        // rotate-secret: the old secret stops, the new one works.
        let rotated = s
            .json(way, &["client", "rotate-secret", &id, "--json"])
            .await;
        assert_eq!(rotated["client_id"], id.as_str());
        let new = creds.with_secret(rotated["client_secret"].as_str().unwrap());
        let (srv, old) = (&s.server, &creds);
        crate::support::wait_until(
            crate::support::FEED_DEADLINE,
            "the old secret refused",
            move || async move { srv.token_status(old).await == StatusCode::UNAUTHORIZED },
        )
        .await;
        s.server.token_ok(&new).await;

        let revoked = s.run(way, &["client", "revoke-tokens", &id]).await;
        assert!(revoked.ok, "{}", revoked.stderr);
        assert_eq!(
            revoked.stdout,
            format!("every token issued to {id} until now is revoked\n")
        );
        let deleted = s.run(way, &["client", "delete", &id]).await;
        assert!(deleted.ok, "{}", deleted.stderr);
        assert_eq!(
            deleted.stdout,
            format!("deleted client {id}; its tokens are no longer valid\n")
        );
        // A client that is gone: a failure naming it, both ways.
        let gone = s.run(way, &["client", "show", &id]).await;
        assert!(!gone.ok);
        assert!(
            gone.stderr.contains(&format!("no client '{id}'")),
            "{way:?}: {}",
            gone.stderr
        );

        // A registration the core refuses names the flag, both ways.
        let bad = s
            .run(
                way,
                &[
                    "client",
                    "create",
                    "--name",
                    "web",
                    "--grant-type",
                    "authorization_code",
                    "--redirect-uri",
                    "http://app.example.com/cb",
                ],
            )
            .await;
        assert!(!bad.ok);
        assert!(
            bad.stderr
                .contains("'http://app.example.com/cb' must use https"),
            "{way:?}: {}",
            bad.stderr
        );
        refusals.push(bad.stderr);
        // A misspelt setting names its flag, both ways.
        let bad = s
            .run(
                way,
                &[
                    "client",
                    "create",
                    "--name",
                    "x",
                    "--access-token-format",
                    "xml",
                ],
            )
            .await;
        assert!(!bad.ok);
        assert!(
            bad.stderr.contains("--access-token-format"),
            "{way:?}: {}",
            bad.stderr
        );
        refusals.push(bad.stderr);
    }
    // The same words either way.
    assert_eq!(refusals[0], refusals[2]);
    assert_eq!(refusals[1], refusals[3]);
    // `show --json` has the same fields with the same kinds of values either way.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&shown[0]), keys(&shown[1]));
    for field in [
        "grant_types",
        "scope",
        "env",
        "access_token_format",
        "public",
    ] {
        assert_eq!(shown[0][field], shown[1][field], "{field}");
    }
}

#[tokio::test]
async fn client_import_reports_every_line_the_same_either_way() {
    let s = setup().await;
    let sha = "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    let mut outputs = Vec::new();
    for way in BOTH {
        let id = format!("moved-{way:?}").to_lowercase();
        let lines = [
            json!({"name": "moved", "client_id": id, "secret_hash": sha, "scope": "read"})
                .to_string(),
            "{not json".to_owned(),
            json!({"name": "x", "client_id": "md5", "secret_hash": "$1$salt$abc"}).to_string(),
            json!({"name": "x", "client_id": "typo", "secret_hsah": sha}).to_string(),
            json!({"name": "again", "client_id": id, "secret_hash": sha}).to_string(),
        ];
        let file = s.server.dir_path().join(format!("import-{way:?}.jsonl"));
        std::fs::write(&file, lines.join("\n")).unwrap();
        let ran = s
            .run(way, &["client", "import", file.to_str().unwrap()])
            .await;
        assert!(!ran.ok, "a failed line fails the command");
        assert!(ran.stderr.contains("4 of 5 lines failed"), "{}", ran.stderr);
        assert!(!ran.stdout.contains("5e884898"), "no hash echoed");
        let out = ran.stdout.replace(&id, "ID");
        assert!(
            out.starts_with("line 1: created ID\nline 2: error: "),
            "{way:?}: {out}"
        );
        assert!(
            out.contains("line 3: error: secret_hash: "),
            "{way:?}: {out}"
        );
        assert!(
            out.contains("line 4: error: unknown field 'secret_hsah'"),
            "{out}"
        );
        assert!(
            out.contains("line 5: error: ") && out.contains("already exists"),
            "{out}"
        );
        assert!(out.ends_with("1 created, 4 failed\n"), "{out}");
        outputs.push(out);

        // The imported client authenticates with its old secret.
        let c = Creds {
            id,
            secret: "password".into(),
        };
        s.server.wait_known(&c).await;
        s.server.token_ok(&c).await;
    }
    // Line by line the same, but for the words of a duplicate.
    let first_lines = |o: &str| o.lines().take(4).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(first_lines(&outputs[0]), first_lines(&outputs[1]));
}

#[tokio::test]
async fn a_refused_admin_token_fails_with_the_servers_words() {
    let s = setup().await;
    // No token at all: said before anything is sent.
    let ran = s
        .run_with(
            Way::Remote,
            &["client", "list"],
            &[("TESSERA_ADMIN_TOKEN", "")],
        )
        .await;
    assert!(!ran.ok);
    assert!(
        ran.stderr.contains("needs an admin token"),
        "{}",
        ran.stderr
    );
    // A wrong one: the server's 401 and its description.
    let ran = s
        .run_with(
            Way::Remote,
            &["client", "list"],
            &[("TESSERA_ADMIN_TOKEN", "tsa_wrong_token")],
        )
        .await;
    assert!(!ran.ok);
    assert!(
        ran.stderr.contains("refused the admin token") && ran.stderr.contains("not valid"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty());
    assert!(
        !ran.stderr.contains("tsa_wrong_token"),
        "the token is not echoed"
    );

    // A token in a file, with too little scope: 403 and its words; with enough, it works.
    let reader = s
        .json(
            Way::Database,
            &[
                "admin-token",
                "create",
                "--name",
                "reader",
                "--scope",
                "clients:read",
                "--json",
            ],
        )
        .await;
    let file = s.server.dir_path().join("admin-token");
    std::fs::write(&file, format!("{}\n", reader["token"].as_str().unwrap())).unwrap();
    let path = file.to_str().unwrap();
    let ran = s
        .run_with(
            Way::Remote,
            &[
                "--admin-token-file",
                path,
                "client",
                "create",
                "--name",
                "x",
            ],
            &[("TESSERA_ADMIN_TOKEN", "")],
        )
        .await;
    assert!(!ran.ok);
    assert!(ran.stderr.contains("may not do this"), "{}", ran.stderr);
    let ran = s
        .run_with(
            Way::Remote,
            &["--admin-token-file", path, "client", "list", "--json"],
            &[("TESSERA_ADMIN_TOKEN", "")],
        )
        .await;
    assert!(ran.ok, "{}", ran.stderr);
    let listed: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert!(listed.is_array());
    // A revoked one is refused.
    s.run(
        Way::Database,
        &["admin-token", "revoke", reader["id"].as_str().unwrap()],
    )
    .await;
    let ran = s
        .run_with(
            Way::Remote,
            &["--admin-token-file", path, "client", "list"],
            &[("TESSERA_ADMIN_TOKEN", "")],
        )
        .await;
    assert!(!ran.ok);
    assert!(ran.stderr.contains("revoked"), "{}", ran.stderr);

    // A server URL that is not one, and an id that tries to leave its path segment.
    let ran = s
        .run_with(
            Way::Database,
            &["--server", "ftp://x", "client", "list"],
            &[],
        )
        .await;
    assert!(!ran.ok);
    assert!(ran.stderr.contains("--server"), "{}", ran.stderr);
    let ran = s
        .run(Way::Remote, &["client", "show", "../admin-tokens"])
        .await;
    assert!(!ran.ok);
    assert!(!ran.stdout.contains("tsa_"), "{}", ran.stdout);
}

#[tokio::test]
async fn admin_token_commands_work_either_way() {
    let s = setup().await;
    for way in BOTH {
        let name = format!("ops-{way:?}");
        let made = s
            .json(
                way,
                &[
                    "admin-token",
                    "create",
                    "--name",
                    &name,
                    "--scope",
                    "clients:read",
                    "--expires-in",
                    "1h",
                    "--json",
                ],
            )
            .await;
        let id = made["id"].as_str().unwrap().to_owned();
        let token = made["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("tsa_"), "{way:?}: {made}");
        assert_eq!(made["scopes"], json!(["clients:read"]));
        assert!(made["expires_at"].as_i64().is_some());
        // The new token works through the API, within its scope.
        let ran = s
            .run_with(
                Way::Remote,
                &["client", "list"],
                &[("TESSERA_ADMIN_TOKEN", &token)],
            )
            .await;
        assert!(ran.ok, "{}", ran.stderr);
        let list = s.run(way, &["admin-token", "list"]).await;
        assert!(list.ok, "{}", list.stderr);
        assert!(
            list.stdout
                .contains(&format!("{id}  {name}  clients:read  [active]\n")),
            "{way:?}: {}",
            list.stdout
        );
        assert!(!list.stdout.contains(&token), "never the value");
        let revoked = s.run(way, &["admin-token", "revoke", &id]).await;
        assert!(revoked.ok, "{}", revoked.stderr);
        assert_eq!(revoked.stdout, format!("revoked admin token {id}\n"));
        let list = s.run(way, &["admin-token", "list"]).await;
        assert!(list
            .stdout
            .contains(&format!("{id}  {name}  clients:read  [revoked]\n")));
        let ran = s
            .run_with(
                Way::Remote,
                &["client", "list"],
                &[("TESSERA_ADMIN_TOKEN", &token)],
            )
            .await;
        assert!(!ran.ok);
        // An unknown scope is refused in the same words either way.
        let bad = s
            .run(
                way,
                &["admin-token", "create", "--name", "x", "--scope", "root"],
            )
            .await;
        assert!(!bad.ok);
        assert!(
            bad.stderr.contains("'root' is not an admin scope"),
            "{way:?}: {}",
            bad.stderr
        );
    }
}
