//! Exec plugins through the real daemon and CLI: plugins that hang, crash, print garbage or
//! answer too much each fail their own call with their own clear error while the daemon
//! keeps serving; a plugin runs with a minimal environment; its stderr reaches the log
//! without the call's secrets; and the worked example of docs/plugins.md works as printed.

use keyfob_e2e::{TestEnv, wait_until};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The material the test plugins' `login` returns (the account's grant, a secret).
const MATERIAL: &str = "m-SECRET-4711";

/// Installs user plugin `id` (an executable `plugin` script and its manifest).
fn install(env: &TestEnv, id: &str, script: &str, exec_extra: &str) -> PathBuf {
    let dir = env.root().join("config/keyfob/plugins").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plugin.toml"),
        format!(
            "id = \"{id}\"\nname = \"{id}\"\nkind = \"exec\"\n[exec]\ncommand = \"plugin\"\n{exec_extra}\n"
        ),
    )
    .unwrap();
    let exe = dir.join("plugin");
    std::fs::write(&exe, script).unwrap();
    keyfob_e2e::set_mode(&exe, 0o755);
    dir
}

/// A plugin that describes itself and signs in well (a credential already expired, so the
/// next `keyfob token` refreshes), and answers `refresh` with `misbehave`.
fn refresh_plugin(misbehave: &str) -> String {
    format!(
        r#"#!/bin/sh
req=$(cat)
case "$req" in
  *'"method":"describe"'*)
    env > ./env.seen
    echo '{{"jsonrpc":"2.0","id":1,"result":{{"methods":["describe","login","refresh"]}}}}' ;;
  *'"method":"login"'*)
    echo '{{"jsonrpc":"2.0","id":1,"result":{{"material":"{MATERIAL}","credential":{{"token":"t0","expires_in":0}}}}}}' ;;
  *)
{misbehave}
    ;;
esac
"#
    )
}

/// An env with user plugin `id` answering `refresh` with `misbehave`, account `acct` of it
/// signed in.
fn signed_in_with(id: &str, misbehave: &str, exec_extra: &str) -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let dir = install(&env, id, &refresh_plugin(misbehave), exec_extra);
    env.ok(&["account", "add", "acct", "--provider", id]);
    env.ok(&["login", "acct"]);
    (env, dir)
}

/// `keyfob token acct` fails; its stderr. The daemon that served it is still the one
/// running, and still answers.
fn token_fails(env: &TestEnv) -> String {
    let pid = env.daemon_pid();
    let out = env.keyfob(&["token", "acct"]);
    assert!(!out.status.success(), "the token call succeeded");
    assert!(out.stdout.is_empty());
    env.ok(&["secret", "list"]);
    assert_eq!(env.daemon_pid(), pid, "the daemon was replaced");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_plugin_that_hangs_is_stopped_with_its_children_after_its_timeout_and_the_daemon_keeps_serving()
{
    let (env, dir) = signed_in_with(
        "hangs",
        "    echo $$ > ./pids; sleep 300 & echo $! >> ./pids; wait",
        "timeout_secs = 2",
    );
    let err = token_fails(&env);
    assert!(
        err.contains("plugin \"hangs\" failed") && err.contains("within 2 s"),
        "{err}"
    );
    // The plugin and the child it started are gone.
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap();
    for pid in pids.split_whitespace() {
        wait_until(
            Duration::from_secs(10),
            "the hung plugin to be gone",
            || !keyfob_e2e::running(pid),
        );
    }
}

#[test]
fn a_plugin_that_crashes_fails_the_call_and_its_stderr_reaches_the_log_without_the_secret_it_was_sent()
 {
    let (env, _) = signed_in_with(
        "crashes",
        r#"    echo "refresh went wrong with request $req" >&2; exit 3"#,
        "",
    );
    let err = token_fails(&env);
    assert!(
        err.contains("plugin \"crashes\" failed") && err.contains("exit status: 3"),
        "{err}"
    );
    assert!(!err.contains(MATERIAL));
    let logs = env.logs();
    assert!(
        logs.contains("refresh went wrong with request"),
        "the plugin's stderr is not in the log"
    );
    env.assert_logs_free_of(&[MATERIAL]);
}

#[test]
fn a_plugin_that_prints_garbage_fails_the_call_naming_what_a_plugin_must_print() {
    let (env, _) = signed_in_with("garbage", "    echo 'Traceback: this is not JSON'", "");
    let err = token_fails(&env);
    assert!(
        err.contains("plugin \"garbage\" failed") && err.contains("not a JSON-RPC reply"),
        "{err}"
    );
    assert!(
        !err.contains("Traceback"),
        "the plugin's output was echoed: {err}"
    );
}

#[test]
fn a_plugin_that_answers_too_much_is_stopped_at_the_reply_limit() {
    let (env, _) = signed_in_with("floods", "    head -c 400000 /dev/zero | tr '\\0' x", "");
    let err = token_fails(&env);
    assert!(
        err.contains("plugin \"floods\" failed") && err.contains("longer than"),
        "{err}"
    );
}

#[test]
fn a_plugin_that_says_the_grant_ended_makes_the_account_need_a_sign_in() {
    let (env, _) = signed_in_with(
        "ended",
        r#"    echo '{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"the key was revoked"}}'"#,
        "",
    );
    let out = env.keyfob(&["token", "acct"]);
    assert_eq!(out.status.code(), Some(7), "not 'needs sign-in'");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the key was revoked") && err.contains("keyfob login acct"),
        "{err}"
    );
    let show = env.ok(&["account", "show", "acct", "--json"]);
    assert!(show.contains("needs_login"), "{show}");
}

