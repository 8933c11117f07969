//! Keyfob's tray app: an approver client of keyfobd. It connects through keyfob-proto's
//! client (starting the daemon if needed, reconnecting after a restart), pops up when a
//! sign-in or a client's access needs a person, and shows TOTP codes and what the agent does.
//!
//! It is the window half of the tray. The tray icon, which runs all day, is
//! keyfob-tray-resident (beside this program): it holds no WebKit, and starts this app
//! (`--prompt`) when a request needs a person. This app ends with its last window, so no web
//! process lives while no window is shown.

mod actions;
#[cfg(test)]
mod command_names;
pub mod commands;
pub mod daemon;
pub mod error;
mod tray_support;
mod windows;
pub mod wire;

use commands::{AppState, SignInView, TrayMode};
use daemon::{Heard, Link};
use keyfob_proto::Event;
use keyfob_proto::approver;
use keyfob_proto::methods::{AccountShow, ApprovalRequest, NameParams};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tauri::{Emitter, Manager};

/// The resident tray icon's program, installed beside this one.
const RESIDENT: &str = "keyfob-tray-resident";

/// Event name the windows listen to for daemon events.
pub const EVENT: &str = "keyfob://event";
/// Event name the windows listen to for the connection state.
pub const CONNECTION: &str = "keyfob://connection";

/// The sign-in the sign-in window shows.
#[derive(Default)]
pub struct SignInSlot(pub Mutex<Option<SignInView>>);

async fn signin_from_event(app: &tauri::AppHandle, ev: &Event) {
    let Event::SigninStarted {
        account,
        flow,
        user_code,
        verification_uri,
        verification_uri_complete,
        authorize_url,
    } = ev
    else {
        return;
    };
    let link = app.state::<AppState>().link.clone();
    let provider = link
        .call::<AccountShow>(&NameParams {
            name: account.clone(),
        })
        .await
        .map(|a| a.provider)
        .unwrap_or_default();
    let view = SignInView {
        account: account.clone(),
        provider,
        started: keyfob_proto::methods::LoginStarted {
            login_id: String::new(),
            flow: *flow,
            user_code: user_code.clone(),
            verification_uri: verification_uri.clone(),
            verification_uri_complete: verification_uri_complete.clone(),
            authorize_url: authorize_url.clone(),
            expires_in: 0,
        },
        qr_svg: verification_uri_complete
            .as_deref()
            .and_then(|u| actions::qr_svg(u).ok()),
    };
    *app.state::<SignInSlot>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(view);
    match windows::show_signin(app) {
        Ok(()) => report_shown(app, ev),
        Err(e) => tracing::warn!(error = %e, "cannot show the sign-in window"),
    }
    let _ = app.emit_to("signin", "keyfob://signin-view", ());
}

/// Started by the resident (`--prompt`): each sign-in shown, and each approval request the
/// approval window puts on screen, is reported on standard output, one JSON line, so the
/// resident can tell one this app never showed (it came as the app was closing, or waited
/// behind another until the window closed) and hand it to another.
struct ReportsShown(bool);

