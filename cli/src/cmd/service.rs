//! `keyfob daemon install|uninstall`: keyfobd as a user service. On Linux, a systemd user
//! socket unit owns the agent's socket and starts keyfobd on the first connection (socket
//! activation: no client ever races a daemon's start); on macOS, a launchd agent. Both are
//! idempotent: a second run changes nothing and says so.

use super::setup::home;
use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The systemd unit names.
const SOCKET_UNIT: &str = "keyfob.socket";
const SERVICE_UNIT: &str = "keyfob.service";
/// The launchd label.
const LAUNCHD_LABEL: &str = "dev.keyfob.keyfobd";

/// `keyfob.socket`: the agent's socket, owned by the user's service manager.
pub fn socket_unit(socket: &Path) -> String {
    format!(
        "# Keyfob's agent socket (`keyfob daemon install` writes this unit; the package ships it).
[Unit]
Description=Keyfob credential agent socket
Documentation=man:keyfobd(8)

[Socket]
ListenStream={}
SocketMode=0600
DirectoryMode=0700

[Install]
WantedBy=sockets.target
",
        socket.display()
    )
}

/// `keyfob.service`: keyfobd, started by the socket.
pub fn service_unit(keyfobd: &Path) -> String {
    format!(
        "# Keyfob's agent (`keyfob daemon install` writes this unit; the package ships it).
[Unit]
Description=Keyfob credential agent
Documentation=man:keyfobd(8)
Requires={SOCKET_UNIT}
After={SOCKET_UNIT}

[Service]
ExecStart={}
Restart=on-failure
NoNewPrivileges=yes

[Install]
Also={SOCKET_UNIT}
",
        keyfobd.display()
    )
}

/// The launchd agent (macOS): keyfobd at login, restarted if it fails.
pub fn launchd_plist(keyfobd: &Path, log: &Path) -> String {
    let esc = |p: &Path| {
        p.display()
            .to_string()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `keyfob daemon install`; `keyfob daemon uninstall` removes it. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
    <string>{}</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>StandardErrorPath</key>
  <string>{}</string>
  <key>ProcessType</key>
  <string>Background</string>
</dict>
</plist>
"#,
        esc(keyfobd),
        esc(log)
    )
}

/// The XDG autostart entry that starts the tray app hidden at login.
pub fn autostart_entry(tray: &Path) -> String {
    format!(
        "# Written by `keyfob daemon install`; `keyfob daemon uninstall` removes it.
[Desktop Entry]
Type=Application
Name=Keyfob
Comment=Approve sign-ins and access to your credentials
Exec={} --hidden
Terminal=false
NoDisplay=true
X-GNOME-Autostart-enabled=true
",
        tray.display()
    )
}

/// `$XDG_CONFIG_HOME` (default `~/.config`), where the user's units and autostart entries go.
fn config_home() -> CliResult<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map_or_else(|| home().map(|h| h.join(".config")), Ok)
}

/// `$XDG_CONFIG_HOME/autostart/keyfob-tray.desktop`.
fn autostart_path() -> CliResult<PathBuf> {
    Ok(config_home()?.join("autostart/keyfob-tray.desktop"))
}

/// keyfob-tray beside this keyfob, if it is installed.
fn tray() -> Option<PathBuf> {
    let t = std::env::current_exe().ok()?.with_file_name("keyfob-tray");
    t.is_file().then_some(t)
}

/// keyfobd as the units should run it: beside this keyfob, absolute.
fn keyfobd() -> CliResult<PathBuf> {
    let me = std::env::current_exe()?;
    let sibling = me.with_file_name("keyfobd");
    if !sibling.is_file() {
        return Err(CliError::new(
            code::FAILURE,
            format!(
                "keyfobd is not installed beside {}: install both from the same package",
                me.display()
            ),
        ));
    }
    Ok(sibling)
}

/// `$XDG_CONFIG_HOME/systemd/user`.
fn unit_dir() -> CliResult<PathBuf> {
    Ok(config_home()?.join("systemd/user"))
}

