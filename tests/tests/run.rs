//! `keyfob run` and `keyfob exec`: a child gets credentials in its environment, keeps the
//! terminal, gets the signals sent to keyfob, and its exit code is keyfob's.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{TestEnv, tool};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn env_with_secret() -> TestEnv {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "s1"], "run-secret-value");
    env
}

#[test]
fn run_resolves_references_for_the_child_alone_and_returns_its_exit_code() {
    let mut env = env_with_secret();
    env.set("API_KEY", "keyfob://secret/s1");
    let out = env
        .keyfob_cmd(&["run", "--", "sh", "-c", "echo \"$API_KEY\"; exit 7"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run-secret-value\n");
    // An env file, with a plain value beside a reference.
    let file = env.root().join("app.env");
    std::fs::write(&file, "# app\nTOKEN_A=keyfob://secret/s1\nPLAIN=\"x y\"\n").unwrap();
    let out = env
        .keyfob_cmd(&[
            "run",
            "--env-file",
            &file.display().to_string(),
            "--",
            "sh",
            "-c",
            "echo \"$TOKEN_A|$PLAIN\"",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "run-secret-value|x y\n"
    );
    // A bad reference fails before anything runs.
    env.set("API_KEY", "keyfob://nothing/s1");
    let out = env
        .keyfob_cmd(&["run", "--", "sh", "-c", "echo ran"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

#[test]
fn run_forwards_sigterm_to_the_child_and_returns_its_exit_code() {
    let env = env_with_secret();
    let mut child = env
        .keyfob_cmd(&[
            "run",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "got-term");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
fn run_leaves_the_child_on_the_terminal() {
    let env = env_with_secret();
    // Under a pseudo-terminal, the child's stdin and stdout are that terminal, not pipes.
    let keyfob = keyfob_e2e::bin("keyfob").display().to_string();
    let out = tool("script", "bsdutils")
        .args([
            "-qec",
            &format!("{keyfob} run -- sh -c 'test -t 0 && test -t 1 && echo on-the-terminal'"),
            "/dev/null",
        ])
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("on-the-terminal"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn exec_puts_an_accounts_token_in_the_named_variable() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    let out = env
        .keyfob_cmd(&[
            "exec",
            "--account",
            "work=TOK",
            "--",
            "sh",
            "-c",
            "echo \"$TOK\"",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = env.ok(&["token", "work"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token.trim());
    // The generic OpenID plugin names no variable: keyfob says to name one.
    let out = env
        .keyfob_cmd(&["exec", "--account", "work", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--account work=VARIABLE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
