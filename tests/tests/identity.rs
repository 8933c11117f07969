//! A client's identity cannot be borrowed: inline code run by an interpreter is "inline code",
//! never the script named among its options; a non-interactive `bash -c` on a terminal is not
//! that terminal's session; a program merely named like Keyfob's is not skipped as Keyfob.
//! Each test reads who the daemon said the client was from the audit log.

use keyfob_e2e::{TestEnv, bin, set_mode, tool};
use serde_json::Value;
use std::process::{Command, Stdio};

fn env_with_secret() -> TestEnv {
    let env = TestEnv::new();
    env.ok_in(&["secret", "set", "k"], "v");
    env
}

/// Runs `c` in `env`'s environment; it must succeed.
fn run(env: &TestEnv, c: Command) {
    run_with(env, c, &[]);
}

/// Runs `c` in `env`'s environment plus `extra`; it must succeed.
fn run_with(env: &TestEnv, mut c: Command, extra: &[(&str, &std::path::Path)]) {
    c.env_clear().env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in &env.env {
        c.env(k, v);
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).stdout(Stdio::null());
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The client of the last `secret.get`, as audited.
fn last_client(env: &TestEnv) -> Value {
    env.ok(&["audit", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|l| l["event"] == "secret.get")
        .expect("a secret.get line")["client"]
        .clone()
}

/// A script that a person approved once, whose identity inline code must not borrow.
fn ok_script(env: &TestEnv) -> String {
    let p = env.root().join("ok.py");
    std::fs::write(&p, "print('ok')\n").unwrap();
    p.display().to_string()
}

fn assert_inline(c: &Value, script: &str) {
    assert!(c["script"].is_null(), "identified as a script: {c}");
    assert_ne!(c["script"], script);
    assert_eq!(c["inline"], true, "{c}");
    assert!(c["id"].as_str().unwrap().ends_with("#inline-code"), "{c}");
}

#[test]
fn python_dash_x_cannot_borrow_a_scripts_identity() {
    let env = env_with_secret();
    let ok = ok_script(&env);
    let mut c = tool("python3", "python3");
    c.args([
        "-X",
        &ok,
        "-c",
        &format!(
            "import subprocess; subprocess.run([{:?}, 'secret', 'get', 'k'], check=True)",
            bin("keyfob").display().to_string()
        ),
    ]);
    run(&env, c);
    assert_inline(&last_client(&env), &ok);
}

#[test]
fn bash_rcfile_cannot_borrow_a_scripts_identity() {
    let env = env_with_secret();
    let ok = ok_script(&env);
    let mut c = tool("bash", "bash");
    c.args([
        "--rcfile",
        &ok,
        "-c",
        // Two commands: bash would replace itself with a single one.
        &format!("{} secret get k; true", bin("keyfob").display()),
    ]);
    run(&env, c);
    assert_inline(&last_client(&env), &ok);
}

#[test]
fn a_non_interactive_bash_c_on_a_terminal_does_not_inherit_its_session() {
    let env = env_with_secret();
    // `script` gives the shell a terminal; `bash -c` still only runs the code it was given.
    let mut c = tool("script", "bsdutils");
    c.args([
        "-qec",
        &format!("bash -c '{} secret get k; true'", bin("keyfob").display()),
        "/dev/null",
    ]);
    run(&env, c);
    let client = last_client(&env);
    assert!(client["terminal_session"].is_null(), "{client}");
    assert_eq!(client["inline"], true, "{client}");
}

#[test]
fn a_program_merely_named_like_keyfob_is_not_skipped_as_keyfob() {
    let env = env_with_secret();
    // A copy of the CLI under another directory and name: it is a client like any other.
    let fake = env.root().join("evil-keyfob");
    std::fs::copy(bin("keyfob"), &fake).unwrap();
    set_mode(&fake, 0o755);
    let mut c = Command::new(&fake);
    c.args(["secret", "get", "k"]);
    run(&env, c);
    let client = last_client(&env);
    assert_eq!(client["exe"], fake.display().to_string(), "{client}");
    assert!(client["via"].is_null(), "{client}");
}

#[test]
fn node_require_cannot_borrow_a_scripts_identity() {
    let env = env_with_secret();
    // ok.js is what a person approved; --require runs pre.js first, under no identity of its own.
    let ok = env.root().join("ok.js");
    std::fs::write(
        &ok,
        format!(
            "require('child_process').execFileSync({:?}, ['secret', 'get', 'k']);\n",
            bin("keyfob").display().to_string()
        ),
    )
    .unwrap();
    let pre = env.root().join("pre.js");
    std::fs::write(&pre, "// code the person never approved\n").unwrap();
    let mut c = tool("node", "nodejs");
    c.args([
        "--require",
        &pre.display().to_string(),
        &ok.display().to_string(),
    ]);
    run(&env, c);
    assert_inline(&last_client(&env), &ok.display().to_string());
}

#[test]
fn a_module_path_in_the_environment_makes_a_script_another_client() {
    let env = env_with_secret();
    let ok = env.root().join("ok2.py");
    std::fs::write(
        &ok,
        format!(
            "import subprocess\nsubprocess.run([{:?}, 'secret', 'get', 'k'], check=True)\n",
            bin("keyfob").display().to_string()
        ),
    )
    .unwrap();
    let ok = ok.display().to_string();
    let mut plain = tool("python3", "python3");
    plain.arg(&ok);
    run(&env, plain);
    let approved = last_client(&env);
    assert_eq!(approved["script"], ok.as_str(), "{approved}");
    // The same script with a module path searched first (PYTHONPATH=/tmp/evil): its imports
    // may be anyone's code, so it is not the client a person approved.
    let evil = env.root().join("evil");
    std::fs::create_dir(&evil).unwrap();
    let mut hijacked = tool("python3", "python3");
    hijacked.arg(&ok);
    run_with(&env, hijacked, &[("PYTHONPATH", &evil)]);
    let client = last_client(&env);
    assert_ne!(client["id"], approved["id"], "{client}");
    assert!(
        client["id"].as_str().unwrap().contains("PYTHONPATH"),
        "{client}"
    );
}

/// A script that asks for the secret, and where its client was identified.
fn asking_script(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let p = env.root().join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\n{} secret get k >/dev/null\n",
            bin("keyfob").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn an_edited_script_with_its_mtime_set_back_is_another_client() {
    let env = env_with_secret();
    let script = asking_script(&env, "ok.sh");
    let mut c = tool("bash", "bash");
    c.arg(&script);
    run(&env, c);
    let approved = last_client(&env);
    // Rewritten in place (same inode), its modification time set back to what it was.
    let mtime = std::fs::metadata(&script).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&script).unwrap() + "echo other code\n";
    std::fs::write(&script, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&script)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let mut c = tool("bash", "bash");
    c.arg(&script);
    run(&env, c);
    let edited = last_client(&env);
    assert_eq!(edited["script"], approved["script"]);
    assert_ne!(edited["id"], approved["id"], "{edited}");
}

#[test]
fn a_script_run_by_a_relative_path_is_the_same_client() {
    let env = env_with_secret();
    let script = asking_script(&env, "rel.sh");
    let mut c = tool("bash", "bash");
    c.arg(&script);
    run(&env, c);
    let absolute = last_client(&env);
    let mut c = tool("bash", "bash");
    c.arg("./rel.sh").current_dir(env.root());
    run(&env, c);
    let relative = last_client(&env);
    assert_eq!(relative["id"], absolute["id"], "{relative}");
    assert_eq!(relative["script"], script.display().to_string());
}
