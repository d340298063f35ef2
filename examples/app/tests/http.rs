//! The example's routes in-process, on the memory and file stores.

use axum::body::Body;
use http_body_util::BodyExt as _;
use session_core::{SessionConfig, SessionManager};
use tower::ServiceExt as _;

async fn send(
    app: &axum::Router,
    request: axum::http::Request<Body>,
) -> (axum::http::StatusCode, Option<String>, String) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
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

fn get(path: &str, cookie: Option<&str>) -> axum::http::Request<Body> {
    let mut request = axum::http::Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Body::empty()).expect("request")
}

fn post(path: &str, cookie: Option<&str>, form: &str) -> axum::http::Request<Body> {
    let mut request =
        axum::http::Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Body::from(form.to_owned())).expect("request")
}

async fn login_visit_logout(config: SessionConfig) {
    let manager = SessionManager::from_config(config, &session_example::registry())
        .await
        .expect("manager");
    let app = session_example::app(manager);

    let (status, cookie, body) = send(&app, get("/", None)).await;
    assert_eq!(status, 200);
    assert!(cookie.is_none(), "an anonymous visit got a cookie");
    assert!(body.contains("not logged in"));

    // Log in on top of a pre-login session: the id must change (fixation defence).
    let (_, pre_login, _) = send(&app, get("/incr", None)).await;
    let pre_login = pre_login.expect("incr starts a session");
    let (status, cookie, _) = send(
        &app,
        post("/login", Some(&pre_login), "username=%3Cscript%3Eada"),
    )
    .await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("login sets a cookie");
    assert_ne!(cookie, pre_login, "login kept the pre-login id");
    let (_, _, body) = send(&app, get("/", Some(&pre_login))).await;
    assert!(
        body.contains("not logged in"),
        "the pre-login id still opens the session"
    );

    let (_, _, body) = send(&app, get("/", Some(&cookie))).await;
    assert!(body.contains("Hello, &lt;script&gt;ada!"), "{body}");
    assert!(body.contains("Visits this session: 1"));
    let (_, _, body) = send(&app, get("/", Some(&cookie))).await;
    assert!(body.contains("Visits this session: 2"));

    // The counter of the pre-login session moved with the data to the new id.
    let (_, _, n) = send(&app, get("/incr", Some(&cookie))).await;
    assert_eq!(n, "2");
    let (_, _, n) = send(&app, get("/incr", Some(&cookie))).await;
    assert_eq!(n, "3");
    let (_, set_cookie, n) = send(&app, get("/read", Some(&cookie))).await;
    assert_eq!(n, "3");
    assert!(set_cookie.is_none(), "a read-only request set a cookie");

    let (status, removal, _) = send(&app, post("/logout", Some(&cookie), "")).await;
    assert_eq!(status, 303);
    assert_eq!(removal.as_deref(), Some("thinkjs="));
    let (_, _, body) = send(&app, get("/", Some(&cookie))).await;
    assert!(body.contains("not logged in"), "logged in after logout");

    let (status, _, _) = send(&app, post("/login", None, "username=")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn on_the_memory_store() {
    let config = SessionConfig::from_json_str(r#"{"type": "memory"}"#).expect("config");
    login_visit_logout(config).await;
}

#[tokio::test]
async fn on_the_file_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SessionConfig::from_value(serde_json::json!({
        "type": "file",
        "secret": ["new", "old"],
        "adapter": {"file": {"path": dir.path().join("session")}}
    }))
    .expect("config");
    login_visit_logout(config).await;
}

#[tokio::test]
async fn the_default_configuration_is_the_file_store() {
    let config = SessionConfig::default();
    assert_eq!(config.store_type, "file");
    let registry = session_example::registry();
    assert!(registry.contains("file") && registry.contains("memory"));
}
