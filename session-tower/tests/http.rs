//! HTTP behaviour of the layer, through a real axum router and real stores (memory, file):
//! cookies, store failures, and same-session concurrency (the lock, `update`, per-route
//! lock modes, lock timeouts).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use session_core::{
    Capabilities, ChangeSet, IndexedSession, LockMode, LockToken, Record, Revision, SessionConfig,
    SessionId, SessionManager, SessionStore, StoreKey, Timestamp, UserId, async_trait,
};
use session_file::{FileStore, FileStoreOptions};
use session_memory::MemoryStore;
use session_testkit::CountingStore;
use session_tower::{
    OnLockTimeout, OnStoreError, Session, SessionError, SessionLayer, SessionLock,
};
use tokio::sync::Notify;
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

// Same-session concurrency.

/// Requests of one session sent at once in each concurrency test.
const CONCURRENT: usize = 50;

/// A plain read-modify-write with a pause between the read and the write, so that
/// concurrent requests interleave there.
async fn incr_slowly(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(2)).await;
    session.set("n", &(n + 1)).await?;
    Ok((n + 1).to_string())
}

/// The same increment through `Session::update`, after a pause with the session loaded.
async fn count(session: Session) -> Result<String, SessionError> {
    let _seen: Option<u64> = session.get("n").await?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let n = session
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

async fn start(session: Session) -> Result<&'static str, SessionError> {
    session.set("n", &0u64).await?;
    Ok("started")
}

async fn read_n(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
}

/// Increments with the session's lock held for a long while, and says when it holds it.
async fn hold(session: Session, held: Arc<Notify>) -> Result<&'static str, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0);
    held.notify_one();
    tokio::time::sleep(Duration::from_millis(800)).await;
    session.set("n", &(n + 1)).await?;
    Ok("held")
}

