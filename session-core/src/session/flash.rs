//! The session's side of flash messages: queue one for a later request, take them once.

use super::Session;
use crate::flash::{FLASH_KEY, Flash, Level, MAX_FLASHES};
use crate::{ErrorKind, Result};

impl Session {
    /// Queues a flash message for the next page that takes them
    /// ([`take_flashes`](Self::take_flashes)), typically after a redirect. Messages queue
    /// in order (at most [`MAX_FLASHES`]; the oldest goes first), survive
    /// [`cycle_id`](Self::cycle_id), and end with the session.
    ///
    /// ```
    /// # use session_core::{Session, flash::Level};
    /// # async fn log_in(session: Session) -> session_core::Result<()> {
    /// session.cycle_id().await?;
    /// session.flash(Level::Success, "Welcome back").await?;
    /// // ...redirect; the next page shows what `take_flashes` returns, once.
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A store failure while loading; [`ErrorKind::TooLarge`] if the queue would not fit
    /// within `max_value_size`.
    pub async fn flash(&self, level: Level, message: impl Into<String>) -> Result<()> {
        let mut queue = self.pending_flashes().await?;
        if queue.len() >= MAX_FLASHES {
            queue.drain(..=queue.len() - MAX_FLASHES);
        }
        queue.push(Flash::new(level, message));
        self.set(FLASH_KEY, &queue).await
    }

    /// Takes the queued flash messages, oldest first: each is returned once, and the next
    /// call (in this request or a later one) returns only messages queued after it.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn take_flashes(&self) -> Result<Vec<Flash>> {
        let queue = self.pending_flashes().await?;
        if self.contains_key(FLASH_KEY).await? {
            self.remove(FLASH_KEY).await?;
        }
        Ok(queue)
    }

    /// The queued flash messages, oldest first, left in the queue.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn peek_flashes(&self) -> Result<Vec<Flash>> {
        self.pending_flashes().await
    }

    /// The queue as stored; a queue that does not decode (written by another program or
    /// version) is no messages, with a warning, rather than an error on every page.
    async fn pending_flashes(&self) -> Result<Vec<Flash>> {
        match self.get::<Vec<Flash>>(FLASH_KEY).await {
            Ok(queue) => Ok(queue.unwrap_or_default()),
            Err(err) if err.kind() == ErrorKind::Decode => {
                tracing::warn!(error = %format_args!("{err:#}"), "undecodable flash messages dropped");
                Ok(Vec::new())
            }
            Err(err) => Err(err),
        }
    }
}
