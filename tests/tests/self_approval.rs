//! A script cannot answer its own approval prompt. An answer counts only from the tray, or
//! from a `keyfob approve` that reads a terminal and stands apart from the requester: not
//! started by it (nor its parent), not fed from a pipe, not left behind in its terminal
//! session. Each attack is a shell script doing what an unapproved program would.

use keyfob_e2e::{TestEnv, wait_until};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The lines every attack shares: `$k` is keyfob, `status` reads `keyfob daemon status`.
const PRELUDE: &str = r#"#!/bin/bash
k="$KEYFOB_BIN"
cd "$(dirname "$0")"
status() { "$k" daemon status --json | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
"#;

/// After `approve_line` started an approver: ask for the secret once the approver listens,
/// then `answer` (a shell command) once the request waits; record how the asker ended.
fn attack(env: &TestEnv, approve_line: &str, answer: &str) -> std::path::PathBuf {
    let script = env.root().join("attack.sh");
    std::fs::write(
        &script,
        format!(
            r#"{PRELUDE}{approve_line}
until [ "$(status approvers)" = 1 ]; do :; done
"$k" secret get s1 >got.out 2>got.err &
asker=$!
until [ "$(status approvals_waiting)" = 1 ]; do :; done
{answer}
wait $asker
echo "asker exit $?" >>got.err
"#
        ),
    )
    .unwrap();
    keyfob_e2e::set_mode(&script, 0o755);
    script
}

fn env_with_secret() -> TestEnv {
    let mut env = TestEnv::new();
    // The built-in policy (secrets ask a person), and a short wait for the answer that never
    // counts.
    env.write_config("[policy]\napproval_timeout_secs = 3\n");
    env.ok_in(&["secret", "set", "s1"], "own-prompt-secret");
    env.set(
        "KEYFOB_BIN",
        keyfob_e2e::bin("keyfob").display().to_string(),
    );
    env
}

/// The secret was not handed out, and the approver said `why`.
fn assert_refused(root: &Path, why: &str) {
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    assert!(
        !read("got.out").contains("own-prompt-secret"),
        "the script approved itself"
    );
    assert!(
        read("got.err").contains("asker exit "),
        "{}",
        read("got.err")
    );
    assert!(
        !read("got.err").contains("asker exit 0"),
        "{}",
        read("got.err")
    );
    assert!(
        read("approver.out").contains(why),
        "{}",
        read("approver.out")
    );
}

fn run(env: &TestEnv, script: &Path) {
    let out = env
        .command_of(&script.display().to_string(), &[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_script_cannot_answer_its_own_prompt() {
    let env = env_with_secret();
    // `printf 'a\n' | keyfob approve & keyfob token work`, with the answer held back until
    // the request waits.
    let script = attack(
        &env,
        "mkfifo answers\nexec 3<>answers\n\"$k\" approve <answers >approver.out 2>&1 &",
        "echo a >&3",
    );
    run(&env, &script);
    assert_refused(env.root(), "cannot answer its own prompt");
}

#[test]
fn a_detached_approver_fed_from_a_pipe_does_not_count() {
    let env = env_with_secret();
    // Reparented away (setsid -f) and in a session of its own, but its answers come from a
    // pipe the script writes: no person is there.
    let script = attack(
        &env,
        "mkfifo answers\nexec 3<>answers\nsetsid -f sh -c 'exec \"$0\" approve <answers >approver.out 2>&1' \"$k\"",
        "echo a >&3",
    );
    run(&env, &script);
    assert_refused(env.root(), "not a terminal");
}

#[test]
fn an_approver_left_in_the_requesters_terminal_session_does_not_count() {
    let env = env_with_secret();
    // A script running in a terminal leaves an approver behind on that terminal (a double
    // fork: not its child any more, same session), then types the answer into the terminal
    // it controls.
    let script = attack(
        &env,
        "( \"$k\" approve </dev/tty >approver.out 2>&1 & )",
        "touch waiting",
    );
    let mut term = env
        .command_of(
            "script",
            &["-qfec", &script.display().to_string(), "/dev/null"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    wait_until(Duration::from_secs(30), "the request to wait", || {
        env.root().join("waiting").exists()
    });
    let mut keys = term.stdin.take().unwrap();
    writeln!(keys, "a").unwrap();
    keys.flush().unwrap();
    let status = term.wait().unwrap();
    assert!(status.success());
    assert_refused(env.root(), "terminal session");
}

#[test]
fn a_program_imitating_an_approved_script_gets_no_remembered_approval() {
    let env = env_with_secret();
    let keyfob = keyfob_e2e::bin("keyfob").display().to_string();
    // The script a person approves "always".
    let home = env.root().join("project");
    std::fs::create_dir(&home).unwrap();
    let ok = home.join("ok.py");
    std::fs::write(
        &ok,
        format!(
            "import subprocess\nsubprocess.run([{keyfob:?}, 'secret', 'get', 's1'], check=True)\n"
        ),
    )
    .unwrap();
    let mut ap = keyfob_e2e::approver::Approver::start(&env);
    let mut run_ok = keyfob_e2e::tool("python3", "python3");
    run_ok.arg("ok.py").current_dir(&home);
    for (k, v) in &env.env {
        run_ok.env(k, v);
    }
    let child = run_ok
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let req = ap.next_request();
    assert!(req.contains("ok.py"), "{req}");
    ap.answer("a");
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(
        ap.line_containing("#").contains("not remembered"),
        "{}",
        ap.text()
    );
    drop(ap);
    // Another program, also started as `python3 ok.py`, moves into the project directory
    // before it asks: by its command line and working directory it looks like the approved
    // script. No approver runs now: nothing remembered may let it through.
    let evil_dir = env.root().join("elsewhere");
    std::fs::create_dir(&evil_dir).unwrap();
    std::fs::write(
        evil_dir.join("ok.py"),
        format!(
            "import os, subprocess\nos.chdir({:?})\nr = subprocess.run([{keyfob:?}, 'secret', 'get', 's1'], capture_output=True, text=True)\nprint(r.stdout, end='')\n",
            home.display().to_string()
        ),
    )
    .unwrap();
    let mut evil = keyfob_e2e::tool("python3", "python3");
    evil.arg("ok.py").current_dir(&evil_dir);
    for (k, v) in &env.env {
        evil.env(k, v);
    }
    let out = evil.stdin(Stdio::null()).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("own-prompt-secret"),
        "the imitation got the secret"
    );
    let list = env.ok(&["approvals", "list"]);
    assert!(!list.contains("ok.py"), "{list}");
}
