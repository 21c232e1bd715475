//! Client import for a migration from another server: `tessera client import FILE` with one
//! client of each secret hash format (bcrypt, PBKDF2 in PHC and Django form, Argon2,
//! SHA-256 plain and salted) and bad lines, each line reported; every imported client then
//! gets a token at `/oauth2/token` with its original secret, by HTTP Basic and in the form,
//! and a wrong one gets `invalid_client`; rotation gives a native secret; `client create
//! --client-id --secret-hash-stdin` imports one.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Creds, Server};

/// (client id, hash, original secret); the hashes were made outside Tessera (Python's
/// hashlib, PHP's documentation, the OpenBSD bcrypt test vector) but for Argon2.
fn clients() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "legacy-bcrypt-2a",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".into(),
            "U*U",
        ),
        (
            "legacy-bcrypt-2y",
            "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a".into(),
            "rasmuslerdorf",
        ),
        (
            "legacy.pbkdf2-sha512",
            "$pbkdf2-sha512$i=1000,l=64$c2FsdHNhbHRzYWx0c2FsdA$No160KUKf2tOAesSGukzXGh0Xtdk3qxcdEWnxQsN6c/JvC6Rpdgd7wd9yGKY2aXpi1ad3X9Q6nys2cbIAa7xAw".into(),
            "migrated secret",
        ),
        (
            "legacy_django",
            "pbkdf2_sha256$1200$djsalt$tIOeutwxtGA0V8jrFcQ3uM3/EZ1oi8BEh96UOXBGxq0=".into(),
            "django secret",
        ),
        (
            "legacy~argon2",
            tessera_core::password::hash("argon secret").unwrap(),
            "argon secret",
        ),
        (
            "legacy-sha256",
            "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".into(),
            "password",
        ),
        (
            "legacy-sha256-salted",
            "$sha256$salt$13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322".into(),
            "password",
        ),
    ]
}

async fn form_status(s: &Server, id: &str, secret: &str) -> (StatusCode, Value) {
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn imported_clients_keep_their_secrets_in_every_format() {
    let s = Server::start().await;
    let mut lines: Vec<String> = clients()
        .iter()
        .map(|(id, hash, _)| {
            json!({"name": id, "client_id": id, "secret_hash": hash, "scope": "read"}).to_string()
        })
        .collect();
    let good = lines.len();
    // Bad lines: a malformed hash, an unknown format, a misspelt field, not JSON, a taken
    // client id, a client id with a character that needs escaping.
    lines.extend([
        json!({"name": "x", "client_id": "bad-hash", "secret_hash": "$2b$05$short"}).to_string(),
        json!({"name": "x", "client_id": "md5", "secret_hash": "$1$salt$abc"}).to_string(),
        json!({"name": "x", "client_id": "typo", "secret_hsah": "$sha256$00"}).to_string(),
        "{not json".to_owned(),
        String::new(),
        json!({"name": "x", "client_id": "legacy-sha256",
               "secret_hash": "$sha256$salt$13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322"})
        .to_string(),
        json!({"name": "x", "client_id": "a:b", "secret_hash": "$sha256$5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}).to_string(),
    ]);
    let file = s.dir_path().join("clients.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let path = file.to_str().unwrap();

    let out = s.cli_output(&["client", "import", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a failed line fails the command");
    for (i, (id, _, _)) in clients().iter().enumerate() {
        assert!(
            stdout.contains(&format!("line {}: created {id}\n", i + 1)),
            "{stdout}"
        );
    }
    for (n, says) in [
        (good + 1, "secret_hash: a malformed bcrypt hash"),
        (good + 2, "unknown hash identifier '1'"),
        (good + 3, "unknown field 'secret_hsah'"),
        (good + 4, "not JSON"),
        (good + 6, "already exists"),
        (good + 7, "client_id must be"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("line {n}: error: ")))
            .unwrap_or_else(|| panic!("no error for line {n}: {stdout}"));
        assert!(line.contains(says), "line {n}: {line}");
    }
    assert!(
        !stdout.contains(&format!("line {}:", good + 5)),
        "blank line"
    );
    assert!(
        stdout.contains(&format!("{good} created, 6 failed")),
        "{stdout}"
    );
    assert!(stderr.contains("6 of 13 lines failed"), "{stderr}");
    // No hash and no secret is ever echoed back.
    assert!(
        !stdout.contains("5e884898") && !stdout.contains("CCCCCCCC"),
        "{stdout}"
    );

    for (id, hash, secret) in clients() {
        let c = Creds {
            id: id.into(),
            secret: secret.into(),
        };
        s.wait_known(&c).await;
        let body = s.token_ok(&c).await;
        assert_eq!(body["token_type"], "bearer", "{id} by Basic");
        assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
        let (status, body) = form_status(&s, id, secret).await;
        assert_eq!(status, StatusCode::OK, "{id} in the form: {body}");
        for wrong in ["wrong", hash.as_str(), &format!("{secret}x")] {
            let res = s.token(&c.with_secret(wrong), None).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{id} by Basic");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client");
            let (status, body) = form_status(&s, id, wrong).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{id} in the form");
            assert_eq!(body["error"], "invalid_client");
        }
    }

    // --json: one object a line, then the summary; every line is now a conflict.
    let out = s.cli_output(&["client", "import", path, "--json"]).await;
    assert!(!out.status.success());
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    // 13 non-blank lines, then the summary.
    assert_eq!(rows.len(), 14);
    assert_eq!(rows[0]["line"], 1);
    assert!(rows[0]["error"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    assert_eq!(rows[13], json!({"created": 0, "failed": 13}));
    assert!(rows.iter().all(|r| r.get("client_secret").is_none()));

    // Rotation replaces the imported secret with a native one.
    let old = Creds {
        id: "legacy-bcrypt-2y".into(),
        secret: "rasmuslerdorf".into(),
    };
    let out = s
        .cli_json(&["client", "rotate-secret", &old.id, "--json"])
        .await;
    let new = old.with_secret(out["client_secret"].as_str().unwrap());
    assert!(new.secret.starts_with("tcs_"));
    let (s_ref, old_ref) = (&s, &old);
    crate::support::wait_until(
        crate::support::FEED_DEADLINE,
        "the imported secret refused after rotation",
        move || async move { s_ref.token_status(old_ref).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    s.token_ok(&new).await;
}

#[tokio::test]
async fn create_takes_a_client_id_and_a_secret_hash_on_stdin() {
    let s = Server::start().await;
    let hash = "$pbkdf2-sha256$i=1,l=32$c2FsdA$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs";
    let out = s
        .cli_with_stdin(
            &[
                "client",
                "create",
                "--name",
                "moved",
                "--client-id",
                "moved-app",
                "--secret-hash-stdin",
                "--json",
            ],
            &format!("{hash}\n"),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["client_id"], "moved-app");
    assert_eq!(v["client_secret"], Value::Null, "no new secret");
    let c = Creds {
        id: "moved-app".into(),
        secret: "password".into(),
    };
    s.wait_known(&c).await;
    s.token_ok(&c).await;
    // A hostile or broken hash is refused naming the flag, and nothing is created.
    let out = s
        .cli_with_stdin(
            &[
                "client",
                "create",
                "--name",
                "x",
                "--client-id",
                "other-app",
                "--secret-hash-stdin",
            ],
            "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo\n",
        )
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--secret-hash") && err.contains("Argon2 cost"),
        "{err}"
    );
    let out = s.cli_output(&["client", "show", "other-app"]).await;
    assert!(!out.status.success());
}
