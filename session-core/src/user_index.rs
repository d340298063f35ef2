//! The manager's side of sessions that belong to users: listing a user's sessions, ending
//! one, all, or all but one, and holding a user to `max_sessions_per_user`.
//!
//! Every call reads the store's user index once ([`SessionStore::sessions_of`]) and ends
//! sessions with one [`SessionStore::delete_many`], so its cost does not grow in round
//! trips with the number of sessions a user has. Ending a session deletes its record,
//! which the store contract already guards: a slow request of an ended session can never
//! bring it back.
//!
//! [`SessionStore::sessions_of`]: crate::SessionStore::sessions_of
//! [`SessionStore::delete_many`]: crate::SessionStore::delete_many

use std::cmp::Reverse;

use crate::manager::ManagerInner;
use crate::{
    Error, ErrorKind, IndexedSession, Result, SessionHandle, SessionManager, StoreKey, Timestamp,
    UserId, UserSession,
};

impl SessionManager {
    /// The live sessions of `user`, most recently active first. No entry is
    /// [`current`](UserSession::current): a request lists its own user's sessions with
    /// [`Session::user_sessions`](crate::Session::user_sessions), which marks its own.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] if the store keeps no user index; store failures.
    pub async fn sessions_of(&self, user: &UserId) -> Result<Vec<UserSession>> {
        self.inner.require_user_index()?;
        self.inner.user_sessions(user).await
    }

    /// Ends the session of `user` named by `handle`; returns whether it ended one.
    ///
    /// The handle must name one of `user`'s live sessions: a handle of another user's
    /// session, a stale one or a made-up one ends nothing and is `false`, not an error. An
    /// application that lets people end sessions passes the user of the request (never a
    /// user named by the request), which is the whole ownership check.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] if the store keeps no user index; store failures.
    pub async fn revoke(&self, user: &UserId, handle: &SessionHandle) -> Result<bool> {
        self.inner.revoke(user, handle).await
    }

    /// Ends every session of `user` except the one named by `except` (the current one, to
    /// "log out my other devices"; `None` after a password change or a ban); returns how
    /// many it ended.
    ///
    /// A session bound to `user` while this runs may survive it (it was not in the
    /// listing): call it after the change that must lock the user out.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] if the store keeps no user index; store failures.
    pub async fn revoke_user(&self, user: &UserId, except: Option<&SessionHandle>) -> Result<u64> {
        self.inner.revoke_user(user, except).await
    }
}