fn report_shown(app: &tauri::AppHandle, ev: &Event) {
    use std::io::Write as _;
    if !app.state::<ReportsShown>().0 {
        return;
    }
    if let Ok(line) = serde_json::to_string(ev) {
        let mut out = std::io::stdout().lock();
        // Nobody reading (the resident is gone) is no reason to fail the window.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// Started by the resident for one request (`--prompt`): no main window, and nothing kept
/// running once there is nothing to show.
struct PromptOnly(AtomicBool);

/// The waiting requests the resident says an app it started has put in front of the person
/// already (`--prompt --shown DAEMON_PID:3,7`): this app pops no prompt for them, and its
/// windows list them after the others (they still wait there, and for `keyfob approve`).
/// Requests are numbered per daemon, so the list holds only for the daemon it names, and
/// only on this app's first connection: after a reconnection a number may be a new request.
#[derive(Debug, Default)]
pub struct ShownBefore(Mutex<Seen>);

impl ShownBefore {
    fn with<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Orders `pending` for the windows: requests new to the person first.
    pub fn order(&self, pending: &mut [ApprovalRequest]) {
        self.with(|s| pending.sort_by_key(|r| s.hides(r.id)));
    }
}

/// [`ShownBefore`]'s list.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    /// The daemon the numbers are of.
    daemon: u32,
    ids: HashSet<u64>,
    /// The approver connection has come up once.
    connected_once: bool,
}

impl Seen {
    /// From the arguments; a value that is not `PID:ID,…` names none (so all are shown).
    fn from_args(args: &[String]) -> Self {
        let parsed = args
            .iter()
            .position(|a| a == "--shown")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.split_once(':'))
            .and_then(|(pid, ids)| {
                let ids: Option<HashSet<u64>> = ids.split(',').map(|id| id.parse().ok()).collect();
                Some((pid.parse().ok()?, ids?))
            });
        match parsed {
            Some((daemon, ids)) => Self {
                daemon,
                ids,
                connected_once: false,
            },
            None => Self::default(),
        }
    }

    /// The approver connection came up with the keyfobd of pid `daemon`.
    fn connected(&mut self, daemon: Option<u32>) {
        if self.connected_once || daemon != Some(self.daemon) {
            self.ids.clear();
        }
        self.connected_once = true;
    }

    /// Whether request `id` was put in front of the person already.
    fn hides(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    /// Whether any of `pending` is new to the person.
    fn any_new(&self, pending: &[ApprovalRequest]) -> bool {
        pending.iter().any(|r| !self.hides(r.id))
    }
}

fn on_heard(app: &tauri::AppHandle, heard: Heard) {
    match heard {
        Heard::Connection(c) => {
            let link = &app.state::<AppState>().link;
            let seen = app.state::<ShownBefore>();
            let new = seen.with(|s| {
                // (A lost connection needs nothing: the next connection drops the list.)
                if c.connected {
                    s.connected(link.daemon_pid());
                }
                s.any_new(&link.pending())
            });
            let _ = app.emit(CONNECTION, &c);
            // Opened for a request that was answered (or a daemon that went away) before
            // this app got to it, or for none new to the person: nothing to show, so nothing
            // stays.
            if app.state::<PromptOnly>().0.load(Ordering::SeqCst)
                && app.webview_windows().is_empty()
                && (!c.connected || !new)
            {
                tracing::info!("opened for a request that needs no one now; leaving");
                app.exit(0);
            }
            // The daemon went away, and its requests with it. A prompt still showing them
            // would answer a restarted daemon's requests that reuse their numbers; the next
            // connection's requests get a prompt of their own.
            if !c.connected
                && let Some(w) = app.get_webview_window("approval")
            {
                let _ = w.destroy();
            }
        }
        Heard::Event(ev) => {
            let _ = app.emit(EVENT, &ev);
            match &ev {
                Event::ApprovalRequested(r)
                    if app.state::<ShownBefore>().with(|s| s.hides(r.id)) =>
                {
                    tracing::info!(
                        id = r.id,
                        "the person has seen this request already: not prompted for again"
                    );
                }
                // The window reports each request as it puts it on screen (`request_shown`).
                Event::ApprovalRequested(_) => {
                    if let Err(e) = windows::show_approval(app) {
                        tracing::warn!(error = %e, "cannot show the approval window");
                        // Opened for this prompt alone: an app showing nothing would keep
                        // the resident from opening another.
                        if app.state::<PromptOnly>().0.load(Ordering::SeqCst)
                            && app.webview_windows().is_empty()
                        {
                            app.exit(1);
                        }
                    }
                }
                // The last request is answered: the prompt goes, web process and all.
                Event::ApprovalResolved { .. }
                    if app.state::<AppState>().link.pending().is_empty() =>
                {
                    if let Some(w) = app.get_webview_window("approval") {
                        let _ = w.destroy();
                    }
                }
                Event::SigninStarted { .. } => {
                    let app = app.clone();
                    tauri::async_runtime::spawn(async move { signin_from_event(&app, &ev).await });
                }
                _ => {}
            }
        }
    }
}

/// The sign-in to show in the sign-in window.
#[tauri::command]
fn current_signin(slot: tauri::State<'_, SignInSlot>) -> Option<SignInView> {
    slot.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn resident_program() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .map(|me| me.with_file_name(RESIDENT))
        .filter(|p| p.is_file())
}

/// Becomes the resident tray icon (`--hidden`, at login), or says why not.
fn exec_resident() -> String {
    use std::os::unix::process::CommandExt as _;
    match resident_program() {
        Some(p) => format!(
            "cannot start {}: {}",
            p.display(),
            std::process::Command::new(&p).exec()
        ),
        None => format!("{RESIDENT} is not installed beside keyfob-tray"),
    }
}

/// Starts the resident tray icon, which leaves at once when one is up already.
fn spawn_resident() {
    use std::os::unix::process::CommandExt as _;
    let Some(p) = resident_program() else {
        tracing::warn!("{RESIDENT} is not installed beside keyfob-tray: no tray icon");
        return;
    };
    let started = std::process::Command::new(&p)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        // Its own process group: a Ctrl-C meant for this window does not end the tray icon.
        .process_group(0)
        .spawn();
    match started {
        // Reaped in the background, so a resident that finds another running leaves no zombie.
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(e) => tracing::warn!(error = %e, "cannot start {}", p.display()),
    }
}

/// Whether this process was started by the resident tray icon beside it.
fn started_by_resident() -> bool {
    let parent = std::os::unix::process::parent_id();
    let exe = std::fs::read_link(format!("/proc/{parent}/exe")).ok();
    exe.is_some() && exe == resident_program()
}

/// The sign-in the resident saw start, handed over on standard input (`--prompt --signin`).
/// Only from the resident: a sign-in shown in Keyfob's own window must be the daemon's, not
/// a code and link any program could pipe in.
fn signin_from_stdin() -> Option<Event> {
    if !started_by_resident() {
        tracing::warn!("--signin is read only from {RESIDENT}; ignoring standard input");
        return None;
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    serde_json::from_str(&line)
        .inspect_err(|e| tracing::warn!(error = %e, "unreadable sign-in on standard input"))
        .ok()
}

/// Runs the app until its last window closes.
///
/// - no arguments: the main window, and the resident tray icon if it is not up;
/// - `--hidden` (the login autostart entry): becomes the resident tray icon; on a desktop
///   without tray support, the main window instead (there is no other way in);
/// - `--prompt` (from the resident): the approval prompt for the requests waiting, or with
///   `--signin` the sign-in read from standard input, and nothing else; with `--shown
///   DAEMON_PID:IDS`, no prompt for the waiting requests an app has shown already.
pub fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hidden = args.iter().any(|a| a == "--hidden");
    let prompt = args.iter().any(|a| a == "--prompt");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFOB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let no_tray = tray_support::missing();
    if hidden && no_tray.is_none() {
        let why = exec_resident();
        tracing::warn!("{why}: showing the window instead");
    }
    let socket = keyfob_proto::paths::socket_path();
    // Held while this app runs: the resident leaves requests to it and opens no other.
    let _windows = approver::hold_shared(&approver::windows_lock(&socket))
        .inspect_err(|e| tracing::warn!(error = %e, "cannot take the windows lock"))
        .ok();
    if !prompt && !hidden && no_tray.is_none() {
        spawn_resident();
    }
    let signin = (prompt && args.iter().any(|a| a == "--signin"))
        .then(signin_from_stdin)
        .flatten();
    // Like a sign-in, only the resident says what the person has seen: from anyone else, a
    // list would keep requests from them.
    let seen = if prompt && args.iter().any(|a| a == "--shown") && started_by_resident() {
        Seen::from_args(&args)
    } else {
        Seen::default()
    };
    let link = Arc::new(Link::new(socket, daemon::CLIENT));
    let state = AppState {
        link: link.clone(),
        tray: Mutex::new(TrayMode {
            available: no_tray.is_none(),
            reason: no_tray.clone(),
        }),
    };
    let result = tauri::Builder::default()
        .manage(state)
        .manage(SignInSlot::default())
        // A prompt-only app showing a sign-in stays for it.
        .manage(PromptOnly(AtomicBool::new(prompt && signin.is_none())))
        .manage(ReportsShown(prompt))
        .manage(ShownBefore(Mutex::new(seen)))
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::otp_codes,
            commands::decide,
            commands::sign_in,
            commands::sign_out,
            commands::open_url,
            commands::revoke_key,
            commands::revoke_approval,
            commands::audit_tail,
            commands::lock,
            commands::unlock,
            commands::request_shown,
            commands::open_approval,
            current_signin,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            if let Some(reason) = &no_tray {
                tracing::warn!("{reason}");
            }
            if !prompt {
                windows::show_main(&handle)?;
            }
            if let Some(ev) = signin {
                let h = handle.clone();
                tauri::async_runtime::spawn(async move { signin_from_event(&h, &ev).await });
            }
            let h = handle.clone();
            tauri::async_runtime::spawn(daemon::run(link.clone(), move |heard| {
                on_heard(&h, heard)
            }));
            Ok(())
        })
        // A closed window is destroyed, not hidden, and the app ends with its last window:
        // no web process lives while no window is shown.
        .build(tauri::generate_context!());
    let app = match result {
        Ok(app) => app,
        Err(e) => {
            eprintln!("keyfob-tray: {e}");
            std::process::exit(1);
        }
    };
    app.run(|_, _| {});
}

