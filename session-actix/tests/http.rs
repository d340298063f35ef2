//! HTTP behaviour of the middleware, through a real actix-web app and real stores (memory,
//! file): cookies, store failures, and same-session concurrency (the lock, per-route lock
//! modes, lock timeouts).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use actix_web::test::{self, TestRequest};
use actix_web::{App, web};
use futures_util::future::join_all;
use session_actix::{
    OnLockTimeout, OnStoreError, Session, SessionError, SessionLock, SessionMiddleware,
};
use session_core::{LockMode, SessionConfig, SessionId, SessionManager, SessionStore};
use session_file::{FileStore, FileStoreOptions};
use session_memory::MemoryStore;
use session_testkit::CountingStore;

async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("user")
        .await?
        .unwrap_or_else(|| "anonymous".to_owned()))
}

async fn login(session: Session, name: web::Path<String>) -> Result<&'static str, SessionError> {
    session.cycle_id().await?;
    session.set("user", &name.into_inner()).await?;
    Ok("welcome")
}

async fn logout(session: Session) -> &'static str {
    session.clear().await;
    "bye"
}

/// A read-modify-write with a pause between the read and the write, so that concurrent
/// requests interleave there.
async fn incr(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(2)).await;
    session.set("n", &(n + 1)).await?;
    Ok((n + 1).to_string())
}

async fn read_n(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
}

/// Holds the session (and its lock, when on) for 800 ms, then increments.
async fn hold(session: Session) -> Result<&'static str, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    session.set("n", &(n + 1)).await?;
    Ok("held")
}

async fn huge(session: Session) -> Result<&'static str, SessionError> {
    session.set("blob", &vec![0u8; 5 * 1024 * 1024]).await?;
    Ok("stored")
}

async fn untouched() -> &'static str {
    "no session used"
}

/// The routes, without the middleware.
fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/read", web::get().to(read))
        .route("/login/{name}", web::get().to(login))
        .route("/logout", web::get().to(logout))
        .route("/incr", web::get().to(incr))
        .route("/n", web::get().to(read_n))
        .service(
            web::resource("/n-read-only")
                .wrap(SessionLock::new(LockMode::ReadOnly))
                .route(web::get().to(read_n)),
        )
        .service(
            web::resource("/incr-read-only")
                .wrap(SessionLock::new(LockMode::ReadOnly))
                .route(web::get().to(incr)),
        )
        .route("/hold", web::get().to(hold))
        .route("/huge", web::get().to(huge))
        .route("/untouched", web::get().to(untouched));
}

/// `routes` behind [`SessionMiddleware`] over `store` (counted) with `config`.
fn manager(store: Arc<dyn SessionStore>, config: &str) -> SessionManager {
    let config = SessionConfig::from_json_str(config).expect("config");
    SessionManager::new(store, config).expect("manager")
}

fn counted(config: &str) -> (Arc<CountingStore>, SessionManager) {
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let manager = manager(Arc::clone(&store) as Arc<dyn SessionStore>, config);
    (store, manager)
}

fn get(path: &str, cookie: Option<&str>) -> actix_http::Request {
    let mut request = TestRequest::get().uri(path);
    if let Some(cookie) = cookie {
        request = request.insert_header((COOKIE, cookie));
    }
    request.to_request()
}

fn set_cookie<B>(response: &ServiceResponse<B>) -> Option<String> {
    response
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

fn cookie_pair<B>(response: &ServiceResponse<B>) -> Option<String> {
    set_cookie(response).map(|header| header.split(';').next().unwrap_or_default().to_owned())
}

/// The body of `response` as text.
async fn text<B: actix_web::body::MessageBody>(response: ServiceResponse<B>) -> String {
    String::from_utf8(test::read_body(response).await.to_vec()).expect("utf-8")
}

macro_rules! app {
    ($middleware:expr) => {
        test::init_service(App::new().configure(routes).wrap($middleware)).await
    };
}

#[actix_web::test]
async fn cookie_is_set_only_when_needed() {
    let (store, manager) = counted("{}");
    let app = app!(SessionMiddleware::new(manager));
    let response = test::call_service(&app, get("/read", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookie(&response).is_none(),
        "an anonymous read set a cookie"
    );
    let response = test::call_service(&app, get("/untouched", None)).await;
    assert!(set_cookie(&response).is_none());
    assert_eq!(store.counts().total(), 0, "no session use, no store call");

    let response = test::call_service(&app, get("/login/ada", None)).await;
    let cookie = cookie_pair(&response).expect("login sets a cookie");
    let response = test::call_service(&app, get("/read", Some(&cookie))).await;
    assert!(
        set_cookie(&response).is_none(),
        "an unchanged session resent its cookie"
    );
    assert_eq!(text(response).await, "ada");
}

#[actix_web::test]
async fn cookie_attributes_follow_the_configuration() {
    let (_, manager) = counted(
        r#"{"name": "sid", "secret": "k", "cookie": {"secure": true, "same_site": "strict",
            "domain": "example.com", "path": "/", "max_age": 600}}"#,
    );
    let app = app!(SessionMiddleware::new(manager));
    let response = test::call_service(&app, get("/login/ada", None)).await;
    let header = set_cookie(&response).expect("cookie");
    for attribute in [
        "sid=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Domain=example.com",
        "Path=/",
        "Max-Age=600",
        "Expires=",
    ] {
        assert!(
            header.contains(attribute),
            "{attribute} missing from {header}"
        );
    }
    let value = header.split(';').next().unwrap_or_default();
    assert!(value.contains('.'), "not signed: {value}");
}

