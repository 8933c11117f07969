//! `keyfob setup git|docker|kube` writes each tool's own configuration so it asks Keyfob:
//! idempotent, with a backup, and `--dry-run` writes nothing. Checked with the tools
//! themselves reading what was written.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{TestEnv, bin, output_with_input, tool};

/// `git` in the env's HOME.
fn git(env: &TestEnv, args: &[&str], input: &str) -> String {
    let out = output_with_input(
        tool("git", "git")
            .args(args)
            .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("GIT_TERMINAL_PROMPT", "0"),
        input,
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn setup_git_makes_gits_own_config_ask_keyfob_once() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    // The generic OpenID plugin names no git host: say which.
    let out = env.keyfob(&["setup", "git", "--account", "work"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--host"));
    // A dry run writes nothing.
    env.ok(&[
        "setup",
        "git",
        "--account",
        "work",
        "--host",
        "git.example.test",
        "--dry-run",
    ]);
    let key = "credential.https://git.example.test.helper";
    assert_eq!(git(&env, &["config", "--global", "--get-all", key], ""), "");
    env.ok(&[
        "setup",
        "git",
        "--account",
        "work",
        "--host",
        "git.example.test",
    ]);
    let again = env.ok(&[
        "setup",
        "git",
        "--account",
        "work",
        "--host",
        "git.example.test",
    ]);
    assert!(again.contains("already"), "{again}");
    let helpers = git(&env, &["config", "--global", "--get-all", key], "");
    assert_eq!(
        helpers,
        format!(
            "!{} git-credential --account work\n",
            bin("keyfob").display()
        )
    );
    // git itself now gets the token, with no helper given on its command line.
    let filled = git(
        &env,
        &["credential", "fill"],
        "capability[]=authtype\nprotocol=https\nhost=git.example.test\n\n",
    );
    let token = env.ok(&["token", "work"]);
    assert!(
        filled.contains(&format!("credential={}", token.trim())),
        "{filled}"
    );
}

#[test]
fn setup_docker_adds_a_cred_helper_and_keeps_everything_else() {
    let env = TestEnv::new();
    let dir = env.root().join("home/.docker");
    std::fs::create_dir_all(&dir).unwrap();
    let original = r#"{"auths":{"example.test":{}},"credsStore":"desktop"}"#;
    std::fs::write(dir.join("config.json"), original).unwrap();
    env.ok(&["setup", "docker", "--registry", "ghcr.io", "--dry-run"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
        original
    );
    env.ok(&["setup", "docker", "--registry", "ghcr.io"]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["credHelpers"]["ghcr.io"], "keyfob");
    assert_eq!(v["credsStore"], "desktop");
    assert!(v["auths"]["example.test"].is_object());
    assert_eq!(
        std::fs::read_to_string(dir.join("config.json.keyfob-backup")).unwrap(),
        original
    );
    let again = env.ok(&["setup", "docker", "--registry", "ghcr.io"]);
    assert!(again.contains("already"), "{again}");
}

#[test]
fn setup_kube_writes_a_kubeconfig_user_kubectl_reads() {
    let mut env = TestEnv::new();
    let config = env.root().join("kubeconfig");
    env.set("KUBECONFIG", config.display().to_string());
    env.add_account("work", "http://127.0.0.1:9");
    env.ok(&["setup", "kube", "--account", "work", "--dry-run"]);
    assert!(!config.exists(), "a dry run wrote the kubeconfig");
    env.ok(&["setup", "kube", "--account", "work"]);
    let view = env
        .command_of(
            "kubectl",
            &[
                "config",
                "view",
                "-o",
                "jsonpath={.users[?(@.name==\"keyfob-work\")].user.exec}",
            ],
        )
        .output()
        .unwrap();
    let exec: serde_json::Value = serde_json::from_slice(&view.stdout).unwrap();
    assert_eq!(exec["command"], bin("keyfob").display().to_string());
    assert_eq!(exec["args"], serde_json::json!(["kube-credential", "work"]));
    assert_eq!(exec["interactiveMode"], "Never");
    let again = env.ok(&["setup", "kube", "--account", "work"]);
    assert!(again.contains("already"), "{again}");
}
