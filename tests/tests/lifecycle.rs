//! The daemon's life: auto-start, one instance, stale sockets, signals, permissions, and
//! clear errors when it cannot start.

use keyfob_e2e::TestEnv;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn any_command_starts_the_agent_with_private_permissions() {
    let env = TestEnv::new();
    assert!(!env.socket().exists());
    env.ok(&["otp", "list"]);
    let meta = std::fs::metadata(env.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&env.socket()), 0o600);
    assert_eq!(mode(env.socket().parent().unwrap()), 0o700);
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap();
    assert_eq!(status["running"], true);
    assert_eq!(status["vault"], "file");
    assert_eq!(status["pid"].as_i64(), env.daemon_pid().map(i64::from));
    let out = env.ok(&["daemon", "start"]);
    assert!(out.contains("already running"), "{out}");
    env.ok(&["daemon", "stop"]);
    assert!(!env.socket().exists(), "a clean stop removes the socket");
    let out = env.keyfob(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyfob daemon start"));
}

#[test]
fn a_second_instance_is_refused_with_the_running_pid() {
    let env = TestEnv::new();
    let first = env.spawn_daemon();
    let err = env
        .try_spawn_daemon()
        .err()
        .expect("second daemon must not start");
    assert_eq!(
        err,
        format!("RUNNING {} {}", first.pid(), env.socket().display())
    );
    // The first one is unharmed.
    env.ok(&["otp", "list"]);
}

#[test]
fn a_stale_socket_after_sigkill_is_recovered() {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "k"], "v1");
    let d = env.spawn_daemon_after_stop();
    d.kill9();
    assert!(
        env.socket().exists(),
        "SIGKILL leaves the socket file behind"
    );
    // The CLI sees nobody listening, starts a new daemon, which replaces the stale socket.
    assert_eq!(env.ok(&["secret", "get", "k"]), "v1\n");
}

#[test]
fn sigterm_stops_cleanly() {
    let env = TestEnv::new();
    let d = env.spawn_daemon();
    assert_eq!(d.terminate(), Some(0));
    assert!(!env.socket().exists());
}

#[test]
fn start_failures_are_one_clear_line() {
    let mut env = TestEnv::new();
    env.unset("KEYFOB_PASSPHRASE");
    let out = env.keyfob(&["otp", "list"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYFOB_PASSPHRASE"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    env.set("KEYFOB_PASSPHRASE", "pw");
    env.set("KEYFOB_VAULT", "bogus");
    let out = env.keyfob(&["otp", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use \"auto\", \"keychain\" or \"file\"")
    );

    env.set("KEYFOB_VAULT", "file");
    let cfg = env.root().join("config/keyfob/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "vault = \"file\"\nvualt = 1\n").unwrap();
    let out = env.keyfob(&["otp", "list"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vualt") && err.contains("config.toml"),
        "{err}"
    );
}

#[test]
fn a_wrong_passphrase_or_a_tampered_vault_refuses_to_start_and_changes_nothing() {
    let mut env = TestEnv::new();
    env.ok_in(&["secret", "set", "k"], "v1");
    env.ok(&["daemon", "stop"]);
    let vault = env.data_dir().join("vault.kfv");
    let before = std::fs::read(&vault).unwrap();

    env.set("KEYFOB_PASSPHRASE", "not the passphrase");
    let out = env.keyfob(&["secret", "get", "k"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert_eq!(std::fs::read(&vault).unwrap(), before);

    env.set("KEYFOB_PASSPHRASE", "e2e passphrase");
    let mut doc: serde_json::Value = serde_json::from_slice(&before).unwrap();
    let ct = doc["ciphertext"].as_str().unwrap().to_owned();
    let flipped: String = ct
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    doc["ciphertext"] = flipped.into();
    let tampered = serde_json::to_vec_pretty(&doc).unwrap();
    std::fs::write(&vault, &tampered).unwrap();
    let out = env.keyfob(&["secret", "get", "k"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged or was modified"));
    assert_eq!(
        std::fs::read(&vault).unwrap(),
        tampered,
        "a damaged vault is never overwritten"
    );

    std::fs::write(&vault, &before).unwrap();
    assert_eq!(env.ok(&["secret", "get", "k"]), "v1\n");
}

#[test]
fn the_vault_passphrase_is_asked_for_on_a_terminal() {
    let mut env = TestEnv::new();
    env.unset("KEYFOB_PASSPHRASE");
    // `script` gives the CLI a real terminal; what we pipe in is what a person would type.
    let typed = |env: &TestEnv, pass: &str| {
        let mut c = keyfob_e2e::tool("script", "bsdutils");
        c.env_clear();
        c.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &env.env {
            c.env(k, v);
        }
        let cmd = format!("{} daemon start", keyfob_e2e::bin("keyfob").display());
        c.args(["-qec", &cmd, "/dev/null"]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pass}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, screen) = typed(&env, "typed passphrase");
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("Vault passphrase:") && screen.contains("keyfobd started"),
        "{screen}"
    );
    // Input typed ahead is echoed by the terminal before the prompt turns echo off; after the
    // prompt, nothing of it may show.
    let after_prompt = screen.split("Vault passphrase:").nth(1).unwrap_or_default();
    assert!(
        !after_prompt.contains("typed passphrase"),
        "the passphrase was echoed: {screen}"
    );
    env.ok_in(&["secret", "set", "k"], "v");
    env.ok(&["daemon", "stop"]);

    // The vault was created with the typed passphrase.
    env.set("KEYFOB_PASSPHRASE", "typed passphrase");
    assert_eq!(env.ok(&["secret", "get", "k"]), "v\n");
    env.ok(&["daemon", "stop"]);
    env.unset("KEYFOB_PASSPHRASE");
    let (code, screen) = typed(&env, "wrong");
    assert_eq!(code, Some(3), "{screen}");
    assert!(screen.contains("wrong passphrase"), "{screen}");
}
