//! HTTP behaviour of the layer, through a real axum router and real stores (memory, file).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use session_core::{SessionConfig, SessionId, SessionManager, SessionStore};
use session_file::{FileStore, FileStoreOptions};
use session_memory::MemoryStore;
use session_testkit::CountingStore;
use session_tower::{OnStoreError, Session, SessionError, SessionLayer};
use tower::ServiceExt as _;

async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("user")
        .await?
        .unwrap_or_else(|| "anonymous".to_owned()))
}

async fn login(session: Session, Path(name): Path<String>) -> Result<&'static str, SessionError> {
    session.cycle_id().await?;
    session.set("user", &name).await?;
    Ok("welcome")
}

async fn logout(session: Session) -> &'static str {
    session.clear().await;
    "bye"
}

async fn incr(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.set("n", &n).await?;
    Ok(n.to_string())
}

async fn slow_cart(session: Session) -> Result<&'static str, SessionError> {
    let _user: Option<String> = session.get("user").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    session.set("cart", "1 item").await?;
    Ok("added")
}

async fn huge(session: Session) -> Result<&'static str, SessionError> {
    session.set("blob", &vec![0u8; 5 * 1024 * 1024]).await?;
    Ok("stored")
}

async fn untouched() -> &'static str {
    "no session used"
}

fn routes() -> Router {
    Router::new()
        .route("/read", get(read))
        .route("/login/{name}", get(login))
        .route("/logout", get(logout))
        .route("/incr", get(incr))
        .route("/slow-cart", get(slow_cart))
        .route("/huge", get(huge))
        .route("/untouched", get(untouched))
}

struct App {
    router: Router,
    store: Arc<CountingStore>,
}

impl App {
    fn new(config: &str) -> Self {
        Self::over(
            Arc::new(MemoryStore::new()),
            config,
            OnStoreError::default(),
        )
    }

