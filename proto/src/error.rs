//! Stable error codes: JSON-RPC's own, plus Keyfob's application codes with a kind name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What went wrong, as a stable name; each maps to one JSON-RPC error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line was not valid JSON (or not UTF-8).
    ParseError,
    /// Valid JSON, but not a JSON-RPC 2.0 request.
    InvalidRequest,
    /// No such method.
    MethodNotFound,
    /// The params did not match the method.
    InvalidParams,
    /// A bug or an unexpected failure inside the daemon.
    Internal,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// The first request on a connection must be `hello`.
    HandshakeRequired,
    /// The caller may not do this.
    Forbidden,
    /// No such entry (OTP, secret, account).
    NotFound,
    /// An entry with that name already exists.
    AlreadyExists,
    /// A value in the request is malformed (bad base32, bad URI, bad digits...).
    InvalidInput,
    /// The vault (keychain or vault file) cannot be reached.
    VaultUnavailable,
    /// Writing to disk failed (disk full, permissions); nothing stored was changed.
    StorageFailed,
    /// The agent is locked.
    Locked,
    /// A person must approve this request first.
    ApprovalRequired,
    /// A person (or policy) denied the request.
    Denied,
    /// The account needs a new sign-in.
    NeedsLogin,
    /// The identity provider returned an error.
    ProviderError,
    /// Too many requests; retry later.
    RateLimited,
    /// A line was longer than the protocol allows.
    LineTooLong,
    /// The daemon is shutting down.
    ShuttingDown,
    /// Nothing left to hand out (e.g. every recovery code is used).
    Exhausted,
}

impl ErrorKind {
    /// The JSON-RPC error code for this kind; never changes once released.
    pub const fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Internal => -32603,
            Self::VersionMismatch => -32000,
            Self::HandshakeRequired => -32001,
            Self::Forbidden => -32002,
            Self::NotFound => -32003,
            Self::AlreadyExists => -32004,
            Self::InvalidInput => -32005,
            Self::VaultUnavailable => -32006,
            Self::StorageFailed => -32007,
            Self::Locked => -32008,
            Self::ApprovalRequired => -32009,
            Self::Denied => -32010,
            Self::NeedsLogin => -32011,
            Self::ProviderError => -32012,
            Self::RateLimited => -32013,
            Self::LineTooLong => -32014,
            Self::ShuttingDown => -32015,
            Self::Exhausted => -32016,
        }
    }

    /// Every kind, for documentation and exhaustive tests.
    pub const ALL: [ErrorKind; 22] = [
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::Internal,
        Self::VersionMismatch,
        Self::HandshakeRequired,
        Self::Forbidden,
        Self::NotFound,
        Self::AlreadyExists,
        Self::InvalidInput,
        Self::VaultUnavailable,
        Self::StorageFailed,
        Self::Locked,
        Self::ApprovalRequired,
        Self::Denied,
        Self::NeedsLogin,
        Self::ProviderError,
        Self::RateLimited,
        Self::LineTooLong,
        Self::ShuttingDown,
        Self::Exhausted,
    ];

    /// The kind for a code, if the code is one of ours.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// Extra, machine-readable detail carried in a JSON-RPC error's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// The stable kind name.
    pub kind: ErrorKind,
}

/// A JSON-RPC error object: stable code, one-line human message that names the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// One line for a person: what happened and how to fix it. Never contains a secret.
    pub message: String,
    /// The kind, so clients need not keep a code table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

impl RpcError {
    /// An error of `kind` with a message for a person.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            message: message.into(),
            data: Some(ErrorData { kind }),
        }
    }

    /// The kind, from `data` or else from the code.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.data
            .as_ref()
            .map(|d| d.kind)
            .or_else(|| ErrorKind::from_code(self.code))
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let codes: HashSet<i64> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(k.code()), Some(k));
        }
    }
}
