//! Every store call runs in a `tracing` span named `session_store` whose only fields are
//! the store type and the operation: never an id or a store key.
//!
//! One test in a binary of its own, so that its subscriber can be the global one: a
//! thread's scoped subscriber misses spans whose callsite another test's thread
//! registered first.

use std::sync::{Arc, PoisonError};

use session_core::{SessionConfig, SessionId, SessionManager};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

include!("../src/store_example.rs");

/// A span as it was opened: its name and its fields, in order.
type Opened = (String, Vec<(String, String)>);

/// The spans opened since the subscriber was installed.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Opened>>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        let name = attrs.metadata().name().to_owned();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, fields.0));
    }
}

#[tokio::test]
async fn each_store_call_has_a_span_with_the_store_type_and_operation_only() {
    let spans = Spans::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))
        .expect("the only subscriber of this binary");
    let config = SessionConfig::from_json_str(r#"{"type": "doc"}"#).expect("config");
    let manager = SessionManager::new(Arc::new(MapStore::default()), config).expect("manager");

    let login = manager.session_from_cookie_header(None);
    login.set("user", "ada").await.expect("set");
    let cookie = login.flush().await.expect("flush").expect("cookie");
    let header = format!("{}={}", cookie.name(), cookie.value());
    let again = manager.session_from_cookie_header(Some(&header));
    again.set("user", "grace").await.expect("load");
    again.flush().await.expect("flush");
    again.clear().await;
    again.flush().await.expect("flush");
    manager.store().gc().await.expect("gc");

    let calls: Vec<Opened> = spans
        .0
        .lock()
        .expect("spans")
        .iter()
        .filter(|(name, _)| name == "session_store")
        .cloned()
        .collect();
    let ops: Vec<&str> = calls
        .iter()
        .map(|(_, fields)| {
            let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, ["store", "op"], "only these fields: {fields:?}");
            assert_eq!(fields[0].1, "doc", "the configured store type");
            fields[1].1.as_str()
        })
        .collect();
    assert_eq!(ops, ["create", "load", "update", "delete", "gc"]);
    let id = cookie.value();
    let key = SessionId::parse(id).expect("id").store_key();
    for (_, fields) in &calls {
        for (_, value) in fields {
            assert!(
                !value.contains(id) && !value.contains(key.short()),
                "a span carries the id or its key: {fields:?}"
            );
        }
    }
}
