//! Usernames are prepared (RFC 8265 `UsernameCaseMapped`) at creation, on the command line
//! and at sign-in, so one person has one username however it is spelt; invisible and
//! bidirectional control characters are refused in usernames and client names; and a client
//! name is shown on the consent page as it is, never read for placeholders.

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser_support::*;
use crate::support::Server;

async fn create(server: &Server, username: &str) -> std::process::Output {
    server
        .cli_with_stdin(
            &[
                "user",
                "create",
                "--username",
                username,
                "--password-stdin",
                "--json",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await
}

#[tokio::test]
async fn spellings_of_one_username_are_one_user_and_hidden_characters_are_refused() {
    let server = Server::start().await;
    let out = create(&server, "Alice").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["username"], "alice");
    let out = create(&server, "zoe\u{301}").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (twin, says) in [
        ("alice", "already exists"),
        ("ALICE", "already exists"),
        ("ａｌｉｃｅ", "already exists"),
        ("zo\u{e9}", "already exists"),
        ("alice\u{200B}", "U+200B"),
        ("ali\u{AD}ce", "U+00AD"),
        ("\u{202E}ecila", "U+202E"),
        ("\u{430}lice", "Cyrillic"),
    ] {
        let out = create(&server, twin).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{twin:?} was created");
        assert!(err.contains(says), "{twin:?}: {err}");
    }
    let users: Value = server.cli_json(&["user", "list", "--json"]).await;
    let mut names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "zo\u{e9}"]);
    // Signing in with another spelling finds the user.
    let client = server
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
        ])
        .await;
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let consent = b.sign_in(&login, "ＡＬＩＣＥ", PASSWORD).await;
    assert!(consent.is_consent(), "{} {}", consent.status, consent.body);
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    let consent = b.sign_in(&login, "zo\u{e9}", PASSWORD).await;
    assert!(consent.is_consent(), "{} {}", consent.status, consent.body);
    let failed = b.sign_in(&login, "alice\u{200B}", PASSWORD).await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    // The command line finds users the same way.
    let out = server
        .cli_with_stdin(
            &[
                "user",
                "set-password",
                "ALICE",
                "--password-stdin",
                "--json",
            ],
            "another long password\n",
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server
        .cli_output(&["user", "delete", "Ａlice", "--json"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["username"], "alice");
}

#[tokio::test]
async fn client_names_refuse_hidden_characters_and_are_shown_as_they_are() {
    let (server, _) = setup(&[]).await;
    let base = [
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "openid",
    ];
    for name in ["Reports\u{202E}ppa", "Re\u{200B}ports", "Re\nports"] {
        let mut args = vec!["client", "create", "--name", name];
        args.extend_from_slice(&base);
        let out = server.cli_output(&args).await;
        assert!(!out.status.success(), "{name:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("U+"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A user's display name, shown as "Signed in as …", too.
    let out = server
        .cli_with_stdin(
            &[
                "user",
                "create",
                "--username",
                "bob",
                "--name",
                "Bob\u{202E}",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(
        !out.status.success(),
        "a hidden character in a display name"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("U+202E"));
    let mut args = vec!["--name", "{user} wants"];
    args.extend_from_slice(&base);
    let client = server.create_client(&args).await;
    let out = server
        .cli_output(&["client", "update", &client.id, "--name", "x\u{2067}y"])
        .await;
    assert!(!out.status.success());
    let mut b = Browser::new(&server);
    let login = b.get(&authorize_path(&client, "openid", "")).await;
    assert!(login.body.contains("{user} wants"), "{}", login.body);
    let consent = b.sign_in(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent(), "{}", consent.body);
    // The user's display name is shown once, in "Signed in as", never for the placeholder.
    assert!(
        consent.body.contains("{user} wants wants to:"),
        "{}",
        consent.body
    );
    assert_eq!(
        consent.body.matches("User alice").count(),
        1,
        "{}",
        consent.body
    );
}

#[tokio::test]
async fn usernames_stored_before_are_moved_to_their_prepared_form_at_start() {
    use sqlx::Connection as _;
    let (mut old, client) = setup(&[]).await;
    old.create_user("carol", PASSWORD).await;
    let dave = old.create_user("dave", "dave's own password").await;
    let erin = old.create_user("erin", "erin's own password").await;
    old.stop().await;
    // As an earlier version stored them: `Carol` as typed, `Alice` beside `alice`, and a
    // name with a zero-width space.
    let db = old.dir_path().join("tessera.db");
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (name, id) in [
        ("Carol", None),
        ("Alice", Some(&dave)),
        ("erin\u{200B}", Some(&erin)),
    ] {
        let q = match id {
            None => {
                sqlx::query("UPDATE users SET username = ? WHERE username = 'carol'").bind(name)
            }
            Some(id) => sqlx::query("UPDATE users SET username = ? WHERE user_id = ?")
                .bind(name)
                .bind(id.as_str()),
        };
        assert_eq!(q.execute(&mut conn).await.unwrap().rows_affected(), 1);
    }
    conn.close().await.unwrap();
    // The same database, so the same issuer it was served under.
    let server = Server::start_with(&[
        ("TESSERA_DATABASE_URL", &url),
        ("TESSERA_ISSUER", old.issuer()),
    ])
    .await;
    let users: Value = server.cli_json(&["user", "list", "--json"]).await;
    let mut names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Alice", "alice", "carol", "erin\u{200B}"]);
    let logs = server.logs();
    assert!(logs.contains(&dave) && logs.contains(&erin), "{logs}");
    let sign_in = |name: &'static str, password: &'static str| {
        let server = &server;
        let client = &client;
        async move {
            let mut b = Browser::new(server);
            let login = b.get(&authorize_path(client, "openid", "")).await;
            b.sign_in(&login, name, password).await
        }
    };
    for typed in ["carol", "Carol", "CAROL"] {
        let page = sign_in(typed, PASSWORD).await;
        assert!(page.is_consent(), "{typed}: {} {}", page.status, page.body);
    }
    let page = sign_in("erin\u{200B}", "erin's own password").await;
    assert!(page.is_consent(), "{} {}", page.status, page.body);
    // `Alice` now names alice: the old `Alice` cannot sign in.
    let page = sign_in("Alice", "dave's own password").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let out = server
        .cli_output(&["user", "delete", "Alice", "--json"])
        .await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The operator names the old `Alice` as stored to delete it; alice stays.
    assert_eq!(v["username"], "Alice");
    let page = sign_in("Alice", PASSWORD).await;
    assert!(page.is_consent(), "{} {}", page.status, page.body);
}
