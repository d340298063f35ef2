//! A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending
//! `GET` requests back to back until the deadline, recording every latency; and the
//! untimed requests around a run (creating sessions, reading counters back), on hyper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{COOKIE, HOST, SET_COOKIE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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
///
/// The timed loop speaks HTTP/1.1 itself: each connection writes requests serialized once
/// beforehand and parses only the response head (`httparse`) and a `Content-Length` body.
/// The generator shares the machine's cores with the app it measures, so every microsecond
/// it spends per request is taken from the app; a general-purpose client (hyper's, with a
/// connection task and a channel per request) cost as much CPU per request as the app.
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
        let requests = raw_requests(path, &cookies, c, connections);
        tasks.spawn(drive(addr, requests, deadline));
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

/// The requests connection `c` of `connections` sends in turn, as bytes on the wire.
fn raw_requests(path: &str, cookies: &[String], c: usize, connections: usize) -> Vec<Vec<u8>> {
    let head = |cookie: Option<&str>| {
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
        if let Some(cookie) = cookie {
            request.push_str("cookie: ");
            request.push_str(cookie);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.into_bytes()
    };
    if cookies.is_empty() {
        return vec![head(None)];
    }
    let mine: Vec<Vec<u8>> = cookies
        .iter()
        .skip(c)
        .step_by(connections)
        .map(|cookie| head(Some(cookie)))
        .collect();
    // Fewer sessions than connections: this connection shares one with another.
    if mine.is_empty() {
        vec![head(Some(&cookies[c % cookies.len()]))]
    } else {
        mine
    }
}

/// One connection's closed loop: a request, its whole response, the next request.
async fn drive(addr: SocketAddr, requests: Vec<Vec<u8>>, deadline: Instant) -> LoadResult {
    let mut result = LoadResult::default();
    let mut buffer = Vec::with_capacity(4096);
    let mut stream = None;
    let mut next = 0;
    while Instant::now() < deadline {
        let Some(connection) = stream.as_mut() else {
            match TcpStream::connect(addr).await {
                Ok(connection) if connection.set_nodelay(true).is_ok() => {
                    stream = Some(connection);
                }
                _ => {
                    result.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            continue;
        };
        let request = &requests[next % requests.len()];
        next += 1;
        let sent = Instant::now();
        let outcome = exchange(connection, request, &mut buffer).await;
        let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        match outcome {
            Ok(200) => {
                result.ok += 1;
                result.latencies_us.push(micros);
            }
            Ok(_) => {
                result.errors += 1;
                result.latencies_us.push(micros);
            }
            Err(_) => {
                result.errors += 1;
                stream = None;
            }
        }
    }
    result
}

/// Writes `request` and reads its whole response into `buffer`; returns the status code.
/// A response this closed loop cannot delimit (no `Content-Length`, or bytes after the
/// body) is an error, and the connection is dropped.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<u16, String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    buffer.clear();
    let (status, total) = loop {
        read_more(stream, buffer).await?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buffer) {
            Ok(httparse::Status::Complete(head)) => {
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .ok_or("a response without Content-Length")?;
                break (response.code.unwrap_or(0), head + length);
            }
            Ok(httparse::Status::Partial) => {}
            Err(err) => return Err(format!("malformed response: {err}")),
        }
    };
    while buffer.len() < total {
        read_more(stream, buffer).await?;
    }
    if buffer.len() > total {
        return Err("bytes after the response body".into());
    }
    Ok(status)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    if buffer.len() == buffer.capacity() {
        buffer.reserve(4096);
    }
    match stream.read_buf(buffer).await {
        Ok(0) => Err("connection closed by the server".into()),
        Ok(_) => Ok(()),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;

    use super::*;

    async fn serve(app: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn counts_every_response_and_sends_each_connection_its_cookies() {
        let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let record = Arc::clone(&seen);
        let app = Router::new()
            .route(
                "/incr",
                get(move |headers: axum::http::HeaderMap| async move {
                    let cookie = headers.get(COOKIE).map(|v| v.as_bytes().to_vec());
                    record.lock().expect("lock").insert(cookie);
                    "1"
                }),
            )
            .route(
                "/teapot",
                get(|| async { axum::http::StatusCode::IM_A_TEAPOT }),
            );
        let addr = serve(app).await;
        let cookies: Vec<String> = (0..5).map(|i| format!("sid={i}")).collect();
        let result = run(
            addr,
            "/incr",
            Arc::new(cookies.clone()),
            3,
            Duration::from_millis(300),
        )
        .await;
        assert!(result.ok > 10, "{result:?}");
        assert_eq!(result.errors, 0);
        assert_eq!(result.latencies_us.len() as u64, result.ok);
        let expected: std::collections::BTreeSet<_> = cookies
            .iter()
            .map(|c| Some(c.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            *seen.lock().expect("lock"),
            expected,
            "every cookie was sent"
        );

        let teapots = run(
            addr,
            "/teapot",
            Arc::default(),
            2,
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(teapots.ok, 0);
        assert!(
            teapots.errors > 0,
            "a non-200 status is an error: {teapots:?}"
        );
    }

    #[tokio::test]
    async fn a_response_it_cannot_delimit_is_an_error() {
        // A streamed body goes out chunked, without Content-Length.
        let app = Router::new().route(
            "/stream",
            get(|| async {
                Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
                    Bytes::from_static(b"streamed"),
                )]))
            }),
        );
        let addr = serve(app).await;
        let result = run(
            addr,
            "/stream",
            Arc::default(),
            1,
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(result.ok, 0);
        assert!(result.errors > 0, "{result:?}");
    }
}
