//! The app on axum, through `session-tower`.

use axum::Form;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session_core::{LockMode, SessionManager};
use session_tower::{Session, SessionError, SessionLayer, SessionLock};

use crate::answer::Answer;
use crate::metrics::CONTENT_TYPE;
use crate::{LoginForm, Options, RevokeForm, devices, routes};

/// The application's routes on axum, with sessions from `manager`, as `options` say: with
/// `GET /metrics` when `options.metrics` is given (outside the session layer: a scrape
/// opens no session).
pub fn app(manager: SessionManager, options: Options) -> Router {
    // The routes that only read neither take nor wait for the session's lock.
    let read_only = || SessionLock::new(LockMode::ReadOnly);
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions).route_layer(read_only()))
        .route("/sessions/revoke", post(revoke))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/incr", get(incr))
        .route("/count", get(count))
        .route("/read", get(read).route_layer(read_only()))
        .route("/healthz", get(|| async { "ok" }))
        .layer(SessionLayer::new(manager).on_store_error(options.on_store_error));
    match options.metrics {
        Some(metrics) => app.route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], body) }
            }),
        ),
        None => app,
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Page(html) => Html(html).into_response(),
            Self::Text(text) => text.into_response(),
            Self::Redirect(path) => Redirect::to(path).into_response(),
            Self::Refused(status, html) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Html(html),
            )
                .into_response(),
        }
    }
}

type Answered = Result<Answer, SessionError>;

async fn home(session: Session) -> Answered {
    Ok(routes::home(&session).await?)
}

async fn login(session: Session, headers: HeaderMap, Form(form): Form<LoginForm>) -> Answered {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    Ok(routes::login(&session, &form.username, form.remember(), agent).await?)
}

async fn logout(session: Session) -> Answered {
    Ok(routes::logout(&session).await?)
}

async fn sessions(session: Session) -> Answered {
    Ok(devices::list(&session).await?)
}

async fn revoke(session: Session, Form(form): Form<RevokeForm>) -> Answered {
    Ok(devices::revoke(&session, &form.handle).await?)
}

async fn revoke_others(session: Session) -> Answered {
    Ok(devices::revoke_others(&session).await?)
}

async fn incr(session: Session) -> Answered {
    Ok(routes::incr(&session).await?)
}

async fn count(session: Session) -> Answered {
    Ok(routes::count(&session).await?)
}

async fn read(session: Session) -> Answered {
    Ok(routes::read(&session).await?)
}
