//! The window app (keyfob-tray, installed beside this program), started when a person is
//! needed. Any window app running is an approver itself and answers requests on its own, so
//! one is started only when none runs; it ends with its last window.
//!
//! A sign-in that starts while the app this program started runs is shown by that app, which
//! says so on its standard output. One it never reported (the app was closing as the
//! sign-in started) is handed to the next app, once. Requests likewise; and an app started
//! later (for a sign-in, or another request) is told which waiting requests an app reported
//! showing (`--shown DAEMON_PID:IDS`), so it does not put those in front of the person again.

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

/// At most this many sign-in reports are kept from one app (it shows one at a time).
const MAX_REPORTS: usize = 64;

/// At most this many request reports are kept from one app; one not kept is prompted for
/// once more, which is all a lost report costs.
const MAX_REQUEST_REPORTS: usize = 4096;

/// A report is one short JSON line; a longer line is no report, and is skipped unread.
const MAX_REPORT_LINE: u64 = 16 * 1024;

/// A window app this program started.
struct Ours {
    child: Child,
    /// Reads the sign-ins and requests it reports shown, until its output ends.
    reader: Option<JoinHandle<()>>,
    /// Once it has ended: until when its output may still bring reports.
    drain_until: Option<tokio::time::Instant>,
}

/// The window apps this program knows of.
pub struct Windows {
    /// keyfob-tray beside this program: keyfobd takes answers only from there, so no other
    /// (one found on PATH, say) is started.
    program: PathBuf,
    lock: PathBuf,
    /// The one it started, while it runs.
    child: Option<Ours>,
    /// One it started that has ended, until its reports are read.
    ended: Option<Ours>,
    /// The sign-ins and requests the apps it started reported shown, not yet taken.
    reported: Arc<Mutex<Reports>>,
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
    /// Requests left to the app it started (started for them, or running when they came):
    /// one that app ends without reporting shown is prompted for again, once.
    left: HashSet<u64>,
    /// Requests prompted for again already: not again, so an app that fails at once is not
    /// started over and over.
    retried: HashSet<u64>,
    /// Requests an app it started reported showing: the person has seen them. Only a report
    /// counts, never a decision to prompt, so a request no app showed is never hidden.
    seen: HashSet<u64>,
    /// The pid of the keyfobd whose requests these are (requests are numbered per daemon).
    daemon: Option<u32>,
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
            ended: None,
            reported: Arc::default(),
            signins: SignIns::default(),
            others: None,
            gl_turned_off,
            shown: HashSet::new(),
            left: HashSet::new(),
            retried: HashSet::new(),
            seen: HashSet::new(),
            daemon: None,
        }
    }

    /// The approver connection is up with the keyfobd of pid `daemon`.
    pub fn connected(&mut self, daemon: Option<u32>) {
        if self.daemon != daemon {
            self.forget_shown();
            self.daemon = daemon;
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

    /// Shows request `id` to the person, unless it has been shown already. An app started
    /// for it also gets a sign-in no app has shown (it shows the waiting requests as well).
    pub fn prompt_for(&mut self, id: u64) {
        if !self.shown.insert(id) {
            return;
        }
        let to = match self.hand_over_sign_in(Some(id)) {
            Some(to) => to,
            None => self.prompt(None, Some(id)),
        };
        if to == Prompt::OursRuns {
            tracing::info!(
                id,
                "a request came while the window app runs: left to that app"
            );
        }
        if matches!(to, Prompt::Started | Prompt::OursRuns) {
            self.left.insert(id);
        }
    }

    /// Request `id` is answered (or expired): nothing more to show for it.
    pub fn resolved(&mut self, id: u64) {
        self.shown.remove(&id);
        self.left.remove(&id);
        self.retried.remove(&id);
        self.seen.remove(&id);
    }

    /// The daemon went away: the requests it numbered, and its sign-ins, are gone with it.
    pub fn forget_shown(&mut self) {
        self.shown.clear();
        self.left.clear();
        self.retried.clear();
        self.seen.clear();
        self.daemon = None;
        // Reports name the old daemon's requests and sign-ins (a new one numbers its requests
        // from 1), also those its apps' readers have yet to read.
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        reported.daemon += 1;
        reported.events.clear();
        drop(reported);
        self.signins = SignIns::default();
    }

    /// Shows a sign-in that has started.
    pub fn sign_in(&mut self, started: &Event) {
        // Only the app this program started says what it showed; an app the person opened
        // shows it too, but this program cannot hear whether it did.
        let ours_shows = self.prompt(Some(started), None) == Prompt::OursRuns;
        if ours_shows {
            tracing::info!("a sign-in started while the window app runs: that app shows it");
        }
        self.signins.started(started, !ours_shows);
    }

    /// A sign-in ended: nothing more to show for it.
    pub fn sign_in_finished(&mut self, account: &str) {
        self.signins.finished(account);
    }

    /// A sign-in that started while the app this program started ran, and that it never
    /// showed, gets an app of its own (if none of ours runs). False when there is none.
    pub fn prompt_unshown_sign_in(&mut self) -> bool {
        self.hand_over_sign_in(None).is_some()
    }

    /// [`Self::prompt_unshown_sign_in`], for an app that is also to show request `new`,
    /// saying what became of it.
    fn hand_over_sign_in(&mut self, new: Option<u64>) -> Option<Prompt> {
        let ev = self.signins.first_unshown()?;
        let to = self.prompt(Some(&ev), new);
        if to == Prompt::Started {
            tracing::info!("handed a sign-in no window app showed to a new one");
            self.signins.shown(&ev);
        }
        Some(to)
    }

    /// Whether the app it started still runs; one that has ended waits in `ended` until
    /// [`Self::closed`] has read its reports.
    fn ours_running(&mut self) -> bool {
        let Some(ours) = self.child.as_mut() else {
            return false;
        };
        if matches!(ours.child.try_wait(), Ok(None)) {
            return true;
        }
        if let Some(older) = self.ended.take()
            && let Some(reader) = older.reader
        {
            // Two apps ended before their reports were read: what the older one sent is
            // in `reported` already.
            reader.abort();
        }
        self.ended = self.child.take();
        false
    }

    /// `--shown`'s value for an app started now, for request `new` or none: the daemon's pid
    /// and the waiting requests an app reported showing, but `new`. None when there are none
    /// (or the daemon is not known: then the app shows every waiting request).
    fn shown_arg(&self, new: Option<u64>) -> Option<String> {
        let daemon = self.daemon?;
        let mut ids: Vec<u64> = self.seen.iter().copied().collect();
        // An app that has ended may have reported more than is read yet.
        for ev in self
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .iter()
        {
            if let Event::ApprovalRequested(r) = ev
                && self.shown.contains(&r.id)
            {
                ids.push(r.id);
            }
        }
        ids.retain(|&id| Some(id) != new);
        ids.sort_unstable();
        ids.dedup();
        (!ids.is_empty()).then(|| {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            format!("{daemon}:{}", ids.join(","))
        })
    }

    /// Makes sure a window app shows what waits: a running one does by itself; otherwise one
    /// starts with `--prompt` (and with `--signin`, the sign-in on its standard input). It is
    /// told with `--shown` which waiting requests the person has seen already, so an app
    /// started for a sign-in or for request `new` does not put those in front of them again.
    fn prompt(&mut self, signin: Option<&Event>, new: Option<u64>) -> Prompt {
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
        // It reports on its standard output each sign-in and request it shows.
        cmd.arg("--prompt").stdout(Stdio::piped());
        if let Some(seen) = self.shown_arg(new) {
            cmd.args(["--shown", &seen]);
        }
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
                let reader = child.stdout.take().map(|out| {
                    let daemon = self
                        .reported
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .daemon;
                    tokio::spawn(read_reports(out, Arc::clone(&self.reported), daemon))
                });
                self.child = Some(Ours {
                    child,
                    reader,
                    drain_until: None,
                });
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

    /// Resolves when a window app this program watches has ended. Cancel-safe: an app that
    /// ended stays in `ended`, with the time its output may stay open fixed, until its
    /// reports are read.
    pub async fn closed(&mut self) {
        if self.ended.is_none()
            && let Some(ours) = &mut self.child
        {
            let _ = ours.child.wait().await;
            self.ended = self.child.take();
        }
        if let Some(ended) = &mut self.ended {
            // Its output ends with it, unless a process it started holds it open: every
            // sign-in it showed is reported by then.
            let until = *ended
                .drain_until
                .get_or_insert_with(|| tokio::time::Instant::now() + REPORTS_END);
            if let Some(reader) = &mut ended.reader {
                let _ = tokio::time::timeout_at(until, &mut *reader).await;
                reader.abort();
            }
            self.ended = None;
            let reported = std::mem::take(
                &mut self
                    .reported
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .events,
            );
            let again = self.settle(&reported);
            // Logged last: what it reported and what is prompted for again are settled.
            tracing::info!(
                shown = reported.len(),
                "the window app ended; prompting again for {again} request(s) it never showed"
            );
        } else if let Some(h) = &mut self.others {
            let _ = h.await;
            self.others = None;
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// Takes what an app that ended reported showing, and says how many of the requests left
    /// to it it never showed (they came as it was closing, waited behind another, or it
    /// failed) are prompted for again. Each once, so an app that fails at once is not started
    /// over and over; again after an app that put a new request in front of the person, as
    /// the rest may have waited behind it (each such app is one more request seen, so the apps
    /// stay as few as the requests).
    fn settle(&mut self, reported: &[Event]) -> usize {
        let mut progress = false;
        for ev in reported {
            match ev {
                // Reports of a request answered since (or of a daemon gone since) are of no
                // request waiting.
                Event::ApprovalRequested(r) if self.shown.contains(&r.id) => {
                    self.left.remove(&r.id);
                    progress |= self.seen.insert(r.id);
                }
                Event::ApprovalRequested(_) => {}
                ev => self.signins.shown(ev),
            }
        }
        let mut again = 0;
        for id in std::mem::take(&mut self.left) {
            if self.retried.insert(id) || progress {
                self.shown.remove(&id);
                again += 1;
            }
        }
        again
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
    /// A sign-in started; it replaces an earlier one of the same account (whose code the
    /// provider no longer takes), so there is one per account at most.
    fn started(&mut self, ev: &Event, shown: bool) {
        if let Event::SigninStarted { account, .. } = ev {
            self.finished(account);
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

/// What the window apps it started reported showing, not yet taken.
#[derive(Debug, Default)]
struct Reports {
    /// Counts the daemons gone: a report read for an app started before the last one went
    /// names that daemon's requests, and is dropped (failing toward showing).
    daemon: u64,
    events: Vec<Event>,
}

/// Reads a window app's reports: one `signin.started` or `approval.requested` event per line,
/// about the keyfobd counted `daemon` in [`Reports`]. Anything else it (or a library in it)
/// prints is no report: lines that are not such an event, or too long to be one, are
/// skipped, and reading goes on until its output ends (so the app never blocks writing).
async fn read_reports(
    out: tokio::process::ChildStdout,
    reported: Arc<Mutex<Reports>>,
    daemon: u64,
) {
    use tokio::io::AsyncReadExt as _;
    let mut r = tokio::io::BufReader::new(out);
    let mut line = Vec::new();
    let mut rest_of_long_line = false;
    loop {
        line.clear();
        match (&mut r)
            .take(MAX_REPORT_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let whole = line.ends_with(b"\n");
        if whole
            && !rest_of_long_line
            && let Ok(ev @ (Event::SigninStarted { .. } | Event::ApprovalRequested(_))) =
                serde_json::from_slice(&line)
        {
            let mut r = reported.lock().unwrap_or_else(|e| e.into_inner());
            // Counted apart: requests must not crowd out the sign-ins.
            let asks = |ev: &Event| matches!(ev, Event::ApprovalRequested(_));
            let kept = r.events.iter().filter(|e| asks(e) == asks(&ev)).count();
            let room = if asks(&ev) {
                MAX_REQUEST_REPORTS
            } else {
                MAX_REPORTS
            };
            if r.daemon == daemon && kept < room {
                r.events.push(ev);
            }
        }
        rest_of_long_line = !whole;
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

    #[test]
    fn a_new_sign_in_replaces_the_accounts_earlier_one() {
        let mut s = SignIns::default();
        s.started(&started("work", "AAAA-AAAA"), false);
        s.started(&started("work", "BBBB-BBBB"), false);
        assert_eq!(s.first_unshown(), Some(started("work", "BBBB-BBBB")));
        s.shown(&started("work", "BBBB-BBBB"));
        assert_eq!(s.first_unshown(), None, "the replaced one is not handed on");
    }

    fn request(id: u64) -> Event {
        serde_json::from_value(serde_json::json!({"event": "approval.requested", "id": id, "client": {"pid": 1, "exe": "/bin/sh", "label": "sh", "identified_by": "executable"}, "account": "s", "operation": "secret", "method": "secret.get", "policy": "always", "expires_in_secs": 60})).unwrap()
    }

    #[test]
    fn an_app_is_told_only_the_waiting_requests_an_app_reported_showing_and_of_which_daemon() {
        let mut w = Windows::new(Path::new("/nonexistent/agent.sock"), false);
        w.shown.extend([3, 7]);
        w.seen.extend([3, 7]);
        assert_eq!(w.shown_arg(None), None, "no daemon known: nothing hidden");
        w.connected(Some(4242));
        assert_eq!(w.shown_arg(None), None, "a new daemon: nothing seen yet");
        // Prompted for: 3, 7 and 12; reported shown by an app: 3 and 7.
        w.shown.extend([3, 7, 12]);
        w.seen.extend([7, 3]);
        assert_eq!(
            w.shown_arg(None).as_deref(),
            Some("4242:3,7"),
            "12 was never reported shown"
        );
        assert_eq!(
            w.shown_arg(Some(7)).as_deref(),
            Some("4242:3"),
            "not the request the app is started for"
        );
        // Reported by an app that has ended, not read yet: counts too.
        w.reported.lock().unwrap().events.push(request(12));
        assert_eq!(w.shown_arg(None).as_deref(), Some("4242:3,7,12"));
        w.resolved(3);
        w.resolved(12);
        assert_eq!(
            w.shown_arg(None).as_deref(),
            Some("4242:7"),
            "answered requests wait no more"
        );
        // The daemon went away: its numbers mean nothing to the next.
        w.forget_shown();
        w.connected(Some(5151));
        w.shown.insert(7);
        assert_eq!(w.shown_arg(None), None);
    }

    #[test]
    fn requests_waiting_behind_the_one_shown_are_prompted_for_again_while_apps_show_new_ones() {
        let mut w = Windows::new(Path::new("/nonexistent/agent.sock"), false);
        w.connected(Some(4242));
        // An app was left requests 1, 2 and 3; it showed 1, and the person closed it.
        w.shown.extend([1, 2, 3]);
        w.left.extend([1, 2, 3]);
        assert_eq!(w.settle(&[request(1)]), 2);
        assert!(w.seen.contains(&1) && !w.shown.contains(&2) && !w.shown.contains(&3));
        // The next app is left 2 and 3, shows 2 (3 waits behind it), and is closed: 3 was
        // prompted for again once already, but this app put a new request in front of the
        // person, so 3 gets another.
        w.shown.extend([2, 3]);
        w.left.extend([2, 3]);
        assert_eq!(w.settle(&[request(2)]), 1);
        // An app that shows nothing new (it fails, or shows only what was seen) ends the
        // retries.
        w.shown.insert(3);
        w.left.insert(3);
        assert_eq!(w.settle(&[request(2)]), 0);
        assert!(
            w.shown.contains(&3),
            "3 waits, for keyfob approve or the main window"
        );
    }

    #[tokio::test]
    async fn a_request_the_app_reports_shown_is_read_as_shown() {
        let report = r#"{"event":"approval.requested","id":7,"client":{"pid":1,"exe":"/bin/sh","label":"sh","identified_by":"executable"},"account":"s","operation":"secret","method":"secret.get","policy":"always","expires_in_secs":60}"#;
        let got = reports_of(&format!("printf '%s\\n' '{report}'")).await;
        assert!(
            matches!(got.as_slice(), [Event::ApprovalRequested(r)] if r.id == 7),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn reports_are_read_past_junk_long_and_broken_lines() {
        let ev = started("work", "AAAA-AAAA");
        let report = serde_json::to_string(&ev).unwrap();
        let long = "x".repeat(MAX_REPORT_LINE as usize * 2);
        // Junk, a line longer than a report can be (ending in what would be a report), a
        // line that is not UTF-8, another event, then the report.
        let script = format!(
            "printf 'GTK says hello\\n'; printf '%s%s\\n' {long} '{report}'; printf '\\377\\376\\n'; printf '%s\\n' '{{\"event\":\"signin.finished\",\"account\":\"work\",\"ok\":true}}'; printf '%s\\n' '{report}'"
        );
        assert_eq!(reports_of(&script).await, vec![ev]);
    }

    #[tokio::test]
    async fn a_report_read_after_its_daemon_went_away_is_dropped() {
        let report = serde_json::to_string(&request(1)).unwrap();
        let script = format!("printf '%s\\n' '{report}'");
        assert_eq!(reports_of(&script).await, vec![request(1)]);
        // The reader started while daemon 0 ran; daemon 1 runs now, and its request 1 is
        // another.
        assert_eq!(reports_about(&script, 0, 1).await, vec![]);
    }

    /// What `read_reports` keeps of the output of the shell command `script`.
    async fn reports_of(script: &str) -> Vec<Event> {
        reports_about(script, 0, 0).await
    }

    /// [`reports_of`], for a reader started for daemon `started` while daemon `now` runs.
    async fn reports_about(script: &str, started: u64, now: u64) -> Vec<Event> {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let reported = Arc::new(Mutex::new(Reports {
            daemon: now,
            events: Vec::new(),
        }));
        read_reports(child.stdout.take().unwrap(), Arc::clone(&reported), started).await;
        let _ = child.wait().await;
        std::mem::take(&mut reported.lock().unwrap().events)
    }
}