impl ManagerInner {
    /// Refuses user-index calls on a store without one, naming the store.
    pub(crate) fn require_user_index(&self) -> Result<()> {
        if self.store.capabilities().user_index {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "sessions cannot be bound to users on this store ({:?}): it keeps no \
                 user index (Capabilities::user_index)",
                self.config.store_type
            ),
        ))
    }

    /// The user's usable sessions as the store lists them, filtered by this manager's
    /// absolute lifetime, most recently active first (ties by handle, so every caller
    /// ranks them alike).
    async fn indexed(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let now = Timestamp::now();
        let mut sessions = self.store.sessions_of(user).await?;
        sessions.retain(|s| self.expiry.is_usable(s.expires_at, s.created_at, now));
        sessions.sort_unstable_by(|a, b| {
            (Reverse(a.expires_at), a.key.as_str()).cmp(&(Reverse(b.expires_at), b.key.as_str()))
        });
        Ok(sessions)
    }

    pub(crate) async fn user_sessions(&self, user: &UserId) -> Result<Vec<UserSession>> {
        let now = Timestamp::now();
        Ok(self
            .indexed(user)
            .await?
            .into_iter()
            .map(|s| UserSession {
                handle: SessionHandle::of(&s.key),
                created_at: s.created_at,
                // A session expiring later than `timeout` from now can only have been
                // remembered; its last activity counts back from `remember_timeout`.
                last_active: self
                    .expiry_for(Some(s.expires_at > now + self.config.timeout))
                    .last_active(s.expires_at, s.created_at, now),
                expires_at: s.expires_at,
                label: s.label,
                current: false,
            })
            .collect())
    }

    pub(crate) async fn revoke(&self, user: &UserId, handle: &SessionHandle) -> Result<bool> {
        self.require_user_index()?;
        let Some(session) = self
            .store
            .sessions_of(user)
            .await?
            .into_iter()
            .find(|s| handle.names(&s.key))
        else {
            return Ok(false);
        };
        self.store.delete(&session.key).await
    }

    pub(crate) async fn revoke_user(
        &self,
        user: &UserId,
        except: Option<&SessionHandle>,
    ) -> Result<u64> {
        self.require_user_index()?;
        let keys: Vec<StoreKey> = self
            .store
            .sessions_of(user)
            .await?
            .into_iter()
            .map(|s| s.key)
            .filter(|key| !except.is_some_and(|handle| handle.names(key)))
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let ended = self.store.delete_many(&keys).await?;
        tracing::debug!(ended, "sessions of a user revoked");
        Ok(ended)
    }

    /// After `current` was bound to `user`: ends the user's least recently active other
    /// sessions beyond `max_sessions_per_user`, keeping `current`.
    ///
    /// Concurrent log-ins of one user each list after storing their own session and keep
    /// the same ranking, so the last of them to list leaves at most the limit.
    pub(crate) async fn enforce_session_limit(
        &self,
        user: &UserId,
        current: &StoreKey,
    ) -> Result<()> {
        let Some(limit) = self.config.max_sessions_per_user else {
            return Ok(());
        };
        let sessions = self.indexed(user).await?;
        if sessions.len() <= limit {
            return Ok(());
        }
        let excess: Vec<StoreKey> = sessions
            .into_iter()
            .map(|s| s.key)
            .filter(|key| key != current)
            .skip(limit.saturating_sub(1))
            .collect();
        let ended = self.store.delete_many(&excess).await?;
        tracing::debug!(ended, limit, "sessions beyond max_sessions_per_user ended");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_store::{header, manager, manager_without_user_index};
    use crate::{ErrorKind, UserId};

    fn ada() -> UserId {
        UserId::new("ada").expect("valid")
    }

    #[tokio::test]
    async fn a_store_without_an_index_refuses_bindings_by_name() {
        let manager = manager_without_user_index();
        let session = manager.session_from_cookie_header(None);
        let err = session.set_user(ada()).await.expect_err("no index");
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("\"file\""), "{err}");
        assert!(err.to_string().contains("user_index"), "{err}");
        let err = manager.sessions_of(&ada()).await.expect_err("no index");
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(
            manager
                .revoke_user(&ada(), None)
                .await
                .map_err(|e| e.kind()),
            Err(ErrorKind::Unsupported)
        );
    }

    #[tokio::test]
    async fn a_bound_session_without_data_is_stored_and_listed_newest_first() {
        let (manager, _) = manager("{}");
        let mut cookies = Vec::new();
        for label in ["first", "second"] {
            let session = manager.session_from_cookie_header(None);
            session.set_user(ada()).await.expect("bind");
            session.set_label(label).await.expect("label");
            cookies.push(session.flush().await.expect("flush").expect("a cookie"));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let listed = manager.sessions_of(&ada()).await.expect("list");
        let labels: Vec<&str> = listed.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["second", "first"], "most recently active first");
        let again = manager.session_from_cookie_header(Some(&header(&cookies[0])));
        assert_eq!(again.user().await.expect("user"), Some(ada()));
    }

    #[tokio::test]
    async fn the_limit_keeps_the_new_session_and_the_most_recent_others() {
        let (manager, _) = manager(r#"{"max_sessions_per_user": 2}"#);
        let mut cookies = Vec::new();
        for _ in 0..4 {
            let session = manager.session_from_cookie_header(None);
            session.set_user(ada()).await.expect("bind");
            cookies.push(session.flush().await.expect("flush").expect("a cookie"));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut alive = Vec::new();
        for cookie in &cookies {
            let session = manager.session_from_cookie_header(Some(&header(cookie)));
            alive.push(session.user().await.expect("user").is_some());
        }
        assert_eq!(alive, [false, false, true, true]);
    }
}
