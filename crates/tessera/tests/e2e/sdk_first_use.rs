//! The first `/sdk/token` exchanges of an environment, sent at the same moment: the
//! environment's SDK client is made once, and every token issued while it was being made is
//! issued under the stored client (its token epoch), so every one introspects active.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::jwt_bearer::{claims, sign, trust, vendor_key};
use crate::support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_racing_first_exchanges_all_introspect_active() {
    let server = Server::start().await;
    let key = vendor_key();
    for round in 0..4 {
        let env = format!("race{round}");
        trust(&server, &key, &env, &[]).await;
        let api = server.create_client(&["--env", &env]).await;
        let requests = (0..24).map(|_| {
            let mut c = claims(&server);
            c.as_object_mut().unwrap().remove("aud");
            let body = json!({"jwt": sign(&key, &c), "env": env});
            let server = &server;
            async move {
                let res = server
                    .http
                    .post(server.url("/sdk/token"))
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
            let info = server.introspect(&api, token).await;
            assert_eq!(
                info["active"], true,
                "a token of a first exchange in {env} is inactive: {info}"
            );
        }
    }
}
