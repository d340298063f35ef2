//! The actix-web peer application: the example's `/incr` and `/read` routes on
//! actix-session with its Redis store, for `cargo xtask bench --actix-only`.
//!
//! ```text
//! session-bench-actix-peer --addr 127.0.0.1:3002 [--store redis] [--url URL]
//! session-bench-actix-peer --help
//! ```
//!
//! It runs actix-web's default number of workers (one per core), as the example app does
//! on actix-web, so both sides get the same share of the machine.

use std::net::SocketAddr;
use std::process::ExitCode;

use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{App, HttpResponse, HttpServer, web};

/// Reads an integer from the session, adds one, stores it, returns it.
async fn incr(session: Session) -> HttpResponse {
    let n = match session.get::<u64>("n") {
        Ok(n) => n.unwrap_or(0) + 1,
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    match session.insert("n", n) {
        Ok(()) => HttpResponse::Ok().body(n.to_string()),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// Reads the `/incr` counter without changing it.
async fn read(session: Session) -> HttpResponse {
    match session.get::<u64>("n") {
        Ok(n) => HttpResponse::Ok().body(n.unwrap_or(0).to_string()),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// The usage, printed on standard output for `--help` and on standard error after a wrong
/// argument.
const USAGE: &str = "\
usage: session-bench-actix-peer [--addr ADDR] [--store redis] [--url URL]

  --addr ADDR      the address to listen on (default 127.0.0.1:3002)
  --store STORE    redis (default; the only store this peer has)
  --url URL        the Redis server (default redis://127.0.0.1:6379/9)
  -h, --help       print this help
";

/// The stores `--store` accepts.
const STORES: [&str; 1] = ["redis"];

/// The status of a run whose arguments were wrong, apart from 1 (a server that failed).
const USAGE_ERROR: u8 = 2;

struct Args {
    addr: SocketAddr,
    url: String,
}

/// Reads the command line; `Ok(None)` asks for the usage.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: ([127, 0, 0, 1], 3002).into(),
        url: "redis://127.0.0.1:6379/9".to_owned(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let addr = value("--addr")?;
                parsed.addr = addr
                    .parse()
                    .map_err(|err| format!("--addr {addr}: {err}"))?;
            }
            "--store" => {
                let store = value("--store")?;
                if !STORES.contains(&store.as_str()) {
                    return Err(format!(
                        "unknown store {store} (this peer has only: {})",
                        STORES.join(", ")
                    ));
                }
            }
            "--url" => parsed.url = value("--url")?,
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(parsed))
}

/// Connects to Redis, then serves until the process is stopped.
async fn serve(addr: SocketAddr, url: String) -> Result<(), Box<dyn std::error::Error>> {
    let store = RedisSessionStore::new(url)
        .await
        .map_err(|err| format!("Redis: {err:#}"))?;
    // A new key per start: the sessions of an earlier run are not read back by a later one.
    let key = Key::generate();
    HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    // The benchmark speaks plain HTTP: a `Secure` cookie would not come back.
                    .cookie_secure(false)
                    .build(),
            )
            .route("/incr", web::get().to(incr))
            .route("/read", web::get().to(read))
            .route("/healthz", web::get().to(|| async { "ok" }))
    })
    .bind(addr)?
    .run()
    .await?;
    Ok(())
}

fn main() -> ExitCode {
    let Args { addr, url } = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprint!("session-bench-actix-peer: {message}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match actix_web::rt::System::new().block_on(serve(addr, url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("session-bench-actix-peer (redis): {err}");
            ExitCode::FAILURE
        }
    }
}
