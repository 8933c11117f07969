//! `keyfob-tray-resident`: Keyfob's tray icon, the part of the tray that runs all day.
//!
//! It holds no WebKit: an icon, its menu (accounts and their state, "Copy code" per TOTP
//! entry, Lock/Unlock, Open Keyfob, Quit) and an approver connection to keyfobd, so a request
//! that needs a person finds one. When such a request arrives it starts keyfob-tray (installed
//! beside it) with `--prompt`; that app shows the prompt and ends with its last window.
//! `keyfob-tray --hidden`, the login autostart entry, becomes this program.

mod menu;
mod windows;

use keyfob_proto::Event;
use keyfob_proto::approver::{self, Heard, Link};
use keyfob_proto::methods::{Empty, Lock, LockParams, OtpCode, OtpCodeParams, OtpKind, OtpList};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The name given in `hello`.
const CLIENT: &str = "keyfob-tray-resident";

/// GTK's switch for OpenGL. This program draws only an icon and a menu, and with OpenGL
/// allowed GTK loads Mesa (with LLVM: ~45 MB resident) when it opens the display.
const GDK_GL: &str = "GDK_GL";

fn main() -> ExitCode {
    let gl_turned_off = std::env::var_os(GDK_GL).is_none();
    if gl_turned_off {
        // SAFETY: no other thread exists yet to read the environment. The window app this
        // program starts gets the variable removed again (see windows.rs).
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(GDK_GL, "disable");
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFOB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(gl_turned_off) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyfob-tray-resident: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(gl_turned_off: bool) -> Result<(), String> {
    let socket = keyfob_proto::paths::socket_path();
    let lock = approver::resident_lock(&socket);
    // One tray icon per agent: a second start (the window app starts one in case) leaves.
    let Some(_held) = approver::try_lock(&lock, true)
        .map_err(|e| format!("cannot take {}: {e}", lock.display()))?
    else {
        tracing::info!("the tray icon is up already");
        return Ok(());
    };
    gtk::init().map_err(|e| {
        format!("cannot open the display ({e}): the tray icon needs a graphical session")
    })?;
    let (clicks, clicked) = mpsc::unbounded_channel();
    menu::install(clicks)?;
    let link = Arc::new(Link::new(socket, CLIENT));
    std::thread::Builder::new()
        .name("keyfob-link".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work(link, clicked, gl_turned_off)),
                Err(e) => tracing::error!(error = %e, "cannot start the link to keyfobd"),
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    tracing::info!("tray icon installed");
    gtk::main();
    Ok(())
}

/// The link's side: events from keyfobd, clicks from the menu, window apps ending.
async fn work(
    link: Arc<Link>,
    mut clicked: mpsc::UnboundedReceiver<menu::Click>,
    gl_turned_off: bool,
) {
    let (tell, mut heard) = mpsc::unbounded_channel();
    tokio::spawn(approver::run(link.clone(), move |h| {
        let _ = tell.send(h);
    }));
    let mut windows = windows::Windows::new(&link.socket, gl_turned_off);
    let mut clipboard: Option<arboard::Clipboard> = None;
    loop {
        tokio::select! {
            Some(h) = heard.recv() => {
                match &h {
                    // The pending requests at (re)connection arrive as these too.
                    Heard::Event(Event::ApprovalRequested(r)) => windows.prompt_for(r.id),
                    Heard::Event(Event::ApprovalResolved { id, .. }) => windows.resolved(*id),
                    Heard::Event(ev @ Event::SigninStarted { .. }) => windows.sign_in(ev),
                    Heard::Event(Event::SigninFinished { account, .. }) => {
                        windows.sign_in_finished(account);
                    }
                    // A restarted daemon numbers its requests anew.
                    Heard::Connection(c) if !c.connected => windows.forget_shown(),
                    Heard::Connection(_) => windows.connected(link.daemon_pid()),
                    _ => {}
                }
                menu::refresh(&link).await;
            }
            Some(click) = clicked.recv() => {
                if let Err(e) = act(&link, &mut windows, &mut clipboard, &click).await {
                    tracing::warn!(?click, error = %e, "tray menu action failed");
                }
            }
            () = windows.closed() => {
                // A sign-in or request that came as the window app was closing gets a prompt
                // of its own (the sign-in first: an app started for it shows the waiting
                // requests too); one the person closed unanswered is not pushed at them again
                // (it waits in the main window, and for `keyfob approve`).
                windows.prompt_unshown_sign_in();
                for r in link.pending() {
                    windows.prompt_for(r.id);
                }
            }
        }
    }
}

async fn act(
    link: &Link,
    windows: &mut windows::Windows,
    clipboard: &mut Option<arboard::Clipboard>,
    click: &menu::Click,
) -> Result<(), String> {
    match click {
        menu::Click::Open => windows.open_main(),
        menu::Click::Lock => link
            .call::<Lock>(&LockParams {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        menu::Click::Copy(name) => {
            let mut c = link.connect().await.map_err(|e| e.to_string())?;
            // Only a TOTP code: computing an HOTP code would use up a counter value.
            let list = c
                .call::<OtpList>(&Empty {})
                .await
                .map_err(|e| e.to_string())?;
            if !list
                .iter()
                .any(|e| e.name == *name && e.kind == OtpKind::Totp)
            {
                return Err(format!("no TOTP entry named {name:?}"));
            }
            let code = c
                .call::<OtpCode>(&OtpCodeParams {
                    name: name.clone(),
                    at: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            let board = match clipboard {
                Some(b) => b,
                // Kept for the program's life: on X11 the copied text is served from here.
                None => clipboard.insert(
                    arboard::Clipboard::new()
                        .map_err(|e| format!("cannot reach the clipboard: {e}"))?,
                ),
            };
            board
                .set_text(code.code.expose())
                .map_err(|e| format!("cannot copy to the clipboard: {e}"))
        }
    }
}