#[actix_web::test]
async fn a_2xx_means_the_write_happened() {
    let (store, manager) = counted("{}");
    let app = app!(SessionMiddleware::new(manager));
    let response = test::call_service(&app, get("/login/ada", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = cookie_pair(&response).expect("cookie");
    let id = SessionId::parse(cookie.trim_start_matches("thinkjs=")).expect("unsigned id");
    let record = store
        .load(&id.store_key())
        .await
        .expect("load")
        .expect("stored before the response");
    assert!(record.data.contains_key("user"));
    for expected in ["1", "2"] {
        let response = test::call_service(&app, get("/incr", Some(&cookie))).await;
        assert_eq!(text(response).await, expected);
    }
}

#[actix_web::test]
async fn logout_sends_the_removal_and_the_old_cookie_opens_nothing() {
    let (_, manager) = counted("{}");
    let app = app!(SessionMiddleware::new(manager));
    let response = test::call_service(&app, get("/login/ada", None)).await;
    let cookie = cookie_pair(&response).expect("cookie");
    let response = test::call_service(&app, get("/logout", Some(&cookie))).await;
    assert_eq!(cookie_pair(&response).as_deref(), Some("thinkjs="));
    let response = test::call_service(&app, get("/read", Some(&cookie))).await;
    assert_eq!(text(response).await, "anonymous");
}

#[actix_web::test]
async fn a_store_failure_is_a_500_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("session");
    let store = Arc::new(FileStore::open(FileStoreOptions::new(&path)).expect("open"));
    // Break the store for real: its folder becomes a regular file.
    std::fs::remove_dir_all(&path).expect("rm");
    std::fs::write(&path, b"not a folder").expect("write");
    let cookie = format!("thinkjs={}", SessionId::generate(32).expect("id").expose());

    let app = app!(SessionMiddleware::new(manager(store.clone(), "{}")));
    let response = test::call_service(&app, get("/read", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let response = test::call_service(&app, get("/login/ada", None)).await;
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "a failed flush must not look like success"
    );
    assert!(set_cookie(&response).is_none());

    // With KeepResponse the handler's own answer goes out (here: its SessionError → 500,
    // and an untouched route still works).
    let app = app!(
        SessionMiddleware::new(manager(store, "{}")).on_store_error(OnStoreError::KeepResponse)
    );
    let response = test::call_service(&app, get("/untouched", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = test::call_service(&app, get("/read", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn oversize_values_are_a_413_and_no_cookie() {
    let (_, manager) = counted("{}");
    let app = app!(SessionMiddleware::new(manager));
    let response = test::call_service(&app, get("/huge", None)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(set_cookie(&response).is_none());
}

#[actix_web::test]
async fn the_extractor_without_the_middleware_is_a_500() {
    let app = test::init_service(App::new().configure(routes)).await;
    let response = test::call_service(&app, get("/read", None)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(response).await.contains("SessionMiddleware"));
    let response = test::call_service(&app, get("/n-read-only", None)).await;
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "SessionLock without the middleware"
    );
}

/// Requests of one session sent at once in each concurrency test.
const CONCURRENT: usize = 50;

/// A session whose counter is 1; its cookie.
async fn counting_session<S, B>(app: &S) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let response = test::call_service(app, get("/incr", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    cookie_pair(&response).expect("a session cookie")
}

#[actix_web::test]
async fn with_the_lock_concurrent_read_modify_writes_of_one_session_all_land() {
    for (config, lost_allowed) in [(r#"{"lock": true}"#, false), ("{}", true)] {
        let (_, manager) = counted(config);
        let app = app!(SessionMiddleware::new(manager));
        let cookie = counting_session(&app).await;
        let responses = join_all(
            (0..CONCURRENT).map(|_| test::call_service(&app, get("/incr", Some(&cookie)))),
        )
        .await;
        assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
        let response = test::call_service(&app, get("/n", Some(&cookie))).await;
        let n: usize = text(response).await.parse().expect("a number");
        if lost_allowed {
            // Without the lock the interleaved read-modify-writes lose increments: this
            // is what the lock is for, and shows the test can see it.
            assert!(
                n < CONCURRENT + 1,
                "no increment lost without the lock: {n}"
            );
        } else {
            assert_eq!(n, CONCURRENT + 1, "increments were lost under the lock");
        }
    }
}

#[actix_web::test]
async fn a_lock_not_granted_in_time_is_a_503_with_retry_after() {
    for (policy, status, retry_after) in [
        (
            OnLockTimeout::default(),
            StatusCode::SERVICE_UNAVAILABLE,
            Some("1"),
        ),
        (
            OnLockTimeout::ServiceUnavailable {
                retry_after: Duration::from_millis(2500),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            Some("3"),
        ),
        (
            OnLockTimeout::SameAsStoreError,
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
        ),
    ] {
        let (_, manager) = counted(r#"{"lock": true, "lock_timeout": "100ms"}"#);
        let app = app!(SessionMiddleware::new(manager).on_lock_timeout(policy));
        let cookie = counting_session(&app).await;
        let holder = test::call_service(&app, get("/hold", Some(&cookie)));
        let refused = async {
            // Let the holder take the lock first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            test::call_service(&app, get("/incr", Some(&cookie))).await
        };
        let (holder, refused) = futures_util::join!(holder, refused);
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
        assert_eq!(holder.status(), StatusCode::OK);
        let response = test::call_service(&app, get("/n", Some(&cookie))).await;
        assert_eq!(text(response).await, "2", "the refused request wrote");
    }
}

#[actix_web::test]
async fn a_read_only_route_answers_while_another_request_holds_the_lock() {
    let (_, manager) = counted(r#"{"lock": true}"#);
    let app = app!(SessionMiddleware::new(manager));
    let cookie = counting_session(&app).await;
    let began = Instant::now();
    let holder = test::call_service(&app, get("/hold", Some(&cookie)));
    let reads = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let read = test::call_service(&app, get("/n-read-only", Some(&cookie))).await;
        let answered = began.elapsed();
        // The same read without the route's mode waits for the holder's flush.
        let waited = test::call_service(&app, get("/n", Some(&cookie))).await;
        (read, answered, waited)
    };
    let (holder, (read, answered, waited)) = futures_util::join!(holder, reads);
    assert_eq!(holder.status(), StatusCode::OK);
    assert!(
        answered < Duration::from_millis(600),
        "the read-only route waited for the lock: {answered:?}"
    );
    assert_eq!(text(read).await, "1", "it reads what was stored");
    assert_eq!(text(waited).await, "2", "a locked read did not wait");
}

#[actix_web::test]
async fn a_read_only_route_that_writes_is_an_error() {
    for config in ["{}", r#"{"lock": true}"#] {
        let (_, manager) = counted(config);
        let app = app!(SessionMiddleware::new(manager));
        let cookie = counting_session(&app).await;
        let response = test::call_service(&app, get("/incr-read-only", Some(&cookie))).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(set_cookie(&response).is_none());
        let response = test::call_service(&app, get("/n", Some(&cookie))).await;
        assert_eq!(text(response).await, "1", "a read-only route wrote");
    }
}

#[actix_web::test]
async fn the_middleware_can_lock_what_the_configuration_does_not() {
    let (_, manager) = counted("{}");
    let app = app!(SessionMiddleware::new(manager).lock_mode(LockMode::Exclusive));
    let cookie = counting_session(&app).await;
    let responses =
        join_all((0..CONCURRENT).map(|_| test::call_service(&app, get("/incr", Some(&cookie)))))
            .await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let response = test::call_service(&app, get("/n", Some(&cookie))).await;
    assert_eq!(text(response).await, (CONCURRENT + 1).to_string());
}

#[actix_web::test]
async fn a_header_token_travels_in_and_out_and_clear_empties_it() {
    let (_, manager) = counted(r#"{"transport": ["cookie", "header"]}"#);
    let app = app!(SessionMiddleware::new(manager));
    let header = |path: &str, token: &str| {
        TestRequest::get()
            .uri(path)
            .insert_header(("x-session-token", token))
            .to_request()
    };
    let token_of = |response: &ServiceResponse<_>| {
        response
            .headers()
            .get("x-session-token")
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let first = test::call_service(&app, header("/incr", "")).await;
    assert_eq!(set_cookie(&first), None, "a header client gets no cookie");
    let issued = token_of(&first).expect("the token comes back in the header");
    assert_eq!(text(first).await, "1");
    let second = test::call_service(&app, header("/incr", &issued)).await;
    assert_eq!(token_of(&second), None, "unchanged: nothing sent");
    assert_eq!(text(second).await, "2");
    let out = test::call_service(&app, header("/logout", &issued)).await;
    assert_eq!(
        token_of(&out).as_deref(),
        Some(""),
        "clear() empties the token"
    );
    let replay = test::call_service(&app, header("/incr", &issued)).await;
    assert_eq!(text(replay).await, "1");
}
