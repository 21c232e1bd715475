//! [`Traced`]: it keeps every contract of the store it wraps (the conformance suite, over the
//! in-memory store), and a call made inside a span gets a span of its own, child of that one,
//! named after the call, with the database's name, and an error kind when it failed; a call
//! made outside any span gets none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use tessera_core::store::memory::MemoryStore;
use tessera_core::store::{ClientStore, ReplayStore, StoreError};
use tessera_node::traced::Traced;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument as _, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

tessera_core::conformance_tests!(Box::new(Traced::new(
    Arc::new(MemoryStore::new()),
    "memory"
)));

/// A span as a layer saw it: its id, its parent's, its fields as recorded.
#[derive(Debug, Clone)]
struct Seen {
    id: u64,
    parent: Option<u64>,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Records every span made and every value recorded on one.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.id().into_u64());
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Seen {
            id: id.into_u64(),
            parent,
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(span) = seen.iter_mut().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

#[tokio::test]
async fn a_call_inside_a_span_gets_a_child_span_named_after_it() {
    let recorder = Recorder::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let store = Traced::new(Arc::new(MemoryStore::new()), "sqlite");

    assert!(store.use_once("outside", 100).await.unwrap());
    assert!(
        recorder.0.lock().unwrap().is_empty(),
        "a call outside any span made one"
    );

    let request = tracing::info_span!("request");
    let request_id = request.id().unwrap().into_u64();
    async {
        assert!(store.use_once("inside", 100).await.unwrap());
        // A key set that breaks the registration rules: refused before anything is written.
        let refused = store.set_client_keys("c1", "not a key set", 1).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
    .instrument(request)
    .await;

    let seen = recorder.0.lock().unwrap().clone();
    let calls: Vec<&Seen> = seen.iter().filter(|s| s.id != request_id).collect();
    assert_eq!(calls.len(), 2, "{seen:#?}");
    for call in &calls {
        assert_eq!(call.parent, Some(request_id));
        assert_eq!(call.field("db.system.name"), Some("sqlite"));
        assert_eq!(call.field("otel.kind"), Some("client"));
    }
    assert_eq!(calls[0].field("otel.name"), Some("use_once"));
    assert_eq!(calls[0].field("db.operation.name"), Some("use_once"));
    assert_eq!(calls[0].field("error.type"), None);
    assert_eq!(calls[1].field("otel.name"), Some("set_client_keys"));
    assert_eq!(calls[1].field("error.type"), Some("invalid"));
    assert_eq!(calls[1].field("otel.status_code"), Some("ERROR"));
    // No argument is recorded: neither the key nor the key set.
    for call in &calls {
        assert!(call
            .fields
            .iter()
            .all(|(_, v)| !v.contains("inside") && !v.contains("not a key set")));
    }
}
