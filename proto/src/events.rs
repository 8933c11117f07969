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
    /// A sign-in started: what the person must do (a code to enter, or a URL to open).
    SigninStarted {
        /// The account.
        account: String,
        /// `device` or `browser`.
        flow: crate::methods::LoginFlow,
        /// Device flow: the code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_code: Option<String>,
        /// Device flow: where to enter it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verification_uri: Option<String>,
        /// Device flow: the URI with the code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verification_uri_complete: Option<String>,
        /// Browser flow: the URL to open.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorize_url: Option<String>,
    },
    /// A sign-in ended.
    SigninFinished {
        /// The account.
        account: String,
        /// Whether it succeeded.
        ok: bool,
        /// Why not, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
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
pub const EVENT_NAMES: [&str; 5] = [
    "otp_changed",
    "secret_changed",
    "daemon_stopping",
    "signin_started",
    "signin_finished",
];

impl Event {
    /// The event's tag, as used in `subscribe`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::OtpChanged { .. } => EVENT_NAMES[0],
            Event::SecretChanged { .. } => EVENT_NAMES[1],
            Event::DaemonStopping => EVENT_NAMES[2],
            Event::SigninStarted { .. } => EVENT_NAMES[3],
            Event::SigninFinished { .. } => EVENT_NAMES[4],
        }
    }
}
