//! Flash messages: notes for the next page the user sees ("Welcome back", "Logged out"),
//! kept in the session until they are read once.

use serde::{Deserialize, Serialize};

/// The session key flash messages are kept under. Like every key, it counts as data: a
/// new session holding only a flash message is stored, so the message survives the
/// redirect that follows a form post.
pub const FLASH_KEY: &str = "__flash";

/// The most messages one session queues. A message beyond it pushes out the oldest, so a
/// page that flashes on every visit and is never followed by one that reads cannot grow
/// the session without bound.
pub const MAX_FLASHES: usize = 32;

/// How important a flash message is, for the page to style it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Level {
    /// Detail for developers.
    Debug,
    /// Information ("Logged out").
    Info,
    /// Something went well ("Welcome back").
    Success,
    /// Something the user should look at.
    Warning,
    /// Something failed.
    Error,
}

impl Level {
    /// The level's name in lower case, as a CSS class or a template would use it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// One flash message: its level and text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// How important it is.
    pub level: Level,
    /// What it says.
    pub message: String,
}

impl Flash {
    /// A message at `level`.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
        }
    }
}
