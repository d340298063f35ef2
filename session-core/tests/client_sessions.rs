//! Client-side sessions (`type = "cookie"`, `type = "jwt"`) as a request sees them: the
//! expiry inside the token enforced on the server, tokens that would not fit refused with
//! a typed error, `clear()` telling the client to drop its copy, and the header
//! transports.

use std::time::Duration;

use session_core::transport::Transport;
use session_core::{ErrorKind, SessionConfig, SessionManager};

const SECRET: &str = "a client-side secret of thirty-two bytes";

fn manager(store_type: &str, extra: &str) -> SessionManager {
    let json = format!(r#"{{"type": "{store_type}", "secret": "{SECRET}" {extra}}}"#);
    SessionManager::client_side(SessionConfig::from_json_str(&json).expect("config"))
        .expect("manager")
}

fn header(cookie: &session_core::cookie::Cookie<'_>) -> String {
    format!("{}={}", cookie.name(), cookie.value())
}

/// The token of a new session of `manager` holding `user = "ada"`, as a request without a
/// token gets it.
async fn issued(manager: &SessionManager) -> String {
    let login = manager.session_from_headers(|_| Vec::<&[u8]>::new());
    login.set("user", "ada").await.expect("set");
    login
        .flush()
        .await
        .expect("flush")
        .expect("a token")
        .value()
        .to_owned()
}

#[tokio::test]
async fn a_token_carries_the_session_and_a_replay_past_its_expiry_is_no_session() {
    for store_type in ["cookie", "jwt"] {
        let manager = manager(
            store_type,
            r#", "timeout": 2, "touch_after": 1, "transport": "cookie""#,
        );
        let login = manager.session_from_cookie_header(None);
        login.set("user", "ada").await.expect("set");
        let cookie = login.flush().await.expect("flush").expect("a token");
        assert_eq!(cookie.http_only(), Some(true), "{store_type}");
        let next = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert_eq!(
            next.get::<String>("user").await.expect("get").as_deref(),
            Some("ada")
        );
        assert!(
            next.flush().await.expect("flush").is_none(),
            "read-only: no new token"
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let replay = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(
            !replay.exists().await.expect("load"),
            "{store_type}: expired token opened"
        );
    }
}

#[tokio::test]
async fn the_rolling_refresh_and_the_absolute_lifetime_come_from_inside_the_token() {
    let rolling = manager("cookie", r#", "timeout": 60, "touch_after": 1"#);
    let absolute = manager(
        "cookie",
        r#", "timeout": 60, "touch_after": 1, "absolute_timeout": 2"#,
    );
    let mut tokens = Vec::new();
    for app in [&rolling, &absolute] {
        let login = app.session_from_cookie_header(None);
        login.set("user", "ada").await.expect("set");
        tokens.push(login.flush().await.expect("flush").expect("a token"));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let read = rolling.session_from_cookie_header(Some(&header(&tokens[0])));
    assert!(read.exists().await.expect("load"));
    let refreshed = read
        .flush()
        .await
        .expect("flush")
        .expect("the expiry step is due");
    assert_ne!(
        refreshed.value(),
        tokens[0].value(),
        "a refresh is a new token"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let late = absolute.session_from_cookie_header(Some(&header(&tokens[1])));
    assert!(
        !late.exists().await.expect("load"),
        "past the absolute lifetime"
    );
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_a_typed_error_naming_the_size() {
    let manager = manager("cookie", "");
    let session = manager.session_from_cookie_header(None);
    session.set("blob", &"x".repeat(5000)).await.expect("set");
    let err = session.flush().await.expect_err("over 4096 bytes");
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert!(err.to_string().contains("4096"), "{err}");
    session.remove("blob").await.expect("remove");
    session.set("small", "ok").await.expect("set");
    assert!(
        session.flush().await.expect("flush").is_some(),
        "fits once smaller"
    );
}

#[tokio::test]
async fn clear_sends_the_removal_and_only_replaces_the_clients_copy() {
    let manager = manager("cookie", "");
    let login = manager.session_from_cookie_header(None);
    login.set("user", "ada").await.expect("set");
    let cookie = login.flush().await.expect("flush").expect("a token");
    let logout = manager.session_from_cookie_header(Some(&header(&cookie)));
    logout.clear().await;
    let removal = logout.flush().await.expect("flush").expect("a removal");
    assert_eq!(removal.value(), "");
    // Documented: nothing on the server remembers the logout.
    let replay = manager.session_from_cookie_header(Some(&header(&cookie)));
    assert!(replay.exists().await.expect("load"));
}

#[tokio::test]
async fn tokens_of_one_type_or_secret_open_nothing_in_another() {
    let cookie_app = manager("cookie", "");
    let jwt_app = manager("jwt", r#", "transport": "cookie""#);
    let login = cookie_app.session_from_cookie_header(None);
    login.set("user", "ada").await.expect("set");
    let sealed = login.flush().await.expect("flush").expect("a token");
    let other = SessionManager::client_side(
        SessionConfig::from_json_str(
            r#"{"type": "cookie", "secret": "another secret of thirty-two bytes"}"#,
        )
        .expect("config"),
    )
    .expect("manager");
    for app in [&jwt_app, &other] {
        let session = app.session_from_cookie_header(Some(&header(&sealed)));
        assert!(!session.exists().await.expect("load"));
    }
}

#[tokio::test]
async fn a_jwt_session_travels_as_a_bearer_token_and_comes_back_in_the_token_header() {
    let manager = manager("jwt", "");
    let login = manager.session_from_headers(|_| Vec::<&[u8]>::new());
    assert_eq!(
        login.transport(),
        Transport::Bearer,
        "jwt defaults to bearer"
    );
    let token = issued(&manager).await;
    assert_eq!(token.matches('.').count(), 2, "a JWT");
    let authorization = format!("Bearer {token}");
    let next = manager.session_from_headers(|name| match name {
        "authorization" => vec![authorization.as_bytes()],
        _ => vec![],
    });
    assert_eq!(
        next.get::<String>("user").await.expect("get").as_deref(),
        Some("ada")
    );
}

#[test]
fn client_side_types_refuse_what_they_cannot_do() {
    for (json, key) in [
        (r#"{"type": "cookie"}"#, "secret"),
        (r#"{"type": "jwt", "secret": "short"}"#, "secret[0]"),
        (
            &format!(r#"{{"type": "cookie", "secret": "{SECRET}", "lock": true}}"#) as &str,
            "lock",
        ),
        (
            &format!(r#"{{"type": "jwt", "secret": "{SECRET}", "max_sessions_per_user": 3}}"#),
            "max_sessions_per_user",
        ),
    ] {
        let err = SessionConfig::from_json_str(json)
            .and_then(SessionManager::client_side)
            .expect_err(json);
        assert_eq!(err.kind(), ErrorKind::Config, "{json}");
        assert!(err.to_string().contains(key), "{json}: {err}");
    }
    let err = SessionManager::client_side(SessionConfig::default()).expect_err("file is a store");
    assert!(err.to_string().contains("type"), "{err}");
}

#[tokio::test]
async fn old_format_truncated_and_foreign_tokens_are_no_session() {
    let manager = manager("cookie", "");
    let token = issued(&manager).await;
    let id = session_core::SessionId::generate(32).expect("id");
    let signed = session_core::Signer::new([SECRET.to_owned().into()])
        .expect("signer")
        .sign(id.expose());
    for value in [
        id.expose().to_owned(),
        signed,
        token[..token.len() - 1].to_owned(),
        format!("{token}A"),
        flipped(&token),
        "A".repeat(5000),
        String::new(),
    ] {
        let session = manager.session_from_cookie_header(Some(&format!("thinkjs={value}")));
        assert!(
            !session.exists().await.expect("load"),
            "{value:.40} opened a session"
        );
    }
}

/// `token` with its middle character replaced by another of the base64url alphabet.
fn flipped(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}
