//! `keyfob daemon install|uninstall` under a real systemd user manager: the socket unit owns
//! the agent's socket, the first `keyfob` command starts keyfobd through it (socket
//! activation), both commands are idempotent, and uninstall gives the socket back.

use keyfob_e2e::{TestEnv, tool, wait_until};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// systemd --user refuses to start unless the machine booted with systemd (it looks for
/// /run/systemd/system). It gets that in a mount namespace of its own, so the machine's /run
/// is left as it is.
const START: &str = "mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd \
    && mkdir /run/systemd/system && exec /lib/systemd/systemd --user";

/// A systemd user manager for the test's home and runtime directory.
struct UserManager {
    child: Child,
}

impl UserManager {
    fn start(env: &TestEnv) -> Self {
        assert!(
            std::path::Path::new("/lib/systemd/systemd").is_file(),
            "systemd is not installed: `apt-get install systemd` (scripts/test installs it)"
        );
        let child = tool("unshare", "util-linux")
            .args(["--mount", "--propagation", "private", "sh", "-c", START])
            .env_clear()
            .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let private = env.root().join("run/systemd/private");
        wait_until(Duration::from_secs(30), "systemd --user", || {
            private.exists()
        });
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // SIGTERM: the manager stops its units (keyfobd) and exits.
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn systemctl(env: &TestEnv, args: &[&str]) -> String {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .env_clear()
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The parent pid of `pid`.
fn ppid(pid: i32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn daemon_install_hands_the_socket_to_systemd_which_starts_keyfobd_on_the_first_request() {
    let idp = keyfob_e2e::idp::Idp::start(3600);
    let env = TestEnv::new();
    let manager = UserManager::start(&env);
    // A keyfobd started the usual way is running, with an account signed in: install stops it
    // and takes the socket over.
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    env.ok_in(&["secret", "set", "s"], "v");
    let before = env.daemon_pid().unwrap();

    let first = ok(env.keyfob(&["daemon", "install"]));
    assert!(first.contains("keyfob.socket"), "{first}");
    assert_eq!(systemctl(&env, &["is-active", "keyfob.socket"]), "active");
    assert_eq!(systemctl(&env, &["is-enabled", "keyfob.socket"]), "enabled");
    // The tray app (built beside keyfob) starts hidden at login: a valid autostart entry.
    let autostart = env.root().join("config/autostart/keyfob-tray.desktop");
    let entry = std::fs::read_to_string(&autostart).expect("the tray's autostart entry");
    assert!(entry.contains(&format!(
        "Exec={} --hidden",
        keyfob_e2e::bin("keyfob-tray").display()
    )));
    let valid = tool("desktop-file-validate", "desktop-file-utils")
        .arg(&autostart)
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stdout)
    );
    assert!(!keyfob_e2e::running(before), "the old keyfobd still runs");

    // The first `keyfob token` starts keyfobd through the socket unit (systemd is its parent)
    // and gets a token from the stored grant.
    let token = env.ok(&["token", "work"]);
    assert!(!token.trim().is_empty());
    let pid = env.daemon_pid().unwrap();
    assert_eq!(
        ppid(pid),
        manager.pid(),
        "keyfobd was not started by systemd"
    );
    assert_eq!(systemctl(&env, &["is-active", "keyfob.service"]), "active");

    // A second install changes nothing.
    let again = ok(env.keyfob(&["daemon", "install"]));
    assert!(again.contains("already installed"), "{again}");
    assert_eq!(env.daemon_pid(), Some(pid));

    // Uninstall stops keyfobd through its unit and gives the socket back.
    let gone = ok(env.keyfob(&["daemon", "uninstall"]));
    assert!(gone.contains("keyfob.socket"), "{gone}");
    assert_ne!(systemctl(&env, &["is-active", "keyfob.socket"]), "active");
    assert!(
        !env.root()
            .join("config/systemd/user/keyfob.socket")
            .exists()
    );
    wait_until(Duration::from_secs(30), "keyfobd to stop", || {
        !keyfob_e2e::running(pid)
    });
    let twice = ok(env.keyfob(&["daemon", "uninstall"]));
    assert!(twice.contains("no systemd user units"), "{twice}");

    // Without the units, keyfob starts keyfobd itself again; the secret is still there.
    assert_eq!(env.ok(&["secret", "get", "s"]).trim(), "v");
    let own = env.daemon_pid().unwrap();
    assert_ne!(ppid(own), manager.pid());
}
