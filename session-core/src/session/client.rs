//! The session's side of client-side types (`type = "cookie"`, `type = "jwt"`): the data
//! comes out of the request's token at first use, and at flush goes into a new token when
//! it changed or its expiry step is due, instead of to a store.

use super::{CookieAction, State};
use crate::client::{ClientFormat, MAX_COOKIE_LEN, MAX_HEADER_TOKEN_LEN};
use crate::expiry::NextExpiry;
use crate::manager::ManagerInner;
use crate::transport::Transport;
use crate::{Error, ErrorKind, Record, Result, Timestamp, set_cookie_header};

/// A client-side session's token and what it held.
#[derive(Debug, Default)]
pub(crate) struct ClientState {
    /// The request's token, until the first use opens it.
    token: Option<String>,
    /// The lifetime of the session the token carried, if it was live; `None` for a new
    /// session.
    pub(super) live: Option<Lifetime>,
    /// The data changed in this request (or the id was cycled): a new token is due.
    pub(super) dirty: bool,
    /// `clear()` was called: the response tells the client to drop its token.
    cleared: bool,
}

/// When a client-side session expires and when it began.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lifetime {
    pub(super) expires_at: Timestamp,
    created_at: Timestamp,
}

impl ClientState {
    pub(crate) fn new(token: Option<String>) -> Self {
        Self {
            token,
            ..Self::default()
        }
    }

    /// `clear()`: the data is gone, and the client's token is to be dropped.
    pub(super) fn clear(&mut self) {
        self.token = None;
        self.live = None;
        self.dirty = false;
        self.cleared = true;
    }
}

/// Opens the request's token into the session's working data, if it carries a live
/// session this application issued.
pub(super) fn load(manager: &ManagerInner, format: &ClientFormat, state: &mut State) {
    let Some(token) = state.client.as_mut().and_then(|client| client.token.take()) else {
        return;
    };
    let Some(record) = format.open(&token) else {
        return;
    };
    let now = Timestamp::now();
    if !manager
        .expiry
        .is_usable(record.expires_at, record.created_at, now)
    {
        tracing::debug!("expired client-side session ignored");
        return;
    }
    state.data = record.data;
    state.remember = state.stored_remember(manager.config.codec);
    if let Some(client) = &mut state.client {
        client.live = Some(Lifetime {
            expires_at: record.expires_at,
            created_at: record.created_at,
        });
    }
}

/// The flush of a client-side session: a new token if one is due, the removal of the
/// client's token after `clear()`, or nothing. Never calls the store.
///
/// # Errors
/// [`ErrorKind::TooLarge`] if the token would not fit where it travels (the whole
/// `Set-Cookie` within [`MAX_COOKIE_LEN`], a header token within
/// [`MAX_HEADER_TOKEN_LEN`]); [`ErrorKind::Encode`] if the format cannot carry the data.
/// Nothing changes then, so the request's changes stay pending.
pub(super) fn flush(
    manager: &ManagerInner,
    format: &ClientFormat,
    state: &mut State,
    now: Timestamp,
) -> Result<Option<cookie::Cookie<'static>>> {
    let Some(client) = state.client.as_deref_mut() else {
        return Ok(manager.cookie_for(&state.cookie, state.remember, now));
    };
    if client.cleared {
        client.cleared = false;
        if state.had_token {
            state.cookie = CookieAction::Remove;
        }
    }
    if state.loaded {
        let policy = manager.expiry_for(state.remember);
        let next = match client.live {
            None if state.data.is_empty() => None,
            None => Some((policy.for_new(now, state.timeout_override), now)),
            Some(live) => {
                let NextExpiry { expires_at, moved } = policy.after_request(
                    now,
                    live.created_at,
                    live.expires_at,
                    state.timeout_override,
                );
                (moved || client.dirty).then_some((expires_at, live.created_at))
            }
        };
        if let Some((expires_at, created_at)) = next {
            let record = Record::new(std::mem::take(&mut state.data), expires_at, created_at);
            let sealed = format.seal(&record);
            state.data = record.data;
            let action = CookieAction::Token {
                value: sealed?,
                expires_at,
            };
            check_size(manager, &action, state.remember, state.transport, now)?;
            state.cookie = action;
            client.live = Some(Lifetime {
                expires_at,
                created_at,
            });
            client.dirty = false;
        }
    }
    Ok(manager.cookie_for(&state.cookie, state.remember, now))
}

/// Refuses a token that would be lost on its way: a `Set-Cookie` larger than browsers
/// keep, or a header larger than servers accept.
fn check_size(
    manager: &ManagerInner,
    action: &CookieAction,
    remember: Option<bool>,
    transport: Transport,
    now: Timestamp,
) -> Result<()> {
    let CookieAction::Token { value, .. } = action else {
        return Ok(());
    };
    let (size, limit, what) = match transport {
        Transport::Cookie => {
            let size = manager
                .cookie_for(action, remember, now)
                .map_or(0, |cookie| set_cookie_header(&cookie).len());
            (size, MAX_COOKIE_LEN, "Set-Cookie header")
        }
        _ => (value.len(), MAX_HEADER_TOKEN_LEN, "session token header"),
    };
    if size > limit {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "the session does not fit in its token: the {what} would be {size} bytes, over \
                 the {limit}-byte limit (a browser drops a larger cookie without a word); keep \
                 less in a client-side session, or use a server-side store"
            ),
        ));
    }
    Ok(())
}
