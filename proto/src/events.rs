//! Events the daemon pushes to subscribed clients as `event` notifications.

use serde::{Deserialize, Serialize};

/// What changed in the agent; carries names, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "event")]
pub enum Event {
    /// An OTP entry was added, changed or removed.
    #[serde(rename = "otp.changed")]
    OtpChanged {
        /// The entry's name.
        name: String,
        /// What happened to it.
        change: Change,
    },
    /// A static secret was set or removed.
    #[serde(rename = "secret.changed")]
    SecretChanged {
        /// The secret's name.
        name: String,
        /// What happened to it.
        change: Change,
    },
    /// The daemon is stopping; connections close next.
    #[serde(rename = "daemon.stopping")]
    DaemonStopping,
    /// A sign-in started: what the person must do (a code to enter, or a URL to open).
    #[serde(rename = "signin.started")]
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
    #[serde(rename = "signin.finished")]
    SigninFinished {
        /// The account.
        account: String,
        /// Whether it succeeded.
        ok: bool,
        /// Why not, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A request needs a person's decision (sent to approvers).
    #[serde(rename = "approval.requested")]
    ApprovalRequested(crate::methods::ApprovalRequest),
    /// A pending request was decided or timed out: approvers close its prompt.
    #[serde(rename = "approval.resolved")]
    ApprovalResolved {
        /// The request's id.
        id: u64,
        /// How it ended.
        outcome: Resolution,
    },
    /// An account was added or removed, or its sign-in state changed.
    #[serde(rename = "account.changed")]
    AccountChanged {
        /// The account.
        name: String,
        /// What happened to it.
        change: Change,
        /// Its sign-in state now (not for a removal).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<crate::methods::AccountState>,
    },
    /// The agent was locked or unlocked.
    #[serde(rename = "lock.changed")]
    LockChanged {
        /// Whether it is locked now.
        locked: bool,
        /// Why.
        reason: LockReason,
    },
}

/// The kind of change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Newly created.
    Added,
    /// Modified in place.
    Updated,
    /// Deleted.
    Removed,
}

/// How a pending approval request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// A person allowed it (once, for a while, or always).
    Allowed,
    /// A person denied it.
    Denied,
    /// Nobody decided in time.
    TimedOut,
}

/// Why the agent was locked or unlocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LockReason {
    /// `keyfob lock` or the tray.
    Command,
    /// No credential was asked for within `idle_timeout_secs`.
    Idle,
    /// `max_unlocked_secs` passed since the last unlock.
    MaxAge,
    /// The desktop session locked (logind).
    SessionLocked,
    /// The machine is suspending (logind).
    Suspend,
    /// Unlocked.
    Unlock,
}

impl LockReason {
    /// The wire name, for the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Idle => "idle",
            Self::MaxAge => "max_age",
            Self::SessionLocked => "session_locked",
            Self::Suspend => "suspend",
            Self::Unlock => "unlock",
        }
    }
}

/// Event names a client can subscribe to, matching the `event` tag.
pub const EVENT_NAMES: [&str; 9] = [
    "otp.changed",
    "secret.changed",
    "daemon.stopping",
    "signin.started",
    "signin.finished",
    "approval.requested",
    "approval.resolved",
    "lock.changed",
    "account.changed",
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
            Event::ApprovalRequested(_) => EVENT_NAMES[5],
            Event::ApprovalResolved { .. } => EVENT_NAMES[6],
            Event::LockChanged { .. } => EVENT_NAMES[7],
            Event::AccountChanged { .. } => EVENT_NAMES[8],
        }
    }

    /// The account or entry the event concerns, if any (a scoped agent key hears only its
    /// own).
    pub fn subject(&self) -> Option<&str> {
        match self {
            Event::OtpChanged { name, .. }
            | Event::SecretChanged { name, .. }
            | Event::AccountChanged { name, .. } => Some(name),
            Event::SigninStarted { account, .. } | Event::SigninFinished { account, .. } => {
                Some(account)
            }
            Event::ApprovalRequested(r) => Some(&r.account),
            Event::DaemonStopping | Event::ApprovalResolved { .. } | Event::LockChanged { .. } => {
                None
            }
        }
    }
}
