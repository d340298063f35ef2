//! Where the token travels for server-side sessions: the cookie, a header of its own, and
//! `Authorization: Bearer`, mixed, and hostile header values.

use std::sync::Arc;

use session_core::transport::Transport;
use session_core::{SessionConfig, SessionManager};
use session_memory::MemoryStore;

fn manager(transport: &str) -> SessionManager {
    let json = format!(r#"{{"transport": {transport}, "secret": "transport secret"}}"#);
    SessionManager::new(
        Arc::new(MemoryStore::new()),
        SessionConfig::from_json_str(&json).expect("config"),
    )
    .expect("manager")
}

/// The session of a request with these headers (name, value), one line each.
fn request(manager: &SessionManager, headers: &[(&str, Vec<u8>)]) -> session_core::Session {
    manager.session_from_headers(|name| {
        headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .collect::<Vec<_>>()
    })
}

async fn logged_in(manager: &SessionManager, headers: &[(&str, Vec<u8>)]) -> (Transport, String) {
    let session = request(manager, headers);
    session.set("user", "ada").await.expect("set");
    let token = session.flush().await.expect("flush").expect("a token");
    (session.transport(), token.value().to_owned())
}

async fn user(manager: &SessionManager, headers: &[(&str, Vec<u8>)]) -> Option<String> {
    request(manager, headers).get("user").await.expect("get")
}

#[tokio::test]
async fn each_transport_carries_the_token_and_the_first_present_one_decides() {
    let manager = manager(r#"["cookie", "header", "bearer"]"#);
    // No token anywhere: the first transport gets the new one.
    let (transport, token) = logged_in(&manager, &[]).await;
    assert_eq!(transport, Transport::Cookie);
    // A client asks for a header token by sending the header empty.
    let (transport, header_token) = logged_in(&manager, &[("x-session-token", Vec::new())]).await;
    assert_eq!(transport, Transport::Header);
    let cookie = format!("thinkjs={token}").into_bytes();
    let bearer = format!("Bearer {header_token}").into_bytes();
    assert_eq!(
        user(&manager, &[("cookie", cookie.clone())])
            .await
            .as_deref(),
        Some("ada")
    );
    assert_eq!(
        user(
            &manager,
            &[("x-session-token", header_token.clone().into_bytes())]
        )
        .await
        .as_deref(),
        Some("ada")
    );
    assert_eq!(
        user(&manager, &[("authorization", bearer.clone())])
            .await
            .as_deref(),
        Some("ada")
    );
    // An invalid cookie is not replaced by the valid bearer behind it.
    let mixed = [
        ("cookie", b"thinkjs=forged".to_vec()),
        ("authorization", bearer.clone()),
    ];
    let session = request(&manager, &mixed);
    assert_eq!(session.transport(), Transport::Cookie);
    assert!(!session.exists().await.expect("load"));
    // Another scheme is not a token: the bearer decides then.
    let basic = [
        ("authorization", b"Basic dXNlcjpwdw==".to_vec()),
        ("authorization", bearer),
    ];
    assert_eq!(user(&manager, &basic).await.as_deref(), Some("ada"));
}

#[tokio::test]
async fn hostile_header_values_are_no_session() {
    let manager = manager(r#"["header", "bearer"]"#);
    let (_, token) = logged_in(&manager, &[("x-session-token", Vec::new())]).await;
    let good = token.clone().into_bytes();
    let cases: Vec<Vec<(&str, Vec<u8>)>> = vec![
        vec![
            ("x-session-token", good.clone()),
            ("x-session-token", good.clone()),
        ],
        vec![("x-session-token", "A".repeat(64 * 1024).into_bytes())],
        vec![("x-session-token", "é".repeat(20).into_bytes())],
        vec![("x-session-token", [good.as_slice(), b"\xff"].concat())],
        vec![("x-session-token", b"../../etc/passwd".to_vec())],
        vec![
            ("authorization", format!("Bearer {token}").into_bytes()),
            ("authorization", format!("Bearer {token}").into_bytes()),
        ],
    ];
    for headers in &cases {
        assert_eq!(user(&manager, headers).await, None, "{headers:?}");
    }
    assert_eq!(
        user(&manager, &[("x-session-token", good)])
            .await
            .as_deref(),
        Some("ada")
    );
}

#[tokio::test]
async fn a_header_token_is_sent_only_when_it_changes() {
    let manager = manager(r#""header""#);
    let (_, token) = logged_in(&manager, &[]).await;
    let headers = [("x-session-token", token.clone().into_bytes())];
    let session = request(&manager, &headers);
    session.set("user", "grace").await.expect("set");
    assert!(
        session.flush().await.expect("flush").is_none(),
        "same id: nothing to send"
    );
    let session = request(&manager, &headers);
    session.cycle_id().await.expect("cycle");
    let cycled = session.flush().await.expect("flush").expect("a new token");
    assert_ne!(cycled.value(), token);
    let session = request(
        &manager,
        &[("x-session-token", cycled.value().as_bytes().to_vec())],
    );
    session.clear().await;
    let removal = session.flush().await.expect("flush").expect("a removal");
    assert_eq!(removal.value(), "", "clear() answers with an empty token");
}
