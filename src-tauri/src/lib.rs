//! Keyfob's tray app: an approver client of keyfobd. It connects through keyfob-proto's
//! client (starting the daemon if needed, reconnecting after a restart), pops up when a
//! sign-in or a client's access needs a person, and shows TOTP codes and what the agent does.

mod actions;
#[cfg(test)]
mod command_names;
pub mod commands;
pub mod daemon;
pub mod error;
mod tray;
mod windows;
pub mod wire;

use commands::{AppState, SignInView, TrayMode};
use daemon::{Heard, Link};
use keyfob_proto::Event;
use keyfob_proto::methods::{AccountShow, NameParams};
use std::sync::{Arc, Mutex};
use tauri::{Emitter, Manager};

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
    if let Err(e) = windows::show_signin(app) {
        tracing::warn!(error = %e, "cannot show the sign-in window");
    }
    let _ = app.emit_to("signin", "keyfob://signin-view", ());
}

fn on_heard(app: &tauri::AppHandle, heard: Heard) {
    match heard {
        Heard::Connection(c) => {
            let _ = app.emit(CONNECTION, &c);
        }
        Heard::Event(ev) => {
            let _ = app.emit(EVENT, &ev);
            match &ev {
                Event::ApprovalRequested(_) => {
                    if let Err(e) = windows::show_approval(app) {
                        tracing::warn!(error = %e, "cannot show the approval window");
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
                    return;
                }
                _ => {}
            }
        }
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move { tray::refresh(&app).await });
}

/// The sign-in to show in the sign-in window.
#[tauri::command]
fn current_signin(slot: tauri::State<'_, SignInSlot>) -> Option<SignInView> {
    slot.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether the tray icon is up (then the app lives on with no window open).
fn tray_available(app: &tauri::AppHandle) -> bool {
    app.state::<AppState>()
        .tray
        .lock()
        .map(|t| t.available)
        .unwrap_or(false)
}

/// Runs the app until Quit. With `--hidden` (the login autostart entry) and a tray icon, no
/// window opens until one is needed.
pub fn run() {
    let hidden = std::env::args().skip(1).any(|a| a == "--hidden");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFOB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let link = Arc::new(Link::new(keyfob_proto::paths::socket_path()));
    let state = AppState {
        link: link.clone(),
        tray: Mutex::new(TrayMode {
            available: false,
            reason: None,
        }),
    };
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(state)
        .manage(SignInSlot::default())
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
            current_signin,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let mode = tray::install(&handle);
            match &mode.reason {
                Some(reason) => tracing::warn!("{reason}"),
                None => tracing::info!("tray icon installed"),
            }
            *app.state::<AppState>()
                .tray
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = mode;
            // Without a tray icon there is no other way in: the window shows regardless.
            if !hidden || !tray_available(&handle) {
                windows::show_main(&handle)?;
            }
            let h = handle.clone();
            tauri::async_runtime::spawn(daemon::run(link.clone(), move |heard| {
                on_heard(&h, heard)
            }));
            Ok(())
        })
        // A closed window is destroyed, not hidden: no web process lives while no window is
        // shown. It is built again when needed.
        .build(tauri::generate_context!());
    let app = match result {
        Ok(app) => app,
        Err(e) => {
            eprintln!("keyfob-tray: {e}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        // The last window closing ends the app only without a tray icon; Quit (an explicit
        // exit code) always does.
        if let tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } = event
            && tray_available(app)
        {
            api.prevent_exit();
        }
    });
}
