//! What an allowed request does not carry further: an `otp` allowance hands out no recovery
//! codes (they are secrets) and no codes for later, and a scoped key's event subscription
//! hears only its own accounts.

use keyfob_e2e::TestEnv;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The built-in policy: `otp` is served without a prompt, secrets ask a person.
fn built_in_policy() -> TestEnv {
    let env = TestEnv::new();
    env.write_config("");
    env.ok_in(&["otp", "add", "work", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    env.ok_in(
        &["otp", "recovery", "work", "--add", "-"],
        "recovery-code-one\nrecovery-code-two\n",
    );
    env
}

fn key(env: &TestEnv, account: &str, ops: &str) -> String {
    keyfob_e2e::approver::approved(
        env,
        &[
            "key",
            "create",
            "--name",
            "k",
            "--account",
            account,
            "--ops",
            ops,
        ],
        "create agent key \"k\"",
    )
    .trim()
    .to_owned()
}

#[test]
fn an_unapproved_script_gets_no_recovery_code_under_the_otp_rule() {
    let env = built_in_policy();
    // One-time codes are served (the otp rule)...
    assert!(env.keyfob(&["otp", "code", "work"]).status.success());
    // ...recovery codes are secrets: a person must approve, and none is used up.
    let out = env.keyfob(&["otp", "recovery", "work"]);
    assert!(!out.status.success(), "a recovery code was handed out");
    assert!(stderr(&out).contains("approval"), "{}", stderr(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("recovery-code"),
        "a recovery code was printed"
    );
    let list = env.ok(&["otp", "list"]);
    assert!(list.contains("2 recovery codes"), "{list}");
}

#[test]
fn an_otp_key_cannot_mint_codes_for_later() {
    let env = built_in_policy();
    let k = key(&env, "work", "otp");
    assert!(
        env.keyfob_with_key(&k, &["otp", "code", "work"])
            .status
            .success()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The next period's code is fine; an hour ahead is an admin operation.
    let next = (now + 30).to_string();
    let out = env.keyfob_with_key(&k, &["otp", "code", "work", "--at", &next]);
    assert!(out.status.success(), "{}", stderr(&out));
    let later = (now + 3600).to_string();
    let out = env.keyfob_with_key(&k, &["otp", "code", "work", "--at", &later]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("otp.code"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_scoped_key_hears_no_events_of_other_accounts() {
    let env = built_in_policy();
    let k = key(&env, "work", "otp");
    let s = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut call = |id: u64, method: &str, params: Value| {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(w, "{req}").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap()
    };
    let hello = call(
        0,
        "hello",
        json!({"version": keyfob_proto::PROTOCOL_VERSION, "key": k}),
    );
    assert!(hello["result"].is_object(), "{hello}");
    let sub = call(1, "subscribe", json!({"events": []}));
    assert!(sub["result"].is_object(), "{sub}");
    // Another account's change first, then one of the key's own: only the latter arrives.
    env.ok_in(
        &["otp", "add", "private", "--secret", "-"],
        "JBSWY3DPEHPK3PXP",
    );
    env.ok(&["otp", "rm", "work"]);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let ev: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ev["params"]["name"], "work", "{ev}");
}

#[test]
fn a_code_for_later_needs_what_a_code_needs_and_more() {
    let env = TestEnv::new();
    // Every code asks a person here; a code for later must not slip past that as "admin".
    env.write_config("[policy]\notp = \"always\"\n");
    env.ok_in(&["otp", "add", "work", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    let out = env.keyfob(&["otp", "code", "work", "--at", &later]);
    assert!(!out.status.success(), "a code for later was handed out");
    assert!(stderr(&out).contains("approval"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_revoked_keys_subscription_hears_nothing_more() {
    let env = built_in_policy();
    let k = key(&env, "work", "otp");
    let s = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    // A bound on a broken daemon, not a timing assumption: the answer comes at once.
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for (id, method, params) in [
        (
            0,
            "hello",
            json!({"version": keyfob_proto::PROTOCOL_VERSION, "key": k}),
        ),
        (1, "subscribe", json!({"events": []})),
    ] {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(w, "{req}").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("\"result\""), "{line}");
    }
    env.ok(&["key", "revoke", "k"]);
    // An event of the key's own account: the revoked key's connection ends instead.
    env.ok(&["otp", "rm", "work"]);
    let mut line = String::new();
    let n = r.read_line(&mut line).unwrap();
    assert_eq!(n, 0, "a revoked key still heard: {line}");
}
