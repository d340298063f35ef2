//! The example application: a login form, a greeting with a visit counter, "Your
//! sessions" (every session of the user, each of which can be ended), logout, and
//! `GET /incr`, `GET /count` and `GET /read` for benchmarks, on whichever store the
//! configuration picks, served by axum (`session-tower`, the default) or actix-web
//! (`session-actix`) with the same routes and pages.
//!
//! `cargo run -p session-example` serves it on <http://127.0.0.1:3000> with the file store
//! (`./runtime/session`); `-- --framework actix` serves it on actix-web. A TOML file
//! (`--config session.toml`) or `SESSION__*` environment variables switch the store, e.g.
//! `SESSION__TYPE=memory`, `SESSION__TYPE=cookie` (the whole session in an encrypted
//! cookie, no store; the secret must then be 32 bytes or more), or
//! `SESSION__TYPE=redis SESSION__ADAPTER__REDIS__URL=redis://127.0.0.1:6379`, and set any
//! other key, e.g. `SESSION__LOCK=true` (requests of one session one at a time, on a
//! store that keeps locks) with `SESSION__LOCK_TIMEOUT=2s`.
//!
//! With `--metrics`, `GET /metrics` serves the session metrics (`session_core`'s
//! `metrics` feature) in the Prometheus text format, through `metrics-exporter-prometheus`;
//! without it there is no such route and no recorder.
//!
//! The routes' logic is written once, on [`session_core::Session`] (`routes`, `devices`);
//! `axum_app` and `actix_app` only extract each route's inputs and turn its answer into a
//! response.
//!
//! Same-session concurrency: `/incr` is a plain read-modify-write (`get`, then `set`), so
//! concurrent requests of one session can lose increments unless the configuration's
//! `lock` is on; `/count` does the same with `Session::update`, which loses none either
//! way. The routes that only read (`/read`, `/sessions`) are read-only
//! ([`LockMode::ReadOnly`](session_core::LockMode::ReadOnly)) whatever the configuration
//! says: they never wait for the lock, and a write from them would be refused. With the
//! lock off that changes nothing but the refusal, so they are read-only unconditionally
//! rather than only when `lock` is on.

mod actix_app;
mod answer;
mod axum_app;
mod devices;
mod metrics;
mod routes;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use serde::Deserialize;
use session_core::web::{OnStoreError, Reply};
use session_core::{Error, Registry, SessionManager};

pub use actix_app::app as actix_app;
pub use axum_app::app as axum_app;
pub use metrics::Metrics;

/// Every store this build can open, by configuration `type`.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    session_memory::register(&mut registry);
    session_file::register(&mut registry);
    #[cfg(feature = "redis")]
    session_redis::register(&mut registry);
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    session_db::register(&mut registry);
    registry
}

/// The web framework that serves the app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framework {
    /// axum, through `session-tower` (the default).
    #[default]
    Axum,
    /// actix-web, through `session-actix`.
    Actix,
}

impl Framework {
    /// Both, in the order the tests run them.
    pub const ALL: [Self; 2] = [Self::Axum, Self::Actix];

    /// Its name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Actix => "actix",
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framework {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|framework| framework.name() == name)
            .ok_or_else(|| format!("unknown framework {name} (axum or actix)"))
    }
}

/// How the app is served, beyond its sessions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// What a request answers when the session store fails: by default the app's own
    /// error page ([`store_down_page`]).
    pub on_store_error: OnStoreError,
    /// Serve the session metrics on `GET /metrics` (none by default).
    pub metrics: Option<Metrics>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            on_store_error: OnStoreError::Respond(store_down_page),
            metrics: None,
        }
    }
}

/// The names `--on-store-error` takes, each with its policy.
pub const STORE_ERROR_POLICIES: [(&str, OnStoreError); 5] = [
    ("page", OnStoreError::Respond(store_down_page)),
    ("500", OnStoreError::InternalServerError),
    (
        "503",
        OnStoreError::ServiceUnavailable {
            retry_after: std::time::Duration::from_secs(5),
        },
    ),
    ("continue", OnStoreError::ContinueWithoutSession),
    ("keep", OnStoreError::KeepResponse),
];

/// The policy named `name` (see [`STORE_ERROR_POLICIES`]).
///
/// # Errors
/// An unknown name, with the known ones.
pub fn store_error_policy(name: &str) -> Result<OnStoreError, String> {
    STORE_ERROR_POLICIES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, policy)| *policy)
        .ok_or_else(|| format!("unknown policy {name} (page, 500, 503, continue or keep)"))
}

/// The app's answer to a request whose session store failed: a `503` page asking to come
/// back in a few seconds, naming the kind of failure and nothing internal.
pub fn store_down_page(err: &Error) -> Reply {
    Reply::service_unavailable(std::time::Duration::from_secs(5)).with_body(
        "text/html; charset=utf-8",
        answer::page(&format!(
            "<h1 id=\"store-down\">Sessions are unavailable</h1>\
             <p>The session store did not answer ({}). Please try again in a few seconds.</p>",
            answer::escape(&err.kind().to_string())
        )),
    )
}

/// Serves the app on `framework` with sessions from `manager` as `options` say, on
/// `listener`, until `shutdown` completes; then lets the requests in flight finish.
///
/// # Errors
/// If the listener cannot be used, or the server fails.
pub async fn serve(
    framework: Framework,
    manager: SessionManager,
    options: Options,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    match framework {
        Framework::Axum => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, axum_app(manager, options))
                .with_graceful_shutdown(shutdown)
                .await
        }
        Framework::Actix => {
            // One worker per core, each on a runtime of its own thread; the manager (and
            // its store's connections) is shared by all of them.
            let server =
                actix_web::HttpServer::new(move || actix_app(manager.clone(), options.clone()))
                    .listen(listener)?
                    .run();
            let handle = server.handle();
            tokio::spawn(async move {
                shutdown.await;
                handle.stop(true).await;
            });
            server.await
        }
    }
}

/// The login form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    /// The "Remember me" box: present (`1`) when ticked.
    #[serde(default)]
    remember: Option<String>,
}

impl LoginForm {
    /// Whether "Remember me" was ticked.
    fn remember(&self) -> bool {
        self.remember.is_some()
    }
}

/// The form of an "End" button on "Your sessions".
#[derive(Debug, Deserialize)]
struct RevokeForm {
    handle: String,
}
