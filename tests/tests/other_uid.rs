//! Only the owning user reaches the agent: another uid is stopped by the socket's
//! permissions, and, if those are loosened, by the daemon's own peer-uid check.

use keyfob_e2e::{TestEnv, set_mode};
use std::os::unix::process::CommandExt;
use std::process::Command;

const OTHER: &str = "keyfob-e2e-other";

/// Creates (once) an unprivileged user and returns its uid and gid.
fn other_user() -> (u32, u32) {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test creates a second user and must run as root (CI does); run scripts/test as root"
    );
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, OTHER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        let out = keyfob_e2e::tool("useradd", "passwd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                OTHER,
            ])
            .output()
            .unwrap();
        // Another test process may have created it meanwhile.
        assert!(
            out.status.success() || id("-u").is_some(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

#[test]
fn another_uid_cannot_use_the_agent() {
    let (uid, gid) = other_user();
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "k"], "top-secret-value");
    // A copy of the CLI the other user can execute.
    set_mode(env.root(), 0o755);
    let cli = env.root().join("keyfob");
    std::fs::copy(keyfob_e2e::bin("keyfob"), &cli).unwrap();
    set_mode(&cli, 0o755);
    let run_as_other = || {
        Command::new(&cli)
            .args(["secret", "get", "k"])
            .env_clear()
            .env("KEYFOB_SOCKET", env.socket())
            .env("HOME", "/nonexistent")
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    };

    // 1. The directory is 0700 and the socket 0600: the kernel refuses the connection.
    let out = run_as_other();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ermission denied"));
    assert!(out.stdout.is_empty());

    // 2. Even with the permissions opened up, the daemon checks the peer's uid itself.
    set_mode(&env.root().join("run"), 0o755);
    set_mode(&env.root().join("run/keyfob"), 0o755);
    set_mode(&env.socket(), 0o666);
    let out = run_as_other();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("serves only its own user"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("top-secret-value"));
    assert!(
        env.logs()
            .contains("refused a connection from another user")
    );

    // The owner is still served.
    assert_eq!(env.ok(&["secret", "get", "k"]), "top-secret-value\n");
}
