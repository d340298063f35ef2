//! Counts the statements sqlx runs on the current thread, from its `sqlx::query` log
//! events: what a call costs in round trips, measured rather than assumed.

use std::cell::Cell;

use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};

thread_local! {
    /// Statements sqlx ran on this thread.
    static STATEMENTS: Cell<u64> = const { Cell::new(0) };
}

/// Counts sqlx's statement log events; install it with a subscriber's `with`.
pub struct Statements;

impl<S: Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.with(|count| count.set(count.get() + 1));
        }
    }
}

/// The statements run on this thread so far.
pub fn statements() -> u64 {
    STATEMENTS.with(Cell::get)
}