#[test]
fn a_plugin_runs_with_a_minimal_environment_without_the_daemons_secrets() {
    let (_env, dir) = signed_in_with("minimal", "    exit 1", "");
    let seen = std::fs::read_to_string(dir.join("env.seen")).unwrap();
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split('=').next())
        .filter(|n| !n.is_empty() && *n != "PWD" && *n != "SHLVL" && *n != "_")
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["KEYFOB_PLUGIN", "LANG", "PATH"], "{seen}");
    assert!(!seen.contains("e2e passphrase"));
}

#[test]
fn a_plugin_that_cannot_be_run_is_named_with_its_command_when_the_account_is_added() {
    let env = TestEnv::new();
    let dir = install(&env, "missing", "#!/bin/sh\n", "");
    std::fs::remove_file(dir.join("plugin")).unwrap();
    let out = env.keyfob(&["account", "add", "acct", "--provider", "missing"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot run") && err.contains("[exec] command"),
        "{err}"
    );
    let list = env.ok(&["account", "list", "--json"]);
    assert!(!list.contains("acct"), "the account was added: {list}");
}

/// The worked example's plugin, as docs/plugins.md prints it.
fn documented_plugin() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins.md"))
            .unwrap();
    let start = doc
        .find("```python\n#!/usr/bin/env python3\n# mint")
        .expect("the worked example in docs/plugins.md");
    let body = &doc[start + "```python\n".len()..];
    body[..body.find("```").unwrap()].to_owned()
}

#[test]
fn the_worked_example_in_the_plugin_guide_signs_in_mints_tokens_and_keeps_its_key_in_the_vault() {
    let env = TestEnv::new();
    let dir = env.root().join("config/keyfob/plugins/mint");
    std::fs::create_dir_all(&dir).unwrap();
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins.md"))
            .unwrap();
    let start = doc
        .find("```toml\n# $XDG_CONFIG_HOME/keyfob/plugins/mint/plugin.toml")
        .unwrap();
    let body = &doc[start + "```toml\n".len()..];
    std::fs::write(dir.join("plugin.toml"), &body[..body.find("```").unwrap()]).unwrap();
    std::fs::write(dir.join("mint"), documented_plugin()).unwrap();
    keyfob_e2e::set_mode(&dir.join("mint"), 0o755);
    let key = env.root().join("signing.key");
    let secret = "k-0123456789abcdef-signing";
    std::fs::write(&key, secret).unwrap();

    env.ok(&[
        "account",
        "add",
        "ci",
        "--provider",
        "mint",
        "--param",
        &format!("key_file={}", key.display()),
        "--param",
        "subject=deploy-bot",
    ]);
    env.ok(&["login", "ci"]);
    // The key lives in the vault now: the file can go.
    std::fs::remove_file(&key).unwrap();
    let token = env.ok(&["token", "ci"]);
    let token = token.trim();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    // The token is signed with the key (HS256), checked here with openssl.
    let out = keyfob_e2e::output_with_input(
        std::process::Command::new("sh").args([
            "-c",
            &format!("openssl dgst -sha256 -mac HMAC -macopt key:{secret} -binary | basenc --base64url | tr -d '=\\n'"),
        ]),
        &format!("{}.{}", parts[0], parts[1]),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        parts[2],
        "bad signature"
    );
    // A second call is served from the agent's cache: the same token.
    assert_eq!(env.ok(&["token", "ci"]).trim(), token);
    env.assert_logs_free_of(&[secret]);
}

#[test]
fn a_plugin_claiming_an_endless_credential_does_not_bring_the_daemon_down() {
    let env = TestEnv::new();
    install(
        &env,
        "endless",
        r#"#!/bin/sh
req=$(cat)
case "$req" in
  *'"method":"describe"'*) echo '{"jsonrpc":"2.0","id":1,"result":{"methods":["login"]}}' ;;
  *) echo '{"jsonrpc":"2.0","id":1,"result":{"credential":{"token":"t-endless","expires_in":18446744073709551615}}}' ;;
esac
"#,
        "",
    );
    env.ok(&["account", "add", "acct", "--provider", "endless"]);
    let pid = env.daemon_pid();
    env.ok(&["login", "acct"]);
    assert_eq!(env.ok(&["token", "acct"]).trim(), "t-endless");
    assert_eq!(env.daemon_pid(), pid, "the daemon was replaced");
}

#[test]
fn a_plugin_leaving_a_background_child_does_not_leave_it_running() {
    let env = TestEnv::new();
    let dir = install(
        &env,
        "leaves",
        r#"#!/bin/sh
req=$(cat)
case "$req" in
  *'"method":"describe"'*) echo '{"jsonrpc":"2.0","id":1,"result":{"methods":["login"]}}' ;;
  *)
    sleep 300 </dev/null >/dev/null 2>&1 &
    echo $! > ./bg
    echo '{"jsonrpc":"2.0","id":1,"result":{"credential":{"token":"t1","expires_in":300}}}' ;;
esac
"#,
        "",
    );
    env.ok(&["account", "add", "acct", "--provider", "leaves"]);
    env.ok(&["login", "acct"]);
    let pid = std::fs::read_to_string(dir.join("bg")).unwrap();
    let pid = pid.trim();
    wait_until(
        Duration::from_secs(10),
        "the plugin's child to be gone",
        || !keyfob_e2e::running(pid),
    );
}
