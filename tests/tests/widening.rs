//! Whatever widens access needs a person's yes: a script that is refused a secret cannot make
//! itself an agent key for it, and the prompt shows exactly the key asked for. An admin key
//! provisions unattended.

use keyfob_e2e::TestEnv;
use keyfob_e2e::approver::{Approver, approved};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CREATE: [&str; 8] = [
    "key",
    "create",
    "--name",
    "x",
    "--account",
    "s1",
    "--ops",
    "secret",
];

#[test]
fn a_refused_script_cannot_create_itself_a_key_without_a_person() {
    let env = TestEnv::new();
    env.write_config(""); // the built-in policy
    env.ok_in(&["secret", "set", "s1"], "widening-test-secret");
    // The script is refused the secret...
    assert!(!env.keyfob(&["secret", "get", "s1"]).status.success());
    // ...and cannot give itself a key for it.
    let out = env.keyfob(&CREATE);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("needs a person's yes") && err.contains("A person creates agent keys"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "a key was printed");
    assert!(!env.ok(&["key", "list"]).contains('x'), "a key was created");

    // With a person at the approver: the prompt shows the key's scope and lifetime, and a
    // "no" creates nothing.
    let mut ap = Approver::start(&env);
    let c = env.spawn_keyfob(&CREATE);
    let req = ap.next_request();
    assert!(
        req.contains("create agent key \"x\" allowing secret on \"s1\", valid until revoked"),
        "{req}"
    );
    ap.answer("d");
    let out = c.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    drop(ap);
    assert!(
        !env.ok(&["key", "list"]).contains('x'),
        "a denied key exists"
    );
}

#[test]
fn an_admin_key_provisions_keys_unattended() {
    let env = TestEnv::new();
    env.write_config("");
    env.ok_in(&["secret", "set", "s1"], "widening-test-secret");
    let admin = approved(
        &env,
        &[
            "key",
            "create",
            "--name",
            "prov",
            "--account",
            "s1",
            "--ops",
            "admin,secret",
        ],
        "create agent key \"prov\" allowing admin, secret on \"s1\"",
    );
    // No approver is running: the admin key creates a scoped key by itself.
    let out = env
        .keyfob_cmd(&CREATE)
        .env("KEYFOB_KEY", admin.trim())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let key = String::from_utf8(out.stdout).unwrap();
    let got = env
        .keyfob_cmd(&["secret", "get", "s1"])
        .env("KEYFOB_KEY", key.trim())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "widening-test-secret\n"
    );
}

#[test]
fn allow_always_on_a_key_prompt_is_not_remembered() {
    let env = TestEnv::new();
    env.write_config("");
    env.ok_in(&["secret", "set", "s1"], "widening-test-secret");
    let mut ap = Approver::start(&env);
    let c = env.spawn_keyfob(&CREATE);
    ap.next_request();
    ap.answer("a");
    assert!(c.wait_with_output().unwrap().status.success());
    drop(ap);
    // The same client asks again: a person must say yes again.
    let again = [
        "key",
        "create",
        "--name",
        "y",
        "--account",
        "s1",
        "--ops",
        "secret",
    ];
    let out = env.keyfob(&again);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["approvals", "list", "--json"])).unwrap();
    assert_eq!(
        list["approvals"].as_array().map_or(0, Vec::len),
        0,
        "a key decision was remembered: {list}"
    );
}

#[test]
fn an_admin_key_cannot_provision_or_administer_beyond_its_accounts() {
    let env = TestEnv::new();
    env.write_config("");
    env.ok_in(&["secret", "set", "s1"], "own-account-secret");
    env.ok_in(&["secret", "set", "prod"], "other-account-secret");
    let admin = approved(
        &env,
        &[
            "key",
            "create",
            "--name",
            "prov",
            "--account",
            "s1",
            "--ops",
            "admin",
            "--ttl",
            "1h",
        ],
        "create agent key \"prov\" allowing admin on \"s1\", valid for 1 h",
    );
    let with_admin = |args: &[&str]| {
        env.keyfob_cmd(args)
            .env("KEYFOB_KEY", admin.trim())
            .output()
            .unwrap()
    };
    // A key for another account: refused, and no key was made.
    let out = with_admin(&[
        "key",
        "create",
        "--name",
        "x",
        "--account",
        "prod",
        "--ops",
        "secret",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"prod\""), "{}", stderr(&out));
    assert!(!env.ok(&["key", "list"]).contains("x "), "a key was made");
    // Nor may it change another account's items.
    let out = with_admin(&["secret", "rm", "prod"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        env.ok(&["secret", "list"]).contains("prod"),
        "prod was removed"
    );
    // Nor hand out an operation it does not hold, or a key outliving it.
    let out = with_admin(&[
        "key",
        "create",
        "--name",
        "y",
        "--account",
        "s1",
        "--ops",
        "secret",
        "--ttl",
        "10m",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = with_admin(&[
        "key",
        "create",
        "--name",
        "z",
        "--account",
        "s1",
        "--ops",
        "admin",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("outlives"), "{}", stderr(&out));
    // Nor act on the whole agent (revoking keys), nor answer approval prompts.
    let out = with_admin(&["key", "revoke", "prov"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = with_admin(&["approve"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // Its own account it administers unattended.
    assert!(with_admin(&["secret", "rm", "s1"]).status.success());
}
