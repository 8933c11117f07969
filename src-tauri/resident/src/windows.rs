//! The window app (keyfob-tray, installed beside this program), started when a person is
//! needed. Any window app running is an approver itself and answers requests on its own, so
//! one is started only when none runs; it ends with its last window.

use keyfob_proto::Event;
use keyfob_proto::approver;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The window app's program name.
const WINDOW_APP: &str = "keyfob-tray";

/// The window apps this program knows of.
pub struct Windows {
    /// keyfob-tray beside this program: keyfobd takes answers only from there, so no other
    /// (one found on PATH, say) is started.
    program: PathBuf,
    lock: PathBuf,
    /// The one it started, while it runs.
    child: Option<Child>,
    /// Waiting for window apps it did not start to end.
    others: Option<JoinHandle<()>>,
    /// `GDK_GL` was set for this program alone: window apps get it taken off, as their
    /// WebKit wants OpenGL.
    gl_turned_off: bool,
    /// Requests a window app has been (or is being) shown: each is put in front of the
    /// person once. One closed unanswered is not pushed again, and an app that fails at once
    /// is not started over and over.
    shown: HashSet<u64>,
}

impl Windows {
    /// Window apps for the agent at `socket`; `gl_turned_off`: see [`super::GDK_GL`].
    pub fn new(socket: &Path, gl_turned_off: bool) -> Self {
        let program = std::env::current_exe()
            .map(|me| me.with_file_name(WINDOW_APP))
            .unwrap_or_else(|_| PathBuf::from(WINDOW_APP));
        Self {
            program,
            lock: approver::windows_lock(socket),
            child: None,
            others: None,
            gl_turned_off,
            shown: HashSet::new(),
        }
    }

    /// A window app command, with the environment this program was started with.
    fn window_app(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if self.gl_turned_off {
            cmd.env_remove(super::GDK_GL);
        }
        cmd
    }

    /// Shows request `id` to the person, unless it has been shown already.
    pub fn prompt_for(&mut self, id: u64) {
        if self.shown.insert(id) {
            self.prompt(None);
        }
    }

    /// Request `id` is answered (or expired): nothing more to show for it.
    pub fn resolved(&mut self, id: u64) {
        self.shown.remove(&id);
    }

    /// The daemon went away: the requests it numbered are gone with it.
    pub fn forget_shown(&mut self) {
        self.shown.clear();
    }

    /// Shows a sign-in that has started.
    pub fn sign_in(&mut self, started: &Event) {
        self.prompt(Some(started));
    }

    fn ours_running(&mut self) -> bool {
        let running = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        if !running {
            self.child = None;
        }
        running
    }

    /// Makes sure a window app shows what waits: a running one does by itself; otherwise one
    /// starts with `--prompt` (and with `--signin`, the sign-in on its standard input).
    fn prompt(&mut self, signin: Option<&Event>) {
        if self.ours_running() {
            return;
        }
        match approver::try_lock(&self.lock, true) {
            Ok(Some(_free)) => {}
            Ok(None) => {
                // One the person opened answers it; when it ends, look again.
                if self.others.is_none() {
                    let lock = self.lock.clone();
                    self.others = Some(tokio::task::spawn_blocking(move || {
                        if let Err(e) = approver::wait_unlocked(&lock) {
                            tracing::warn!(error = %e, "cannot wait for the window app");
                        }
                    }));
                }
                return;
            }
            // Better two prompts than none.
            Err(e) => tracing::warn!(error = %e, "cannot tell whether a window app runs"),
        }
        let mut cmd = self.window_app();
        cmd.arg("--prompt").stdout(Stdio::null());
        let line = signin.and_then(|ev| serde_json::to_string(ev).ok());
        if line.is_some() {
            cmd.arg("--signin").stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        match cmd.spawn() {
            Ok(mut child) => {
                tracing::info!(pid = child.id(), "opened the window app for a request");
                if let (Some(line), Some(mut stdin)) = (line, child.stdin.take()) {
                    tokio::spawn(async move {
                        let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
                    });
                }
                self.child = Some(child);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot start {}: the request waits for `keyfob approve`",
                self.program.display()
            ),
        }
    }

    /// Opens the main window: a window app of its own, which ends when it is closed.
    pub fn open_main(&mut self) -> Result<(), String> {
        let mut child = self
            .window_app()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        // Reaped in the background; prompts are still ours to watch.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// Resolves when a window app this program watches has ended.
    pub async fn closed(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.wait().await;
            self.child = None;
        } else if let Some(h) = &mut self.others {
            let _ = h.await;
            self.others = None;
        } else {
            std::future::pending::<()>().await;
        }
    }
}
