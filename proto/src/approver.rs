//! The tray's link to keyfobd, shared by its two programs (the resident tray icon and the
//! window app): one long-lived approver connection that receives events (and comes back by
//! itself after a daemon restart), a short connection per command, and the locks that tell
//! one program whether the other is running.

use crate::async_client::AsyncClient;
use crate::methods::{ApprovalListen, ApprovalRequest, Empty, Subscribe, SubscribeParams};
use crate::{ClientError, Event, Method};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether the tray is connected, as the windows are told (`keyfob://connection`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Connection {
    /// Connected to keyfobd as an approver.
    pub connected: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub detail: Option<String>,
}

/// Shared link state.
pub struct Link {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The name given in `hello`.
    client: &'static str,
    connected: AtomicBool,
    /// The pid of the keyfobd the approver connection is up with (0: none): requests are
    /// numbered per daemon, so a number means nothing without it.
    daemon: AtomicU32,
    pending: Mutex<Vec<ApprovalRequest>>,
}

impl Link {
    /// A link to the daemon at `socket`, introducing itself as `client`.
    pub fn new(socket: PathBuf, client: &'static str) -> Self {
        Self {
            socket,
            client,
            connected: AtomicBool::new(false),
            daemon: AtomicU32::new(0),
            pending: Mutex::default(),
        }
    }

    /// Whether the approver connection is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// The pid of the keyfobd the approver connection is up with, while it is.
    pub fn daemon_pid(&self) -> Option<u32> {
        Some(self.daemon.load(Ordering::SeqCst)).filter(|&pid| pid != 0)
    }

    /// Requests waiting for a decision, as last heard.
    pub fn pending(&self) -> Vec<ApprovalRequest> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_pending(&self, f: impl FnOnce(&mut Vec<ApprovalRequest>)) {
        f(&mut self.pending.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A fresh connection, for several calls in a row.
    pub async fn connect(&self) -> Result<AsyncClient, ClientError> {
        AsyncClient::connect(&self.socket, self.client).await
    }

    /// One call on a fresh connection.
    pub async fn call<M: Method>(&self, params: &M::Params) -> Result<M::Result, ClientError> {
        self.connect().await?.call::<M>(params).await
    }
}

/// What the listener tells the app.
pub enum Heard {
    /// Connected (true) or lost (false), with why.
    Connection(Connection),
    /// An event from the daemon.
    Event(Event),
}

/// The `keyfob` CLI beside this executable (it knows how to start the daemon).
fn cli_beside_me() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|me| me.with_file_name("keyfob"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("keyfob"))
}

/// Starts keyfobd through `keyfob daemon start` (which knows the socket, the log and the
/// passphrase rules), without a terminal.
async fn start_daemon(socket: &Path) -> Result<(), String> {
    let out = tokio::process::Command::new(cli_beside_me())
        .args(["--socket"])
        .arg(socket)
        .args(["daemon", "start"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run keyfob: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

async fn listen(link: &Link) -> Result<(AsyncClient, Vec<ApprovalRequest>), ClientError> {
    let mut c = link.connect().await?;
    // Every event for the windows; then become an approver (which adds nothing to "all").
    c.call::<Subscribe>(&SubscribeParams { events: vec![] })
        .await?;
    let r = c.call::<ApprovalListen>(&Empty {}).await?;
    Ok((c, r.pending))
}

/// Keeps the approver connection up until the app exits, reporting through `tell`. Starts the
/// daemon once if nobody is listening at launch; after that, only reconnects.
pub async fn run(link: std::sync::Arc<Link>, tell: impl Fn(Heard) + Send + 'static) {
    let mut started = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen(&link).await {
            Ok((mut c, pending)) => {
                // Started only at launch: a daemon stopped later was stopped on purpose.
                started = true;
                backoff = Duration::from_millis(100);
                link.set_pending(|p| *p = pending.clone());
                let pid = c.hello().map_or(0, |h| h.pid);
                link.daemon.store(pid, Ordering::SeqCst);
                link.connected.store(true, Ordering::SeqCst);
                tracing::info!("connected to keyfobd as an approver");
                tell(Heard::Connection(Connection {
                    connected: true,
                    detail: None,
                }));
                for r in pending {
                    tell(Heard::Event(Event::ApprovalRequested(r)));
                }
                let why = loop {
                    match c.next_event().await {
                        Ok(ev) => {
                            match &ev {
                                Event::ApprovalRequested(r) => {
                                    link.set_pending(|p| p.push(r.clone()))
                                }
                                Event::ApprovalResolved { id, .. } => {
                                    link.set_pending(|p| p.retain(|r| r.id != *id))
                                }
                                _ => {}
                            }
                            tell(Heard::Event(ev));
                        }
                        Err(e) => break e.to_string(),
                    }
                };
                link.connected.store(false, Ordering::SeqCst);
                link.daemon.store(0, Ordering::SeqCst);
                link.set_pending(Vec::clear);
                tracing::info!(why, "lost keyfobd; reconnecting");
                tell(Heard::Connection(Connection {
                    connected: false,
                    detail: Some(format!("keyfobd went away ({why}); reconnecting")),
                }));
            }
            Err(ClientError::NotRunning { .. }) if !started => {
                started = true;
                if let Err(e) = start_daemon(&link.socket).await {
                    tracing::warn!(error = %e, "cannot start keyfobd");
                    tell(Heard::Connection(Connection {
                        connected: false,
                        detail: Some(format!("cannot start keyfobd: {e}")),
                    }));
                }
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "keyfobd not reachable");
                tell(Heard::Connection(Connection {
                    connected: false,
                    detail: Some(format!("keyfobd is not reachable: {e}")),
                }));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The lock the resident tray program holds while it runs, beside the daemon's socket: one
/// tray icon per agent.
pub fn resident_lock(socket: &Path) -> PathBuf {
    socket.with_file_name("tray-resident.lock")
}

/// The lock every window app holds, shared, while it runs: while one does, it answers
/// requests itself and the resident opens no other.
pub fn windows_lock(socket: &Path) -> PathBuf {
    socket.with_file_name("tray-windows.lock")
}

fn open_lock(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent() {
        // The daemon creates this directory 0700 too; the tray may start first.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // A directory another user made first (`/tmp/keyfob-UID`) could hold the lock against
    // us, or a symbolic link that makes us create a file elsewhere.
    if let Some(why) = crate::ownership::unsafe_socket_dir(path) {
        return Err(std::io::Error::other(why));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Takes `path`'s lock (exclusive or shared) without waiting. The returned file holds it
/// until it is closed or the process ends (however it ends); `None` when another process
/// holds it in a conflicting way.
pub fn try_lock(path: &Path, exclusive: bool) -> std::io::Result<Option<std::fs::File>> {
    use rustix::fs::FlockOperation as Op;
    let file = open_lock(path)?;
    let op = if exclusive {
        Op::NonBlockingLockExclusive
    } else {
        Op::NonBlockingLockShared
    };
    match rustix::fs::flock(&file, op) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Takes `path`'s lock shared, waiting out a brief exclusive hold (another program's check
/// whether any holder is left). The returned file holds it as [`try_lock`]'s does.
pub fn hold_shared(path: &Path) -> std::io::Result<std::fs::File> {
    let file = open_lock(path)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)?;
    Ok(file)
}

/// Blocks until no process holds `path`'s lock, then lets go of it at once.
pub fn wait_unlocked(path: &Path) -> std::io::Result<()> {
    let file = open_lock(path)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_window_lock_keeps_the_resident_out_and_an_exclusive_one_keeps_others_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/agent.sock");
        let windows = windows_lock(&socket);
        // Two window apps at once; the resident's exclusive probe fails while either lives.
        let a = try_lock(&windows, false)
            .unwrap()
            .expect("first window app");
        let b = try_lock(&windows, false)
            .unwrap()
            .expect("second window app");
        assert!(try_lock(&windows, true).unwrap().is_none());
        drop(a);
        assert!(try_lock(&windows, true).unwrap().is_none());
        drop(b);
        assert!(try_lock(&windows, true).unwrap().is_some());
        // One resident per agent.
        let resident = resident_lock(&socket);
        let first = try_lock(&resident, true).unwrap().expect("first resident");
        assert!(try_lock(&resident, true).unwrap().is_none());
        drop(first);
        wait_unlocked(&resident).unwrap();
    }

    #[test]
    fn a_lock_in_a_directory_open_to_others_or_through_a_symlink_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
        let socket = run.join("agent.sock");
        let e = try_lock(&resident_lock(&socket), true).unwrap_err();
        assert!(e.to_string().contains("open to other users"), "{e}");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, windows_lock(&socket)).unwrap();
        assert!(try_lock(&windows_lock(&socket), false).is_err());
        assert!(!elsewhere.exists(), "the lock followed a symbolic link");
    }
}
