//! Events the daemon pushes to subscribed clients as `event` notifications.

use serde::{Deserialize, Serialize};

/// What changed in the agent; carries names, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An OTP entry was added, changed or removed.
    OtpChanged {
        /// The entry's name.
        name: String,
        /// What happened to it.
        change: Change,
    },
    /// A static secret was set or removed.
    SecretChanged {
        /// The secret's name.
        name: String,
        /// What happened to it.
        change: Change,
    },
    /// The daemon is stopping; connections close next.
    DaemonStopping,
}

/// The kind of change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Newly created.
    Added,
    /// Modified in place.
    Updated,
    /// Deleted.
    Removed,
}

/// Event names a client can subscribe to, matching the `event` tag.
pub const EVENT_NAMES: [&str; 3] = ["otp_changed", "secret_changed", "daemon_stopping"];

impl Event {
    /// The event's tag, as used in `subscribe`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::OtpChanged { .. } => EVENT_NAMES[0],
            Event::SecretChanged { .. } => EVENT_NAMES[1],
            Event::DaemonStopping => EVENT_NAMES[2],
        }
    }
}
