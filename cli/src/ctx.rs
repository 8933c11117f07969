//! What every command needs: where the agent is, output mode, and a call that starts the
//! agent when it is not running.

use crate::exit::CliResult;
use crate::spawn;
use keyfob_proto::{Client, ClientError, Method};
use serde::Serialize;
use std::path::PathBuf;

/// Shared command context.
pub struct Ctx {
    /// The socket path.
    pub socket: PathBuf,
    /// `--json`.
    pub json: bool,
}

/// The client name sent in `hello`.
pub const CLIENT: &str = "keyfob";

impl Ctx {
    /// Resolves the socket; `--socket` also reaches a daemon this CLI starts.
    pub fn new(socket: Option<PathBuf>, json: bool) -> Self {
        let socket = socket.unwrap_or_else(keyfob_proto::paths::socket_path);
        Self { socket, json }
    }

    /// Calls `M`, starting the agent first if nobody is listening.
    pub fn call<M: Method>(&self, params: &M::Params) -> CliResult<M::Result> {
        match Client::connect_and_call::<M>(&self.socket, CLIENT, params) {
            Ok((_, r)) => Ok(r),
            Err(ClientError::NotRunning { .. }) => {
                spawn::start(&self.socket)?;
                Ok(Client::connect_and_call::<M>(&self.socket, CLIENT, params)?.1)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Prints `value` as JSON (one line) on stdout.
    pub fn print_json<T: Serialize>(&self, value: &T) -> CliResult {
        let text = serde_json::to_string(value)
            .map_err(|e| crate::exit::CliError::new(crate::exit::code::FAILURE, e.to_string()))?;
        println!("{text}");
        Ok(())
    }
}
