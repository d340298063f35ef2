//! The gc scheduler: runs a store's `gc` on an interval, with jitter, until stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Error, ErrorKind, Result, SessionStore};

/// A running gc scheduler. Dropping it stops the schedule too.
///
/// Each run waits the configured interval ±10% (random), so processes started together do
/// not all sweep a shared store at the same instant.
#[derive(Debug)]
pub struct GcHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl GcHandle {
    /// Starts running `store.gc()` every `interval` (jittered) on the current tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] when called outside a Tokio runtime: not a configuration
    /// mistake, but a caller that cannot run the schedule (every crate reports a missing
    /// runtime with this kind).
    pub fn spawn(store: Arc<dyn SessionStore>, interval: Duration) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|err| {
            Error::new(
                ErrorKind::Unsupported,
                "the gc scheduler needs a tokio runtime",
            )
            .with_source(err)
        })?;
        let (stop, mut stopped) = watch::channel(false);
        let task = runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(jittered(interval)) => {}
                }
                match store.gc().await {
                    Ok(0) => tracing::trace!("session gc: nothing expired"),
                    Ok(removed) => tracing::info!(removed, "session gc removed expired sessions"),
                    Err(err) => tracing::warn!(error = %format_args!("{err:#}"), "session gc failed; retrying at the next interval"),
                }
            }
        });
        Ok(Self {
            stop,
            task: Some(task),
        })
    }

    /// Stops the schedule and waits for a run in progress to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            // A panic inside a store's gc is the store's bug; it has been reported by tokio.
            let _ = task.await;
        }
    }
}

impl Drop for GcHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `interval` scaled by a random factor in [0.9, 1.1).
fn jittered(interval: Duration) -> Duration {
    let random = getrandom::u32().unwrap_or(u32::MAX / 2);
    let factor = 0.9 + 0.2 * (f64::from(random) / f64::from(u32::MAX));
    interval.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let interval = Duration::from_secs(100);
        for _ in 0..1000 {
            let d = jittered(interval);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }
}
