//! The management CLI against a running server: changes reach it within a second, and no
//! command ever shows a secret again.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{wait_until, Server, FEED_DEADLINE};

#[tokio::test]
async fn a_client_created_by_the_cli_works_within_a_second() {
    let s = Server::start().await;
    let out = s
        .cli_json(&[
            "client", "create", "--name", "svc", "--scope", "read", "--json",
        ])
        .await;
    let created = Instant::now();
    let id = out["client_id"].as_str().unwrap().to_owned();
    let secret = out["client_secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("tcs_") && secret.len() >= 4 + 43,
        "{secret}"
    );
    let c = crate::support::Creds { id, secret };
    let cr = &c;
    let sr = &s;
    wait_until(
        FEED_DEADLINE,
        "the new client gets a token",
        move || async move { sr.token_status(cr).await == StatusCode::OK },
    )
    .await;
    assert!(created.elapsed() <= FEED_DEADLINE + std::time::Duration::from_millis(100));
    let body = s.token_ok(&c).await;
    assert_eq!(body["scope"], "read");
}

#[tokio::test]
async fn client_list_and_show_describe_clients_but_never_their_secrets() {
    let s = Server::start().await;
    let a = s
        .create_client(&["--scope", "read write", "--access-token-ttl", "300"])
        .await;
    let b = s
        .create_client(&[
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--redirect-uri",
            "https://a.example/cb",
            "--access-token-format",
            "opaque",
        ])
        .await;
    let rotated = s
        .cli_json(&[
            "client",
            "rotate-secret",
            &a.id,
            "--keep-old-secret-for",
            "60",
            "--json",
        ])
        .await;
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    let secrets = [a.secret.as_str(), b.secret.as_str(), new_secret.as_str()];

    let list = s.cli_json(&["client", "list", "--json"]).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let find = |id: &str| list.iter().find(|c| c["client_id"] == id).cloned().unwrap();
    let shown_a = find(&a.id);
    assert_eq!(shown_a["name"], "t");
    assert_eq!(shown_a["scope"], "read write");
    assert_eq!(
        shown_a["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(shown_a["access_token_format"], "jwt");
    assert_eq!(shown_a["access_token_ttl"], 300);
    assert_eq!(shown_a["public"], false);
    assert_eq!(shown_a["token_endpoint_auth_method"], "client_secret_basic");
    let shown_b = find(&b.id);
    assert_eq!(
        shown_b["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        shown_b["redirect_uris"],
        serde_json::json!(["https://a.example/cb"])
    );
    assert_eq!(shown_b["access_token_format"], "opaque");

    let show = s.cli_json(&["client", "show", &a.id, "--json"]).await;
    assert_eq!(show, shown_a, "show and list agree");

    // Every way of looking at clients, in JSON and as text.
    let mut outputs = Vec::new();
    for args in [
        vec!["client", "list", "--json"],
        vec!["client", "list"],
        vec!["client", "show", a.id.as_str(), "--json"],
        vec!["client", "show", a.id.as_str()],
        vec!["client", "show", b.id.as_str(), "--json"],
    ] {
        outputs.push((args.join(" "), s.cli(&args).await));
    }
    for (cmd, out) in &outputs {
        for secret in secrets {
            assert!(!out.contains(secret), "`{cmd}` prints a secret");
            assert!(
                !out.contains(&sha256_hex(secret)),
                "`{cmd}` prints a secret's hash"
            );
        }
        assert!(!out.to_lowercase().contains("hash"), "`{cmd}`: {out}");
        if let Ok(v) = serde_json::from_str::<Value>(out) {
            let items = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
            for item in items {
                assert!(item.get("client_secret").is_none(), "`{cmd}`: {item}");
            }
        }
    }
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn cli_refuses_invalid_registrations_and_unknown_clients() {
    let s = Server::start().await;
    let cases: &[(&str, &[&str])] = &[
        (
            "public client with client_credentials",
            &[
                "client",
                "create",
                "--name",
                "x",
                "--public",
                "--grant-type",
                "client_credentials",
            ],
        ),
        (
            "unknown grant type",
            &[
                "client",
                "create",
                "--name",
                "x",
                "--grant-type",
                "password",
            ],
        ),
        (
            "unknown token format",
            &[
                "client",
                "create",
                "--name",
                "x",
                "--access-token-format",
                "xml",
            ],
        ),
        (
            "zero token lifetime",
            &["client", "create", "--name", "x", "--access-token-ttl", "0"],
        ),
        (
            "plain-http redirect URI",
            &[
                "client",
                "create",
                "--name",
                "x",
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "http://example.com/cb",
            ],
        ),
        (
            "rotate an unknown client",
            &["client", "rotate-secret", "nope"],
        ),
        ("show an unknown client", &["client", "show", "nope"]),
        ("delete an unknown client", &["client", "delete", "nope"]),
    ];
    for (label, args) in cases {
        let out = s.cli_output(args).await;
        assert!(!out.status.success(), "{label}: succeeded");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{label}: no error message"
        );
    }
    let list = s.cli_json(&["client", "list", "--json"]).await;
    assert_eq!(list, serde_json::json!([]), "nothing was registered");
}

#[tokio::test]
async fn purge_and_migrate_run_beside_a_live_server() {
    let s = Server::start().await;
    let c = s.create_client(&["--access-token-format", "opaque"]).await;
    let token = s.access_token(&c).await;
    let purged = s.cli_json(&["purge", "--json"]).await;
    for key in ["tokens", "revoked_jtis", "changes", "keys"] {
        assert!(purged[key].is_u64(), "{key}: {purged}");
    }
    assert_eq!(purged["tokens"], 0, "nothing has expired yet");
    assert!(s.cli(&["migrate"]).await.contains("up to date"));
    assert!(s.is_active(&c, &token).await, "purge keeps live tokens");
}

#[tokio::test]
async fn client_update_changes_scope_format_lifetime_and_audience_of_new_tokens() {
    let s = Server::start().await;
    let c = s.create_client(&["--scope", "read"]).await;
    let body = s.token_ok(&c).await;
    assert_eq!(body["scope"], "read");
    assert_eq!(body["expires_in"], 3600);
    let shown = s
        .cli_json(&[
            "client",
            "update",
            &c.id,
            "--name",
            "renamed",
            "--scope",
            "read write",
            "--access-token-format",
            "opaque",
            "--access-token-ttl",
            "120",
            "--audience",
            "https://api.example.com",
            "--json",
        ])
        .await;
    assert_eq!(shown["name"], "renamed");
    assert_eq!(shown["scope"], "read write");
    assert!(!shown.to_string().contains(&c.secret));
    // The running server honours the change within a second; the secret is unchanged.
    wait_until(FEED_DEADLINE, "update honoured", || async {
        let body = s.token_ok(&c).await;
        body["expires_in"] == 120
    })
    .await;
    let body = s.token_ok(&c).await;
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("tat_"), "opaque now");
    let info = s.introspect(&c, token).await;
    assert_eq!(info["aud"], "https://api.example.com");
    // Bad values are refused and change nothing.
    for args in [
        vec!["--access-token-format", "paseto"],
        vec!["--access-token-ttl", "0"],
        vec!["--audience", "not-a-uri"],
        vec!["--grant-type", "password"],
    ] {
        let mut full = vec!["client", "update", c.id.as_str()];
        full.extend(args.iter().copied());
        assert!(!s.cli_output(&full).await.status.success(), "{args:?}");
    }
    assert!(!s
        .cli_output(&["client", "update", "no-such-client", "--scope", "x"])
        .await
        .status
        .success());
    assert_eq!(s.token_ok(&c).await["expires_in"], 120);
}

#[tokio::test]
async fn an_operator_revokes_one_token_or_all_of_a_clients_tokens_from_the_cli() {
    let s = Server::start().await;
    let jwt = s.create_client(&[]).await;
    let opaque = s.create_client(&["--access-token-format", "opaque"]).await;
    // One token by its value, whoever it belongs to, for both formats.
    for c in [&jwt, &opaque] {
        let token = s.access_token(c).await;
        let keep = s.access_token(c).await;
        let info = s.cli_json(&["token", "introspect", &token, "--json"]).await;
        assert_eq!(info["active"], true);
        assert_eq!(info["client_id"], c.id.as_str());
        let out = s.cli_json(&["token", "revoke", &token, "--json"]).await;
        assert_eq!(out["revoked"], true);
        wait_until(FEED_DEADLINE, "revoked token inactive", || async {
            !s.is_active(c, &token).await
        })
        .await;
        assert!(s.is_active(c, &keep).await, "other tokens stay active");
        let again = s.cli_json(&["token", "revoke", &token, "--json"]).await;
        assert_eq!(again["revoked"], false);
        let info = s.cli_json(&["token", "introspect", &token, "--json"]).await;
        assert_eq!(info, serde_json::json!({"active": false}));
    }
    // Every token of a client at once; its secret keeps working.
    for c in [&jwt, &opaque] {
        let before = s.access_token(c).await;
        let out = s
            .cli_json(&["client", "revoke-tokens", &c.id, "--json"])
            .await;
        assert_eq!(out["tokens_revoked"], true);
        wait_until(FEED_DEADLINE, "client's tokens inactive", || async {
            !s.is_active(c, &before).await
        })
        .await;
        let after = s.access_token(c).await;
        assert!(s.is_active(c, &after).await, "the secret still works");
    }
    assert!(!s
        .cli_output(&["client", "revoke-tokens", "no-such-client"])
        .await
        .status
        .success());
}

/// A new grant by the code flow: its access and refresh tokens.
async fn code_flow_tokens(
    s: &Server,
    client: &crate::support::Creds,
    b: &mut crate::browser_support::Browser,
) -> (String, String) {
    use crate::browser_support::{authorize_path, exchange, VERIFIER};
    let code = b.code(&authorize_path(client, "openid", ""), "alice").await;
    let res = exchange(s, client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let t: Value = res.json().await.unwrap();
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_refresh_token_revoked_from_the_cli_no_longer_refreshes() {
    use crate::browser_support::{refresh, setup, Browser};

    let (s, client) = setup(&["--refresh-tokens", "always"]).await;
    let mut b = Browser::new(&s);
    let (at, rt) = code_flow_tokens(&s, &client, &mut b).await;
    let (other_at, other_rt) = code_flow_tokens(&s, &client, &mut b).await;
    let out = s.cli_json(&["token", "revoke", &rt, "--json"]).await;
    assert_eq!(out["revoked"], true);
    // The whole grant goes with its refresh token, the access token issued with it included
    // (RFC 7009 §2.1); waiting on introspection, not on a refresh, which would use the token.
    wait_until(
        FEED_DEADLINE,
        "the grant's access token inactive",
        || async { !s.is_active(&client, &at).await },
    )
    .await;
    let res = refresh(&s, &client, &rt).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(
        body["error_description"], "the refresh token is invalid, expired or revoked",
        "refused as revoked, not as a reused token: {body}"
    );
    let again = s.cli_json(&["token", "revoke", &rt, "--json"]).await;
    assert_eq!(again["revoked"], false, "nothing left to revoke");
    // Another grant of the same user and client is untouched.
    assert!(s.is_active(&client, &other_at).await);
    let res = refresh(&s, &client, &other_rt).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_consent_from_the_cli_ends_its_tokens_and_asks_again() {
    use crate::browser_support::{authorize_path, refresh, setup, Browser};

    let (s, client) = setup(&["--refresh-tokens", "always"]).await;
    let mut b = Browser::new(&s);
    let (at, rt) = code_flow_tokens(&s, &client, &mut b).await;
    let listed = s.cli_json(&["user", "consents", "alice", "--json"]).await;
    assert_eq!(listed["username"], "alice");
    let consents = listed["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1, "{listed}");
    assert_eq!(consents[0]["client_id"], client.id.as_str());
    assert_eq!(consents[0]["scope"], "openid");
    assert!(consents[0]["granted_at"].is_i64(), "{listed}");
    let grants = listed["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{listed}");
    assert_eq!(grants[0]["client_id"], client.id.as_str());
    assert_eq!(grants[0]["revoked_at"], Value::Null);
    let text = s.cli(&["user", "consents", "alice"]).await;
    assert!(text.contains(&client.id) && text.contains("live"), "{text}");
    assert!(s.is_active(&client, &at).await);

    let out = s
        .cli_json(&["user", "revoke-consent", "alice", &client.id, "--json"])
        .await;
    assert_eq!(out["consent_removed"], true, "{out}");
    assert_eq!(out["grants_revoked"], 1, "{out}");
    // The running server learns it from the change feed; waiting on introspection, not on a
    // refresh, which would use the token.
    wait_until(
        FEED_DEADLINE,
        "the consent's access token inactive",
        || async { !s.is_active(&client, &at).await },
    )
    .await;
    let res = refresh(&s, &client, &rt).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // Still signed in, but asked for consent again.
    let page = b.get(&authorize_path(&client, "openid", "")).await;
    assert!(page.is_consent(), "{}", page.body);
    let listed = s.cli_json(&["user", "consents", "alice", "--json"]).await;
    assert_eq!(listed["consents"], serde_json::json!([]), "{listed}");
    assert!(listed["grants"][0]["revoked_at"].is_i64(), "{listed}");
    // Nothing left to revoke for that client: refused.
    let again = s
        .cli_output(&["user", "revoke-consent", "alice", &client.id])
        .await;
    assert!(!again.status.success());

    // Every token of the user, consents kept.
    let (at, rt) = code_flow_tokens(&s, &client, &mut b).await;
    let out = s
        .cli_json(&["user", "revoke-tokens", "alice", "--json"])
        .await;
    assert_eq!(out["grants_revoked"], 1, "{out}");
    wait_until(
        FEED_DEADLINE,
        "the user's access token inactive",
        || async { !s.is_active(&client, &at).await },
    )
    .await;
    assert_eq!(
        refresh(&s, &client, &rt).await.status(),
        StatusCode::BAD_REQUEST
    );
    let listed = s.cli_json(&["user", "consents", "alice", "--json"]).await;
    assert_eq!(listed["consents"].as_array().unwrap().len(), 1, "{listed}");
    let unknown = s.cli_output(&["user", "revoke-tokens", "nobody"]).await;
    assert!(!unknown.status.success());
}
