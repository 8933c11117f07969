//! The real git (the machine's) asking `keyfob git-credential` through its credential-helper
//! protocol: a bearer token with its expiry for git that says `capability[]=authtype`, a
//! username and token for a caller that does not, a new token after git reports a refused
//! one, and one clear line (never a prompt) for an account that needs a sign-in.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{TestEnv, bin, tool};
use std::io::Write;
use std::process::{Output, Stdio};

/// `git -c credential.helper=… credential ACTION` with `input` on stdin.
fn git_credential(env: &TestEnv, action: &str, input: &str) -> Output {
    let helper = format!("!{} git-credential --account work", bin("keyfob").display());
    let mut child = tool("git", "git")
        .args(["-c", "credential.interactive=false"])
        .args(["-c", &format!("credential.helper={helper}")])
        .args(["credential", action])
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn field(out: &Output, key: &str) -> Option<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

const ASK: &str = "capability[]=authtype\nprotocol=https\nhost=git.example.test\n\n";

fn signed_in() -> (Idp, TestEnv) {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    (idp, env)
}

#[test]
fn git_credential_fill_gets_a_bearer_token_with_its_expiry() {
    let (_idp, env) = signed_in();
    let out = git_credential(&env, "fill", ASK);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = env.ok(&["token", "work"]);
    assert_eq!(field(&out, "authtype").as_deref(), Some("Bearer"));
    assert_eq!(field(&out, "credential").as_deref(), Some(token.trim()));
    let expiry: u64 = field(&out, "password_expiry_utc").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expiry > now, "{expiry}");
    // A caller that does not speak authtype gets a username and the token as password.
    let out = git_credential(&env, "fill", "protocol=https\nhost=git.example.test\n\n");
    assert_eq!(field(&out, "password").as_deref(), Some(token.trim()));
    assert!(field(&out, "username").is_some());
}

#[test]
fn after_a_refused_token_the_next_fill_gets_a_new_one_without_a_prompt() {
    let (idp, env) = signed_in();
    let first = field(&git_credential(&env, "fill", ASK), "credential").unwrap();
    let refreshes = idp.grants("refresh_token");
    // The server answered 401: git rejects what it used.
    let reject = format!(
        "capability[]=authtype\nprotocol=https\nhost=git.example.test\nauthtype=Bearer\ncredential={first}\n\n"
    );
    let out = git_credential(&env, "reject", &reject);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = field(&git_credential(&env, "fill", ASK), "credential").unwrap();
    assert_ne!(second, first, "the refused token was handed out again");
    assert_eq!(idp.grants("refresh_token"), refreshes + 1);
    // The account was not forgotten, and a second reject of the old token changes nothing.
    git_credential(&env, "reject", &reject);
    let third = field(&git_credential(&env, "fill", ASK), "credential").unwrap();
    assert_eq!(third, second);
    assert_eq!(idp.grants("refresh_token"), refreshes + 1);
}

#[test]
fn git_on_an_account_that_needs_a_sign_in_gets_one_line_and_no_prompt() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    let out = git_credential(&env, "fill", ASK);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyfob login work"), "{err}");
    assert!(field(&out, "credential").is_none());
}
