//! `tessera idp`: upstream OpenID providers managed from the command line. The client secret
//! comes from standard input, is stored only sealed, and is never printed; bad input exits
//! non-zero with a message naming what is wrong, and stores nothing.

use serde_json::Value;
use sqlx::Connection as _;

use crate::support::{Server, SEALING_SECRET};

const SECRET: &str = "upstream-client-secret-9f8e7d6c5b4a";

fn add_args<'a>(name: &'a str, issuer: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "idp",
        "add",
        "--name",
        name,
        "--issuer",
        issuer,
        "--client-id",
        "tessera-at-upstream",
        "--client-secret-stdin",
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `idp add` with `secret` on standard input; returns (success, stdout, stderr).
async fn add(s: &Server, args: &[&str], secret: &str) -> (bool, String, String) {
    let out = s.cli_with_stdin(args, secret).await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every byte of the database's files (the main file and its write-ahead log).
fn database_bytes(s: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["tessera.db", "tessera.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.dir_path().join(f)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn idp_add_reads_the_secret_from_stdin_stores_it_sealed_and_never_prints_it() {
    let s = Server::start().await;
    let (ok, stdout, stderr) = add(
        &s,
        &add_args(
            "corp",
            "https://login.corp.example",
            &[
                "--display-name",
                "Corp SSO",
                "--email-domain",
                "Corp.Example",
                "--email-domain",
                "eu.corp.example",
                "--link-by-email",
                "--json",
            ],
        ),
        &format!("{SECRET}\n"),
    )
    .await;
    assert!(ok, "{stderr}");
    let added: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(added["name"], "corp");
    assert_eq!(added["display_name"], "Corp SSO");
    assert_eq!(added["issuer"], "https://login.corp.example");
    assert_eq!(added["client_id"], "tessera-at-upstream");
    assert_eq!(
        added["email_domains"],
        serde_json::json!(["corp.example", "eu.corp.example"])
    );
    assert_eq!(added["link_by_email"], true);
    // A second one, without a display name or domains.
    let (ok, _, stderr) = add(
        &s,
        &add_args("dev", "http://127.0.0.1:9999/realms/dev", &[]),
        "dev-secret",
    )
    .await;
    assert!(ok, "{stderr}");

    let list = s.cli_json(&["idp", "list", "--json"]).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "corp");
    assert_eq!(list[0], added, "add and list agree");
    assert_eq!(list[1]["name"], "dev");
    assert_eq!(list[1]["display_name"], "dev");
    assert_eq!(list[1]["email_domains"], serde_json::json!([]));
    let text = s.cli(&["idp", "list"]).await;
    assert!(text.contains("corp") && text.contains("https://login.corp.example"));

    // No output shows the secret, nor anything of its sealed form.
    for out in [
        stdout.as_str(),
        &serde_json::to_string(list).unwrap(),
        &text,
    ] {
        assert!(!out.contains(SECRET), "{out}");
        assert!(!out.contains("dev-secret"), "{out}");
        assert!(!out.to_lowercase().contains("secret"), "{out}");
        assert!(!out.to_lowercase().contains("sealed"), "{out}");
    }

    // The database holds it sealed, not in clear; the servers' sealing secret opens it.
    assert!(!contains(&database_bytes(&s), SECRET.as_bytes()));
    let url = format!("sqlite://{}", s.dir_path().join("tessera.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT client_secret_sealed FROM identity_providers WHERE name = ?")
            .bind("corp")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!contains(&sealed, SECRET.as_bytes()));
    let record = tessera_core::model::IdpRecord {
        name: "corp".into(),
        display_name: String::new(),
        issuer: String::new(),
        client_id: String::new(),
        client_secret_sealed: sealed,
        email_domains: vec![],
        link_by_email: false,
        created_at: 0,
    };
    let sealer = tessera_core::keys::Sealer::from_secret(SEALING_SECRET.as_bytes()).unwrap();
    let opened = tessera_core::admin::idps::open_secret(&sealer, &record).unwrap();
    // The trailing line break of standard input is not part of it.
    assert_eq!(opened.expose(), SECRET);
    conn.close().await.unwrap();
}

/// The sealed client secret of provider `name`, opened with `secret`.
async fn open_stored_secret(s: &Server, name: &str, secret: &str) -> Option<String> {
    let url = format!("sqlite://{}", s.dir_path().join("tessera.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT client_secret_sealed FROM identity_providers WHERE name = ?")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    let record = tessera_core::model::IdpRecord {
        name: name.into(),
        display_name: String::new(),
        issuer: String::new(),
        client_id: String::new(),
        client_secret_sealed: sealed,
        email_domains: vec![],
        link_by_email: false,
        created_at: 0,
    };
    let sealer = tessera_core::keys::Sealer::from_secret(secret.as_bytes()).unwrap();
    tessera_core::admin::idps::open_secret(&sealer, &record)
        .ok()
        .map(|s| s.expose().to_owned())
}

#[tokio::test]
async fn keys_reseal_reseals_identity_provider_secrets_too() {
    let s = Server::start().await;
    let (ok, _, stderr) = add(
        &s,
        &add_args("corp", "https://login.corp.example", &[]),
        SECRET,
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        open_stored_secret(&s, "corp", SEALING_SECRET)
            .await
            .as_deref(),
        Some(SECRET)
    );
    let new_secret = "the-sealing-secret-after-the-reseal";
    let file = s.dir_path().join("new-secret");
    std::fs::write(&file, format!("{new_secret}\n")).unwrap();
    let out = s
        .cli_json(&[
            "keys",
            "reseal",
            "--new-secret-file",
            file.to_str().unwrap(),
            "--json",
        ])
        .await;
    assert_eq!(out["resealed_idp_secrets"], 1);
    assert_eq!(
        open_stored_secret(&s, "corp", new_secret).await.as_deref(),
        Some(SECRET)
    );
    assert_eq!(open_stored_secret(&s, "corp", SEALING_SECRET).await, None);
}

#[tokio::test]
async fn idp_remove_removes_a_provider_and_frees_its_domains() {
    let s = Server::start().await;
    let args = add_args(
        "corp",
        "https://login.corp.example",
        &["--email-domain", "corp.example"],
    );
    let (ok, _, stderr) = add(&s, &args, SECRET).await;
    assert!(ok, "{stderr}");
    let out = s.cli_json(&["idp", "remove", "corp", "--json"]).await;
    assert_eq!(out["removed"], "corp");
    assert_eq!(
        s.cli_json(&["idp", "list", "--json"]).await,
        serde_json::json!([])
    );
    // Gone: removing it again fails and says so.
    let again = s.cli_output(&["idp", "remove", "corp"]).await;
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("no identity provider 'corp'"), "{err}");
    // Its name and domain can be used again.
    let (ok, _, stderr) = add(&s, &args, SECRET).await;
    assert!(ok, "{stderr}");
}

#[tokio::test]
async fn idp_bad_input_exits_non_zero_with_a_clear_message_and_stores_nothing() {
    let s = Server::start().await;
    let (ok, _, stderr) = add(
        &s,
        &add_args(
            "corp",
            "https://login.corp.example",
            &["--email-domain", "corp.example"],
        ),
        SECRET,
    )
    .await;
    assert!(ok, "{stderr}");

    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            add_args("Bad Name", "https://a.example", &[]),
            SECRET,
            "--name",
        ),
        (
            add_args("../etc", "https://a.example", &[]),
            SECRET,
            "--name",
        ),
        (
            add_args("plain", "http://a.example", &[]),
            SECRET,
            "--issuer",
        ),
        (
            add_args("plain", "https://a.example?x=1", &[]),
            SECRET,
            "--issuer",
        ),
        (add_args("plain", "a.example", &[]), SECRET, "--issuer"),
        (
            add_args(
                "plain",
                "https://a.example",
                &["--email-domain", "not a domain"],
            ),
            SECRET,
            "--email-domain",
        ),
        (
            add_args(
                "plain",
                "https://a.example",
                &["--email-domain", "user@a.example"],
            ),
            SECRET,
            "--email-domain",
        ),
        (
            add_args(
                "plain",
                "https://a.example",
                &["--display-name", "Evil\u{202e}moc"],
            ),
            SECRET,
            "--display-name",
        ),
        // No secret on standard input (or only a line break).
        (
            add_args("plain", "https://a.example", &[]),
            "",
            "client secret",
        ),
        (
            add_args("plain", "https://a.example", &[]),
            "\n",
            "client secret",
        ),
        // Taken: the name, then a domain (in another case).
        (
            add_args("corp", "https://b.example", &[]),
            SECRET,
            "named 'corp'",
        ),
        (
            add_args(
                "other",
                "https://b.example",
                &["--email-domain", "CORP.example"],
            ),
            SECRET,
            "corp.example",
        ),
        // The secret never comes from a flag.
        (
            vec![
                "idp",
                "add",
                "--name",
                "plain",
                "--issuer",
                "https://a.example",
                "--client-id",
                "x",
                "--client-secret",
                SECRET,
            ],
            "",
            "--client-secret",
        ),
    ];
    for (args, stdin, says) in cases {
        let (ok, stdout, stderr) = add(&s, &args, stdin).await;
        assert!(!ok, "{args:?} succeeded: {stdout}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(SECRET),
            "{args:?}"
        );
    }
    let list = s.cli_json(&["idp", "list", "--json"]).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corp"]);
}
