//! The CLI's error type and its documented exit codes.

use keyfob_proto::{ClientError, ErrorKind};

/// Exit codes (documented in README.md); scripts may rely on them.
pub mod code {
    /// Any failure not listed below.
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage (clap's own code).
    #[allow(dead_code)]
    pub const USAGE: u8 = 2;
    /// The agent is not running and could not be started, or the connection failed.
    pub const AGENT: u8 = 3;
    /// No such entry.
    pub const NOT_FOUND: u8 = 4;
    /// Forbidden, denied, or approval required.
    pub const DENIED: u8 = 5;
    /// The agent is locked.
    pub const LOCKED: u8 = 6;
    /// The account needs a new sign-in.
    pub const NEEDS_LOGIN: u8 = 7;
    /// Invalid input, or a name that already exists.
    pub const INVALID: u8 = 8;
    /// The vault or the disk failed; nothing stored was changed.
    pub const STORAGE: u8 = 9;
    /// A bug: keyfob panicked (Rust's own code for it).
    #[cfg_attr(test, allow(dead_code))]
    pub const PANIC: u8 = 101;
}

/// A CLI failure: one line for the user, and an exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A failure with an explicit exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let code = match e.kind() {
            None => code::AGENT,
            Some(ErrorKind::NotFound) => code::NOT_FOUND,
            Some(ErrorKind::Forbidden | ErrorKind::Denied | ErrorKind::ApprovalRequired) => {
                code::DENIED
            }
            Some(ErrorKind::Locked) => code::LOCKED,
            Some(ErrorKind::NeedsLogin) => code::NEEDS_LOGIN,
            Some(
                ErrorKind::InvalidInput
                | ErrorKind::InvalidParams
                | ErrorKind::AlreadyExists
                | ErrorKind::Exhausted,
            ) => code::INVALID,
            Some(ErrorKind::VaultUnavailable | ErrorKind::StorageFailed) => code::STORAGE,
            Some(ErrorKind::VersionMismatch | ErrorKind::ShuttingDown) => code::AGENT,
            Some(_) => code::FAILURE,
        };
        Self::new(code, e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new(code::FAILURE, e.to_string())
    }
}

/// The CLI's result type.
pub type CliResult<T = ()> = Result<T, CliError>;
