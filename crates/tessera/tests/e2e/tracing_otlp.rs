//! OpenTelemetry tracing, received by an OTLP/HTTP receiver the test runs
//! (<https://opentelemetry.io/docs/specs/otlp/#otlphttp>: `POST /v1/traces`).
//!
//! The server is configured by the standard variables only (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SDK_DISABLED`). The spans are
//! read after SIGTERM: the server exports what it still holds before it exits, so the test
//! waits on the process, not on the exporter's schedule. The PostgreSQL case runs against the
//! server `TESSERA_TEST_POSTGRES_URL` names and is skipped with a note without one, as the
//! other PostgreSQL tests are.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use reqwest::StatusCode;
use tessera_store_postgres::testing::TestDatabase;

use crate::support::{Creds, Server};

/// The caller's trace, as its `traceparent` names it (W3C Trace Context §3.2).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// One export received: its `Content-Type` and body.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// An OTLP/HTTP receiver on a loopback port, keeping every export it is sent.
struct Receiver {
    endpoint: String,
    received: Received,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Received = Arc::default();
        let kept = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let kept = Arc::clone(&kept);
                async move {
                    let kind = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    kept.lock().unwrap().push((kind.clone(), body));
                    // An empty ExportTraceServiceResponse: everything accepted.
                    let answer = if kind == "application/json" { "{}" } else { "" };
                    ([(header::CONTENT_TYPE, kind)], answer)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { endpoint, received }
    }

    fn exports(&self) -> Vec<(String, Bytes)> {
        self.received.lock().unwrap().clone()
    }

