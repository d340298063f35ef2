//! `GET /incr` through an axum router, in process (no sockets, no HTTP parsing): what a
//! session library costs per request by itself, next to the same router without sessions
//! and with tower-sessions on its memory store.
//!
//! `cargo bench -p session-bench --bench router`

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use session_core::{SessionConfig, SessionManager};
use session_memory::MemoryStore;
use tower::ServiceExt as _;

/// Ours: the example app's handler.
async fn ours_incr(session: session_tower::Session) -> Result<String, session_tower::SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.set("n", &n).await?;
    Ok(n.to_string())
}

fn routers() -> [(&'static str, Router); 3] {
    let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())
        .expect("manager");
    [
        (
            "no session",
            Router::new().route("/incr", get(|| async { "1".to_owned() })),
        ),
        (
            "ours",
            Router::new()
                .route("/incr", get(ours_incr))
                .layer(session_tower::SessionLayer::new(manager)),
        ),
        (
            "tower-sessions",
            peer_app::routes(tower_sessions::MemoryStore::default()),
        ),
    ]
}

fn request(cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/incr");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.body(Body::empty()).expect("request")
}

/// One request; the `name=value` of its `Set-Cookie`, if any.
async fn call(router: &Router, cookie: Option<&str>) -> Option<String> {
    let response = router
        .clone()
        .oneshot(request(cookie))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let value = response.headers().get(SET_COOKIE)?.to_str().ok()?;
    value.split(';').next().map(str::to_owned)
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("router_incr");
    for (name, router) in routers() {
        // The no-session router sets no cookie: it gets the same header, unread.
        let cookie = rt
            .block_on(call(&router, None))
            .unwrap_or_else(|| "thinkjs=0123456789abcdefghijklmnopqrstuv".to_owned());
        group.bench_function(format!("{name}/existing"), |b| {
            b.to_async(&rt).iter(|| call(&router, Some(&cookie)));
        });
        group.bench_function(format!("{name}/new"), |b| {
            b.to_async(&rt).iter(|| call(&router, None));
        });
    }
    group.finish();
}

criterion_group!(benches, requests);
criterion_main!(benches);
