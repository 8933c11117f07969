//! What every command needs: where the agent is, output mode, and a call that starts the
//! agent when it is not running.

use crate::exit::CliResult;
use crate::spawn;
use keyfob_proto::{Client, ClientError, Method};
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Shared command context.
pub struct Ctx {
    /// The socket path this command computed (`--socket`, `KEYFOB_SOCKET`, the runtime dir).
    pub socket: PathBuf,
    /// `--json`.
    pub json: bool,
    /// Where the agent for this data directory really listens, once a start found it
    /// elsewhere.
    found: RefCell<Option<PathBuf>>,
}

/// Connection attempts when the agent is not running or went away under us.
const ATTEMPTS: usize = 3;

/// The client name sent in `hello`.
pub const CLIENT: &str = "keyfob";

impl Ctx {
    /// Resolves the socket; `--socket` also reaches a daemon this CLI starts.
    pub fn new(socket: Option<PathBuf>, json: bool) -> Self {
        let socket = socket.unwrap_or_else(keyfob_proto::paths::socket_path);
        Self {
            socket,
            json,
            found: RefCell::new(None),
        }
    }

    /// The socket to use: where the agent was found, else the computed one.
    pub fn agent_socket(&self) -> PathBuf {
        self.found
            .borrow()
            .clone()
            .unwrap_or_else(|| self.socket.clone())
    }

    /// Calls `M`, starting the agent first if nobody is listening.
    pub fn call<M: Method>(&self, params: &M::Params) -> CliResult<M::Result> {
        self.with_agent(|at| Client::connect_and_call::<M>(at, CLIENT, params).map(|(_, r)| r))
    }

    /// A connection that has said `hello`, starting the agent first if nobody is listening.
    pub fn connect(&self) -> CliResult<Client> {
        self.with_agent(|at| Client::connect(at, CLIENT))
    }

    /// Runs `op` against the agent. When nobody listens, starts the agent (which may report
    /// that the agent for this data directory listens elsewhere: then that one is used);
    /// when a dying daemon dropped the connection before answering, tries again, so the
    /// caller gets its answer from the daemon that replaces it.
    fn with_agent<T>(&self, mut op: impl FnMut(&Path) -> Result<T, ClientError>) -> CliResult<T> {
        for _ in 0..ATTEMPTS {
            match op(&self.agent_socket()) {
                Ok(r) => return Ok(r),
                Err(ClientError::NotRunning { .. }) => {
                    let at = spawn::start(&self.socket)?;
                    self.follow(at);
                }
                // Nothing was acted on: the next attempt finds the socket dead and starts a
                // new daemon (which waits until the old one has fully exited).
                Err(ClientError::Dropped(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(op(&self.agent_socket())?)
    }

    /// Runs `op` against the running agent without starting one: at this command's socket,
    /// or, when nothing answers there (a shell with another runtime dir, KEYFOB_SOCKET set
    /// elsewhere), where the agent of this data directory listens (said, and used from now
    /// on). Nothing running anywhere is `op`'s own `NotRunning`.
    pub fn with_running_agent<T>(
        &self,
        op: impl Fn(&Path) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let here = self.agent_socket();
        match op(&here) {
            Err(ClientError::NotRunning { .. })
                if let Some(at) = spawn::find_running().filter(|at| *at != here) =>
            {
                self.follow(at.clone());
                op(&at)
            }
            other => other,
        }
    }

    /// Uses the agent at `at` from now on, and says so when it is not where this command
    /// looked.
    fn follow(&self, at: PathBuf) {
        if at != self.socket && self.found.borrow().as_ref() != Some(&at) {
            eprintln!(
                "keyfob: the agent for this data directory listens on {}, not {}: using it (set KEYFOB_SOCKET={} to go there directly)",
                at.display(),
                self.socket.display(),
                at.display()
            );
            *self.found.borrow_mut() = Some(at);
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
