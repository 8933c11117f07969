//! Whether this desktop can show a tray icon: keyfob-tray-resident needs an appindicator
//! library. Without one the app runs window-only.

use std::path::{Path, PathBuf};

/// Libraries the tray icon can use on Linux; the tray icon library panics if none can be
/// loaded, so they are looked for first.
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

/// Why no tray icon can be shown, when none can: no appindicator library is installed.
pub fn missing() -> Option<String> {
    let dirs = library_dirs();
    let found = dirs
        .iter()
        .any(|d| LIBRARIES.iter().any(|l| Path::new(d).join(l).is_file()));
    (!found).then(|| {
        "no tray support on this desktop (libayatana-appindicator3 is not installed): running window-only; install libayatana-appindicator3-1 for the tray icon".to_owned()
    })
}
