//! The app on actix-web, through `session-actix`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, Responder, web};
use session_actix::{Session, SessionError, SessionLock, SessionMiddleware};
use session_core::{LockMode, SessionManager};

use crate::answer::Answer;
use crate::metrics::CONTENT_TYPE;
use crate::{LoginForm, Options, RevokeForm, devices, routes};

/// The application's routes on actix-web, with sessions from `manager` as `options` say
/// (with `GET /metrics` when `options.metrics` is given): what each worker of
/// `HttpServer::new` builds.
pub fn app(
    manager: SessionManager,
    options: Options,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // The routes that only read neither take nor wait for the session's lock.
    let read_only = || SessionLock::new(LockMode::ReadOnly);
    App::new()
        .route("/", web::get().to(home))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .service(
            web::resource("/sessions")
                .wrap(read_only())
                .route(web::get().to(sessions)),
        )
        .route("/sessions/revoke", web::post().to(revoke))
        .route("/sessions/revoke-others", web::post().to(revoke_others))
        .route("/incr", web::get().to(incr))
        .route("/count", web::get().to(count))
        .service(
            web::resource("/read")
                .wrap(read_only())
                .route(web::get().to(read)),
        )
        .route("/healthz", web::get().to(|| async { "ok" }))
        .configure(|config| {
            if let Some(metrics) = options.metrics {
                config.route(
                    "/metrics",
                    web::get().to(move || {
                        let body = metrics.render();
                        async move {
                            HttpResponse::Ok()
                                .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
                                .body(body)
                        }
                    }),
                );
            }
        })
        .wrap(SessionMiddleware::new(manager).on_store_error(options.on_store_error))
}

impl Responder for Answer {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        match self {
            Self::Page(html) => HttpResponse::Ok()
                .content_type(ContentType::html())
                .body(html),
            Self::Text(text) => HttpResponse::Ok()
                .content_type(ContentType::plaintext())
                .body(text),
            Self::Redirect(path) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, path))
                .finish(),
            Self::Refused(status, html) => HttpResponse::build(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )
            .content_type(ContentType::html())
            .body(html),
        }
    }
}

type Answered = Result<Answer, SessionError>;

async fn home(session: Session) -> Answered {
    Ok(routes::home(&session).await?)
}

async fn login(session: Session, request: HttpRequest, form: web::Form<LoginForm>) -> Answered {
    let agent = request
        .headers()
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

async fn revoke(session: Session, form: web::Form<RevokeForm>) -> Answered {
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
