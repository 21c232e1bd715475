//! The first `/sdk/token` exchanges of an environment, sent at the same moment to one server
//! or to several over one database (SQLite, and PostgreSQL when `TESSERA_TEST_POSTGRES_URL`
//! names one): the environment's SDK client is made once, and every token issued while it
//! was being made is issued under the stored client (its token epoch), so every one
//! introspects active, on every node.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use tessera_store_postgres::testing::TestDatabase;

use crate::jwt_bearer::{claims, sign, trust, vendor_key, VendorKey};
use crate::support::{Creds, Server};

/// Sends `n` first exchanges of `env` at once, spread over `nodes`; asserts that every one
/// succeeds and that every token introspects active on every node.
async fn race(nodes: &[&Server], key: &VendorKey, env: &str, api: &Creds, n: usize) {
    let requests = (0..n).map(|i| {
        let node = nodes[i % nodes.len()];
        let mut c = claims(node);
        c.as_object_mut().unwrap().remove("aud");
        let body = json!({"jwt": sign(key, &c), "env": env});
        async move {
            let res = node
                .http
                .post(node.url("/sdk/token"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    });
    let answers = join_all(requests).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap();
        for node in nodes {
            let info = node.introspect(api, token).await;
            assert_eq!(
                info["active"], true,
                "a token of a first exchange in {env} is inactive: {info}"
            );
        }
    }
}

/// Two nodes over the database of `first` (`url`), started after the vendor is trusted in
/// `envs` there (so that they know it from the start), and an introspecting client of each
/// environment that both know.
async fn nodes_over(
    first: &Server,
    url: &str,
    key: &VendorKey,
    envs: &[String],
) -> (Server, Server, Vec<Creds>) {
    let mut apis = Vec::new();
    for env in envs {
        trust(first, key, env, &[]).await;
        apis.push(first.create_client(&["--env", env]).await);
    }
    let env = [
        ("TESSERA_DATABASE_URL", url),
        ("TESSERA_ISSUER", first.issuer()),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
    ];
    let (a, b) =
        futures_util::future::join(Server::start_with(&env), Server::start_with(&env)).await;
    for api in &apis {
        a.wait_known(api).await;
        b.wait_known(api).await;
    }
    (a, b, apis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_nodes_racing_on_first_exchanges_issue_only_active_tokens() {
    let first = Server::start().await;
    let key = vendor_key();
    let envs: Vec<String> = (0..4).map(|i| format!("node-race{i}")).collect();
    let url = format!("sqlite://{}", first.dir_path().join("tessera.db").display());
    let (a, b, apis) = nodes_over(&first, &url, &key, &envs).await;
    for (env, api) in envs.iter().zip(&apis) {
        race(&[&a, &b], &key, env, api, 16).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_racing_on_first_exchanges_issue_only_active_tokens() {
    let Some(db) = TestDatabase::create("sdk_first_use_race").await else {
        return;
    };
    let first = Server::start_with(&[
        ("TESSERA_DATABASE_URL", &db.url),
        ("TESSERA_DATABASE_POOL_SIZE", "6"),
    ])
    .await;
    let key = vendor_key();
    let envs: Vec<String> = (0..4).map(|i| format!("node-race{i}")).collect();
    let (a, b, apis) = nodes_over(&first, &db.url, &key, &envs).await;
    for (env, api) in envs.iter().zip(&apis) {
        race(&[&a, &b], &key, env, api, 16).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_racing_first_exchanges_all_introspect_active() {
    let server = Server::start().await;
    let key = vendor_key();
    for round in 0..4 {
        let env = format!("race{round}");
        trust(&server, &key, &env, &[]).await;
        let api = server.create_client(&["--env", &env]).await;
        race(&[&server], &key, &env, &api, 24).await;
    }
}