    /// Every span received as protobuf, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for (kind, body) in self.exports() {
            assert_eq!(kind, "application/x-protobuf");
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| string_attr(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push((service.clone(), span));
                    }
                }
            }
        }
        spans
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(AnyValue::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key) {
        Some(AnyValue::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A client credentials token request carrying the caller's `traceparent`.
async fn token_in_trace(s: &Server, c: &Creds) -> String {
    let res = s
        .http
        .post(s.url("/oauth2/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn request_spans_continue_the_callers_trace_with_storage_calls_as_children() {
    let receiver = Receiver::start().await;
    let mut s = Server::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "tessera-e2e"),
    ])
    .await;
    // Opaque: issuing stores the token, a storage call the request must show.
    let c = s.create_client(&["--access-token-format", "opaque"]).await;
    let token = token_in_trace(&s, &c).await;
    assert_eq!(s.revoke(&c, &token).await, StatusCode::OK);
    // A malformed `traceparent` is ignored: the request starts a trace of its own.
    let res = s
        .http
        .get(s.url("/.well-known/openid-configuration"))
        .header("traceparent", format!("00-{TRACE_ID}-not-a-span-id-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = s.stop().await;
    assert!(status.success(), "{}", s.logs());

    let spans = receiver.spans();
    let in_trace: Vec<&Span> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| hex(&span.trace_id) == TRACE_ID)
        .collect();
    let request = in_trace
        .iter()
        .find(|span| hex(&span.parent_span_id) == PARENT_SPAN_ID)
        .unwrap_or_else(|| panic!("no span is the caller's span's child: {spans:#?}"));
    assert_eq!(request.name, "POST /oauth2/token");
    assert_eq!(request.kind, SpanKind::Server as i32);
    let attrs = &request.attributes;
    assert_eq!(
        string_attr(attrs, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        string_attr(attrs, "http.route").as_deref(),
        Some("/oauth2/token")
    );
    assert_eq!(
        int_attr(attrs, "http.response.status_code"),
        Some(200),
        "{attrs:#?}"
    );
    assert_eq!(
        string_attr(attrs, "client.address").as_deref(),
        Some("127.0.0.1")
    );
    assert!(
        string_attr(attrs, "tessera.request_id").is_some(),
        "{request:#?}"
    );

    let stored = in_trace
        .iter()
        .find(|span| span.parent_span_id == request.span_id && span.name == "insert_token")
        .unwrap_or_else(|| panic!("no insert_token span under the request: {in_trace:#?}"));
    assert_eq!(stored.kind, SpanKind::Client as i32);
    let attrs = &stored.attributes;
    assert_eq!(
        string_attr(attrs, "db.system.name").as_deref(),
        Some("sqlite")
    );
    assert_eq!(
        string_attr(attrs, "db.operation.name").as_deref(),
        Some("insert_token")
    );

    // A request without `traceparent` starts a trace of its own.
    let revocation = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "POST /oauth2/revoke")
        .unwrap_or_else(|| panic!("no revocation span: {spans:#?}"));
    assert_ne!(hex(&revocation.trace_id), TRACE_ID);
    assert!(revocation.parent_span_id.is_empty());
    assert!(spans
        .iter()
        .any(|(_, span)| span.parent_span_id == revocation.span_id && span.name == "revoke_token"));

    let discovery = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "GET /.well-known/openid-configuration")
        .unwrap_or_else(|| panic!("no discovery span: {spans:#?}"));
    assert_ne!(hex(&discovery.trace_id), TRACE_ID);
    assert!(discovery.parent_span_id.is_empty());

    assert!(spans.iter().all(|(service, _)| service == "tessera-e2e"));
    // The readiness probes the harness made while the server started make no span.
    assert!(spans
        .iter()
        .all(|(_, span)| !span.name.contains("/health/")));
    // The log is as without tracing: the spans are not the context of its lines.
    assert!(s.logs().contains("tessera is serving"));
    assert!(!s.logs().contains("otel.name"), "{}", s.logs());
    // Neither the client's secret nor the token it was issued appears anywhere in what was
    // exported (a protobuf carries strings as they are).
    for (_, body) in receiver.exports() {
        let raw = String::from_utf8_lossy(&body);
        assert!(!raw.contains(&c.secret), "the client secret was exported");
        assert!(!raw.contains(&token), "the access token was exported");
    }
}

#[tokio::test]
async fn the_admin_api_is_traced_without_its_credential_or_the_secrets_it_makes() {
    const ADMIN_TOKEN: &str = "e2e-tracing-admin-token-0123456789";
    let receiver = Receiver::start().await;
    let admin = format!("127.0.0.1:{}", crate::support::free_port());
    let mut s = Server::start_with(&[
        ("TESSERA_ADMIN_LISTEN", admin.as_str()),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
    ])
    .await;
    let res = s
        .http
        .post(format!("http://{admin}/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "traced", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: serde_json::Value = res.json().await.unwrap();
    let secret = made["client_secret"].as_str().unwrap().to_owned();
    let id = made["client_id"].as_str().unwrap().to_owned();
    let res = s
        .http
        .get(format!("http://{admin}/admin/clients/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = s.stop().await;
    assert!(status.success(), "{}", s.logs());

    let spans = receiver.spans();
    let created = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "POST /admin/clients")
        .unwrap_or_else(|| panic!("no span of the admin request: {spans:#?}"));
    assert_eq!(
        int_attr(&created.attributes, "http.response.status_code"),
        Some(201)
    );
    assert!(spans
        .iter()
        .any(|(_, span)| span.parent_span_id == created.span_id && span.name == "insert_client"));
    // The route template, not the path with the client's id in it.
    let shown = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name.starts_with("GET /admin/clients/"))
        .unwrap_or_else(|| panic!("no span of the second admin request: {spans:#?}"));
    assert!(!shown.name.contains(&id), "{}", shown.name);
    for (_, body) in receiver.exports() {
        let raw = String::from_utf8_lossy(&body);
        assert!(!raw.contains(ADMIN_TOKEN), "the admin token was exported");
        assert!(
            !raw.contains(&secret),
            "the new client's secret was exported"
        );
    }
}

#[tokio::test]
async fn storage_spans_name_postgresql() {
    let Some(db) = TestDatabase::create("tracing_otlp_postgres").await else {
        return;
    };
    let receiver = Receiver::start().await;
    let mut s = Server::start_with(&[
        ("TESSERA_DATABASE_URL", db.url.as_str()),
        ("TESSERA_DATABASE_POOL_SIZE", "4"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
    ])
    .await;
    let c = s.create_client(&["--access-token-format", "opaque"]).await;
    token_in_trace(&s, &c).await;
    let (status, _) = s.stop().await;
    assert!(status.success(), "{}", s.logs());

    let spans = receiver.spans();
    let stored = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| hex(&span.trace_id) == TRACE_ID && span.name == "insert_token")
        .unwrap_or_else(|| panic!("no insert_token span in the caller's trace: {spans:#?}"));
    assert_eq!(
        string_attr(&stored.attributes, "db.system.name").as_deref(),
        Some("postgresql")
    );
    // The service is named `tessera` when the environment does not name it.
    assert!(spans.iter().all(|(service, _)| service == "tessera"));
}

#[tokio::test]
async fn http_json_is_the_other_protocol() {
    let receiver = Receiver::start().await;
    let mut s = Server::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ])
    .await;
    let c = s.create_client(&[]).await;
    let token = token_in_trace(&s, &c).await;
    let (status, _) = s.stop().await;
    assert!(status.success(), "{}", s.logs());

    let exports = receiver.exports();
    assert!(!exports.is_empty());
    let mut names = Vec::new();
    for (kind, body) in &exports {
        assert_eq!(kind, "application/json");
        let raw = String::from_utf8_lossy(body);
        assert!(!raw.contains(&c.secret) && !raw.contains(&token));
        let export: serde_json::Value = serde_json::from_slice(body).unwrap();
        for resource in export["resourceSpans"].as_array().unwrap() {
            for scope in resource["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    if span["traceId"].as_str() == Some(TRACE_ID) {
                        names.push(span["name"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
    }
    assert!(
        names.iter().any(|n| n == "POST /oauth2/token"),
        "spans of the caller's trace: {names:?}"
    );
}

#[tokio::test]
async fn disabled_exports_nothing() {
    let receiver = Receiver::start().await;
    let mut s = Server::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_SDK_DISABLED", "true"),
    ])
    .await;
    let c = s.create_client(&[]).await;
    token_in_trace(&s, &c).await;
    let (status, _) = s.stop().await;
    assert!(status.success(), "{}", s.logs());
    // Had tracing been on, the spans would have been exported before the server exited.
    assert_eq!(receiver.exports().len(), 0);
}

#[tokio::test]
async fn a_setting_that_cannot_be_honoured_stops_the_start() {
    let mut s = Server::start().await;
    let err = s
        .restart_with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .await
        .unwrap_err();
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
        "the error names the variable: {err}"
    );
}
