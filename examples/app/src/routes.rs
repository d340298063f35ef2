//! The routes' logic on a [`Session`], written once for both frameworks: each framework's
//! side of the app only extracts the inputs and turns the [`Answer`] into a response.

use session_core::flash::Level;
use session_core::{ErrorKind, Result, Session, UserId};

use crate::answer::{Answer, escape, page};
use crate::devices;

/// `GET /`: the sign-in form, or the greeting with the visit counter.
pub(crate) async fn home(session: &Session) -> Result<Answer> {
    // Shown once: a reload of the page shows them no more.
    let flashes = flashes(session).await?;
    // ThinkJS: this.session('userInfo')
    let Some(user) = session.get::<String>("userInfo").await? else {
        return Ok(Answer::Page(page(&format!(
            "{flashes}<h1>Sign in</h1>\
             <form method=\"post\" action=\"/login\">\
             <label>Name <input name=\"username\" autocomplete=\"username\" required maxlength=\"64\"></label> \
             <label><input type=\"checkbox\" name=\"remember\" value=\"1\" id=\"remember\"> Remember me</label> \
             <button type=\"submit\" id=\"login\">Log in</button></form>\
             <p id=\"status\">You are not logged in.</p>",
        ))));
    };
    let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.set("visits", &visits).await?;
    let counter: u64 = session.get("n").await?.unwrap_or(0);
    Ok(Answer::Page(page(&format!(
        "{flashes}<h1 id=\"greeting\">Hello, {}!</h1>\
         <p id=\"visits\">Visits this session: {visits}</p>\
         <p id=\"counter\">Counter (<code>GET /incr</code>, <code>GET /count</code>): {counter}</p>\
         <p><a href=\"/sessions\" id=\"your-sessions\">Your sessions</a></p>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\" id=\"logout\">Log out</button></form>",
        escape(&user)
    ))))
}

/// The flash messages queued for this page, taken (so shown once), as HTML.
async fn flashes(session: &Session) -> Result<String> {
    Ok(session
        .take_flashes()
        .await?
        .iter()
        .map(|flash| {
            format!(
                "<p class=\"flash {level}\" data-level=\"{level}\">{}</p>",
                escape(&flash.message),
                level = flash.level.as_str()
            )
        })
        .collect())
}

/// `POST /login` with the form's `username` and "Remember me" box, from a browser whose
/// `User-Agent` is `user_agent`.
pub(crate) async fn login(
    session: &Session,
    username: &str,
    remember: bool,
    user_agent: Option<&str>,
) -> Result<Answer> {
    let name = username.trim();
    let user = match UserId::new(name) {
        Ok(user) if name.chars().count() <= 64 => user,
        _ => {
            return Ok(Answer::Refused(
                400,
                page("<p>A name of 1 to 64 characters, please.</p>"),
            ));
        }
    };
    // A new id at login: a session id planted or seen before login opens nothing.
    session.cycle_id().await?;
    // The session now belongs to the user: it is listed on their "Your sessions" page.
    // A session kept in its cookie (`type = "cookie"`) has no store to list it in, and
    // logs in without the binding.
    match session.set_user(user).await {
        Err(err) if err.kind() == ErrorKind::Unsupported => {}
        bound => {
            bound?;
            session
                .set_label(&devices::device_label(user_agent.unwrap_or_default()))
                .await?;
        }
    }
    // ThinkJS: this.session('userInfo', name)
    session.set("userInfo", name).await?;
    session.set("visits", &0u64).await?;
    // Ticked: a long life and a cookie that outlives the browser; not: a cookie the
    // browser drops when it closes, and the configuration's idle timeout.
    session.remember(remember).await?;
    session
        .flash(Level::Success, format!("Welcome back, {name}"))
        .await?;
    Ok(Answer::Redirect("/"))
}

/// `POST /logout`.
pub(crate) async fn logout(session: &Session) -> Result<Answer> {
    // ThinkJS: this.session(null)
    session.clear().await;
    // A new session, holding only the message, carries it over the redirect.
    session.flash(Level::Info, "Logged out").await?;
    Ok(Answer::Redirect("/"))
}

/// `GET /read`: the `/incr` counter, unchanged (a read-only request, for benchmarks).
pub(crate) async fn read(session: &Session) -> Result<Answer> {
    Ok(Answer::Text(
        session.get::<u64>("n").await?.unwrap_or(0).to_string(),
    ))
}

/// `GET /incr`: reads an integer from the session, adds one, stores it, returns it: a
/// plain read-modify-write, which concurrent requests of one session can interleave unless
/// the configuration's `lock` is on.
pub(crate) async fn incr(session: &Session) -> Result<Answer> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.set("n", &n).await?;
    Ok(Answer::Text(n.to_string()))
}

/// `GET /count`: adds one to the `/incr` counter with `Session::update`, returns it:
/// atomic, so no concurrent request of the session loses an increment, with or without
/// the lock.
pub(crate) async fn count(session: &Session) -> Result<Answer> {
    let n = session
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(Answer::Text(n.to_string()))
}
