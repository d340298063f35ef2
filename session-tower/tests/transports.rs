//! The token transports through a real axum router: a header of its own and
//! `Authorization: Bearer` for server-side sessions, a client-side `cookie` session, and
//! the response header a new, changed or cleared token comes back in; hostile header
//! values (several, oversize, non-ASCII) are no session.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use session_core::{SessionConfig, SessionManager};
use session_memory::MemoryStore;
use session_tower::{Session, SessionError, SessionLayer};
use tower::ServiceExt as _;

async fn incr(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.set("n", &n).await?;
    Ok(n.to_string())
}

async fn logout(session: Session) -> &'static str {
    session.clear().await;
    "bye"
}

fn app(json: &str) -> Router {
    let config = SessionConfig::from_json_str(json).expect("config");
    let manager = if config.is_client_side() {
        SessionManager::client_side(config)
    } else {
        SessionManager::new(Arc::new(MemoryStore::new()), config)
    }
    .expect("manager");
    Router::new()
        .route("/incr", get(incr))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(manager))
}

async fn get_with(app: &Router, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        // From bytes: a value may hold non-ASCII (obs-text), as a hostile client sends it.
        let value = http::HeaderValue::from_bytes(value.as_bytes()).expect("a header value");
        request = request.header(*name, value);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response")
}

async fn body(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn token(response: &Response<Body>) -> Option<String> {
    let value = response.headers().get("x-session-token")?;
    Some(value.to_str().expect("ASCII").to_owned())
}

#[tokio::test]
async fn a_header_client_and_a_browser_share_one_app() {
    let app = app(r#"{"transport": ["cookie", "header"], "secret": "http transport secret"}"#);
    // The API client asks for a header token by sending the header empty.
    let first = get_with(&app, "/incr", &[("x-session-token", "")]).await;
    assert!(
        first.headers().get(SET_COOKIE).is_none(),
        "no cookie for a header client"
    );
    let issued = token(&first).expect("the token comes back in the header");
    assert_eq!(body(first).await, "1");
    let second = get_with(&app, "/incr", &[("x-session-token", &issued)]).await;
    assert_eq!(token(&second), None, "unchanged token: nothing sent");
    assert_eq!(body(second).await, "2");
    // A browser on the same app gets a cookie, and no token header.
    let browser = get_with(&app, "/incr", &[]).await;
    assert!(token(&browser).is_none());
    let cookie = browser
        .headers()
        .get(SET_COOKIE)
        .expect("a cookie")
        .to_str()
        .expect("ASCII");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    // Logging the header client out says so with an empty token.
    let out = get_with(&app, "/logout", &[("x-session-token", &issued)]).await;
    assert_eq!(token(&out).as_deref(), Some(""));
    let replay = get_with(&app, "/incr", &[("x-session-token", &issued)]).await;
    assert_eq!(body(replay).await, "1", "the old token opens nothing");
}

#[tokio::test]
async fn bearer_tokens_and_hostile_authorization_headers() {
    let app = app(r#"{"transport": "bearer"}"#);
    let first = get_with(&app, "/incr", &[]).await;
    let issued = token(&first).expect("a bearer client's token comes back in the header");
    let bearer = format!("Bearer {issued}");
    let second = get_with(&app, "/incr", &[(AUTHORIZATION.as_str(), &bearer)]).await;
    assert_eq!(body(second).await, "2");
    let twice = get_with(
        &app,
        "/incr",
        &[
            (AUTHORIZATION.as_str(), &bearer),
            (AUTHORIZATION.as_str(), &bearer),
        ],
    )
    .await;
    assert_eq!(
        body(twice).await,
        "1",
        "two bearer tokens are ambiguous: no session"
    );
    for hostile in [
        "Bearer \u{e9}t\u{e9}",
        "Bearer ../../etc/passwd",
        "Bearer a b c",
    ] {
        let answer = get_with(&app, "/incr", &[(AUTHORIZATION.as_str(), hostile)]).await;
        assert_eq!(body(answer).await, "1", "{hostile}: no session");
    }
    let oversize = format!("Bearer {}", "A".repeat(16 * 1024));
    let big = get_with(&app, "/incr", &[(AUTHORIZATION.as_str(), &oversize)]).await;
    assert_eq!(big.status(), StatusCode::OK);
    assert_eq!(body(big).await, "1");
}

#[tokio::test]
async fn a_cookie_session_needs_no_store_and_refuses_to_outgrow_the_cookie() {
    let app = app(r#"{"type": "cookie", "secret": "an http test secret of 32 bytes!!"}"#).route(
        "/big",
        get(|session: Session| async move {
            session.set("blob", &"x".repeat(6000)).await?;
            Ok::<_, SessionError>("stored?")
        }),
    );
    let first = get_with(&app, "/incr", &[]).await;
    let set_cookie = first
        .headers()
        .get(SET_COOKIE)
        .expect("a cookie")
        .to_str()
        .expect("ASCII");
    let pair = set_cookie.split(';').next().expect("name=value").to_owned();
    let second = get_with(&app, "/incr", &[(COOKIE.as_str(), &pair)]).await;
    assert_eq!(body(second).await, "2");
    let big = get_with(&app, "/big", &[]).await;
    assert_eq!(
        big.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "never a cookie the browser drops"
    );
    assert!(big.headers().get(SET_COOKIE).is_none());
}