    fn over(store: Arc<dyn SessionStore>, config: &str, policy: OnStoreError) -> Self {
        let store = Arc::new(CountingStore::new(store));
        let config = SessionConfig::from_json_str(config).expect("config");
        let manager = SessionManager::new(Arc::clone(&store) as Arc<dyn SessionStore>, config)
            .expect("manager");
        let router = routes().layer(SessionLayer::new(manager).on_store_error(policy));
        Self { router, store }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        self.router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    /// Logs `name` in and returns the `Cookie` header to send back.
    async fn login(&self, name: &str) -> String {
        let response = self.get(&format!("/login/{name}"), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        cookie_pair(&response).expect("login sets a cookie")
    }
}

fn set_cookie(response: &Response<Body>) -> Option<String> {
    response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

fn cookie_pair(response: &Response<Body>) -> Option<String> {
    set_cookie(response).map(|header| header.split(';').next().unwrap_or_default().to_owned())
}

async fn text(response: Response<Body>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn cookie_is_set_only_when_needed() {
    let app = App::new("{}");
    let untouched = app.get("/untouched", None).await;
    assert!(set_cookie(&untouched).is_none());
    let read_only = app.get("/read", None).await;
    assert!(
        set_cookie(&read_only).is_none(),
        "an empty new session got a cookie"
    );
    assert_eq!(app.store.counts().writes(), 0);

    let cookie = app.login("ada").await;
    let read = app.get("/read", Some(&cookie)).await;
    assert!(
        set_cookie(&read).is_none(),
        "a read-only request got a cookie"
    );
    assert_eq!(text(read).await, "ada");
}

#[tokio::test]
async fn cookie_attributes_follow_the_configuration() {
    let app = App::new("{}");
    let response = app.get("/login/ada", None).await;
    let header = set_cookie(&response).expect("cookie");
    assert!(header.starts_with("thinkjs="), "{header}");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=86400",
        "Expires=",
    ] {
        assert!(
            header.contains(attribute),
            "{attribute} missing from {header}"
        );
    }
    assert!(!header.contains("Secure"), "{header}");

    let app = App::new(
        r#"{"name": "sid", "secret": "k", "cookie": {"secure": true, "same_site": "strict",
            "domain": "example.com", "path": "/app", "max_age": 600}}"#,
    );
    let response = app.get("/login/ada", None).await;
    let header = set_cookie(&response).expect("cookie");
    for attribute in [
        "sid=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Domain=example.com",
        "Path=/app",
        "Max-Age=600",
    ] {
        assert!(
            header.contains(attribute),
            "{attribute} missing from {header}"
        );
    }
    // Signed as ThinkJS does: id.signature, percent-encoded.
    let value = header
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_start_matches("sid=");
    assert!(value.contains('.'), "{value}");
    assert!(
        !value.contains('/') && !value.contains('+'),
        "not percent-encoded: {value}"
    );
}

#[tokio::test]
async fn a_2xx_means_the_write_happened() {
    let app = App::new("{}");
    let cookie = app.login("ada").await;
    let id = SessionId::parse(cookie.trim_start_matches("thinkjs=")).expect("unsigned id");
    let record = app
        .store
        .load(&id.store_key())
        .await
        .expect("load")
        .expect("stored before the response");
    assert!(record.data.contains_key("user"));
    let first = app.get("/incr", Some(&cookie)).await;
    assert_eq!(text(first).await, "1");
    let second = app.get("/incr", Some(&cookie)).await;
    assert_eq!(text(second).await, "2");
}

#[tokio::test]
async fn read_only_requests_issue_no_write() {
    let app = App::new("{}");
    let cookie = app.login("ada").await;
    let before = app.store.counts();
    for _ in 0..10 {
        assert_eq!(text(app.get("/read", Some(&cookie)).await).await, "ada");
    }
    let after = app.store.counts();
    assert_eq!(after.loads - before.loads, 10, "one load per request");
    assert_eq!(after.writes(), before.writes(), "read-only requests wrote");
}

#[tokio::test]
async fn a_tampered_cookie_is_a_new_session_without_store_access() {
    let app = App::new(r#"{"secret": "s3cr3t"}"#);
    let cookie = app.login("ada").await;
    let loads = app.store.counts().loads;
    let mut tampered = cookie.clone();
    tampered.pop();
    tampered.push(if cookie.ends_with('A') { 'B' } else { 'A' });
    let response = app.get("/read", Some(&tampered)).await;
    assert!(set_cookie(&response).is_none());
    assert_eq!(text(response).await, "anonymous");
    assert_eq!(
        app.store.counts().loads,
        loads,
        "a tampered cookie reached the store"
    );
    // Writing under a tampered cookie starts a new session with a new id.
    let response = app.get("/incr", Some(&tampered)).await;
    let fresh = cookie_pair(&response).expect("new session cookie");
    assert_ne!(fresh, cookie);
    assert_ne!(fresh, tampered);
}

#[tokio::test]
async fn an_unknown_id_is_not_adopted() {
    let app = App::new("{}");
    let planted = format!("thinkjs={}", SessionId::generate(32).expect("id").expose());
    let response = app.get("/incr", Some(&planted)).await;
    let issued = cookie_pair(&response).expect("cookie");
    assert_ne!(issued, planted, "the planted id was adopted");
}

#[tokio::test]
async fn logout_then_replaying_the_old_cookie_finds_nothing() {
    let app = App::new("{}");
    let cookie = app.login("ada").await;
    let response = app.get("/logout", Some(&cookie)).await;
    let removal = set_cookie(&response).expect("removal cookie");
    assert!(removal.starts_with("thinkjs=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let replay = app.get("/read", Some(&cookie)).await;
    assert_eq!(text(replay).await, "anonymous");
}

#[tokio::test]
async fn a_slow_request_racing_a_logout_does_not_bring_the_session_back() {
    let app = Arc::new(App::new("{}"));
    let cookie = app.login("ada").await;
    let slow = {
        let (app, cookie) = (Arc::clone(&app), cookie.clone());
        tokio::spawn(async move { app.get("/slow-cart", Some(&cookie)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let logout = app.get("/logout", Some(&cookie)).await;
    assert_eq!(logout.status(), StatusCode::OK);
    let slow = slow.await.expect("slow request");
    assert_eq!(slow.status(), StatusCode::OK);
    assert!(
        set_cookie(&slow).is_none(),
        "the slow request re-issued a cookie"
    );
    let replay = app.get("/read", Some(&cookie)).await;
    assert_eq!(text(replay).await, "anonymous", "the session came back");
}

#[tokio::test]
async fn a_store_failure_is_a_500_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("session");
    let store = Arc::new(FileStore::open(FileStoreOptions::new(&path)).expect("open"));
    // Break the store for real: its folder becomes a regular file.
    std::fs::remove_dir_all(&path).expect("rm");
    std::fs::write(&path, b"not a folder").expect("write");
    let cookie = format!("thinkjs={}", SessionId::generate(32).expect("id").expose());

    let app = App::over(store.clone(), "{}", OnStoreError::InternalServerError);
    let response = app.get("/read", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let response = app.get("/login/ada", None).await;
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "a failed flush must not look like success"
    );
    assert!(set_cookie(&response).is_none());

    // With KeepResponse the handler's own answer goes out (here: its SessionError → 500,
    // and an untouched route still works).
    let app = App::over(store, "{}", OnStoreError::KeepResponse);
    assert_eq!(
        app.get("/untouched", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/read", Some(&cookie)).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn oversize_values_are_a_413_and_no_cookie() {
    let app = App::new("{}");
    let response = app.get("/huge", None).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(set_cookie(&response).is_none());
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500() {
    let router = routes();
    let response = router
        .oneshot(Request::get("/read").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(response).await.contains("SessionLayer"));
}
