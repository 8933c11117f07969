//! Why a client call failed: shared by the blocking and async clients and their codec.

use crate::error::{ErrorKind, RpcError};
use std::io;
use std::path::PathBuf;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon is listening at the path.
    #[error("no keyfob daemon is listening at {path}: start it with `keyfob daemon start`")]
    NotRunning {
        /// The socket path tried.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Connecting failed for another reason (permissions, a file that is not a socket).
    #[error("cannot connect to the keyfob daemon at {path}: {source}")]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The connection broke.
    #[error("lost the connection to the keyfob daemon: {0}")]
    Io(#[from] io::Error),
    /// The daemon closed the connection without answering.
    #[error(
        "the keyfob daemon closed the connection (it may have stopped; see `keyfob daemon status`)"
    )]
    Closed,
    /// The socket is not this user's agent (a foreign or open directory, a symlink, a peer of
    /// another uid): nothing was sent.
    #[error("{0}")]
    Unsafe(String),
    /// The daemon closed the connection before answering `hello`: it was stopping or was
    /// killed, and did not act on anything sent.
    #[error(
        "the keyfob daemon went away before answering ({0}); it was stopping or was killed: run the command again"
    )]
    Dropped(String),
    /// The daemon sent something that is not the protocol.
    #[error("the keyfob daemon sent an invalid reply: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
}

impl ClientError {
    /// The daemon's error kind, when the daemon answered with one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Rpc(e) => e.kind(),
            _ => None,
        }
    }
}
