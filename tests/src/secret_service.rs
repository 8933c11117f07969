//! A private D-Bus session bus with a real gnome-keyring Secret Service, unlocked, in a temp
//! home: the keychain a desktop user has, without touching the real one.

use crate::{tool, wait_until};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// The running bus and keyring; both stop on drop.
pub struct SecretService {
    bus: Child,
    keyring: Option<Child>,
    /// `DBUS_SESSION_BUS_ADDRESS` for clients.
    pub address: String,
}

impl SecretService {
    /// Starts a bus at `dir/bus` and, if `with_keyring`, gnome-keyring unlocked with
    /// `password`, its keyrings under `home`.
    pub fn start(dir: &Path, home: &Path, with_keyring: bool, password: &str) -> Self {
        // A session bus without service activation: nothing starts unless the test starts
        // it, so "no Secret Service" can be tested and no stray keyring outlives the test.
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus").display()
            ),
        )
        .expect("bus config");
        let mut bus = tool("dbus-daemon", "dbus-daemon")
            .args(["--nofork", "--print-address=1"])
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("bus address");
        let address = address.trim().to_owned();
        let mut this = Self {
            bus,
            keyring: None,
            address,
        };
        if with_keyring {
            let mut kr = tool("gnome-keyring-daemon", "gnome-keyring")
                .args(["--foreground", "--unlock", "--components=secrets"])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", home)
                .env("XDG_DATA_HOME", home.join(".local/share"))
                .env("XDG_RUNTIME_DIR", dir)
                .env("DBUS_SESSION_BUS_ADDRESS", &this.address)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start gnome-keyring-daemon");
            {
                let mut stdin = kr.stdin.take().expect("stdin");
                stdin.write_all(password.as_bytes()).expect("password");
            }
            this.keyring = Some(kr);
            wait_until(
                Duration::from_secs(10),
                "the Secret Service on the bus",
                || this.name_has_owner("org.freedesktop.secrets"),
            );
        }
        this
    }

    fn name_has_owner(&self, name: &str) -> bool {
        let out = tool("dbus-send", "dbus-bin")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
            ])
            .arg(format!("string:{name}"))
            .output()
            .expect("dbus-send");
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// Calls a Secret Service method with dbus-send (e.g. to lock the login collection).
    pub fn dbus_send(&self, args: &[&str]) -> std::process::Output {
        tool("dbus-send", "dbus-bin")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args(["--session", "--print-reply"])
            .args(args)
            .output()
            .expect("dbus-send")
    }

    /// `secret-tool lookup service keyfob username KEY`: what the keychain itself holds.
    pub fn lookup(&self, key: &str) -> Option<String> {
        let out = tool("secret-tool", "libsecret-tools")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args(["lookup", "service", "keyfob", "username", key])
            .output()
            .expect("secret-tool");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        if let Some(k) = &mut self.keyring {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
