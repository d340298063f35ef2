//! The example application: a login form, a greeting with a visit counter, "Your
//! sessions" (every session of the user, each of which can be ended), logout, and
//! `GET /incr`, `GET /count` and `GET /read` for benchmarks, on whichever store the
//! configuration picks.
//!
//! `cargo run -p session-example` serves it on <http://127.0.0.1:3000> with the file store
//! (`./runtime/session`). A TOML file (`--config session.toml`) or `SESSION__*`
//! environment variables switch the store, e.g. `SESSION__TYPE=memory`, or
//! `SESSION__TYPE=redis SESSION__ADAPTER__REDIS__URL=redis://127.0.0.1:6379`, and set any
//! other key, e.g. `SESSION__LOCK=true` (requests of one session one at a time, on a
//! store that keeps locks) with `SESSION__LOCK_TIMEOUT=2s`.
//!
//! Same-session concurrency: `/incr` is a plain read-modify-write (`get`, then `set`), so
//! concurrent requests of one session can lose increments unless the configuration's
//! `lock` is on; `/count` does the same with `Session::update`, which loses none either
//! way. The routes that only read (`/read`, `/sessions`) are read-only
//! ([`LockMode::ReadOnly`]) whatever the configuration says: they never wait for the lock,
//! and a write from them would be refused. With the lock off that changes nothing but the
//! refusal, so they are read-only unconditionally rather than only when `lock` is on.

mod devices;

use axum::Form;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session_core::{LockMode, Registry, SessionManager, UserId};
use session_tower::{Session, SessionError, SessionLayer, SessionLock};

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

/// The application's routes, with sessions from `manager`.
pub fn app(manager: SessionManager) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(devices::list).route_layer(read_only()))
        .route("/sessions/revoke", post(devices::revoke))
        .route("/sessions/revoke-others", post(devices::revoke_others))
        .route("/incr", get(incr))
        .route("/count", get(count))
        .route("/read", get(read).route_layer(read_only()))
        .route("/healthz", get(|| async { "ok" }))
        .layer(SessionLayer::new(manager))
}

/// The lock mode of the routes that only read: they neither take nor wait for the
/// session's lock.
fn read_only() -> SessionLock {
    SessionLock::new(LockMode::ReadOnly)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}\
input,button{font-size:1rem;padding:.4rem .6rem}table{border-collapse:collapse;margin:1rem 0}td,th{padding:.3rem .6rem;text-align:left}";

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sessions</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>"
    ))
}

/// HTML-escapes user input before it goes into the page.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn home(session: Session) -> Result<Html<String>, SessionError> {
    // ThinkJS: this.session('userInfo')
    let Some(user) = session.get::<String>("userInfo").await? else {
        return Ok(page(
            "<h1>Sign in</h1>\
             <form method=\"post\" action=\"/login\">\
             <label>Name <input name=\"username\" autocomplete=\"username\" required maxlength=\"64\"></label> \
             <button type=\"submit\" id=\"login\">Log in</button></form>\
             <p id=\"status\">You are not logged in.</p>",
        ));
    };
    let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.set("visits", &visits).await?;
    let counter: u64 = session.get("n").await?.unwrap_or(0);
    Ok(page(&format!(
        "<h1 id=\"greeting\">Hello, {}!</h1>\
         <p id=\"visits\">Visits this session: {visits}</p>\
         <p id=\"counter\">Counter (<code>GET /incr</code>, <code>GET /count</code>): {counter}</p>\
         <p><a href=\"/sessions\" id=\"your-sessions\">Your sessions</a></p>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\" id=\"logout\">Log out</button></form>",
        escape(&user)
    )))
}

/// The login form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
}

async fn login(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, SessionError> {
    let name = form.username.trim();
    let user = match UserId::new(name) {
        Ok(user) if name.chars().count() <= 64 => user,
        _ => {
            return Ok((
                axum::http::StatusCode::BAD_REQUEST,
                page("<p>A name of 1 to 64 characters, please.</p>"),
            )
                .into_response());
        }
    };
    // A new id at login: a session id planted or seen before login opens nothing.
    session.cycle_id().await?;
    // The session now belongs to the user: it is listed on their "Your sessions" page.
    session.set_user(user).await?;
    session.set_label(&devices::device_label(&headers)).await?;
    // ThinkJS: this.session('userInfo', name)
    session.set("userInfo", name).await?;
    session.set("visits", &0u64).await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(session: Session) -> Redirect {
    // ThinkJS: this.session(null)
    session.clear().await;
    Redirect::to("/")
}

/// Reads the `/incr` counter without changing it (a read-only request, for benchmarks).
async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
}

/// Reads an integer from the session, adds one, stores it, returns it: a plain
/// read-modify-write, which concurrent requests of one session can interleave unless the
/// configuration's `lock` is on.
async fn incr(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.set("n", &n).await?;
    Ok(n.to_string())
}

/// Adds one to the `/incr` counter with `Session::update`, returns it: atomic, so no
/// concurrent request of the session loses an increment, with or without the lock.
async fn count(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