/// Runs `systemctl --user ARGS`, failing with its stderr.
fn systemctl(args: &[&str]) -> CliResult<String> {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .map_err(|e| {
            CliError::new(
                code::FAILURE,
                format!("cannot run systemctl ({e}): `keyfob daemon install` needs systemd's user manager"),
            )
        })?;
    if !out.status.success() {
        return Err(CliError::new(
            code::FAILURE,
            format!(
                "systemctl --user {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes `text` to `path` unless it holds exactly that; whether it changed.
fn write_if_changed(path: &Path, text: &str, dry_run: bool) -> CliResult<bool> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(false);
    }
    println!("+ {}", path.display());
    for line in text.lines() {
        println!("+   {line}");
    }
    if !dry_run {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".keyfob-tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(true)
}

/// `keyfob daemon install [--dry-run]`.
pub fn install(ctx: &Ctx, dry_run: bool) -> CliResult {
    let keyfobd = keyfobd()?;
    if cfg!(target_os = "macos") {
        let plist = home()?
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist"));
        let log = crate::spawn::log_path().unwrap_or_else(|| PathBuf::from("/tmp/keyfobd.log"));
        if !write_if_changed(&plist, &launchd_plist(&keyfobd, &log), dry_run)? {
            println!("keyfob: the launchd agent is already installed");
        } else if !dry_run {
            let _ = Command::new("launchctl")
                .args(["unload", "-w"])
                .arg(&plist)
                .output();
            let out = Command::new("launchctl")
                .args(["load", "-w"])
                .arg(&plist)
                .output()?;
            if !out.status.success() {
                return Err(CliError::new(
                    code::FAILURE,
                    format!(
                        "launchctl load failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            println!("keyfob: keyfobd now starts at login ({LAUNCHD_LABEL})");
        }
        return Ok(());
    }
    let dir = unit_dir()?;
    let changed_socket =
        write_if_changed(&dir.join(SOCKET_UNIT), &socket_unit(&ctx.socket), dry_run)?;
    let changed_service =
        write_if_changed(&dir.join(SERVICE_UNIT), &service_unit(&keyfobd), dry_run)?;
    // The tray app at login, hidden until a prompt needs it (when it is installed).
    if let Some(tray) = tray() {
        write_if_changed(&autostart_path()?, &autostart_entry(&tray), dry_run)?;
    }
    if dry_run {
        return Ok(());
    }
    let enabled = systemctl(&["is-enabled", SOCKET_UNIT]).is_ok_and(|s| s == "enabled");
    let active = systemctl(&["is-active", SOCKET_UNIT]).is_ok_and(|s| s == "active");
    if !changed_socket && !changed_service && enabled && active {
        println!("keyfob: the systemd user units are already installed and {SOCKET_UNIT} listens");
        return Ok(());
    }
    // A keyfobd started the usual way holds the socket path: it stops first, so the socket
    // unit takes the path over and the next client starts keyfobd through it.
    if keyfob_proto::client::Client::connect(&ctx.socket, "keyfob").is_ok() {
        super::daemon::run(ctx, super::daemon::DaemonCmd::Stop)?;
    }
    systemctl(&["daemon-reload"])?;
    if changed_socket && active {
        systemctl(&["restart", SOCKET_UNIT])?;
    }
    systemctl(&["enable", "--now", SOCKET_UNIT])?;
    println!(
        "keyfob: {SOCKET_UNIT} listens on {}; keyfobd starts on the first request",
        ctx.socket.display()
    );
    Ok(())
}

/// `keyfob daemon uninstall [--dry-run]`.
pub fn uninstall(ctx: &Ctx, dry_run: bool) -> CliResult {
    if cfg!(target_os = "macos") {
        let plist = home()?
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist"));
        if !plist.exists() {
            println!("keyfob: no launchd agent is installed");
            return Ok(());
        }
        println!("- {}", plist.display());
        if !dry_run {
            let _ = Command::new("launchctl")
                .args(["unload", "-w"])
                .arg(&plist)
                .output();
            std::fs::remove_file(&plist)?;
        }
        return Ok(());
    }
    let dir = unit_dir()?;
    let autostart = autostart_path()?;
    let files: Vec<PathBuf> = [SOCKET_UNIT, SERVICE_UNIT]
        .iter()
        .map(|u| dir.join(u))
        .chain(std::iter::once(autostart))
        .filter(|p| p.exists())
        .collect();
    if files.is_empty() {
        println!("keyfob: no systemd user units are installed");
        return Ok(());
    }
    for f in &files {
        println!("- {}", f.display());
    }
    if dry_run {
        return Ok(());
    }
    // Stop the daemon through the unit (so it is not restarted), then the socket.
    let _ = systemctl(&["disable", "--now", SOCKET_UNIT, SERVICE_UNIT]);
    for f in &files {
        std::fs::remove_file(f)?;
    }
    systemctl(&["daemon-reload"])?;
    let _ = ctx;
    println!("keyfob: removed; the next keyfob command starts keyfobd itself again");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_unit_owns_the_agents_socket_privately() {
        let u = socket_unit(Path::new("/run/user/1000/keyfob/agent.sock"));
        assert!(u.contains("ListenStream=/run/user/1000/keyfob/agent.sock\n"));
        assert!(u.contains("SocketMode=0600\n") && u.contains("DirectoryMode=0700\n"));
        assert!(u.contains("WantedBy=sockets.target"));
    }

    #[test]
    fn the_service_runs_keyfobd_and_names_its_socket() {
        let u = service_unit(Path::new("/usr/bin/keyfobd"));
        assert!(u.contains("ExecStart=/usr/bin/keyfobd\n"));
        assert!(u.contains("Requires=keyfob.socket\n"));
    }

    #[test]
    fn the_autostart_entry_starts_the_tray_hidden() {
        let e = autostart_entry(Path::new("/usr/bin/keyfob-tray"));
        assert!(e.contains("\nExec=/usr/bin/keyfob-tray --hidden\n"));
        assert!(e.contains("\n[Desktop Entry]\nType=Application\n"));
    }

    #[test]
    fn the_launchd_plist_is_well_formed_and_escapes_paths() {
        let p = launchd_plist(Path::new("/opt/a&b/keyfobd"), Path::new("/tmp/k.log"));
        assert!(p.contains("<string>/opt/a&amp;b/keyfobd</string>"));
        assert!(p.contains("<string>dev.keyfob.keyfobd</string>"));
        // It parses as a property list (Python's plistlib reads Apple's format).
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import plistlib,sys; d=plistlib.loads(sys.stdin.buffer.read()); print(d['ProgramArguments'][0], d['RunAtLoad'])",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(p.as_bytes())?;
                c.wait_with_output()
            })
            .expect("python3 (scripts/test installs it)");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "/opt/a&b/keyfobd True"
        );
    }
}
