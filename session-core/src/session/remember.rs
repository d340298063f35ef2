//! Remember-me: a session's own choice between a long life with a persistent cookie and a
//! short one with a cookie the browser drops when it closes.

use super::Session;
use crate::Result;

/// The session key the choice of [`Session::remember`] is kept under.
pub const REMEMBER_KEY: &str = "__remember";

impl Session {
    /// Sets how long the session lives, as a login form's "Remember me" box asks: `true`
    /// gives it the configuration's `remember_timeout` as its idle timeout and a persistent
    /// cookie; `false` gives it `timeout` and a browser-session cookie (no `Max-Age` or
    /// `Expires`: gone when the browser closes). The choice is stored with the session, so
    /// every later request keeps it (rolling expiry included), and it ends with
    /// [`clear`](Self::clear). Either way `absolute_timeout` bounds the session on the
    /// server. Sessions that never call it follow `timeout` and `cookie.persistent`.
    ///
    /// ```
    /// # use session_core::Session;
    /// # async fn log_in(session: Session, remember_me: bool) -> session_core::Result<()> {
    /// session.cycle_id().await?;
    /// session.remember(remember_me).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn remember(&self, remember: bool) -> Result<()> {
        self.set(REMEMBER_KEY, &remember).await?;
        let mut state = self.shared.state.lock().await;
        state.remember = Some(remember);
        // This request sets the expiry outright, shortening it for `false`.
        state.timeout_override = Some(self.shared.manager.idle_timeout(Some(remember)));
        Ok(())
    }

    /// What [`remember`](Self::remember) chose for this session, if it was called.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn remembered(&self) -> Result<Option<bool>> {
        Ok(self.loaded_state().await?.remember)
    }
}
