//! The session's side of sessions that belong to users: binding at log-in, and listing or
//! ending the other sessions of the same user from a request.

use super::{Session, State};
use crate::{Owner, Result, SessionHandle, StoreKey, UserId, UserSession};

impl Session {
    /// Binds the session to `user`: call it at log-in, next to [`cycle_id`](Self::cycle_id).
    /// The binding is stored at flush (a session bound to a user is stored even if it
    /// holds no data), survives `cycle_id`, and ends with [`clear`](Self::clear). The user's
    /// sessions can then be listed and ended ([`user_sessions`](Self::user_sessions),
    /// [`SessionManager::revoke_user`](crate::SessionManager::revoke_user)), and
    /// `max_sessions_per_user` ends the least recently active ones beyond the limit.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) if the store keeps no user
    /// index; a store failure while loading.
    pub async fn set_user(&self, user: UserId) -> Result<()> {
        self.shared.manager.require_user_index()?;
        let mut state = self.writable_state().await?;
        let state = &mut *state;
        if state.owner.as_ref().is_some_and(|owner| owner.user == user) {
            return Ok(());
        }
        let owner = Owner {
            user,
            label: state.owner.as_ref().map_or_else(
                || std::mem::take(&mut state.label),
                |owner| owner.label.clone(),
            ),
        };
        self.bind(state, owner);
        Ok(())
    }

    /// Gives the session a short description shown in listings of the user's sessions
    /// (say "Firefox on Linux", from the `User-Agent`). Kept with the binding: a label set
    /// before [`set_user`](Self::set_user) is given to the binding it makes.
    ///
    /// # Errors
    /// [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge) or
    /// [`ErrorKind::InvalidId`](crate::ErrorKind::InvalidId) for a label
    /// [`check_label`](crate::check_label) refuses; a store failure while loading.
    pub async fn set_label(&self, label: &str) -> Result<()> {
        crate::check_label(label)?;
        let mut state = self.writable_state().await?;
        let state = &mut *state;
        match &state.owner {
            Some(owner) if owner.label == label => {}
            Some(owner) => {
                let owner = Owner {
                    user: owner.user.clone(),
                    label: label.to_owned(),
                };
                self.bind(state, owner);
            }
            None => label.clone_into(&mut state.label),
        }
        Ok(())
    }

    fn bind(&self, state: &mut State, owner: Owner) {
        if state.persisted.is_some() {
            state.pending.owner = Some(owner.clone());
        }
        state.owner = Some(owner);
        state.bound = true;
    }

    /// The user the session is bound to, if any.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn user(&self) -> Result<Option<UserId>> {
        Ok(self
            .loaded_state()
            .await?
            .owner
            .as_ref()
            .map(|owner| owner.user.clone()))
    }

    /// The handle that names this session in listings of its user's sessions, once it is
    /// stored.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn handle(&self) -> Result<Option<SessionHandle>> {
        Ok(self
            .loaded_state()
            .await?
            .persisted
            .as_ref()
            .map(|persisted| SessionHandle::of(&persisted.key)))
    }

    /// The live sessions of this session's user (the "where am I logged in" page), this
    /// one marked [`current`](UserSession::current); empty for a session bound to no user.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) if the store keeps no user
    /// index; store failures.
    pub async fn user_sessions(&self) -> Result<Vec<UserSession>> {
        let (user, current) = self.user_and_key().await?;
        let Some(user) = user else {
            return Ok(Vec::new());
        };
        let manager = &self.shared.manager;
        manager.require_user_index()?;
        let mut sessions = manager.user_sessions(&user).await?;
        if let Some(current) = current {
            for session in &mut sessions {
                session.current = session.handle.names(&current);
            }
        }
        Ok(sessions)
    }

    /// Ends one session of this session's user, named by its handle from
    /// [`user_sessions`](Self::user_sessions) ("log out that device"); returns whether it
    /// ended one. A handle of another user's session, or of no live session, ends nothing
    /// and is `false`: the handle is checked against this session's own user, so a form
    /// that posts handles needs no ownership check of its own.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) if the store keeps no user
    /// index; store failures.
    pub async fn revoke(&self, handle: &SessionHandle) -> Result<bool> {
        let (user, _) = self.user_and_key().await?;
        let Some(user) = user else {
            return Ok(false);
        };
        self.shared.manager.revoke(&user, handle).await
    }

    /// Ends every other session of this session's user ("log out my other devices");
    /// returns how many it ended. This one stays.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) if the store keeps no user
    /// index; store failures.
    pub async fn revoke_others(&self) -> Result<u64> {
        let (user, current) = self.user_and_key().await?;
        let Some(user) = user else {
            return Ok(0);
        };
        let except = current.as_ref().map(SessionHandle::of);
        self.shared
            .manager
            .revoke_user(&user, except.as_ref())
            .await
    }

    async fn user_and_key(&self) -> Result<(Option<UserId>, Option<StoreKey>)> {
        let state = self.loaded_state().await?;
        Ok((
            state.owner.as_ref().map(|owner| owner.user.clone()),
            state.persisted.as_ref().map(|p| p.key.clone()),
        ))
    }
}
