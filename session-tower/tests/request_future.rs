//! The future the layer allocates for every request stays within malloc's small sizes.
//!
//! glibc serves requests up to 1,032 bytes from per-thread caches; a larger one goes to the
//! shared bins and, when small chunks are waiting there, consolidates them first. A
//! 1,408-byte request future showed up as `malloc_consolidate` and `unlink_chunk` in the
//! example app's profile under load, and the flush borrowing its state instead of copying
//! it brought the future to 928 bytes (944 with the data lent to the store; 976 since the
//! layer keeps the inner service's future instead of a clone of the service). The session
//! lock grew the flush to 688 bytes and the future to 1,160; since the layer chains the
//! flush after the inner future (`and_then`, which keeps one of them at a time) instead of
//! awaiting both in one `async` block, it is 872, and 920 since the response may carry a
//! token header. This test keeps it under the limit.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use session_core::{SessionConfig, SessionManager};
use session_memory::MemoryStore;
use session_tower::{Session, SessionError, SessionLayer};
use tower::{Layer as _, Service as _};

/// The largest allocation glibc's per-thread cache serves, less its 8-byte chunk header
/// and 16-byte alignment slack, rounded down.
const SMALL_ALLOCATION: usize = 1008;

async fn incr(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.set("n", &n).await?;
    Ok(n.to_string())
}

#[tokio::test]
async fn the_per_request_future_is_a_small_allocation() {
    let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())
        .expect("manager");
    let flush = manager.session_from_cookie_header(None);
    let flush_size = size_of_val(&flush.flush());
    let mut service = SessionLayer::new(manager).layer(Router::new().route("/incr", get(incr)));
    let request = http::Request::get("/incr")
        .body(Body::empty())
        .expect("request");
    let future = service.call(request);
    let size = size_of_val(&*future);
    eprintln!("the layer's per-request future: {size} bytes, of which the flush {flush_size}");
    assert!(
        size <= SMALL_ALLOCATION,
        "the layer's per-request future is {size} bytes (of which the flush is {flush_size}); \
         keep it within {SMALL_ALLOCATION}, e.g. by borrowing rather than cloning across awaits"
    );
    let response = future.await.expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
}
