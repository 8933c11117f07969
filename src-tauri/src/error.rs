//! The one error type every Tauri command returns: serialisable, with a kind the UI can act on.

use keyfob_proto::{ClientError, ErrorKind};
use serde::Serialize;

/// Why a command failed; the message is for people and names the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrayError {
    /// keyfobd cannot be reached (not running, or it went away).
    #[error("{message}")]
    Disconnected {
        /// What happened.
        message: String,
    },
    /// keyfobd refused or failed the request.
    #[error("{message}")]
    Agent {
        /// The daemon's stable error kind.
        error: ErrorKind,
        /// The daemon's message.
        message: String,
    },
    /// The request from the window was malformed.
    #[error("{message}")]
    Invalid {
        /// What is wrong with it.
        message: String,
    },
    /// The system refused something (opening a browser, the clipboard).
    #[error("{message}")]
    System {
        /// What failed.
        message: String,
    },
}

impl From<ClientError> for TrayError {
    fn from(e: ClientError) -> Self {
        match (&e, e.kind()) {
            (ClientError::Rpc(rpc), Some(kind)) => Self::Agent {
                error: kind,
                message: rpc.message.clone(),
            },
            (ClientError::Rpc(rpc), None) => Self::Agent {
                error: ErrorKind::Internal,
                message: rpc.message.clone(),
            },
            _ => Self::Disconnected {
                message: format!("keyfobd is not reachable: {e}"),
            },
        }
    }
}
