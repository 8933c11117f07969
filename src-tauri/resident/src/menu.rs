//! The tray icon and its menu. They live on GTK's thread; the menu's clicks go to the link's
//! thread, and the menu is rebuilt from the daemon's state after every event.

use keyfob_proto::approver::Link;
use keyfob_proto::methods::{
    AccountInfo, AccountList, AccountState, Empty, OtpInfo, OtpKind, OtpList, Status, StatusResult,
};
use std::cell::RefCell;
use tokio::sync::mpsc::UnboundedSender;
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// The icon: the app's own.
const ICON_PNG: &[u8] = include_bytes!("../../icons/32x32.png");

/// What the tray icon library says when no appindicator library can be loaded.
const NO_SUPPORT: &str = "no tray support on this desktop (libayatana-appindicator3 is not installed): install libayatana-appindicator3-1, or run keyfob-tray for the window alone";

thread_local! {
    static TRAY: RefCell<Option<TrayIcon>> = const { RefCell::new(None) };
}

/// A menu choice for the link's thread (Quit is handled on GTK's).
#[derive(Debug)]
pub enum Click {
    /// Open Keyfob (or Unlock…, which the main window does).
    Open,
    /// Lock the agent.
    Lock,
    /// Copy the TOTP entry's current code.
    Copy(String),
}

/// What the menu shows; `status` is `None` when keyfobd cannot be reached.
struct State {
    status: Option<StatusResult>,
    accounts: Vec<AccountInfo>,
    otp: Vec<OtpInfo>,
}

fn icon() -> Result<Icon, String> {
    let bad = |e: String| format!("the built-in icon is unreadable: {e}");
    let mut reader = png::Decoder::new(std::io::Cursor::new(ICON_PNG))
        .read_info()
        .map_err(|e| bad(e.to_string()))?;
    let mut rgba = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| bad("too large".into()))?
    ];
    let info = reader
        .next_frame(&mut rgba)
        .map_err(|e| bad(e.to_string()))?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(bad("not 8-bit RGBA".into()));
    }
    rgba.truncate(info.buffer_size());
    Icon::from_rgba(rgba, info.width, info.height).map_err(|e| bad(e.to_string()))
}

/// Shows the tray icon, its menu sending clicks to `clicks`. Call on GTK's thread.
pub fn install(clicks: UnboundedSender<Click>) -> Result<(), String> {
    MenuEvent::set_event_handler(Some(move |ev: MenuEvent| {
        let click = match ev.id().as_ref() {
            "quit" => return gtk::main_quit(),
            "open" | "unlock" => Click::Open,
            "lock" => Click::Lock,
            other => match other.strip_prefix("copy:") {
                Some(name) => Click::Copy(name.to_owned()),
                None => return,
            },
        };
        let _ = clicks.send(click);
    }));
    let menu = build(&State {
        status: None,
        accounts: Vec::new(),
        otp: Vec::new(),
    })?;
    let icon = icon()?;
    // The library panics when no appindicator library loads.
    // Nothing is shared with the closure but what it builds from.
    let tray = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        TrayIconBuilder::new()
            .with_id("keyfob")
            .with_tooltip("Keyfob")
            .with_icon(icon)
            .with_menu(Box::new(menu))
            .with_menu_on_left_click(true)
            .build()
    }))
    .map_err(|_| NO_SUPPORT.to_owned())?
    .map_err(|e| format!("cannot create the tray icon: {e}"))?;
    TRAY.with(|t| *t.borrow_mut() = Some(tray));
    Ok(())
}

fn account_line(a: &AccountInfo, now: u64) -> String {
    let state = match a.state {
        AccountState::SignedIn => match a.access_expires_at {
            Some(t) if t <= now + 300 => "expires soon",
            _ => "signed in",
        },
        AccountState::NeedsLogin | AccountState::SignedOut => "needs sign-in",
    };
    format!("{} — {state}", a.name)
}

fn build(state: &State) -> Result<Menu, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let menu = Menu::new();
    let add = |id: String, label: String, enabled: bool| {
        menu.append(&MenuItem::with_id(id, label, enabled, None))
            .map_err(|e| e.to_string())
    };
    let separator = || {
        menu.append(&PredefinedMenuItem::separator())
            .map_err(|e| e.to_string())
    };
    match &state.status {
        None => add("down".into(), "keyfobd is not running".into(), false)?,
        Some(status) => {
            for a in &state.accounts {
                add(format!("account:{}", a.name), account_line(a, now), false)?;
            }
            if !state.accounts.is_empty() {
                separator()?;
            }
            for e in state.otp.iter().filter(|e| e.kind == OtpKind::Totp) {
                add(
                    format!("copy:{}", e.name),
                    format!("Copy code: {}", e.name),
                    !status.locked,
                )?;
            }
            if !state.otp.is_empty() {
                separator()?;
            }
            let (id, label) = if status.locked {
                ("unlock", "Unlock…")
            } else {
                ("lock", "Lock")
            };
            add(id.into(), label.into(), true)?;
            add("open".into(), "Open Keyfob".into(), true)?;
        }
    }
    add("quit".into(), "Quit".into(), true)?;
    Ok(menu)
}

/// Rebuilds the menu from the daemon's current state.
pub async fn refresh(link: &Link) {
    // One connection for the three reads; no daemon means the "not running" menu.
    let state = match link.connect().await {
        Ok(mut c) => State {
            status: c.call::<Status>(&Empty {}).await.ok(),
            accounts: c.call::<AccountList>(&Empty {}).await.unwrap_or_default(),
            otp: c.call::<OtpList>(&Empty {}).await.unwrap_or_default(),
        },
        Err(_) => State {
            status: None,
            accounts: Vec::new(),
            otp: Vec::new(),
        },
    };
    gtk::glib::MainContext::default().invoke(move || match build(&state) {
        Ok(menu) => TRAY.with(|t| {
            if let Some(tray) = &*t.borrow() {
                tray.set_menu(Some(Box::new(menu)));
            }
        }),
        Err(e) => tracing::warn!(error = %e, "cannot build the tray menu"),
    });
}
