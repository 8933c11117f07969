//! One agent per data directory, and a client that always reaches it: a second daemon over the
//! same vault is refused, a client that computed another socket path is led to the running
//! agent, and a client that meets a daemon killed under it gets its answer from a new one.

use keyfob_e2e::{TestEnv, wait_until};
use std::process::Stdio;
use std::time::Duration;

/// Connections waiting on (or accepted by) the listener at `socket`, from /proc/net/unix.
fn connections_at(socket: &std::path::Path) -> usize {
    let path = socket.display().to_string();
    std::fs::read_to_string("/proc/net/unix")
        .expect("/proc/net/unix")
        .lines()
        .filter(|l| l.ends_with(&format!(" {path}")))
        // The listener itself carries the accepting flag (0x10000).
        .filter(|l| l.split_whitespace().nth(3) != Some("00010000"))
        .count()
}

fn status_pid(env: &TestEnv) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).expect("status json");
    v["pid"].as_u64().expect("pid")
}

#[test]
fn a_second_daemon_over_the_same_data_directory_refuses_and_names_the_running_one() {
    let mut env = TestEnv::new();
    let first = env.spawn_daemon();
    let elsewhere = env.root().join("elsewhere/agent.sock");
    env.set("KEYFOB_SOCKET", elsewhere.display().to_string());
    let err = match env.try_spawn_daemon() {
        Ok(_) => panic!("a second keyfobd started over the same data directory"),
        Err(e) => e,
    };
    // The start-up report names the running daemon, for the client that started this one.
    let socket = env.root().join("run/keyfob/agent.sock");
    assert_eq!(err, format!("RUNNING {} {}", first.pid(), socket.display()));
    let said = format!(
        "keyfobd is already running (pid {}) on {}",
        first.pid(),
        socket.display()
    );
    assert!(env.logs().contains(&said), "{}", env.logs());
    assert!(!elsewhere.exists(), "the refused daemon left a socket");
}

#[test]
fn a_client_with_another_socket_path_reaches_the_running_agent_and_starts_no_second() {
    let mut env = TestEnv::new();
    let first = env.spawn_daemon();
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");

    // KEYFOB_SOCKET pointing elsewhere.
    let elsewhere = env.root().join("elsewhere/agent.sock");
    env.set("KEYFOB_SOCKET", elsewhere.display().to_string());
    let out = env.keyfob(&["otp", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gh "));
    assert!(
        err.contains(&env.socket().display().to_string()),
        "the client did not say where the agent listens: {err}"
    );
    assert!(
        !elsewhere.exists(),
        "a second daemon listens at {elsewhere:?}"
    );

    // A shell without XDG_RUNTIME_DIR (cron, su, a container shell) computes /tmp/keyfob-UID.
    env.unset("KEYFOB_SOCKET");
    env.unset("XDG_RUNTIME_DIR");
    let tmp_socket = std::path::PathBuf::from(format!(
        "/tmp/keyfob-{}/agent.sock",
        rustix::process::getuid().as_raw()
    ));
    let before = tmp_socket.exists();
    let out = env.keyfob(&["otp", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gh "));
    assert_eq!(
        tmp_socket.exists(),
        before,
        "a second daemon was started at {tmp_socket:?}"
    );

    // Every one of them talked to the first daemon.
    env.set(
        "XDG_RUNTIME_DIR",
        env.root().join("run").display().to_string(),
    );
    assert_eq!(status_pid(&env), u64::from(first.pid()));
}

#[test]
fn a_client_that_meets_a_daemon_killed_under_it_gets_its_answer_from_a_new_one() {
    let env = TestEnv::new();
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let old = env.daemon_pid().expect("a running daemon");
    let pid = rustix::process::Pid::from_raw(old).expect("pid");
    // Stopped, the daemon cannot accept: the next client's connection waits in its backlog
    // with the request written, exactly as when a client connects while the daemon dies.
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("SIGSTOP");
    let client = env
        .keyfob_cmd(&["otp", "list"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keyfob");
    wait_until(
        Duration::from_secs(10),
        "the client's connection in the backlog",
        || connections_at(&env.socket()) > 0,
    );
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
    let out = client.wait_with_output().expect("wait keyfob");
    assert!(
        out.status.success(),
        "the client failed instead of starting a new daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gh "));
    assert_ne!(env.daemon_pid(), Some(old));
}

#[test]
fn a_client_during_an_orderly_stop_is_served_by_the_next_daemon() {
    use keyfob_e2e::scripted::Scripted;
    let s = Scripted::start();
    let env = TestEnv::with_scripted(&s);
    // A refresh is at the provider when the stop comes: the daemon closes its socket and
    // finishes the refresh before it exits.
    let (held, caller, stop) = env.stop_during_a_held_refresh(&s);
    // A client now finds no socket and starts a daemon, which must wait for the old one.
    let client = env.spawn_keyfob(&["otp", "list"]);
    wait_until(
        Duration::from_secs(30),
        "the new daemon to wait for the stopping one",
        || env.logs().contains("is stopping; waiting for it to exit"),
    );
    held.release();
    for child in [caller, stop, client] {
        let out = child.wait_with_output().expect("wait keyfob");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            env.logs()
        );
    }
}

#[test]
fn status_and_stop_from_a_shell_with_another_socket_path_find_the_running_agent() {
    let mut env = TestEnv::new();
    let first = env.spawn_daemon();
    let socket = env.root().join("run/keyfob/agent.sock");
    // A shell whose runtime dir differs (ssh, su, a container shell) computes another path.
    let elsewhere = env.root().join("elsewhere/agent.sock");
    env.set("KEYFOB_SOCKET", elsewhere.display().to_string());
    let out = env.keyfob(&["daemon", "status", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status said not running: {err}");
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(st["pid"].as_u64(), Some(u64::from(first.pid())), "{st}");
    assert!(
        err.contains(&socket.display().to_string()),
        "status did not say where the agent listens: {err}"
    );
    // Stop reaches it too, and starts nothing anywhere.
    env.ok(&["daemon", "stop"]);
    assert!(!elsewhere.exists(), "a daemon was started at {elsewhere:?}");
    env.unset("KEYFOB_SOCKET");
    let out = env.keyfob(&["daemon", "status"]);
    assert!(!out.status.success(), "the agent still runs after stop");
    // With no agent anywhere, status from the other path says not running, and starts none.
    env.set("KEYFOB_SOCKET", elsewhere.display().to_string());
    let out = env.keyfob(&["daemon", "status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    assert!(
        !socket.exists() && !elsewhere.exists(),
        "status started a daemon"
    );
}
