//! What the HTTP tests share: the example app served on a free port, a client, request
//! builders and the stores' configurations.

#![allow(dead_code)] // Each test file uses its own part.

pub(crate) mod stores;

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::HeaderMap;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use session_core::{SessionConfig, SessionManager};
use session_example::{Framework, Options};
use tokio::sync::oneshot;

/// The example app served on a free loopback port, stopped by [`App::stop`].
pub(crate) struct App {
    pub(crate) addr: SocketAddr,
    pub(crate) client: Client<HttpConnector, Full<Bytes>>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub(crate) framework: Framework,
}

/// An answer: its status, the `name=value` of its `Set-Cookie` if any, and its body.
pub(crate) type Answer = (u16, Option<String>, String);

impl App {
    /// Serves the app on `framework` with `config`.
    pub(crate) async fn start(framework: Framework, config: SessionConfig) -> Self {
        let manager = SessionManager::from_config(config, &session_example::registry())
            .await
            .expect("manager");
        Self::over(framework, manager)
    }

    pub(crate) fn over(framework: Framework, manager: SessionManager) -> Self {
        Self::serving(framework, manager, Options::default())
    }

    /// Serves the app on `framework` with sessions from `manager`, as `options` say.
    pub(crate) fn serving(framework: Framework, manager: SessionManager, options: Options) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(session_example::serve(
            framework,
            manager,
            options,
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
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.server
            .await
            .expect("server task")
            .expect("the server ran");
    }

    /// Sends `request`, to a path, and reads the whole answer.
    pub(crate) async fn send(&self, request: axum::http::Request<Full<Bytes>>) -> Answer {
        fetch(&self.client, self.addr, self.framework, request).await
    }

    /// Sends `request`, to a path, and reads the whole answer with all its headers.
    pub(crate) async fn send_full(&self, request: axum::http::Request<Full<Bytes>>) -> Answered {
        fetch_full(&self.client, self.addr, self.framework, request).await
    }
}

/// An answer with all its headers: status, headers, body.
pub(crate) struct Answered {
    /// The status code.
    pub(crate) status: u16,
    /// Every header.
    pub(crate) headers: HeaderMap,
    /// The body, as text.
    pub(crate) body: String,
}

/// Sends `request`, to a path, to the app on `framework` at `addr`, and reads the whole
/// answer.
pub(crate) async fn fetch(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    framework: Framework,
    request: axum::http::Request<Full<Bytes>>,
) -> Answer {
    let answer = fetch_full(client, addr, framework, request).await;
    let cookie = answer
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    (answer.status, cookie, answer.body)
}

/// [`fetch`], with every header of the answer.
pub(crate) async fn fetch_full(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    framework: Framework,
    mut request: axum::http::Request<Full<Bytes>>,
) -> Answered {
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
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answered {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A copy of `request` (bodies here are whole in memory).
pub(crate) fn clone(
    request: &axum::http::Request<Full<Bytes>>,
) -> axum::http::Request<Full<Bytes>> {
    let mut copy = axum::http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

pub(crate) fn get(path: &str, cookie: Option<&str>) -> axum::http::Request<Full<Bytes>> {
    let mut request = axum::http::Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Full::default()).expect("request")
}

pub(crate) fn post(
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> axum::http::Request<Full<Bytes>> {
    let mut request =
        axum::http::Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request
        .body(Full::new(Bytes::from(form.to_owned())))
        .expect("request")
}

pub(crate) fn memory() -> SessionConfig {
    SessionConfig::from_json_str(r#"{"type": "memory"}"#).expect("config")
}

pub(crate) fn file(dir: &tempfile::TempDir) -> SessionConfig {
    SessionConfig::from_value(serde_json::json!({
        "type": "file",
        "secret": ["new", "old"],
        "adapter": {"file": {"path": dir.path().join("session")}}
    }))
    .expect("config")
}
