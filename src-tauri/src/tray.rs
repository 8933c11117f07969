//! The tray icon and its menu: accounts with their state, "Copy code" per TOTP entry,
//! Lock/Unlock, Open Keyfob, Quit. Without an appindicator library the app runs window-only.

use crate::commands::{AppState, TrayMode};
use keyfob_proto::methods::*;
use std::path::{Path, PathBuf};
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_clipboard_manager::ClipboardExt;

const TRAY_ID: &str = "keyfob";
/// Libraries the tray icon can use on Linux; Tauri panics if none can be loaded.
const LIBRARIES: [&str; 2] = ["libayatana-appindicator3.so.1", "libappindicator3.so.1"];
/// Overrides where the libraries are looked for (colon-separated), for tests.
const LIBDIRS_ENV: &str = "KEYFOB_TRAY_LIBDIRS";

fn library_dirs() -> Vec<PathBuf> {
    if let Some(dirs) = std::env::var_os(LIBDIRS_ENV) {
        return std::env::split_paths(&dirs).collect();
    }
    let mut dirs = Vec::new();
    if let Some(extra) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    for base in ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib"] {
        dirs.push(PathBuf::from(base));
        // Multiarch directories such as /usr/lib/x86_64-linux-gnu.
        if let Ok(rd) = std::fs::read_dir(base) {
            dirs.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains("-linux-")),
            );
        }
    }
    dirs
}

/// Whether an appindicator library is installed (checked before Tauri would panic on it).
fn appindicator_missing() -> Option<String> {
    let dirs = library_dirs();
    let found = dirs
        .iter()
        .any(|d| LIBRARIES.iter().any(|l| Path::new(d).join(l).is_file()));
    (!found).then(|| {
        "no tray support on this desktop (libayatana-appindicator3 is not installed): running window-only; install libayatana-appindicator3-1 for the tray icon".to_owned()
    })
}

/// Installs the tray icon, or says why the app runs window-only.
pub fn install(app: &AppHandle) -> TrayMode {
    if let Some(reason) = appindicator_missing() {
        return TrayMode {
            available: false,
            reason: Some(reason),
        };
    }
    let built = (|| -> tauri::Result<()> {
        let menu = Menu::with_items(
            app,
            &[&MenuItem::with_id(
                app,
                "open",
                "Open Keyfob",
                true,
                None::<&str>,
            )?],
        )?;
        let mut b = TrayIconBuilder::with_id(TRAY_ID)
            .tooltip("Keyfob")
            .menu(&menu)
            .show_menu_on_left_click(true)
            .on_menu_event(|app, ev| on_menu(app, ev.id().as_ref()));
        if let Some(icon) = app.default_window_icon() {
            b = b.icon(icon.clone());
        }
        b.build(app)?;
        Ok(())
    })();
    match built {
        Ok(()) => TrayMode {
            available: true,
            reason: None,
        },
        Err(e) => TrayMode {
            available: false,
            reason: Some(format!(
                "cannot create the tray icon ({e}): running window-only"
            )),
        },
    }
}

fn on_menu(app: &AppHandle, id: &str) {
    let app = app.clone();
    let id = id.to_owned();
    tauri::async_runtime::spawn(async move {
        let link = app.state::<AppState>().link.clone();
        let result = match id.as_str() {
            "open" => crate::windows::show_main(&app).map_err(|e| e.to_string()),
            "quit" => {
                app.exit(0);
                Ok(())
            }
            "lock" => link
                .call::<Lock>(&LockParams {})
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            "unlock" => crate::windows::show_main(&app).map_err(|e| e.to_string()),
            other => match other.strip_prefix("copy:") {
                Some(name) => copy_code(&app, &link, name).await,
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::warn!(item = id, error = %e, "tray menu action failed");
        }
    });
}

async fn copy_code(app: &AppHandle, link: &crate::daemon::Link, name: &str) -> Result<(), String> {
    let codes = crate::actions::otp_codes(link, vec![name.to_owned()])
        .await
        .map_err(|e| e.to_string())?;
    let code = codes.first().ok_or("not a TOTP entry")?;
    app.clipboard()
        .write_text(code.code.clone())
        .map_err(|e| format!("cannot copy to the clipboard: {e}"))
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

/// Rebuilds the menu from the daemon's current state (after events and reconnects).
pub async fn refresh(app: &AppHandle) {
    if app.tray_by_id(TRAY_ID).is_none() {
        return;
    }
    let link = app.state::<AppState>().link.clone();
    // One connection for the three reads; no daemon means the "not running" menu.
    let (status, accounts, otp) = match link.connect().await {
        Ok(mut c) => (
            c.call::<Status>(&Empty {}).await.ok(),
            c.call::<AccountList>(&Empty {}).await.unwrap_or_default(),
            c.call::<OtpList>(&Empty {}).await.unwrap_or_default(),
        ),
        Err(_) => (None, Vec::new(), Vec::new()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let built = (|| -> tauri::Result<Menu<Wry>> {
        let item =
            |id: String, label: String, enabled: bool| -> tauri::Result<Box<dyn IsMenuItem<Wry>>> {
                Ok(Box::new(MenuItem::with_id(
                    app,
                    id,
                    label,
                    enabled,
                    None::<&str>,
                )?))
            };
        let mut items: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
        match &status {
            None => items.push(item("down".into(), "keyfobd is not running".into(), false)?),
            Some(status) => {
                for a in &accounts {
                    items.push(item(
                        format!("account:{}", a.name),
                        account_line(a, now),
                        false,
                    )?);
                }
                if !accounts.is_empty() {
                    items.push(Box::new(PredefinedMenuItem::separator(app)?));
                }
                for e in otp.iter().filter(|e| e.kind == OtpKind::Totp) {
                    items.push(item(
                        format!("copy:{}", e.name),
                        format!("Copy code: {}", e.name),
                        !status.locked,
                    )?);
                }
                if !otp.is_empty() {
                    items.push(Box::new(PredefinedMenuItem::separator(app)?));
                }
                let (id, label) = if status.locked {
                    ("unlock", "Unlock…")
                } else {
                    ("lock", "Lock")
                };
                items.push(item(id.into(), label.into(), true)?);
                items.push(item("open".into(), "Open Keyfob".into(), true)?);
            }
        }
        items.push(item("quit".into(), "Quit".into(), true)?);
        let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|i| i.as_ref()).collect();
        Menu::with_items(app, &refs)
    })();
    match built {
        Ok(menu) => {
            if let Some(tray) = app.tray_by_id(TRAY_ID)
                && let Err(e) = tray.set_menu(Some(menu))
            {
                tracing::warn!(error = %e, "cannot update the tray menu");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot build the tray menu"),
    }
}
