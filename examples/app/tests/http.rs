//! The example's routes over real HTTP, on both frameworks (axum and actix-web, the same
//! test code for each) and on the memory and file stores: logging in and out, "Your
//! sessions", and concurrent requests of one session.

use std::net::SocketAddr;

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use session_core::{SessionConfig, SessionManager};
use session_example::Framework;
use tokio::sync::oneshot;

/// The example app served on a free loopback port, stopped by [`App::stop`].
struct App {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    framework: Framework,
}

/// An answer: its status, the `name=value` of its `Set-Cookie` if any, and its body.
type Answer = (u16, Option<String>, String);

impl App {
    /// Serves the app on `framework` with `config`.
    async fn start(framework: Framework, config: SessionConfig) -> Self {
        let manager = SessionManager::from_config(config, &session_example::registry())
            .await
            .expect("manager");
        Self::over(framework, manager)
    }

    fn over(framework: Framework, manager: SessionManager) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(session_example::serve(
            framework,
            manager,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            addr,
            client,
            stop,
            server,
            framework,
        }
    }

    /// Stops the server and waits until it has.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.server
            .await
            .expect("server task")
            .expect("the server ran");
    }

    /// Sends `request`, to a path, and reads the whole answer.
    async fn send(&self, request: axum::http::Request<Full<Bytes>>) -> Answer {
        fetch(&self.client, self.addr, self.framework, request).await
    }
}

/// Sends `request`, to a path, to the app on `framework` at `addr`, and reads the whole
/// answer.
async fn fetch(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    framework: Framework,
    mut request: axum::http::Request<Full<Bytes>>,
) -> Answer {
    let uri = format!("http://{addr}{}", request.uri());
    *request.uri_mut() = uri.parse().expect("uri");
    // The server may still be starting: the first requests retry for a few seconds.
    let mut attempts = 0;
    let response = loop {
        match client.request(clone(&request)).await {
            Ok(response) => break response,
            Err(err) if attempts < 100 && err.is_connect() => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{framework} app: {err}"),
        }
    };
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, cookie, String::from_utf8_lossy(&body).into_owned())
}

/// A copy of `request` (bodies here are whole in memory).
fn clone(request: &axum::http::Request<Full<Bytes>>) -> axum::http::Request<Full<Bytes>> {
    let mut copy = axum::http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

fn get(path: &str, cookie: Option<&str>) -> axum::http::Request<Full<Bytes>> {
    let mut request = axum::http::Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Full::default()).expect("request")
}

fn post(path: &str, cookie: Option<&str>, form: &str) -> axum::http::Request<Full<Bytes>> {
    let mut request =
        axum::http::Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request
        .body(Full::new(Bytes::from(form.to_owned())))
        .expect("request")
}

async fn login_visit_logout(framework: Framework, config: SessionConfig) {
    let app = App::start(framework, config).await;

    let (status, cookie, body) = app.send(get("/", None)).await;
    assert_eq!(status, 200);
    assert!(cookie.is_none(), "an anonymous visit got a cookie");
    assert!(body.contains("not logged in"));

    // Log in on top of a pre-login session: the id must change (fixation defence).
    let (_, pre_login, _) = app.send(get("/incr", None)).await;
    let pre_login = pre_login.expect("incr starts a session");
    let (status, cookie, _) = app
        .send(post("/login", Some(&pre_login), "username=%3Cscript%3Eada"))
        .await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("login sets a cookie");
    assert_ne!(cookie, pre_login, "login kept the pre-login id");
    let (_, _, body) = app.send(get("/", Some(&pre_login))).await;
    assert!(
        body.contains("not logged in"),
        "the pre-login id still opens the session"
    );

    let (_, _, body) = app.send(get("/", Some(&cookie))).await;
    assert!(body.contains("Hello, &lt;script&gt;ada!"), "{body}");
    assert!(body.contains("Visits this session: 1"));
    let (_, _, body) = app.send(get("/", Some(&cookie))).await;
    assert!(body.contains("Visits this session: 2"));

    // The counter of the pre-login session moved with the data to the new id.
    let (_, _, n) = app.send(get("/incr", Some(&cookie))).await;
    assert_eq!(n, "2");
    let (_, _, n) = app.send(get("/incr", Some(&cookie))).await;
    assert_eq!(n, "3");
    let (_, set_cookie, n) = app.send(get("/read", Some(&cookie))).await;
    assert_eq!(n, "3");
    assert!(set_cookie.is_none(), "a read-only request set a cookie");

    let (status, removal, _) = app.send(post("/logout", Some(&cookie), "")).await;
    assert_eq!(status, 303);
    assert_eq!(removal.as_deref(), Some("thinkjs="));
    let (_, _, body) = app.send(get("/", Some(&cookie))).await;
    assert!(body.contains("not logged in"), "logged in after logout");

    let (status, _, _) = app.send(post("/login", None, "username=")).await;
    assert_eq!(status, 400);
    app.stop().await;
}

