//! `GET /metrics` of the example, on both frameworks: the binary itself, started with
//! `--metrics` on the memory store, answers a few requests, and the scrape that follows
//! shows exactly what they did; started without the flag it has no such route.
//!
//! Each server is a process of its own, so each has its own global Prometheus recorder
//! and counts only its own requests.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use session_example::Framework;

const EXAMPLE: &str = env!("CARGO_BIN_EXE_session-example");

/// The example binary serving on a spare port; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Server {
    fn start(framework: Framework, metrics: bool) -> Self {
        let mut command = Command::new(EXAMPLE);
        command
            .args(["--addr", "127.0.0.1:0", "--framework", framework.name()])
            .env("SESSION__TYPE", "memory")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if metrics {
            command.arg("--metrics");
        }
        let mut child = command.spawn().expect("start the example");
        let stdout = child.stdout.take().expect("its standard output");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the example's first line");
        // "session example: http://127.0.0.1:PORT (store: memory, ...)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        if metrics {
            assert!(line.contains("metrics: /metrics"), "{line}");
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            child,
            addr,
            client,
        }
    }

    /// Sends a request and reads the status, the `name=value` of its `Set-Cookie`, and
    /// the body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: &str,
    ) -> (u16, Option<String>, String) {
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if !form.is_empty() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form.to_owned())))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("an answer within 10 s")
            .expect("an answer");
        let status = response.status().as_u16();
        let set_cookie = response
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
        (
            status,
            set_cookie,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample `name{labels}` in a Prometheus text page; every label in
/// `labels` must be on the line, in any order.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let Some(rest) = line.strip_prefix(name) else {
                return false;
            };
            let Some(rest) = rest.strip_prefix('{') else {
                return false;
            };
            let Some((set, _)) = rest.split_once('}') else {
                return false;
            };
            let on_line: Vec<&str> = set.split(',').collect();
            labels.len() == on_line.len()
                && labels
                    .iter()
                    .all(|(k, v)| on_line.contains(&format!("{k}=\"{v}\"").as_str()))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// The counter `name{store="memory"}`.
fn counter(page: &str, name: &str) -> f64 {
    sample(page, name, &[("store", "memory")])
        .unwrap_or_else(|| panic!("no {name}{{store=\"memory\"}} in\n{page}"))
}

/// How many `op` calls the timing histogram counted.
fn calls(page: &str, op: &str) -> f64 {
    sample(
        page,
        "session_store_call_seconds_count",
        &[("store", "memory"), ("op", op)],
    )
    .unwrap_or_else(|| panic!("no count of `{op}` calls in\n{page}"))
}

async fn scrape_counts_the_requests(framework: Framework) {
    let server = Server::start(framework, true);
    // Three visitors, each a new session: three creates.
    let mut cookies = Vec::new();
    for _ in 0..3 {
        let (status, cookie, body) = server.send("GET", "/incr", None, "").await;
        assert_eq!((status, body.as_str()), (200, "1"), "{framework}");
        cookies.push(cookie.expect("a new session's cookie"));
    }
    // The first comes back twice: two loads, two writes; then reads once: one load.
    for expected in ["2", "3"] {
        let (_, _, body) = server.send("GET", "/incr", Some(&cookies[0]), "").await;
        assert_eq!(body, expected, "{framework}");
    }
    let (_, _, body) = server.send("GET", "/read", Some(&cookies[0]), "").await;
    assert_eq!(body, "3", "{framework}");
    // The second logs in: a load, its id cycled (a delete and a create).
    let (status, _, _) = server
        .send("POST", "/login", Some(&cookies[1]), "username=ada")
        .await;
    assert_eq!(status, 303, "{framework}");
    // The third logs out: one delete, no load, and a new session holding only the
    // "Logged out" message for the page after the redirect (a create).
    let (status, _, _) = server.send("POST", "/logout", Some(&cookies[2]), "").await;
    assert_eq!(status, 303, "{framework}");

    let (status, _, page) = server.send("GET", "/metrics", None, "").await;
    assert_eq!(status, 200, "{framework}");
    for (name, expected) in [
        ("session_created_total", 5.0),
        ("session_loaded_total", 4.0),
        ("session_updated_total", 2.0),
        ("session_touched_total", 0.0),
        ("session_cycled_total", 1.0),
        ("session_cleared_total", 1.0),
        ("session_conflicts_total", 0.0),
        ("session_gc_removed_total", 0.0),
    ] {
        assert_eq!(counter(&page, name), expected, "{framework}: {name}");
    }
    for (op, expected) in [
        ("create", 5.0),
        ("load", 4.0),
        ("update", 2.0),
        ("delete", 2.0),
    ] {
        assert_eq!(calls(&page, op), expected, "{framework}: `{op}` calls");
    }
    for kind in ["backend", "timeout", "decode"] {
        let errors = sample(
            &page,
            "session_store_errors_total",
            &[("store", "memory"), ("kind", kind)],
        );
        assert_eq!(errors, Some(0.0), "{framework}: {kind} errors");
    }
    assert!(
        page.contains("# TYPE session_created_total counter"),
        "{framework}: {page}"
    );
    // A scrape opens no session: the counts stand.
    let (_, _, again) = server.send("GET", "/metrics", None, "").await;
    assert_eq!(counter(&again, "session_created_total"), 5.0, "{framework}");
    assert_eq!(counter(&again, "session_loaded_total"), 4.0, "{framework}");
}

#[tokio::test]
async fn axum_metrics_count_the_requests() {
    scrape_counts_the_requests(Framework::Axum).await;
}

#[tokio::test]
async fn actix_metrics_count_the_requests() {
    scrape_counts_the_requests(Framework::Actix).await;
}

#[tokio::test]
async fn without_the_flag_there_is_no_metrics_route() {
    for framework in Framework::ALL {
        let server = Server::start(framework, false);
        let (status, _, _) = server.send("GET", "/metrics", None, "").await;
        assert_eq!(status, 404, "{framework}");
        let (status, _, _) = server.send("GET", "/healthz", None, "").await;
        assert_eq!(status, 200, "{framework}");
    }
}
