//! Heap allocations per whole request (`GET /incr` of the example app) on the memory store,
//! counted with dhat: `cargo bench -p session-memory --bench allocations`.
//!
//! Apart from the timings in `memory_store`, because counting slows every allocation down.

use std::sync::Arc;

use session_core::{SessionConfig, SessionManager};
use session_memory::MemoryStore;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Requests counted per figure.
const REQUESTS: u64 = 1_000;

/// Read a counter, add one, write it, flush; the `Set-Cookie` value, if any.
async fn incr(manager: &SessionManager, cookie: Option<&str>) -> Option<String> {
    let session = manager.session_from_cookie_header(cookie);
    let n: u64 = session.get("n").await.expect("get").unwrap_or(0);
    session.set("n", &(n + 1)).await.expect("set");
    let set_cookie = session.flush().await.expect("flush")?;
    Some(format!("{}={}", set_cookie.name(), set_cookie.value()))
}

/// Allocations and bytes allocated per call of `incr`.
async fn per_request(manager: &SessionManager, cookie: Option<&str>) -> (f64, f64) {
    incr(manager, cookie).await;
    let profiler = dhat::Profiler::builder().testing().build();
    for _ in 0..REQUESTS {
        incr(manager, cookie).await;
    }
    let stats = dhat::HeapStats::get();
    drop(profiler);
    (
        stats.total_blocks as f64 / REQUESTS as f64,
        stats.total_bytes as f64 / REQUESTS as f64,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())
            .expect("manager");
        let cookie = incr(&manager, None)
            .await
            .expect("a new session gets a cookie");
        let (existing, existing_bytes) = per_request(&manager, Some(&cookie)).await;
        let (new, new_bytes) = per_request(&manager, None).await;
        println!("heap allocations per request (memory store, GET /incr):");
        println!("  existing session: {existing:.1} ({existing_bytes:.0} bytes)");
        println!("  new session:      {new:.1} ({new_bytes:.0} bytes)");
    });
}
