//! Where the agent's socket lives, resolved the same way by the daemon and every client.

use std::path::PathBuf;

/// Environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "KEYFOB_SOCKET";

/// The socket path: `$KEYFOB_SOCKET`, else `$XDG_RUNTIME_DIR/keyfob/agent.sock`, else
/// `/tmp/keyfob-$UID/agent.sock` (a per-user directory the daemon creates 0700).
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    runtime_dir().join("agent.sock")
}

/// The per-user runtime directory that holds the socket and the pid lock.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("keyfob"),
        None => PathBuf::from(format!(
            "/tmp/keyfob-{}",
            rustix::process::getuid().as_raw()
        )),
    }
}
