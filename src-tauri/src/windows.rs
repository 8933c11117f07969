//! The app's windows: main, the approval prompt (on top when a request arrives), sign-in.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// Shows (creating if needed) the window `label`, which loads `index.html#label`.
fn show(
    app: &AppHandle,
    label: &str,
    title: &str,
    size: (f64, f64),
    on_top: bool,
) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(label) {
        w.show()?;
        w.unminimize()?;
        w.set_always_on_top(on_top)?;
        w.set_focus()?;
        return Ok(());
    }
    WebviewWindowBuilder::new(
        app,
        label,
        WebviewUrl::App(format!("index.html#{label}").into()),
    )
    .title(title)
    .inner_size(size.0, size.1)
    .always_on_top(on_top)
    .focused(true)
    .build()?;
    Ok(())
}

/// The main window.
pub fn show_main(app: &AppHandle) -> tauri::Result<()> {
    show(app, "main", "Keyfob", (920.0, 680.0), false)
}

/// The approval prompt, on top of everything.
pub fn show_approval(app: &AppHandle) -> tauri::Result<()> {
    show(
        app,
        "approval",
        "Keyfob: approve access?",
        (520.0, 420.0),
        true,
    )
}

/// The sign-in window.
pub fn show_signin(app: &AppHandle) -> tauri::Result<()> {
    show(app, "signin", "Keyfob: sign in", (520.0, 600.0), true)
}
