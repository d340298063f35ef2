//! The example's routes over real HTTP, on both frameworks (axum and actix-web, the same
//! test code for each) and on the memory and file stores: logging in and out, "Your
//! sessions", and concurrent requests of one session.

mod support;

use session_core::{SessionConfig, SessionManager};
use session_example::Framework;
use support::{App, fetch, file, get, memory, post};

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
    // The login's flash message shows on the first page after it, escaped, and only there.
    assert!(
        body.contains("data-level=\"success\">Welcome back, &lt;script&gt;ada</p>"),
        "{body}"
    );
    let (_, _, body) = app.send(get("/", Some(&cookie))).await;
    assert!(body.contains("Visits this session: 2"));
    assert!(
        !body.contains("Welcome back"),
        "the flash showed twice: {body}"
    );

    // The counter of the pre-login session moved with the data to the new id.
    let (_, _, n) = app.send(get("/incr", Some(&cookie))).await;
    assert_eq!(n, "2");
    let (_, _, n) = app.send(get("/incr", Some(&cookie))).await;
    assert_eq!(n, "3");
    let (_, set_cookie, n) = app.send(get("/read", Some(&cookie))).await;
    assert_eq!(n, "3");
    assert!(set_cookie.is_none(), "a read-only request set a cookie");

    // The logout ends the session; the new one it starts holds only the message that
    // carries over its redirect.
    let (status, after, _) = app.send(post("/logout", Some(&cookie), "")).await;
    assert_eq!(status, 303);
    let after = after.expect("the logout's flash gets a session of its own");
    assert_ne!(after, cookie, "the logout kept the session's id");
    let (_, _, body) = app.send(get("/", Some(&cookie))).await;
    assert!(body.contains("not logged in"), "logged in after logout");
    assert!(!body.contains("Logged out"), "{body}");
    let (_, _, body) = app.send(get("/", Some(&after))).await;
    assert!(body.contains("not logged in"), "{body}");
    assert!(
        body.contains("data-level=\"info\">Logged out</p>"),
        "{body}"
    );
    let (_, _, body) = app.send(get("/", Some(&after))).await;
    assert!(
        !body.contains("Logged out"),
        "the flash showed twice: {body}"
    );

    let (status, _, _) = app.send(post("/login", None, "username=")).await;
    assert_eq!(status, 400);

    // "Remember me" ticked: a persistent cookie; not ticked: one the browser drops when
    // it closes.
    for (form, persistent) in [("username=ada&remember=1", true), ("username=ada", false)] {
        let answer = app.send_full(post("/login", None, form)).await;
        let set_cookie = answer
            .headers
            .get("set-cookie")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(set_cookie.starts_with("thinkjs="), "{form}: {set_cookie}");
        assert_eq!(
            set_cookie.contains("max-age=") && set_cookie.contains("expires="),
            persistent,
            "{form}: {set_cookie}"
        );
    }
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
