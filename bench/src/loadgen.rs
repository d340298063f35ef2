//! A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending
//! `GET` requests back to back until the deadline, recording every latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{COOKIE, HOST, SET_COOKIE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What one load run measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadResult {
    /// Responses with status 200.
    pub(crate) ok: u64,
    /// Other statuses and transport errors.
    pub(crate) errors: u64,
    /// Latency of every completed request, in microseconds, sorted.
    pub(crate) latencies_us: Vec<u32>,
    /// Wall time from the first request to the last response.
    pub(crate) elapsed: Duration,
}

impl LoadResult {
    /// Successful requests per second.
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency below which `q` of the requests completed, in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[index.min(self.latencies_us.len() - 1)]) / 1000.0
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn request(path: &str, cookie: Option<&str>) -> Request<Empty<Bytes>> {
    let mut builder = Request::get(path).header(HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        builder = builder.header(COOKIE, cookie);
    }
    builder
        .body(Empty::new())
        .unwrap_or_else(|_| Request::new(Empty::new()))
}

/// One request on a fresh connection: status, body, and the `name=value` of `Set-Cookie`.
pub(crate) async fn get(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> Result<(StatusCode, String, Option<String>), String> {
    let mut sender = connect(addr).await?;
    let response = sender
        .send_request(request(path, cookie))
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        status,
        String::from_utf8_lossy(&body).into_owned(),
        set_cookie,
    ))
}

/// Creates `count` sessions (one `GET /incr` each, 50 at a time); returns their cookies.
pub(crate) async fn create_sessions(addr: SocketAddr, count: usize) -> Result<Vec<String>, String> {
    let mut cookies = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..count {
        if pending.len() >= 50
            && let Some(done) = pending.join_next().await
        {
            cookies.push(done.map_err(|e| e.to_string())??);
        }
        pending.spawn(async move {
            let (status, _, cookie) = get(addr, "/incr", None).await?;
            match (status, cookie) {
                (StatusCode::OK, Some(cookie)) => Ok::<String, String>(cookie),
                (status, _) => Err(format!("creating a session: {status}, no cookie")),
            }
        });
    }
    while let Some(done) = pending.join_next().await {
        cookies.push(done.map_err(|e| e.to_string())??);
    }
    Ok(cookies)
}

/// The counter behind each cookie (`GET /read`).
pub(crate) async fn read_counters(
    addr: SocketAddr,
    cookies: &[String],
) -> Result<Vec<u64>, String> {
    let mut sender = connect(addr).await?;
    let mut values = Vec::with_capacity(cookies.len());
    for cookie in cookies {
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request("/read", Some(cookie)))
            .await
            .map_err(|e| e.to_string())?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        values.push(
            text.trim()
                .parse()
                .map_err(|_| format!("/read answered {text:?}"))?,
        );
    }
    Ok(values)
}

/// Sends `count` requests to `path` one after the other (for round-trip counting).
pub(crate) async fn sequential(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    count: usize,
) -> Result<(), String> {
    let mut sender = connect(addr).await?;
    for _ in 0..count {
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request(path, cookie))
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status != StatusCode::OK {
            return Err(format!("{path}: {status}"));
        }
    }
    Ok(())
}

/// Drives `path` over `connections` connections for `duration`. With cookies, connection
/// `c` sends cookie `c`, `c + connections`, ... in turn, so every session is used. Requests
/// in flight at the deadline are awaited, so none is left unaccounted for.
pub(crate) async fn run(
    addr: SocketAddr,
    path: &'static str,
    cookies: Arc<Vec<String>>,
    connections: usize,
    duration: Duration,
) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let cookies = Arc::clone(&cookies);
        tasks.spawn(async move {
            let mut result = LoadResult::default();
            let mut next = c;
            let mut sender = None;
            while Instant::now() < deadline {
                if sender.is_none() {
                    match connect(addr).await {
                        Ok(s) => sender = Some(s),
                        Err(_) => {
                            result.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(s) = sender.as_mut() else { continue };
                let cookie = (!cookies.is_empty()).then(|| cookies[next % cookies.len()].as_str());
                next += connections;
                let sent = Instant::now();
                let outcome = async {
                    s.ready().await.map_err(|e| e.to_string())?;
                    let response = s
                        .send_request(request(path, cookie))
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<StatusCode, String>(status)
                }
                .await;
                let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                match outcome {
                    Ok(StatusCode::OK) => {
                        result.ok += 1;
                        result.latencies_us.push(micros);
                    }
                    Ok(_) => {
                        result.errors += 1;
                        result.latencies_us.push(micros);
                    }
                    Err(_) => {
                        result.errors += 1;
                        sender = None;
                    }
                }
            }
            result
        });
    }
    let mut total = LoadResult::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(part) = done {
            total.ok += part.ok;
            total.errors += part.errors;
            total.latencies_us.extend(part.latencies_us);
        }
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}
