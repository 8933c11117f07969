//! The audit log: who got what, when; never a secret; an edited line is found and named.

use keyfob_e2e::TestEnv;
use serde_json::Value;

#[test]
fn security_events_are_recorded_without_secrets_and_tampering_is_named() {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "npm"], "npm-secret-value-123");
    env.ok(&["secret", "get", "npm"]);
    env.ok_in(&["otp", "add", "gh", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let code = env.ok(&["otp", "code", "gh"]);
    let out = env.keyfob(&["secret", "get", "missing"]);
    assert_eq!(out.status.code(), Some(4));

    let lines: Vec<Value> = env
        .ok(&["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |event: &str, subject: &str| {
        lines
            .iter()
            .find(|l| l["event"] == event && l["subject"] == subject)
            .unwrap_or_else(|| panic!("no {event} {subject} in {lines:?}"))
            .clone()
    };
    let got = find("secret.get", "npm");
    assert_eq!(got["outcome"], "ok");
    // The client is whoever ran `keyfob` (this test), not the CLI itself, which shows as `via`.
    let me = std::env::current_exe().unwrap();
    assert_eq!(got["client"]["exe"], me.display().to_string(), "{got}");
    assert!(
        got["client"]["via"].as_str().unwrap().ends_with("/keyfob"),
        "{got}"
    );
    assert!(got["client"]["id"].as_str().unwrap().contains('@'));
    assert!(got["client"]["pid"].is_i64());
    assert_eq!(find("secret.get", "missing")["detail"], "NotFound");
    find("otp.code", "gh");
    find("secret.set", "npm");
    assert!(lines.iter().any(|l| l["event"] == "daemon.started"));
    env.assert_logs_free_of(&["npm-secret-value-123", "JBSWY3DPEHPK3PXP", code.trim()]);

    let out = env.ok(&["audit", "verify"]);
    assert!(out.contains("intact"), "{out}");

    // Edit one line (make a failed read look successful): verify fails and names it.
    env.ok(&["daemon", "stop"]);
    let path = env.audit_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let victim = text
        .lines()
        .position(|l| l.contains("\"subject\":\"missing\""))
        .unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == victim {
                l.replace("\"error\"", "\"ok\"")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    let out = env.keyfob(&["audit", "verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("line {}", victim + 1)) && err.contains("edited"),
        "{err}"
    );
}

#[test]
fn scripts_are_identified_by_their_path_and_shells_by_their_terminal() {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "k"], "v");
    let keyfob = keyfob_e2e::bin("keyfob");
    let sh = env.root().join("deploy.sh");
    std::fs::write(
        &sh,
        format!(
            "#!/bin/bash\n{} secret get k >/dev/null\n",
            keyfob.display()
        ),
    )
    .unwrap();
    keyfob_e2e::set_mode(&sh, 0o755);
    let py = env.root().join("fetch.py");
    std::fs::write(
        &py,
        format!("import subprocess\nsubprocess.run([{:?}, 'secret', 'get', 'k'], check=True, capture_output=True)\n", keyfob.display().to_string()),
    )
    .unwrap();
    let run = |mut c: std::process::Command| {
        c.env_clear().env("PATH", std::env::var("PATH").unwrap());
        for (k, v) in &env.env {
            c.env(k, v);
        }
        assert!(c.status().unwrap().success());
    };
    run(std::process::Command::new(&sh));
    let mut c = keyfob_e2e::tool("python3", "python3");
    c.arg(&py);
    run(c);
    // An interactive shell on a terminal (`script` gives it one) is identified by its session:
    // its startup file runs the command, as a person typing it would.
    let rc = env.root().join("rc");
    std::fs::write(
        &rc,
        format!("{} secret get k >/dev/null\nexit\n", keyfob.display()),
    )
    .unwrap();
    let mut c = keyfob_e2e::tool("script", "bsdutils");
    c.args([
        "-qec",
        &format!("bash --rcfile {} -i", rc.display()),
        "/dev/null",
    ]);
    c.stdin(std::process::Stdio::null());
    c.stdout(std::process::Stdio::null());
    run(c);

    let lines: Vec<Value> = env
        .ok(&["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["event"] == "secret.get")
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0]["client"]["script"],
        sh.display().to_string(),
        "{}",
        lines[0]
    );
    assert!(
        lines[0]["client"]["exe"]
            .as_str()
            .unwrap()
            .ends_with("bash")
    );
    assert_eq!(
        lines[1]["client"]["script"],
        py.display().to_string(),
        "{}",
        lines[1]
    );
    assert!(
        lines[1]["client"]["exe"]
            .as_str()
            .unwrap()
            .contains("python3")
    );
    assert!(
        lines[2]["client"]["terminal_session"].is_i64(),
        "{}",
        lines[2]
    );
    assert!(
        lines[2]["client"]["id"]
            .as_str()
            .unwrap()
            .contains("terminal-session")
    );
}
