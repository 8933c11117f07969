//! The agent's typed errors and how each crosses the wire.

use crate::vault::VaultError;
use keyfob_proto::{ErrorKind, RpcError};

/// Why an agent operation failed; every variant maps to a stable wire error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No entry of that name.
    #[error("no {what} named {name:?}: see `keyfob {cmd} list`")]
    NotFound {
        /// "OTP entry", "secret".
        what: &'static str,
        /// The CLI group to list them with.
        cmd: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The name is taken.
    #[error(
        "an {what} named {name:?} already exists: remove it first (`keyfob {cmd} rm {name}`) or pass --replace"
    )]
    AlreadyExists {
        /// "OTP entry".
        what: &'static str,
        /// The CLI group.
        cmd: &'static str,
        /// The name.
        name: String,
    },
    /// Not found, with a message of its own.
    #[error("{0}")]
    Missing(String),
    /// Malformed input.
    #[error("{0}")]
    Invalid(String),
    /// The vault failed.
    #[error("{0}")]
    Vault(#[from] VaultError),
    /// The state file could not be written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Another store (the audit log, a held rotated token) failed.
    #[error("{0}")]
    Storage(String),
    /// Nothing left to hand out.
    #[error("{0}")]
    Exhausted(String),
    /// Stored data disagrees with itself.
    #[error("{0}")]
    Inconsistent(String),
    /// The account needs a new sign-in; the message names `keyfob login NAME`.
    #[error("{0}")]
    NeedsLogin(String),
    /// The identity provider failed or refused.
    #[error("{0}")]
    Provider(String),
    /// The identity provider asks to slow down.
    #[error("{0}")]
    RateLimited(String),
    /// The daemon is stopping.
    #[error("{0}")]
    Stopping(String),
    /// Not allowed for this caller.
    #[error("{0}")]
    Forbidden(String),
}

impl From<AgentError> for RpcError {
    fn from(e: AgentError) -> Self {
        let kind = match &e {
            AgentError::NotFound { .. } => ErrorKind::NotFound,
            AgentError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            AgentError::Invalid(_) => ErrorKind::InvalidInput,
            AgentError::Missing(_) => ErrorKind::NotFound,
            AgentError::Vault(VaultError::Storage(_))
            | AgentError::Storage(_)
            | AgentError::State(_) => ErrorKind::StorageFailed,
            AgentError::Vault(VaultError::Locked) => ErrorKind::Locked,
            AgentError::Vault(_) => ErrorKind::VaultUnavailable,
            AgentError::Exhausted(_) => ErrorKind::Exhausted,
            AgentError::Inconsistent(_) => ErrorKind::Internal,
            AgentError::NeedsLogin(_) => ErrorKind::NeedsLogin,
            AgentError::Provider(_) => ErrorKind::ProviderError,
            AgentError::RateLimited(_) => ErrorKind::RateLimited,
            AgentError::Stopping(_) => ErrorKind::ShuttingDown,
            AgentError::Forbidden(_) => ErrorKind::Forbidden,
        };
        RpcError::new(kind, e.to_string())
    }
}
