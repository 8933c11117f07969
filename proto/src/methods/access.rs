//! Who may have what: approvals, remembered decisions, scoped agent keys, lock and unlock.

use super::{Empty, Method, Need};
use crate::sensitive::Sensitive;
use serde::{Deserialize, Serialize};

/// What a request does with an account or entry, as policy and agent keys see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// An access token (`token.get`).
    Token,
    /// An ID token or its claims (`token.get` with `id_token` or `claims`).
    IdToken,
    /// A one-time code or recovery code (`otp.code`, `recovery.take`).
    Otp,
    /// A static secret, or an OTP seed (`secret.get`, `otp.uri`).
    Secret,
    /// Changing the agent: adding and removing entries, signing in and out, keys, approvals,
    /// locking, stopping.
    Admin,
}

impl Operation {
    /// Every operation, in display order.
    pub const ALL: [Operation; 5] = [
        Self::Token,
        Self::IdToken,
        Self::Otp,
        Self::Secret,
        Self::Admin,
    ];

    /// The wire and config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::IdToken => "id_token",
            Self::Otp => "otp",
            Self::Secret => "secret",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s.replace('-', "_"))
            .ok_or_else(|| {
                format!("unknown operation {s:?}: use token, id_token, otp, secret or admin")
            })
    }
}

/// A client as the daemon identified it (from /proc, never from the client's own claims).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ClientInfo {
    /// The client process.
    pub pid: i32,
    /// Its executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// For an interpreter, the script it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// For an interactive shell, its terminal session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_session: Option<i32>,
    /// How the client is identified, in words: "executable", "script", "terminal session".
    pub identified_by: String,
    /// A short label for people ("/usr/bin/python3 deploy.py").
    pub label: String,
}

impl ClientInfo {
    /// Whether a decision about this client may be remembered: only for identities a program
    /// cannot claim by itself (an executable, read from the kernel; a terminal session), never
    /// for a script or inline code, which another program can imitate.
    pub fn is_remembered(&self) -> bool {
        matches!(
            self.identified_by.as_str(),
            "executable" | "terminal session"
        )
    }
}

/// A request waiting for a person's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApprovalRequest {
    /// Pass this to `approval.decide`.
    pub id: u64,
    /// Who asks.
    pub client: ClientInfo,
    /// The account or entry.
    pub account: String,
    /// What it wants to do.
    pub operation: Operation,
    /// The method it called (`token.get`, `agent.unlock`…).
    pub method: String,
    /// The policy that asked: `new-client` or `always`.
    pub policy: Approval,
    /// Seconds left before the request fails by itself.
    pub expires_in_secs: u64,
    /// Exactly what is asked, when the account and operation do not say it all (a new agent
    /// key's accounts, operations and lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub detail: Option<String>,
}

/// When a person must approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    /// Never ask.
    Never,
    /// Ask the first time a client wants this, and remember the answer if the person says so.
    NewClient,
    /// Ask every time.
    Always,
}

/// A person's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// This request only (and those that waited on the same prompt).
    AllowOnce,
    /// This client, this account and operation, for a while.
    AllowFor {
        /// How long, in seconds.
        secs: u64,
    },
    /// This client, this account and operation, until revoked.
    AllowAlways,
    /// Refuse.
    Deny,
}

/// `approval.listen` result: requests already waiting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenResult {
    /// Pending requests, oldest first.
    pub pending: Vec<ApprovalRequest>,
}

/// `approval.decide` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecideParams {
    /// The request's id.
    pub id: u64,
    /// The answer.
    #[serde(flatten)]
    pub decision: Decision,
}

/// A remembered decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RememberedApproval {
    /// Pass this to `approval.revoke`.
    pub id: String,
    /// Who it allows.
    pub client: String,
    /// The account or entry.
    pub account: String,
    /// What it allows.
    pub operation: Operation,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; none means until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// `approval.list` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApprovalListResult {
    /// Remembered decisions still in force.
    pub approvals: Vec<RememberedApproval>,
}

/// Params naming one item by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdParams {
    /// The id (or, for keys, the name).
    pub id: String,
}

method!(
    /// Registers this connection as an approver (trusted clients only) and subscribes it to
    /// `approval.requested`, `approval.resolved` and sign-in events.
    ApprovalListen, "approval.listen", Empty, ListenResult,
    need = |_p| Need::Approver,
    audited = false
);
method!(
    /// Answers a pending request (trusted clients only).
    ApprovalDecide, "approval.decide", DecideParams, Empty,
    need = |_p| Need::Approver
);
method!(
    /// Lists remembered decisions.
    ApprovalList, "approval.list", Empty, ApprovalListResult,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Forgets a remembered decision.
    ApprovalRevoke, "approval.revoke", IdParams, Empty
);

// ---- agent keys ----

/// `key.create` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCreateParams {
    /// A name for people and for `key revoke`.
    pub name: String,
    /// Accounts and entries the key reaches.
    pub accounts: Vec<String>,
    /// Operations the key allows on them.
    pub ops: Vec<Operation>,
    /// Lifetime in seconds; none means until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

impl KeyCreateParams {
    /// Exactly what creating this key allows, as the person approving it reads it.
    pub fn describe(&self) -> String {
        let ops: Vec<String> = self.ops.iter().map(|o| o.to_string()).collect();
        let lifetime = match self.ttl_secs {
            Some(s) if s % 3600 == 0 => format!("for {} h", s / 3600),
            Some(s) if s % 60 == 0 => format!("for {} min", s / 60),
            Some(s) => format!("for {s} s"),
            None => "until revoked".to_owned(),
        };
        let accounts: Vec<String> = self.accounts.iter().map(|a| format!("{a:?}")).collect();
        format!(
            "create agent key {:?} allowing {} on {}, valid {lifetime}",
            self.name,
            ops.join(", "),
            accounts.join(", ")
        )
    }
}

/// An agent key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KeyInfo {
    /// Its name.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Accounts and entries it reaches.
    pub accounts: Vec<String>,
    /// Operations it allows.
    pub ops: Vec<Operation>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of its last use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
    /// Unix seconds; none means until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// `key.create` result: the key, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCreateResult {
    /// `kfk_…`; Keyfob keeps only its hash.
    pub key: Sensitive,
    /// What was stored.
    pub info: KeyInfo,
}

/// `key.list` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KeyListResult {
    /// Every key, expired ones included (marked by `expires`).
    pub keys: Vec<KeyInfo>,
}

method!(
    /// Creates a scoped agent key.
    KeyCreate, "key.create", KeyCreateParams, KeyCreateResult,
    need = |p| Need::Widen {
        subject: &p.name,
        accounts: &p.accounts,
        ops: &p.ops,
        ttl_secs: p.ttl_secs,
        detail: p.describe(),
    }
);
method!(
    /// Lists agent keys.
    KeyList, "key.list", Empty, KeyListResult,
    need = |_p| Need::Read,
    audited = false
);
method!(
    /// Revokes an agent key by name, at once and on open connections too.
    KeyRevoke, "key.revoke", IdParams, Empty
);

// ---- lock ----

/// `agent.unlock` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockParams {
    /// The vault-file passphrase; without it, an approver must confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Sensitive>,
}

/// `agent.lock` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockParams {}

method!(
    /// Locks the agent: cached tokens and decrypted secrets leave memory.
    Lock, "agent.lock", LockParams, Empty,
    need = |_p| Need::Narrow
);
method!(
    /// Unlocks the agent (a passphrase, or an approver's confirmation).
    Unlock, "agent.unlock", UnlockParams, Empty,
    need = |_p| Need::Unlock
);
