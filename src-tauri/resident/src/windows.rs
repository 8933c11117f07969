//! The window app (keyfob-tray, installed beside this program), started when a person is
//! needed. Any window app running is an approver itself and answers requests on its own, so
//! one is started only when none runs; it ends with its last window.
//!
//! A sign-in that starts while the app this program started runs is shown by that app, which
//! says so on its standard output. One it never reported (the app was closing as the
//! sign-in started) is handed to the next app, once.

use keyfob_proto::Event;
use keyfob_proto::approver;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The window app's program name.
const WINDOW_APP: &str = "keyfob-tray";

/// How long, once the window app has ended, its output may stay open (held by a process it
/// started) before what it reported is taken as all it reported.
const REPORTS_END: Duration = Duration::from_secs(2);

/// At most this many reports are kept from one app (it shows one sign-in at a time).
const MAX_REPORTS: usize = 64;

/// The window apps this program knows of.
pub struct Windows {
    /// keyfob-tray beside this program: keyfobd takes answers only from there, so no other
    /// (one found on PATH, say) is started.
    program: PathBuf,
    lock: PathBuf,
    /// The one it started, while it runs.
    child: Option<Child>,
    /// Reads the sign-ins the one it started reports shown, until its output ends.
    reader: Option<JoinHandle<()>>,
    /// The sign-ins it reported shown so far.
    reported: Arc<Mutex<Vec<Event>>>,
    /// Sign-ins started and not finished.
    signins: SignIns,
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
            reader: None,
            reported: Arc::default(),
            signins: SignIns::default(),
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

    /// The daemon went away: the requests it numbered, and its sign-ins, are gone with it.
    pub fn forget_shown(&mut self) {
        self.shown.clear();
        self.signins = SignIns::default();
    }

    /// Shows a sign-in that has started.
    pub fn sign_in(&mut self, started: &Event) {
        let Ok(line) = serde_json::to_string(started) else {
            return;
        };
        match self.prompt(Some(&line)) {
            Prompt::Started => self.signins.started(started, true),
            Prompt::OursRuns => {
                tracing::info!("a sign-in started while the window app runs: that app shows it");
                self.signins.started(started, false);
            }
            // An app the person opened shows it; this program cannot hear whether it did.
            Prompt::OtherRuns | Prompt::Failed => self.signins.started(started, true),
        }
    }

    /// A sign-in ended: nothing more to show for it.
    pub fn sign_in_finished(&mut self, account: &str) {
        self.signins.finished(account);
    }

