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
    assert!(
        got["client"]["exe"].as_str().unwrap().ends_with("keyfob"),
        "{got}"
    );
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