/// A login of `name` from a browser whose `User-Agent` is `agent`; its cookie.
async fn login_from(app: &App, name: &str, agent: &str) -> String {
    let mut request = post("/login", None, &format!("username={name}"));
    request
        .headers_mut()
        .insert("user-agent", agent.parse().expect("header value"));
    let (status, cookie, _) = app.send(request).await;
    assert_eq!(status, 303);
    cookie.expect("login sets a cookie")
}

/// The handles in a "Your sessions" page, in its order, and the one marked this device.
fn handles(page: &str) -> (Vec<String>, Option<String>) {
    let mut all = Vec::new();
    let mut current = None;
    for row in page.split("<tr data-handle=\"").skip(1) {
        let handle = row.split('"').next().unwrap_or_default().to_owned();
        if row
            .split("</tr>")
            .next()
            .unwrap_or_default()
            .contains("this device")
        {
            current = Some(handle.clone());
        }
        all.push(handle);
    }
    (all, current)
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36";

/// "Your sessions": two devices of one user listed with their labels, one ended from the
/// other, a handle of another user's session refused, and "log out all other sessions".
async fn your_sessions(framework: Framework, config: SessionConfig) {
    let app = App::start(framework, config).await;
    let laptop = login_from(&app, "ada", FIREFOX).await;
    let phone = login_from(&app, "ada", ANDROID).await;
    let bob = login_from(&app, "bob", FIREFOX).await;

    let (status, _, body) = app.send(get("/sessions", Some(&laptop))).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("Firefox on Linux") && body.contains("Chrome on Android"),
        "{body}"
    );
    let (all, current) = handles(&body);
    assert_eq!(all.len(), 2, "{body}");
    let current = current.expect("this device is marked");
    let phone_handle = all
        .iter()
        .find(|h| **h != current)
        .expect("the phone")
        .clone();
    for id in [&laptop, &phone] {
        let id = id.split_once('=').map(|(_, v)| v).unwrap_or_default();
        assert!(!body.contains(id), "the page shows a session id");
    }

    // bob cannot end ada's session with a handle he saw (or guessed).
    let (status, _, _) = app
        .send(post(
            "/sessions/revoke",
            Some(&bob),
            &format!("handle={phone_handle}"),
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .send(post("/sessions/revoke", Some(&bob), "handle=../../etc"))
        .await;
    assert_eq!(status, 400);
    let (_, _, body) = app.send(get("/", Some(&phone))).await;
    assert!(
        body.contains("Hello, ada!"),
        "bob ended ada's phone session"
    );

    let (status, _, _) = app
        .send(post(
            "/sessions/revoke",
            Some(&laptop),
            &format!("handle={phone_handle}"),
        ))
        .await;
    assert_eq!(status, 303);
    let (_, _, body) = app.send(get("/", Some(&phone))).await;
    assert!(
        body.contains("not logged in"),
        "the ended session is still logged in"
    );
    let (_, _, body) = app.send(get("/", Some(&laptop))).await;
    assert!(body.contains("Hello, ada!"), "the laptop was logged out");

    let tablet = login_from(&app, "ada", ANDROID).await;
    let (status, _, _) = app
        .send(post("/sessions/revoke-others", Some(&tablet), ""))
        .await;
    assert_eq!(status, 303);
    let (_, _, body) = app.send(get("/", Some(&laptop))).await;
    assert!(
        body.contains("not logged in"),
        "log out all others kept the laptop"
    );
    let (_, _, body) = app.send(get("/sessions", Some(&tablet))).await;
    assert_eq!(handles(&body).0.len(), 1, "{body}");
    let (_, _, body) = app.send(get("/", Some(&bob))).await;
    assert!(
        body.contains("Hello, bob!"),
        "ending ada's sessions touched bob's"
    );

    let (status, _, _) = app.send(get("/sessions", None)).await;
    assert_eq!(status, 303, "an anonymous visit to /sessions goes home");
    app.stop().await;
}

fn memory() -> SessionConfig {
    SessionConfig::from_json_str(r#"{"type": "memory"}"#).expect("config")
}

fn file(dir: &tempfile::TempDir) -> SessionConfig {
    SessionConfig::from_value(serde_json::json!({
        "type": "file",
        "secret": ["new", "old"],
        "adapter": {"file": {"path": dir.path().join("session")}}
    }))
    .expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_memory_store() {
    for framework in Framework::ALL {
        login_visit_logout(framework, memory()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_sessions_on_the_memory_store() {
    for framework in Framework::ALL {
        your_sessions(framework, memory()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_sessions_on_the_file_store() {
    for framework in Framework::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        your_sessions(framework, file(&dir)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_file_store() {
    for framework in Framework::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        login_visit_logout(framework, file(&dir)).await;
    }
}

/// Requests of one session sent at once in the concurrency tests.
const CONCURRENT: usize = 50;

/// Sends [`CONCURRENT`] requests of `path` with `cookie` at once; their statuses.
async fn at_once(app: &App, path: &str, cookie: &str) -> Vec<u16> {
    let requests: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (client, request) = (app.client.clone(), get(path, Some(cookie)));
            let (addr, framework) = (app.addr, app.framework);
            tokio::spawn(async move { fetch(&client, addr, framework, request).await.0 })
        })
        .collect();
    let mut statuses = Vec::with_capacity(CONCURRENT);
    for request in requests {
        statuses.push(request.await.expect("request task"));
    }
    statuses
}

/// A session whose counter is 1, made by `path`; its cookie.
async fn counting_session(app: &App, path: &str) -> String {
    let (status, cookie, n) = app.send(get(path, None)).await;
    assert_eq!((status, n.as_str()), (200, "1"), "{}", app.framework);
    cookie.expect("the first increment starts a session")
}

/// `GET /count` ([`session_core::Session::update`]) from many requests of one session at
/// once, without the lock: none is lost.
async fn concurrent_counts(framework: Framework, config: SessionConfig) {
    let manager = SessionManager::from_config(config, &session_example::registry())
        .await
        .expect("manager");
    let locks = manager.store().capabilities().lock;
    let app = App::over(framework, manager);
    let cookie = counting_session(&app, "/count").await;
    let statuses = at_once(&app, "/count", &cookie).await;
    if !locks {
        // Neither the memory store nor the file store reports revisions, so `update` needs
        // the store's locks; a store without them refuses it (a 500), and writes nothing.
        eprintln!("this store keeps no session locks: /count must be refused");
        assert!(statuses.iter().all(|s| *s == 500), "{statuses:?}");
        let (_, _, n) = app.send(get("/read", Some(&cookie))).await;
        assert_eq!(n, "1");
    } else {
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let (_, _, n) = app.send(get("/read", Some(&cookie))).await;
        assert_eq!(n, (CONCURRENT + 1).to_string(), "increments were lost");
    }
    app.stop().await;
}

/// `GET /incr` (a plain `get` then `set`) from many requests of one session at once, with
/// the configuration's `lock` on: none is lost.
async fn concurrent_increments_under_the_lock(framework: Framework, mut config: SessionConfig) {
    config.lock = true;
    let manager = match SessionManager::from_config(config, &session_example::registry()).await {
        Ok(manager) => manager,
        Err(err) => {
            // A store without locks refuses `lock = true` when the application starts.
            eprintln!("lock = true refused: {err}");
            assert_eq!(err.kind(), session_core::ErrorKind::Config, "{err}");
            assert!(err.to_string().contains("keeps no session locks"), "{err}");
            return;
        }
    };
    let app = App::over(framework, manager);
    let cookie = counting_session(&app, "/incr").await;
    let statuses = at_once(&app, "/incr", &cookie).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (status, _, n) = app.send(get("/read", Some(&cookie))).await;
    assert_eq!(status, 200);
    assert_eq!(n, (CONCURRENT + 1).to_string(), "increments were lost");
    // A read-only route answers under the lock too (no user here: it sends us home).
    let (status, _, body) = app.send(get("/sessions", Some(&cookie))).await;
    assert_eq!(status, 303, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_counts_on_the_memory_store() {
    for framework in Framework::ALL {
        concurrent_counts(framework, memory()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_counts_on_the_file_store() {
    for framework in Framework::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        concurrent_counts(framework, file(&dir)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_under_the_lock_on_the_memory_store() {
    for framework in Framework::ALL {
        concurrent_increments_under_the_lock(framework, memory()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_under_the_lock_on_the_file_store() {
    for framework in Framework::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        concurrent_increments_under_the_lock(framework, file(&dir)).await;
    }
}

#[tokio::test]
async fn the_default_configuration_is_the_file_store() {
    let config = SessionConfig::default();
    assert_eq!(config.store_type, "file");
    let registry = session_example::registry();
    assert!(registry.contains("file") && registry.contains("memory"));
}
