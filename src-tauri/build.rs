//! Declares the app's own commands so the capability file can allow exactly those.

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(keyfob_tray_commands::COMMANDS)),
    )
    .expect("tauri build script");
}

mod keyfob_tray_commands {
    include!("src/command_names.rs");
}