/// A memory store that says it keeps no locks: the manager must not use them.
#[derive(Debug, Default)]
struct NoLocks(MemoryStore);

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for NoLocks {
    async fn load(&self, key: &StoreKey) -> session_core::Result<Option<Record>> {
        self.0.load(key).await
    }
    async fn create(&self, key: &StoreKey, record: &Record) -> session_core::Result<bool> {
        self.0.create(key, record).await
    }
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> session_core::Result<bool> {
        self.0.update(key, changes).await
    }
    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> session_core::Result<Option<Revision>> {
        self.0.update_if_unchanged(key, revision, record).await
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> session_core::Result<bool> {
        self.0.touch(key, expires_at).await
    }
    async fn delete(&self, key: &StoreKey) -> session_core::Result<bool> {
        self.0.delete(key).await
    }
    async fn gc(&self) -> session_core::Result<u64> {
        self.0.gc().await
    }
    async fn delete_many(&self, keys: &[StoreKey]) -> session_core::Result<u64> {
        self.0.delete_many(keys).await
    }
    async fn sessions_of(&self, user: &UserId) -> session_core::Result<Vec<IndexedSession>> {
        self.0.sessions_of(user).await
    }
    async fn user_index_len(&self, user: &UserId) -> session_core::Result<u64> {
        self.0.user_index_len(user).await
    }
    async fn lock(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> session_core::Result<bool> {
        self.0.lock(key, token, ttl).await
    }
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> session_core::Result<Option<Option<Record>>> {
        self.0.lock_and_load(key, token, ttl).await
    }
    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> session_core::Result<bool> {
        self.0.update_and_unlock(key, changes, token).await
    }
    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &LockToken,
    ) -> session_core::Result<Option<Revision>> {
        self.0
            .update_if_unchanged_and_unlock(key, revision, record, token)
            .await
    }
    async fn renew_lock(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> session_core::Result<bool> {
        self.0.renew_lock(key, token, ttl).await
    }
    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> session_core::Result<bool> {
        self.0.unlock(key, token).await
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities().with_lock(false)
    }
}

/// The concurrency routes, as a layer over `store` with `config` serves them.
struct LockApp {
    router: Router,
    /// Told by `/hold` once it holds the lock.
    held: Arc<Notify>,
}

impl LockApp {
    fn new(config: &str) -> Self {
        Self::with(
            Arc::new(MemoryStore::new()),
            config,
            |layer: SessionLayer| layer,
        )
    }

    fn with(
        store: Arc<dyn SessionStore>,
        config: &str,
        layer: impl FnOnce(SessionLayer) -> SessionLayer,
    ) -> Self {
        let config = SessionConfig::from_json_str(config).expect("config");
        let manager = SessionManager::new(store, config).expect("manager");
        let held = Arc::new(Notify::new());
        let signal = Arc::clone(&held);
        let router = Router::new()
            .route("/start", get(start))
            .route("/incr", get(incr_slowly))
            .route("/count", get(count))
            .route("/n", get(read_n))
            .route(
                "/n-read-only",
                get(read_n).route_layer(SessionLock::new(LockMode::ReadOnly)),
            )
            .route(
                "/incr-read-only",
                get(incr).route_layer(SessionLock::new(LockMode::ReadOnly)),
            )
            .route(
                "/incr-exclusive",
                get(incr_slowly).route_layer(SessionLock::new(LockMode::Exclusive)),
            )
            .route(
                "/hold",
                get(move |session: Session| hold(session, Arc::clone(&signal))),
            )
            .layer(layer(SessionLayer::new(manager)));
        Self { router, held }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        get_from(&self.router, path, cookie).await
    }

    /// A session with `n = 0`; its `Cookie` header.
    async fn session(&self) -> String {
        let response = self.get("/start", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        cookie_pair(&response).expect("a session cookie")
    }

    /// Sends [`CONCURRENT`] requests of `path` with `cookie` at once; their statuses.
    async fn concurrently(&self, path: &'static str, cookie: &str) -> Vec<StatusCode> {
        let requests: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let (router, cookie) = (self.router.clone(), cookie.to_owned());
                tokio::spawn(async move { get_from(&router, path, Some(&cookie)).await.status() })
            })
            .collect();
        let mut statuses = Vec::with_capacity(requests.len());
        for request in requests {
            statuses.push(request.await.expect("request task"));
        }
        statuses
    }

    async fn counter(&self, cookie: &str) -> String {
        text(self.get("/n", Some(cookie)).await).await
    }
}

async fn get_from(router: &Router, path: &str, cookie: Option<&str>) -> Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

fn all_ok(statuses: &[StatusCode]) -> bool {
    statuses.iter().all(|s| *s == StatusCode::OK)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lock_concurrent_read_modify_writes_of_one_session_all_land() {
    let app = LockApp::new(r#"{"lock": true}"#);
    let cookie = app.session().await;
    let statuses = app.concurrently("/incr", &cookie).await;
    assert!(all_ok(&statuses), "{statuses:?}");
    assert_eq!(app.counter(&cookie).await, CONCURRENT.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_without_the_lock_loses_no_increment() {
    let app = LockApp::new("{}");
    let cookie = app.session().await;
    let statuses = app.concurrently("/count", &cookie).await;
    assert!(all_ok(&statuses), "{statuses:?}");
    assert_eq!(app.counter(&cookie).await, CONCURRENT.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_and_a_route_can_lock_what_the_configuration_does_not() {
    let app = LockApp::with(Arc::new(MemoryStore::new()), "{}", |layer| {
        layer.lock_mode(LockMode::Exclusive)
    });
    let cookie = app.session().await;
    let statuses = app.concurrently("/incr", &cookie).await;
    assert!(all_ok(&statuses), "{statuses:?}");
    assert_eq!(app.counter(&cookie).await, CONCURRENT.to_string());

    let app = LockApp::new("{}");
    let cookie = app.session().await;
    let statuses = app.concurrently("/incr-exclusive", &cookie).await;
    assert!(all_ok(&statuses), "{statuses:?}");
    assert_eq!(app.counter(&cookie).await, CONCURRENT.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_not_granted_in_time_is_a_503_with_retry_after() {
    let keep = OnStoreError::KeepResponse;
    let fail = OnStoreError::InternalServerError;
    for (policy, on_error, status, retry_after) in [
        (
            OnLockTimeout::default(),
            keep,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("1"),
        ),
        (
            OnLockTimeout::ServiceUnavailable {
                retry_after: Duration::from_millis(2500),
            },
            fail,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("3"),
        ),
        (
            OnLockTimeout::SameAsStoreError,
            fail,
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
        ),
        // The handler's own answer: its `SessionError` for `ErrorKind::Locked`.
        (
            OnLockTimeout::SameAsStoreError,
            keep,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("1"),
        ),
    ] {
        let app = LockApp::with(
            Arc::new(MemoryStore::new()),
            r#"{"lock": true, "lock_timeout": "100ms"}"#,
            |layer| layer.on_lock_timeout(policy).on_store_error(on_error),
        );
        let cookie = app.session().await;
        let holder = {
            let (router, cookie) = (app.router.clone(), cookie.clone());
            tokio::spawn(async move { get_from(&router, "/hold", Some(&cookie)).await })
        };
        app.held.notified().await;
        let refused = app.get("/incr", Some(&cookie)).await;
        assert_eq!(refused.status(), status, "{policy:?}");
        assert_eq!(
            refused
                .headers()
                .get(RETRY_AFTER)
                .map(|v| v.to_str().expect("ascii")),
            retry_after,
            "{policy:?}"
        );
        assert!(set_cookie(&refused).is_none());
        assert!(!holder.is_finished(), "the holder ended before the timeout");
        let holder = holder.await.expect("holder");
        assert_eq!(holder.status(), StatusCode::OK);
        assert_eq!(app.counter(&cookie).await, "1", "the refused request wrote");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_route_answers_while_another_request_holds_the_lock() {
    let app = LockApp::new(r#"{"lock": true}"#);
    let cookie = app.session().await;
    let holder = {
        let (router, cookie) = (app.router.clone(), cookie.clone());
        tokio::spawn(async move { get_from(&router, "/hold", Some(&cookie)).await })
    };
    app.held.notified().await;
    let began = std::time::Instant::now();
    let read = tokio::time::timeout(
        Duration::from_millis(600),
        app.get("/n-read-only", Some(&cookie)),
    )
    .await
    .expect("the read-only route waited for the lock");
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(text(read).await, "0", "it reads what was stored");
    assert!(
        !holder.is_finished(),
        "the holder ended first: nothing was shown"
    );
    // The same read without the route's mode waits for the holder's flush.
    let waited = app.get("/n", Some(&cookie)).await;
    assert_eq!(text(waited).await, "1");
    assert!(
        began.elapsed() >= Duration::from_millis(400),
        "a locked read did not wait: {:?}",
        began.elapsed()
    );
    assert_eq!(holder.await.expect("holder").status(), StatusCode::OK);
}

#[tokio::test]
async fn a_read_only_route_that_writes_is_an_error() {
    for config in ["{}", r#"{"lock": true}"#] {
        let app = LockApp::new(config);
        let cookie = app.session().await;
        let response = app.get("/incr-read-only", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(set_cookie(&response).is_none());
        assert_eq!(app.counter(&cookie).await, "0", "a read-only route wrote");
    }
}

#[tokio::test]
async fn an_exclusive_lock_over_a_store_without_locks_is_a_500() {
    let app = LockApp::with(Arc::new(NoLocks::default()), "{}", |layer| layer);
    let cookie = app.session().await;
    let response = app.get("/incr-exclusive", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(app.counter(&cookie).await, "0");
    // Nor can `update` work without locks on a store that keeps no revisions.
    let response = app.get("/count", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(app.counter(&cookie).await, "0");

    let app = LockApp::with(Arc::new(NoLocks::default()), "{}", |layer| {
        layer.lock_mode(LockMode::Exclusive)
    });
    assert_eq!(
        app.get("/start", None).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn a_session_lock_without_the_session_layer_is_a_500() {
    let router = Router::new().route(
        "/n",
        get(read_n).route_layer(SessionLock::new(LockMode::ReadOnly)),
    );
    let response = get_from(&router, "/n", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
