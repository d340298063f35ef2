//! "Your sessions": every session of the logged-in user, with a button to end each one and
//! one to log out all the others; and the short device label a log-in gives its session.

use session_core::{Result, Session, SessionHandle, UserSession};

use crate::answer::{Answer, escape, page};

/// A short description of the device a request came from, from its `User-Agent` (empty
/// if it had none): "Firefox on Linux", "Chrome on Android", or "Unknown device".
pub(crate) fn device_label(agent: &str) -> String {
    // Order matters: Edge and Chrome say "Safari", Edge says "Chrome".
    let browser = [
        ("Firefox/", "Firefox"),
        ("Edg/", "Edge"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(name), None) | (None, Some(name)) => name.to_owned(),
        (None, None) => "Unknown device".to_owned(),
    }
}

/// `GET /sessions`: the user's sessions, this one marked.
pub(crate) async fn list(session: &Session) -> Result<Answer> {
    if session.user().await?.is_none() {
        return Ok(Answer::Redirect("/"));
    }
    let sessions = session.user_sessions().await?;
    let rows: String = sessions.iter().map(row).collect();
    let others = sessions.iter().filter(|s| !s.current).count();
    Ok(Answer::Page(page(&format!(
        "<h1>Your sessions</h1>\
         <table id=\"sessions\"><tr><th>Device</th><th>Signed in</th><th>Last active</th><th></th></tr>{rows}</table>\
         <form method=\"post\" action=\"/sessions/revoke-others\">\
         <button type=\"submit\" id=\"revoke-others\"{disabled}>Log out all other sessions</button></form>\
         <p><a href=\"/\">Back</a></p>",
        disabled = if others == 0 { " disabled" } else { "" },
    ))))
}

fn row(session: &UserSession) -> String {
    let action = if session.current {
        "<td class=\"current\">this device</td>".to_owned()
    } else {
        format!(
            "<td><form method=\"post\" action=\"/sessions/revoke\">\
             <input type=\"hidden\" name=\"handle\" value=\"{handle}\">\
             <button type=\"submit\" class=\"revoke\">End</button></form></td>",
            handle = session.handle
        )
    };
    format!(
        "<tr data-handle=\"{handle}\"><td class=\"label\">{label}</td><td>{created}</td><td>{active}</td>{action}</tr>",
        handle = session.handle,
        label = escape(if session.label.is_empty() {
            "Unknown device"
        } else {
            &session.label
        }),
        created = minutes(session.created_at),
        active = minutes(session.last_active),
    )
}

/// An instant to the minute, in UTC.
fn minutes(at: session_core::Timestamp) -> String {
    let text = at.to_string();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

/// `POST /sessions/revoke` with the form's `handle`: ends one session of the logged-in
/// user. The handle is checked against this session's own user, so a handle of someone
/// else's session ends nothing.
pub(crate) async fn revoke(session: &Session, handle: &str) -> Result<Answer> {
    let Ok(handle) = SessionHandle::parse(handle) else {
        return Ok(Answer::Refused(400, page("<p>No such session.</p>")));
    };
    if !session.revoke(&handle).await? {
        return Ok(Answer::Refused(404, page("<p>No such session.</p>")));
    }
    Ok(Answer::Redirect("/sessions"))
}

/// `POST /sessions/revoke-others`: "log out all other sessions".
pub(crate) async fn revoke_others(session: &Session) -> Result<Answer> {
    session.revoke_others().await?;
    Ok(Answer::Redirect("/sessions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(agent: &str) -> String {
        device_label(agent)
    }

    #[test]
    fn labels_common_agents() {
        assert_eq!(
            label("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
            "Firefox on Linux"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0 Mobile Safari/537.36"
            ),
            "Chrome on Android"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0 Safari/537.36 Edg/131.0"
            ),
            "Edge on Windows"
        );
        assert_eq!(label("curl/8.5.0"), "curl");
        assert_eq!(device_label(""), "Unknown device");
    }
}