    /// After the app this program started has ended: a sign-in that started while it ran
    /// and that it never showed gets an app of its own.
    pub fn prompt_unshown_sign_in(&mut self) {
        let Some(ev) = self.signins.first_unshown() else {
            return;
        };
        let Ok(line) = serde_json::to_string(&ev) else {
            return;
        };
        if self.prompt(Some(&line)) == Prompt::Started {
            tracing::info!("handed a sign-in the closing window app did not show to a new one");
            self.signins.shown(&ev);
        }
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
    /// starts with `--prompt` (and with `--signin`, the sign-in line on its standard input).
    fn prompt(&mut self, signin: Option<&str>) -> Prompt {
        if self.ours_running() {
            return Prompt::OursRuns;
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
                return Prompt::OtherRuns;
            }
            // Better two prompts than none.
            Err(e) => tracing::warn!(error = %e, "cannot tell whether a window app runs"),
        }
        let mut cmd = self.window_app();
        // It reports on its standard output each sign-in it shows.
        cmd.arg("--prompt").stdout(Stdio::piped());
        if signin.is_some() {
            cmd.arg("--signin").stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        match cmd.spawn() {
            Ok(mut child) => {
                tracing::info!(pid = child.id(), "opened the window app for a request");
                if let (Some(line), Some(mut stdin)) = (signin, child.stdin.take()) {
                    let line = format!("{line}\n");
                    tokio::spawn(async move {
                        let _ = stdin.write_all(line.as_bytes()).await;
                    });
                }
                let reported = Arc::clone(&self.reported);
                self.reader = child.stdout.take().map(|out| {
                    tokio::spawn(async move {
                        let mut lines = tokio::io::BufReader::new(out).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            // Anything else it (or a library in it) prints is no report.
                            if let Ok(ev @ Event::SigninStarted { .. }) =
                                serde_json::from_str(&line)
                            {
                                let mut r = reported.lock().unwrap_or_else(|e| e.into_inner());
                                if r.len() < MAX_REPORTS {
                                    r.push(ev);
                                }
                            }
                        }
                    })
                });
                self.child = Some(child);
                Prompt::Started
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot start {}: the request waits for `keyfob approve`",
                    self.program.display()
                );
                Prompt::Failed
            }
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
            // Its output ends with it, unless a process it started holds it open: every
            // sign-in it showed is reported by then. (Cancel-safe: a second call finds the
            // child's status kept and the reader where it was.)
            if let Some(reader) = &mut self.reader {
                let _ = tokio::time::timeout(REPORTS_END, &mut *reader).await;
                reader.abort();
            }
            self.reader = None;
            self.child = None;
            let reported =
                std::mem::take(&mut *self.reported.lock().unwrap_or_else(|e| e.into_inner()));
            tracing::info!(signins_shown = reported.len(), "the window app ended");
            for ev in &reported {
                self.signins.shown(ev);
            }
        } else if let Some(h) = &mut self.others {
            let _ = h.await;
            self.others = None;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

/// What [`Windows::prompt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prompt {
    /// Started a window app for it.
    Started,
    /// The app this program started runs, and shows it.
    OursRuns,
    /// An app the person opened runs, and shows it.
    OtherRuns,
    /// No app could be started.
    Failed,
}

/// One sign-in in progress.
struct SignIn {
    /// Its `signin.started` event.
    event: Event,
    /// A window app was given it, or reported showing it.
    shown: bool,
}

/// Sign-ins started and not finished, and whether a window app has shown each.
#[derive(Default)]
struct SignIns(Vec<SignIn>);

impl SignIns {
    fn started(&mut self, ev: &Event, shown: bool) {
        if matches!(ev, Event::SigninStarted { .. }) {
            self.0.push(SignIn {
                event: ev.clone(),
                shown,
            });
        }
    }

    fn shown(&mut self, ev: &Event) {
        for s in self.0.iter_mut().filter(|s| s.event == *ev) {
            s.shown = true;
        }
    }

    fn finished(&mut self, account: &str) {
        self.0.retain(
            |s| !matches!(&s.event, Event::SigninStarted { account: a, .. } if a == account),
        );
    }

    /// The oldest sign-in no window app has shown.
    fn first_unshown(&self) -> Option<Event> {
        self.0.iter().find(|s| !s.shown).map(|s| s.event.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyfob_proto::methods::LoginFlow;

    fn started(account: &str, code: &str) -> Event {
        Event::SigninStarted {
            account: account.into(),
            flow: LoginFlow::Device,
            user_code: Some(code.into()),
            verification_uri: Some("https://idp.example/device".into()),
            verification_uri_complete: None,
            authorize_url: None,
        }
    }

    #[test]
    fn a_sign_in_the_running_app_never_reported_is_handed_on_and_a_reported_one_is_not() {
        let mut s = SignIns::default();
        let a = started("work", "AAAA-AAAA");
        let b = started("home", "BBBB-BBBB");
        s.started(&a, false);
        s.started(&b, false);
        // The app reported showing the first (as a line of its own making); the second
        // started as it was closing.
        let reported: Event = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        s.shown(&reported);
        assert_eq!(s.first_unshown(), Some(b.clone()));
        s.shown(&b);
        assert_eq!(s.first_unshown(), None, "a sign-in is handed on once");
    }

    #[test]
    fn a_finished_sign_in_is_not_shown_again() {
        let mut s = SignIns::default();
        let a = started("work", "AAAA-AAAA");
        s.started(&a, false);
        s.finished("work");
        assert_eq!(s.first_unshown(), None);
    }
}
