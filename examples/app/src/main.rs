//! Runs the example application.
//!
//! ```text
//! session-example [--addr 127.0.0.1:3000] [--config session.toml] [--framework axum|actix]
//!                 [--on-store-error page|500|503|continue|keep] [--metrics]
//! session-example --help
//! ```
//!
//! The configuration is the file given (or `SESSION_CONFIG`), with `SESSION__*`
//! environment variables on top; with neither, the file store in `./runtime/session`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use session_core::{Report, SessionConfig, SessionManager};
use session_example::{Framework, Metrics};
use tracing_subscriber::EnvFilter;

/// The usage, printed on standard output for `--help` and on standard error after a wrong
/// argument.
const USAGE: &str = "\
usage: session-example [--addr ADDR] [--config FILE] [--framework NAME] [--on-store-error P]
                      [--metrics]

  --addr ADDR        the address to listen on (default 127.0.0.1:3000)
  --config FILE      the session configuration, TOML or JSON (default: the file in
                     SESSION_CONFIG, else the file store in ./runtime/session);
                     SESSION__* environment variables override its keys
  --framework NAME   the web framework: axum (default, session-tower) or actix
                     (actix-web, session-actix); same routes and pages
  --on-store-error P what a request answers when the session store fails: page
                     (default: a 503 page of the app's own), 500, 503 (empty, with
                     Retry-After), continue (serve it without a session) or keep (the
                     handler's response, no cookie)
  --metrics          serve the session metrics on GET /metrics, in the Prometheus
                     text format
  -h, --help         print this help
";

/// The status of a run whose arguments were wrong, apart from 1 (a server that failed).
const USAGE_ERROR: u8 = 2;

struct Args {
    addr: SocketAddr,
    config: Option<PathBuf>,
    framework: Framework,
    options: session_example::Options,
    /// Serve `GET /metrics`.
    metrics: bool,
}

/// What the command line asks for.
enum Invocation {
    /// Serve the app.
    Serve(Args),
    /// Print the usage and stop.
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Invocation, String> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 3000).into();
    let mut config = std::env::var_os("SESSION_CONFIG").map(PathBuf::from);
    let mut framework = Framework::default();
    let mut options = session_example::Options::default();
    let mut metrics = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().ok_or("--addr needs an address")?;
                addr = value
                    .parse()
                    .map_err(|err| format!("--addr {value}: {err}"))?;
            }
            "--config" => config = Some(args.next().ok_or("--config needs a file")?.into()),
            "--framework" => {
                let value = args.next().ok_or("--framework needs a name")?;
                framework = value.parse().map_err(|err| format!("--framework {err}"))?;
            }
            "--on-store-error" => {
                let value = args.next().ok_or("--on-store-error needs a policy")?;
                options.on_store_error = session_example::store_error_policy(&value)
                    .map_err(|err| format!("--on-store-error {err}"))?;
            }
            "--metrics" => metrics = true,
            "--help" | "-h" => return Ok(Invocation::Help),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Invocation::Serve(Args {
        addr,
        config,
        framework,
        options,
        metrics,
    }))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = SessionConfig::load(args.config.as_deref(), "SESSION")?;
    let mut options = args.options;
    // Before the manager: it registers its metrics with the recorder in force.
    if args.metrics {
        options.metrics = Some(Metrics::install()?);
    }
    let store_type = config.store_type.clone();
    let manager = SessionManager::from_config(config, &session_example::registry()).await?;
    let gc = manager.spawn_gc()?;
    let listener = std::net::TcpListener::bind(args.addr)?;
    let addr = listener.local_addr()?;
    let framework = args.framework;
    let with_metrics = options.metrics.is_some();
    tracing::info!(store = %store_type, %framework, gc = gc.is_some(), metrics = with_metrics, "listening on http://{addr}");
    println!(
        "session example: http://{addr} (store: {store_type}, framework: {framework}{})",
        if with_metrics {
            ", metrics: /metrics"
        } else {
            ""
        }
    );
    session_example::serve(framework, manager, options, listener, async {
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
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Invocation::Serve(args)) => args,
        Ok(Invocation::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprint!("session-example: {message}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole cause chain ("store timeout: postgres: connect failed: ...
            // Connection refused", not only its first part), and the hint of what to do
            // on a line of its own where the store recognised a set-up mistake.
            eprintln!("session-example: {}", Report::new(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
