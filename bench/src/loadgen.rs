//! A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending
//! `GET` requests back to back until the deadline, recording every latency; and the
//! untimed requests around a run (creating sessions, reading counters back).
//!
//! It speaks HTTP/1.1 itself: requests are serialized once, and only the response head is
//! parsed (`httparse`), with a `Content-Length` body. The generator shares the machine's
//! cores with the app it measures, so every microsecond it spends per request is taken from
//! the app; a general-purpose client (hyper's, with a connection task and a channel per
//! request) cost as much CPU per request as the app.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
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

/// One keep-alive connection and its read buffer.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// A response to an untimed request: status, the `name=value` of its `Set-Cookie`, the
/// value of its `x-session-token`, body.
struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    token: Option<String>,
    body: String,
}

/// How a request presents its session: the cookie, or one of the header transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `Cookie: name=value`.
    Cookie,
    /// `x-session-token: token`, in the request and the response.
    Header,
    /// `Authorization: Bearer token`, answered in `x-session-token`.
    Bearer,
}

impl Credential {
    /// The header line a request sends its first time: a header client asks for its
    /// token by sending the header empty.
    fn first(self) -> Option<&'static str> {
        (self == Self::Header).then_some("x-session-token: ")
    }

    /// The header line that carries `token` back, as `raw_request` sends it.
    fn line(self, token: &str) -> String {
        match self {
            Self::Cookie => token.to_owned(),
            Self::Header => format!("x-session-token: {token}"),
            Self::Bearer => format!("authorization: Bearer {token}"),
        }
    }
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` (bytes on the wire) and reads the whole response; its status.
    async fn send(&mut self, request: &[u8]) -> Result<u16, String> {
        exchange(&mut self.stream, request, &mut self.buffer)
            .await
            .map(|(status, _)| status)
    }

    /// `GET path` with an optional cookie, for the untimed requests around a run.
    async fn get(&mut self, path: &str, cookie: Option<&str>) -> Result<Reply, String> {
        let (status, body_at) = exchange(
            &mut self.stream,
            &raw_request(path, cookie),
            &mut self.buffer,
        )
        .await?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut headers);
        head.parse(&self.buffer[..body_at])
            .map_err(|e| format!("malformed response: {e}"))?;
        let set_cookie = head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("set-cookie"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned());
        let token = head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("x-session-token"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_owned);
        Ok(Reply {
            status: StatusCode::from_u16(status).map_err(|e| e.to_string())?,
            set_cookie,
            token,
            body: String::from_utf8_lossy(&self.buffer[body_at..]).into_owned(),
        })
    }
}

/// One request on a fresh connection: status, body, and the `name=value` of `Set-Cookie`.
pub(crate) async fn get(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> Result<(StatusCode, String, Option<String>), String> {
    let reply = Connection::open(addr).await?.get(path, cookie).await?;
    Ok((reply.status, reply.body, reply.set_cookie))
}

/// Creates `count` sessions (one `GET /incr` each, 50 at a time); returns their cookies.
pub(crate) async fn create_sessions(addr: SocketAddr, count: usize) -> Result<Vec<String>, String> {
    create_sessions_as(addr, count, Credential::Cookie).await
}

/// [`create_sessions`] for an app whose tokens travel as `credential` says; returns what
/// each later request sends (a cookie pair, or a whole header line for a header
/// transport, which `raw_request` sends as it is).
pub(crate) async fn create_sessions_as(
    addr: SocketAddr,
    count: usize,
    credential: Credential,
) -> Result<Vec<String>, String> {
    let mut cookies = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..count {
        if pending.len() >= 50
            && let Some(done) = pending.join_next().await
        {
            cookies.push(done.map_err(|e| e.to_string())??);
        }
        pending.spawn(async move {
            let reply = Connection::open(addr)
                .await?
                .get("/incr", credential.first())
                .await?;
            let token = match credential {
                Credential::Cookie => reply.set_cookie,
                Credential::Header | Credential::Bearer => reply.token,
            };
            match (reply.status, token) {
                (StatusCode::OK, Some(token)) => Ok::<String, String>(credential.line(&token)),
                (status, _) => Err(format!("creating a session: {status}, no token")),
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
    let mut connection = Connection::open(addr).await?;
    let mut values = Vec::with_capacity(cookies.len());
    for cookie in cookies {
        let reply = connection.get("/read", Some(cookie)).await?;
        let text = reply.body.trim();
        values.push(
            text.parse()
                .map_err(|_| format!("/read answered {} {text:?}", reply.status))?,
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
    let mut connection = Connection::open(addr).await?;
    let request = raw_request(path, cookie);
    for _ in 0..count {
        let status = connection.send(&request).await?;
        if status != 200 {
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
    if cookies.is_empty() {
        return vec![raw_request(path, None)];
    }
    let mine: Vec<Vec<u8>> = cookies
        .iter()
        .skip(c)
        .step_by(connections)
        .map(|cookie| raw_request(path, Some(cookie)))
        .collect();
    // Fewer sessions than connections: this connection shares one with another.
    if mine.is_empty() {
        vec![raw_request(path, Some(&cookies[c % cookies.len()]))]
    } else {
        mine
    }
}

/// `GET path` with an optional `Cookie` header, as bytes on the wire.
fn raw_request(path: &str, cookie: Option<&str>) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    if let Some(cookie) = cookie {
        // A header transport's credential is its whole line; a cookie is a pair.
        if !(cookie.starts_with("x-session-token:") || cookie.starts_with("authorization:")) {
            request.push_str("cookie: ");
        }
        request.push_str(cookie);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// One connection's closed loop: a request, its whole response, the next request.
async fn drive(addr: SocketAddr, requests: Vec<Vec<u8>>, deadline: Instant) -> LoadResult {
    let mut result = LoadResult::default();
    let mut connection = None;
    let mut next = 0;
    while Instant::now() < deadline {
        let Some(open) = connection.as_mut() else {
            match Connection::open(addr).await {
                Ok(opened) => connection = Some(opened),
                Err(_) => {
                    result.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            continue;
        };
        let request = &requests[next % requests.len()];
        next += 1;
        let sent = Instant::now();
        let outcome = open.send(request).await;
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
                connection = None;
            }
        }
    }
    result
}

/// Writes `request` and reads its whole response into `buffer`; returns the status code
/// and where the body starts.
/// A response this closed loop cannot delimit (no `Content-Length`, or bytes after the
/// body) is an error, and the connection is dropped.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(u16, usize), String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    buffer.clear();
    let (status, body_at, total) = loop {
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
                break (response.code.unwrap_or(0), head, head + length);
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
    Ok((status, body_at))
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
    use axum::body::{Body, Bytes};
    use axum::http::header::{COOKIE, SET_COOKIE};
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
    async fn the_untimed_requests_read_cookies_and_bodies() {
        let app = Router::new()
            .route(
                "/incr",
                get(|| async { ([(SET_COOKIE, "sid=abc; HttpOnly; Path=/")], "1") }),
            )
            .route(
                "/read",
                get(|headers: axum::http::HeaderMap| async move {
                    match headers.get(COOKIE).map(|v| v.as_bytes()) {
                        Some(b"sid=abc") => "41",
                        _ => "0",
                    }
                }),
            );
        let addr = serve(app).await;
        let (status, body, cookie) = super::get(addr, "/incr", None).await.expect("get");
        assert_eq!(
            (status, body.as_str(), cookie.as_deref()),
            (StatusCode::OK, "1", Some("sid=abc"))
        );
        let cookies = create_sessions(addr, 3).await.expect("sessions");
        assert_eq!(cookies, ["sid=abc"; 3]);
        let counters = read_counters(addr, &[cookies[0].clone(), "sid=other".into()])
            .await
            .expect("counters");
        assert_eq!(counters, [41, 0]);
        sequential(addr, "/read", Some("sid=abc"), 5)
            .await
            .expect("sequential");
        let missing = sequential(addr, "/missing", None, 1).await;
        assert_eq!(missing, Err("/missing: 404".to_owned()));
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