#[cfg(test)]
mod tests {
    use super::Seen;
    use keyfob_proto::methods::ApprovalRequest;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_requests_shown_before_are_read_with_their_daemon_and_a_bad_list_hides_nothing() {
        let seen = Seen::from_args(&args("--prompt --shown 4242:3,7,12 --signin"));
        assert_eq!(seen.daemon, 4242);
        assert_eq!(seen.ids, [3, 7, 12].into());
        for bad in [
            "--prompt",
            "--prompt --shown",
            "--prompt --shown 3,7",
            "--prompt --shown x:3",
            "--prompt --shown 4242:3,x",
            "--prompt --shown 4242:",
        ] {
            assert!(Seen::from_args(&args(bad)).ids.is_empty(), "{bad}");
        }
    }

    #[test]
    fn the_list_holds_only_for_its_daemon_and_only_on_the_first_connection() {
        let mut seen = Seen::from_args(&args("--shown 4242:3"));
        seen.connected(Some(4242));
        assert!(seen.hides(3));
        // The daemon restarted: its request 3 is another.
        seen.connected(Some(4242));
        assert!(!seen.hides(3), "a reconnection drops the list");

        let mut other = Seen::from_args(&args("--shown 4242:3"));
        other.connected(Some(5151));
        assert!(!other.hides(3), "another daemon's request 3 is new");
        let mut lost = Seen::from_args(&args("--shown 4242:3"));
        lost.connected(None);
        assert!(!lost.hides(3), "no daemon known: nothing hidden");
    }

    fn request(id: u64) -> ApprovalRequest {
        serde_json::from_value(serde_json::json!({"id": id, "client": {"pid": 1, "exe": "/bin/sh", "label": "sh", "identified_by": "executable"}, "account": "s", "operation": "secret", "method": "secret.get", "policy": "always", "expires_in_secs": 60})).unwrap()
    }

    #[test]
    fn an_app_with_only_requests_shown_before_has_nothing_new_and_lists_new_ones_first() {
        let shown =
            super::ShownBefore(std::sync::Mutex::new(Seen::from_args(&args("--shown 9:1"))));
        shown.with(|s| s.connected(Some(9)));
        assert!(!shown.with(|s| s.any_new(&[request(1)])));
        assert!(shown.with(|s| s.any_new(&[request(1), request(2)])));
        let mut pending = vec![request(1), request(2), request(3)];
        shown.order(&mut pending);
        let ids: Vec<u64> = pending.iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 3, 1], "the new ones first, in their order");
    }
}
