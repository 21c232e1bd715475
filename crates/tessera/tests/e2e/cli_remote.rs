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

    /// Runs `tessera ARGS` the given way with `input` on standard input.
    async fn run_stdin(&self, way: Way, args: &[&str], input: &str) -> Ran {
        let mut all: Vec<&str> = Vec::new();
        let mut vars: Vec<(&str, &str)> = Vec::new();
        if way == Way::Remote {
            all.extend(["--server", &self.admin]);
            vars.push(("TESSERA_DATABASE_URL", "sqlite:///nonexistent/tessera.db"));
        }
        all.extend_from_slice(args);
        let out = self.server.cli_with_stdin_env(&all, input, &vars).await;
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `tessera ARGS` both ways; asserts both succeeded with the same output and
    /// returns it.
    async fn same(&self, args: &[&str]) -> String {
        let db = self.run(Way::Database, args).await;
        let remote = self.run(Way::Remote, args).await;
        assert!(db.ok, "{args:?}: {}", db.stderr);
        assert!(remote.ok, "--server {args:?}: {}", remote.stderr);
        assert_eq!(db.stdout, remote.stdout, "{args:?}");
        db.stdout
    }

    /// Runs `tessera ARGS` both ways; asserts both failed with the same message and
    /// returns it.
    async fn same_failure(&self, args: &[&str]) -> String {
        let db = self.run(Way::Database, args).await;
        let remote = self.run(Way::Remote, args).await;
        assert!(!db.ok, "{args:?}: {}", db.stdout);
        assert!(!remote.ok, "--server {args:?}: {}", remote.stdout);
        assert!(db.stdout.is_empty() && remote.stdout.is_empty(), "{args:?}");
        assert_eq!(db.stderr, remote.stderr, "{args:?}");
        db.stderr
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
        // Its expiry in RFC 3339, as every time in text output.
        let expires = tessera_core::admin::audit::rfc3339(made["expires_at"].as_i64().unwrap());
        assert!(
            list.stdout.contains(&format!(
                "{id}  {name}  clients:read  [active]  expires {expires}\n"
            )),
            "{way:?}: {}",
            list.stdout
        );
        assert!(!list.stdout.contains(&token), "never the value");
        let revoked = s.run(way, &["admin-token", "revoke", &id]).await;
        assert!(revoked.ok, "{}", revoked.stderr);
        assert_eq!(revoked.stdout, format!("revoked admin token {id}\n"));
        let list = s.run(way, &["admin-token", "list"]).await;
        assert!(list.stdout.contains(&format!(
            "{id}  {name}  clients:read  [revoked]  expires {expires}\n"
        )));
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

#[tokio::test]
async fn env_and_token_commands_print_the_same_either_way() {
    let s = setup().await;
    for way in BOTH {
        let name = format!("eu-{way:?}").to_lowercase();
        let made = s.run(way, &["env", "create", &name]).await;
        assert!(made.ok, "{}", made.stderr);
        assert_eq!(made.stdout, format!("environment {name}\n"));
        let set = s
            .run(way, &["env", "set", &name, "--single-use-tokens"])
            .await;
        assert_eq!(
            set.stdout,
            format!("environment {name} (single-use tokens)\n")
        );
        let list = s.run(way, &["env", "list"]).await;
        let line = format!("{name}  single-use tokens");
        assert!(
            list.stdout.lines().any(|l| l == line),
            "{way:?}: {}",
            list.stdout
        );
        // An environment in use by a client: refused, in the same words either way.
        let c = s
            .json(
                Way::Database,
                &["client", "create", "--name", "c", "--env", &name, "--json"],
            )
            .await;
        let refused = s.run(way, &["env", "delete", &name]).await;
        assert!(!refused.ok);
        assert!(
            refused.stderr.contains("shows each client's env"),
            "{way:?}: {}",
            refused.stderr
        );
        s.cli_del(c["client_id"].as_str().unwrap()).await;
        let deleted = s.run(way, &["env", "delete", &name]).await;
        assert!(deleted.ok, "{}", deleted.stderr);
        assert_eq!(
            deleted.stdout,
            format!("deleted environment {name} with its trust registrations\n")
        );

        // A token looked at and revoked by its value.
        let c = s
            .json(
                Way::Database,
                &[
                    "client", "create", "--name", "t", "--scope", "read", "--json",
                ],
            )
            .await;
        let creds = Creds {
            id: c["client_id"].as_str().unwrap().into(),
            secret: c["client_secret"].as_str().unwrap().into(),
        };
        s.server.wait_known(&creds).await;
        let at = s.server.access_token(&creds).await;
        let seen = s.json(way, &["token", "introspect", &at, "--json"]).await;
        assert_eq!(seen["active"], true, "{way:?}: {seen}");
        assert_eq!(seen["client_id"], creds.id.as_str());
        assert_eq!(seen["scope"], "read");
        let revoked = s.run(way, &["token", "revoke", &at]).await;
        assert!(revoked.ok, "{}", revoked.stderr);
        assert_eq!(
            revoked.stdout,
            "revoked; every server honours it within a second\n"
        );
        let again = s.run(way, &["token", "revoke", &at]).await;
        assert_eq!(
            again.stdout,
            "the token was not active; nothing to revoke\n"
        );
        let seen = s.json(way, &["token", "introspect", &at, "--json"]).await;
        assert_eq!(seen["active"], false);
    }
}

impl Setup {
    /// Deletes a client through the database.
    async fn cli_del(&self, id: &str) {
        let r = self.run(Way::Database, &["client", "delete", id]).await;
        assert!(r.ok, "{}", r.stderr);
    }
}

#[tokio::test]
async fn audit_lists_the_same_entries_either_way() {
    let s = setup().await;
    // One change made each way.
    for way in BOTH {
        let made = s
            .run(
                way,
                &["client", "create", "--name", &format!("audited-{way:?}")],
            )
            .await;
        assert!(made.ok, "{}", made.stderr);
    }
    let args = ["audit", "--kind", "client_created", "--limit", "10"];
    let db = s.run(Way::Database, &args).await;
    let remote = s.run(Way::Remote, &args).await;
    assert!(db.ok && remote.ok, "{} {}", db.stderr, remote.stderr);
    assert_eq!(db.stdout, remote.stdout);
    assert_eq!(db.stdout.lines().count(), 2, "{}", db.stdout);
    // The admin API's creation names its admin token; the database one, the CLI.
    assert!(db.stdout.contains("actor=admin_token:"), "{}", db.stdout);
    assert!(db.stdout.contains("actor=cli"), "{}", db.stdout);
    // A bad filter is refused in the server's words, and a token without audit:read gets 403.
    let bad = s
        .run(Way::Remote, &["audit", "--since", "yesterday-ish"])
        .await;
    assert!(!bad.ok);
    let reader = s
        .json(
            Way::Database,
            &[
                "admin-token",
                "create",
                "--name",
                "r",
                "--scope",
                "clients:read",
                "--json",
            ],
        )
        .await;
    let ran = s
        .run_with(
            Way::Remote,
            &["audit"],
            &[("TESSERA_ADMIN_TOKEN", reader["token"].as_str().unwrap())],
        )
        .await;
    assert!(!ran.ok);
    assert!(ran.stderr.contains("may not do this"), "{}", ran.stderr);
}

/// The password of the users these tests make.
const PASSWORD: &str = "correct horse battery staple 42";

#[tokio::test]
async fn user_commands_print_the_same_either_way() {
    let s = setup().await;
    for way in BOTH {
        let name = format!("u-{way:?}").to_lowercase();
        let made = s
            .run_stdin(
                way,
                &[
                    "user",
                    "create",
                    "--username",
                    &name,
                    "--password-stdin",
                    "--email",
                    &format!("{name}@example.com"),
                ],
                &format!("{PASSWORD}\n"),
            )
            .await;
        assert!(made.ok, "{way:?}: {}", made.stderr);
        assert!(
            made.stdout
                .starts_with(&format!("created user {name} (sub ")),
            "{way:?}: {}",
            made.stdout
        );
        assert!(!made.stdout.contains(PASSWORD) && !made.stderr.contains(PASSWORD));
        // The same name again: refused the same way either way.
        let again = s
            .run_stdin(
                way,
                &["user", "create", "--username", &name, "--password-stdin"],
                &format!("{PASSWORD}\n"),
            )
            .await;
        assert!(!again.ok, "{way:?}");
        assert!(again.stdout.is_empty(), "{way:?}: {}", again.stdout);

        let set = s
            .run_stdin(
                way,
                &["user", "set-password", &name, "--password-stdin", "--json"],
                "another long passphrase 77\n",
            )
            .await;
        assert!(set.ok, "{way:?}: {}", set.stderr);
        let set: Value = serde_json::from_str(&set.stdout).unwrap();
        assert_eq!(set, json!({"username": name, "password_changed": true}));
        // A password the rules refuse: refused either way, nothing printed.
        let weak = s
            .run_stdin(
                way,
                &["user", "set-password", &name, "--password-stdin"],
                "x\n",
            )
            .await;
        assert!(!weak.ok, "{way:?}");
        assert!(!weak.stderr.contains("HTTP"), "{way:?}: {}", weak.stderr);
    }
    // Both users listed, the same either way (text and JSON).
    let list = s.same(&["user", "list"]).await;
    assert!(
        list.contains("  u-database  u-database@example.com\n"),
        "{list}"
    );
    assert!(
        list.contains("  u-remote  u-remote@example.com\n"),
        "{list}"
    );
    let listed: Value = serde_json::from_str(&s.same(&["user", "list", "--json"]).await).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(listed[0].get("password_hash").is_none(), "{listed}");
    // A user without grants: nothing revoked, the same words.
    assert_eq!(
        s.same(&["user", "revoke-tokens", "U-Remote"]).await,
        "revoked 0 grant(s) of u-remote and their tokens\n"
    );
    assert_eq!(
        s.same(&["user", "grants", "u-remote", "--json"]).await,
        s.run(Way::Database, &["user", "grants", "u-remote", "--json"])
            .await
            .stdout
    );
    // An unknown user, a grant of nobody's: the same failure either way.
    let gone = s.same_failure(&["user", "consents", "nobody"]).await;
    assert!(gone.contains("nobody"), "{gone}");
    s.same_failure(&["user", "revoke-grant", "u-remote", "no-such-grant"])
        .await;
    s.same_failure(&["user", "delete", "../admin-tokens"]).await;

    for way in BOTH {
        let name = format!("u-{way:?}").to_lowercase();
        let deleted = s.run(way, &["user", "delete", &name]).await;
        assert!(deleted.ok, "{way:?}: {}", deleted.stderr);
        assert_eq!(
            deleted.stdout,
            format!("deleted user {name}; their tokens are revoked\n")
        );
    }
    assert_eq!(s.same(&["user", "list"]).await, "");
    // A password from standard input for a user that does not exist: refused before it is
    // read, either way.
    let unknown = s
        .run_stdin(
            Way::Remote,
            &["user", "set-password", "nobody", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(!unknown.ok);
    assert!(!unknown.stderr.contains(PASSWORD), "{}", unknown.stderr);
}

#[tokio::test]
async fn consents_and_grants_are_listed_and_revoked_the_same_either_way() {
    use crate::browser_support::{authorize_path, exchange, Browser, VERIFIER};

    let addr = format!("127.0.0.1:{}", free_port());
    let (server, client) = crate::browser_support::setup_with(
        &[
            ("TESSERA_ADMIN_LISTEN", addr.as_str()),
            ("TESSERA_ADMIN_TOKEN", BOOTSTRAP),
        ],
        &["--refresh-tokens", "always"],
    )
    .await;
    let s = Setup {
        server,
        admin: format!("http://{addr}"),
    };
    let mut b = Browser::new(&s.server);
    let mut access = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..3 {
        let code = b
            .code(
                &authorize_path(&client, "openid offline_access", ""),
                "alice",
            )
            .await;
        let res = exchange(&s.server, &client, &code, Some(VERIFIER)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let t: Value = res.json().await.unwrap();
        access.push(t["access_token"].as_str().unwrap().to_owned());
        // The grant just made: the one not seen before.
        let listed = s
            .json(Way::Database, &["user", "grants", "alice", "--json"])
            .await;
        let new: Vec<String> = listed["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["grant_id"].as_str().unwrap().to_owned())
            .filter(|g| !ids.contains(g))
            .collect();
        assert_eq!(new.len(), 1, "{listed}");
        ids.extend(new);
    }
    let consents = s.same(&["user", "consents", "alice"]).await;
    assert_eq!(
        consents.lines().count(),
        4,
        "one consent, three grants: {consents}"
    );
    assert!(
        consents.starts_with(&format!("consent  {}  ", client.id)),
        "{consents}"
    );
    let listed: Value =
        serde_json::from_str(&s.same(&["user", "consents", "alice", "--json"]).await).unwrap();
    assert_eq!(listed["consents"].as_array().unwrap().len(), 1, "{listed}");
    let grants: Value =
        serde_json::from_str(&s.same(&["user", "grants", "alice", "--json"]).await).unwrap();
    assert!(grants.get("consents").is_none(), "{grants}");
    assert_eq!(grants["grants"].as_array().unwrap().len(), 3, "{grants}");

    // One grant revoked through the API; again, either way: revoked already.
    let first = s
        .run(Way::Remote, &["user", "revoke-grant", "alice", &ids[0]])
        .await;
    assert!(first.ok, "{}", first.stderr);
    assert!(
        first.stdout.starts_with(&format!(
            "revoked grant {} of alice to {}",
            ids[0], client.id
        )),
        "{}",
        first.stdout
    );
    assert_eq!(
        s.same(&["user", "revoke-grant", "alice", &ids[0]]).await,
        format!("grant {} was revoked already\n", ids[0])
    );
    let (srv, c, at) = (&s.server, &client, &access[0]);
    crate::support::wait_until(
        crate::support::FEED_DEADLINE,
        "the revoked grant's access token inactive",
        move || async move { !srv.is_active(c, at).await },
    )
    .await;
    assert!(s.server.is_active(&client, &access[1]).await);
    let text = s.same(&["user", "grants", "alice"]).await;
    assert_eq!(text.matches("  live\n").count(), 2, "{text}");

    // Another user's grant: the same refusal either way.
    s.run_stdin(
        Way::Remote,
        &["user", "create", "--username", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .await;
    s.same_failure(&["user", "revoke-grant", "bob", &ids[1]])
        .await;

    // The consent, through the API: the rest of the grants with it.
    let done = s
        .json(
            Way::Remote,
            &["user", "revoke-consent", "alice", &client.id, "--json"],
        )
        .await;
    assert_eq!(done["consent_removed"], true, "{done}");
    assert_eq!(done["grants_revoked"], 2, "{done}");
    let (srv, c, at) = (&s.server, &client, &access[2]);
    crate::support::wait_until(
        crate::support::FEED_DEADLINE,
        "the consent's access tokens inactive",
        move || async move { !srv.is_active(c, at).await },
    )
    .await;
    let after = s.same(&["user", "consents", "alice"]).await;
    assert!(!after.contains("consent  "), "{after}");
    assert_eq!(after.matches("  revoked ").count(), 3, "{after}");
    // Nothing left: the same words either way.
    assert_eq!(
        s.same(&["user", "revoke-tokens", "alice"]).await,
        "revoked 0 grant(s) of alice and their tokens\n"
    );
}

/// A PEM public key file in `dir`.
fn pem_file(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, crate::jwt_bearer::vendor_key().public_pem).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn trust_commands_print_the_same_either_way() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for way in BOTH {
        let issuer = format!("https://issuer-{way:?}.example").to_lowercase();
        let key = pem_file(dir.path(), &format!("{way:?}.pem"));
        let added = s
            .json(
                way,
                &[
                    "trust",
                    "add",
                    "--issuer",
                    &issuer,
                    "--public-key",
                    &key,
                    "--env",
                    "partners",
                    "--claim",
                    "team_id",
                    "--scope",
                    "read",
                    "--json",
                ],
            )
            .await;
        assert_eq!(added["issuer"], issuer.as_str(), "{way:?}: {added}");
        assert_eq!(added["env"], "partners");
        assert_eq!(added["keys"], 1);
        assert!(
            added["kids"][0].is_string(),
            "a PEM key gets its thumbprint: {added}"
        );
        let id = added["id"].as_str().unwrap().to_owned();
        // Text form: the same lines either way (the kid is the key's thumbprint).
        let again = s
            .run(
                way,
                &[
                    "trust",
                    "add",
                    "--issuer",
                    &format!("{issuer}/two"),
                    "--public-key",
                    &key,
                ],
            )
            .await;
        assert!(again.ok, "{way:?}: {}", again.stderr);
        assert!(
            again.stdout.contains(" in environment default (id "),
            "{}",
            again.stdout
        );
        assert!(
            again.stdout.ends_with(&format!(
                "key ids (kid): {}\n",
                added["kids"][0].as_str().unwrap()
            )),
            "{way:?}: {}",
            again.stdout
        );
        // Its keys replaced (the rotation): the new key's kid printed.
        let next = pem_file(dir.path(), &format!("{way:?}-next.pem"));
        let set = s
            .run(way, &["trust", "set-keys", &id, "--public-key", &next])
            .await;
        assert!(set.ok, "{way:?}: {}", set.stderr);
        assert!(
            set.stdout.starts_with(&format!(
                "replaced the public keys of trust registration {id}\n"
            )),
            "{way:?}: {}",
            set.stdout
        );
        assert!(!set.stdout.contains(added["kids"][0].as_str().unwrap()));
        ids.push(id);
    }
    let list = s.same(&["trust", "list", "--env", "partners"]).await;
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains("sub=sub  claims=[team_id]  scope=\"read\""),
        "{list}"
    );
    s.same(&["trust", "list", "--json"]).await;
    // A key file that is no key, a registration that is not there: the same failure.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    for way in BOTH {
        let r = s
            .run(
                way,
                &[
                    "trust",
                    "set-keys",
                    &ids[0],
                    "--public-key",
                    bad.to_str().unwrap(),
                ],
            )
            .await;
        assert!(!r.ok, "{way:?}");
        assert!(r.stdout.is_empty(), "{way:?}: {}", r.stdout);
    }
    s.same_failure(&["trust", "remove", "no-such-registration"])
        .await;
    for (way, id) in BOTH.into_iter().zip(&ids) {
        let removed = s.run(way, &["trust", "remove", id]).await;
        assert!(removed.ok, "{way:?}: {}", removed.stderr);
        assert_eq!(removed.stdout, format!("removed trust registration {id}\n"));
    }
    assert_eq!(s.same(&["trust", "list", "--env", "partners"]).await, "");
}

#[tokio::test]
async fn idp_commands_print_the_same_either_way_and_never_the_secret() {
    const SECRET: &str = "upstream-client-secret-remote-0a1b2c3d";
    let s = setup().await;
    for way in BOTH {
        let name = format!("corp-{way:?}").to_lowercase();
        let added = s
            .run_stdin(
                way,
                &[
                    "idp",
                    "add",
                    "--name",
                    &name,
                    "--issuer",
                    &format!("https://login.{name}.example"),
                    "--client-id",
                    "tessera-at-upstream",
                    "--client-secret-stdin",
                    "--email-domain",
                    &format!("{name}.example"),
                    "--link-by-email",
                ],
                &format!("{SECRET}\n"),
            )
            .await;
        assert!(added.ok, "{way:?}: {}", added.stderr);
        assert_eq!(
            added.stdout,
            format!(
                "added identity provider {name} ({name}) for issuer https://login.{name}.example\n"
            )
        );
        assert!(!added.stderr.contains(SECRET));
        // A domain another provider has: refused either way, naming the flag.
        let taken = s
            .run_stdin(
                way,
                &[
                    "idp",
                    "add",
                    "--name",
                    &format!("{name}-2"),
                    "--issuer",
                    "https://other.example",
                    "--client-id",
                    "x",
                    "--client-secret-stdin",
                    "--email-domain",
                    "corp-database.example",
                ],
                &format!("{SECRET}\n"),
            )
            .await;
        assert!(!taken.ok, "{way:?}");
        assert!(!taken.stderr.contains(SECRET), "{}", taken.stderr);
    }
    let list = s.same(&["idp", "list"]).await;
    assert!(!list.contains(SECRET));
    assert!(
        list.contains("corp-remote  \"corp-remote\"  https://login.corp-remote.example  client_id=tessera-at-upstream  domains=[corp-remote.example]  link_by_email=true\n"),
        "{list}"
    );
    let listed = s.same(&["idp", "list", "--json"]).await;
    assert!(!listed.contains(SECRET));
    s.same_failure(&["idp", "remove", "nothing-here"]).await;
    for way in BOTH {
        let name = format!("corp-{way:?}").to_lowercase();
        let removed = s.run(way, &["idp", "remove", &name, "--json"]).await;
        assert!(removed.ok, "{way:?}: {}", removed.stderr);
        assert_eq!(
            serde_json::from_str::<Value>(&removed.stdout).unwrap(),
            json!({"removed": name})
        );
    }
    assert_eq!(s.same(&["idp", "list"]).await, "");
}

#[tokio::test]
async fn keys_list_and_rotate_work_either_way_and_the_database_commands_say_so() {
    let s = setup().await;
    let before = s.same(&["keys", "list"]).await.lines().count();
    assert!(before >= 1, "the server's key listed");
    for way in BOTH {
        let made = s
            .json(way, &["keys", "rotate", "--lead-time", "600", "--json"])
            .await;
        assert_eq!(made["alg"], "ES256", "{way:?}: {made}");
        assert!(made["kid"].is_string());
        let text = s.run(way, &["keys", "rotate", "--lead-time", "600"]).await;
        assert!(text.ok, "{way:?}: {}", text.stderr);
        assert!(
            text.stdout.starts_with("new ES256 key ") && text.stdout.contains(" (in 600 s)"),
            "{way:?}: {}",
            text.stdout
        );
    }
    let after = s.same(&["keys", "list"]).await;
    assert_eq!(after.lines().count(), before + 4, "{after}");
    let listed: Value = serde_json::from_str(&s.same(&["keys", "list", "--json"]).await).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none()),
        "public parts only: {listed}"
    );
    // Too short a lead time: the same refusal either way, and no key made.
    let short = s
        .run(Way::Remote, &["keys", "rotate", "--lead-time", "1"])
        .await;
    assert!(!short.ok);
    assert!(short.stderr.contains("no key was made"), "{}", short.stderr);
    assert_eq!(s.same(&["keys", "list"]).await.lines().count(), before + 4);

    // The commands on the database itself refuse --server, saying why.
    for args in [
        &["keys", "reseal", "--new-secret-file", "/dev/null"][..],
        &["purge"][..],
        &["migrate"][..],
    ] {
        let r = s.run(Way::Remote, args).await;
        assert!(!r.ok, "{args:?}");
        assert!(
            r.stderr.contains("does not work with --server"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("yet"), "{args:?}: {}", r.stderr);
    }
}

#[tokio::test]
async fn client_set_keys_replaces_the_keys_the_same_either_way() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let first = pem_file(dir.path(), "first.pem");
    let made = s
        .json(
            Way::Database,
            &[
                "client",
                "create",
                "--name",
                "signer",
                "--grant-type",
                "client_credentials",
                "--token-endpoint-auth-method",
                "private_key_jwt",
                "--public-key",
                &first,
                "--json",
            ],
        )
        .await;
    let id = made["client_id"].as_str().unwrap().to_owned();
    let old_kid = made["kids"][0].as_str().unwrap().to_owned();
    // The rotation: the new key alongside the old one, then the new one alone; the same
    // lines either way (a PEM key's kid is its thumbprint).
    let next = pem_file(dir.path(), "next.pem");
    let both = s
        .same(&[
            "client",
            "set-keys",
            &id,
            "--public-key",
            &first,
            "--public-key",
            &next,
        ])
        .await;
    assert!(
        both.starts_with(&format!(
            "replaced the public keys of client {id}\nkey ids (kid): {old_kid} "
        )),
        "{both}"
    );
    let alone: Value = serde_json::from_str(
        &s.same(&["client", "set-keys", &id, "--public-key", &next, "--json"])
            .await,
    )
    .unwrap();
    assert_eq!(alone["client_id"], id.as_str());
    assert_eq!(alone["keys_replaced"], true);
    assert_eq!(alone["kids"].as_array().unwrap().len(), 1, "{alone}");
    assert_ne!(alone["kids"][0], old_kid.as_str());
    // Not a key, not a client: refused either way, nothing printed.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    for way in BOTH {
        let r = s
            .run(
                way,
                &[
                    "client",
                    "set-keys",
                    &id,
                    "--public-key",
                    bad.to_str().unwrap(),
                ],
            )
            .await;
        assert!(!r.ok, "{way:?}");
        assert!(r.stdout.is_empty(), "{way:?}: {}", r.stdout);
    }
    s.same_failure(&[
        "client",
        "set-keys",
        "no-such-client",
        "--public-key",
        &next,
    ])
    .await;

    // The route itself: no credential, too little scope, a hostile body, an id that tries
    // to leave its segment; none changes the keys.
    let reader = s
        .json(
            Way::Database,
            &[
                "admin-token",
                "create",
                "--name",
                "r",
                "--scope",
                "clients:read",
                "--json",
            ],
        )
        .await;
    let reader = reader["token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/admin/clients/{id}/keys", s.admin);
    let body = json!({"pems": [std::fs::read_to_string(&first).unwrap()]});
    let res = http.put(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = http
        .put(&url)
        .bearer_auth(reader)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    for hostile in [
        json!({"pems": [1]}),
        json!({"jwks": {"keys": "no"}}),
        json!({"private_key": "x"}),
        json!({}),
    ] {
        let res = http
            .put(&url)
            .bearer_auth(BOOTSTRAP)
            .json(&hostile)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{hostile}");
        let e: Value = res.json().await.unwrap();
        assert!(e["error"].is_string(), "{e}");
    }
    let res = http
        .put(format!("{}/admin/clients/..%2Fadmin-tokens/keys", s.admin))
        .bearer_auth(BOOTSTRAP)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    // The keys are still the last ones set.
    let shown = s
        .json(Way::Remote, &["client", "show", &id, "--json"])
        .await;
    assert_eq!(shown["kids"], alone["kids"], "{shown}");
    // Each replacement is in the audit trail: the server's with its admin token, the
    // command line's as the CLI.
    let trail = s
        .json(
            Way::Database,
            &["audit", "--kind", "client_updated", "--json"],
        )
        .await;
    let events = trail["events"].as_array().unwrap();
    assert!(
        events.iter().filter(|e| e["target"] == id.as_str()).count() >= 2,
        "{trail}"
    );
    assert!(events.iter().any(|e| e["actor"] == "cli"), "{trail}");
    assert!(events.iter().any(|e| e["actor"] != "cli"), "{trail}");
}

/// Evaluates `assignments` in bash, as `eval "$(tessera … --output env)"` does, and returns
/// what the named variables then hold (`<unset>` for an unset one).
fn eval_in_bash(assignments: &str, names: &[&str]) -> Vec<String> {
    let script = names
        .iter()
        .map(|n| format!("printf '%s\\n' \"${{{n}-<unset>}}\";"))
        .collect::<String>();
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("API_SECRET=stale; eval \"$1\"; {script}"),
            "_",
        ])
        .arg(assignments)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn client_create_output_env_sets_shell_variables_either_way() {
    let s = setup().await;
    for way in BOTH {
        let name = format!("env-{way:?}");
        let made = s
            .run(
                way,
                &[
                    "client",
                    "create",
                    "--name",
                    &name,
                    "--output",
                    "env",
                    "--var-prefix",
                    "API",
                ],
            )
            .await;
        assert!(made.ok, "{way:?}: {}", made.stderr);
        let lines: Vec<&str> = made.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{way:?}: {}", made.stdout);
        assert!(lines[0].starts_with("API_ID='"), "{}", made.stdout);
        assert!(lines[1].starts_with("API_SECRET='tcs_"), "{}", made.stdout);
        let vars = eval_in_bash(&made.stdout, &["API_ID", "API_SECRET"]);
        let creds = Creds {
            id: vars[0].clone(),
            secret: vars[1].clone(),
        };
        assert_eq!(
            s.server.token_status(&creds).await,
            StatusCode::OK,
            "{way:?}"
        );
        let rotated = s
            .run(
                way,
                &["client", "rotate-secret", &creds.id, "--output", "env"],
            )
            .await;
        assert!(rotated.ok, "{way:?}: {}", rotated.stderr);
        let vars = eval_in_bash(&rotated.stdout, &["CLIENT_ID", "CLIENT_SECRET"]);
        assert_eq!(vars[0], creds.id);
        assert_ne!(vars[1], creds.secret);
        let rotated = Creds {
            id: vars[0].clone(),
            secret: vars[1].clone(),
        };
        // A running server honours a rotation made on the database within a second.
        let (server, new) = (&s.server, &rotated);
        crate::support::wait_until(
            crate::support::FEED_DEADLINE,
            "the rotated secret gets a token",
            move || async move { server.token_status(new).await == StatusCode::OK },
        )
        .await;

        // A client without a secret unsets the variable: a stale one is not left behind.
        let public = s
            .run(
                way,
                &[
                    "client",
                    "create",
                    "--name",
                    &format!("{name}-public"),
                    "--public",
                    "--grant-type",
                    "authorization_code",
                    "--redirect-uri",
                    "http://127.0.0.1:8976/callback",
                    "--output",
                    "env",
                    "--var-prefix",
                    "API",
                ],
            )
            .await;
        assert!(public.ok, "{way:?}: {}", public.stderr);
        assert!(
            public.stdout.ends_with("unset API_SECRET\n"),
            "{}",
            public.stdout
        );
        let vars = eval_in_bash(&public.stdout, &["API_ID", "API_SECRET"]);
        assert_ne!(vars[0], "<unset>");
        assert_eq!(vars[1], "<unset>");
    }
    let refused = s
        .same_failure(&[
            "client",
            "create",
            "--name",
            "x",
            "--output",
            "env",
            "--var-prefix",
            "api-1",
        ])
        .await;
    assert!(refused.contains("--var-prefix must be"), "{refused}");
    let both = s
        .run(
            Way::Database,
            &[
                "client", "create", "--name", "x", "--output", "env", "--json",
            ],
        )
        .await;
    assert!(
        !both.ok && both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
    let unknown = s
        .run(
            Way::Database,
            &["client", "create", "--name", "x", "--output", "yaml"],
        )
        .await;
    assert!(
        !unknown.ok && unknown.stderr.contains("invalid value"),
        "{}",
        unknown.stderr
    );
}
