//! Runs the example application.
//!
//! ```text
//! session-example [--addr 127.0.0.1:3000] [--config session.toml]
//! ```
//!
//! The configuration is the file given (or `SESSION_CONFIG`), with `SESSION__*`
//! environment variables on top; with neither, the file store in `./runtime/session`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use session_core::{SessionConfig, SessionManager};
use tracing_subscriber::EnvFilter;

struct Args {
    addr: SocketAddr,
    config: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 3000).into();
    let mut config = std::env::var_os("SESSION_CONFIG").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().ok_or("--addr needs an address")?;
                addr = value
                    .parse()
                    .map_err(|err| format!("--addr {value}: {err}"))?;
            }
            "--config" => config = Some(args.next().ok_or("--config needs a file")?.into()),
            "--help" | "-h" => {
                return Err(
                    "usage: session-example [--addr 127.0.0.1:3000] [--config session.toml]".into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args { addr, config })
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::load(args.config.as_deref(), "SESSION")?;
    let store_type = config.store_type.clone();
    let manager = SessionManager::from_config(config, &session_example::registry()).await?;
    let gc = manager.spawn_gc()?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(store = %store_type, gc = gc.is_some(), "listening on http://{}", listener.local_addr()?);
    println!(
        "session example: http://{} (store: {store_type})",
        listener.local_addr()?
    );
    axum::serve(listener, session_example::app(manager))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(gc) = gc {
        gc.stop().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("session-example: {err}");
            ExitCode::FAILURE
        }
    }
}
