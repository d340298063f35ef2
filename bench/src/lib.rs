//! The tower-sessions peer application's routes: the example app's `/incr` and `/read` on
//! tower-sessions, shared by the peer binary of the HTTP benchmark and by the in-process
//! router benchmark, so both measure the same peer.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tower_sessions::{Session, SessionManagerLayer, SessionStore};

/// Reads an integer from the session, adds one, stores it, returns it.
pub async fn incr(session: Session) -> Result<String, StatusCode> {
    let n: u64 = session
        .get("n")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or(0)
        + 1;
    session
        .insert("n", n)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(n.to_string())
}

/// Reads the `/incr` counter without changing it.
pub async fn read(session: Session) -> Result<String, StatusCode> {
    let n: u64 = session
        .get("n")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or(0);
    Ok(n.to_string())
}

/// The peer's routes over `store`, with cookies that plain HTTP carries (not `Secure`).
pub fn routes<S: SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/incr", get(incr))
        .route("/read", get(read))
        .route("/healthz", get(|| async { "ok" }))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}
