//! `docker-credential-keyfob` (keyfob run under that name, as docker finds it on PATH) speaks
//! docker's credential-helper protocol byte for byte: store, get, list, erase, version, and
//! the exact "not found" answer; `list` reads no value, so it works while the agent is locked
//! and never asks for approval.

use keyfob_e2e::{TestEnv, bin, output_with_input};
use std::process::Output;

/// The helper, linked under docker's name in the env's own bin directory.
fn helper(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.root().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("docker-credential-keyfob");
    if !link.exists() {
        std::os::unix::fs::symlink(bin("keyfob"), &link).unwrap();
    }
    link
}

fn call(env: &TestEnv, action: &str, input: &str) -> Output {
    output_with_input(
        &mut env.command_of(&helper(env).display().to_string(), &[action]),
        input,
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const HUB: &str = "https://index.docker.io/v1/";

#[test]
fn the_docker_helper_protocol_cases_answer_byte_for_byte() {
    let env = TestEnv::new();
    let out = call(&env, "version", "");
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("docker-credential-keyfob"),
        "{}",
        stdout(&out)
    );

    // Nothing stored: docker's exact "none" answer, on stdout, exit 1.
    let out = call(&env, "get", HUB);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "credentials not found in native keychain\n");
    assert_eq!(stdout(&call(&env, "list", "")), "{}\n");

    let stored = format!(r#"{{"ServerURL":"{HUB}","Username":"alice","Secret":"hub-s3cr3t"}}"#);
    let out = call(&env, "store", &stored);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let ghcr = r#"{"ServerURL":"ghcr.io","Username":"bob","Secret":"ghcr-s3cr3t"}"#;
    assert!(call(&env, "store", ghcr).status.success());

    let out = call(&env, "get", HUB);
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("{stored}\n"));
    assert_eq!(
        stdout(&call(&env, "list", "")),
        format!("{{\"ghcr.io\":\"bob\",\"{HUB}\":\"alice\"}}\n")
    );

    let out = call(&env, "erase", HUB);
    assert!(out.status.success(), "{}", stdout(&out));
    let out = call(&env, "get", HUB);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "credentials not found in native keychain\n");
    assert_eq!(stdout(&call(&env, "list", "")), "{\"ghcr.io\":\"bob\"}\n");
    env.assert_logs_free_of(&["hub-s3cr3t", "ghcr-s3cr3t"]);
}

#[test]
fn list_reads_no_value_so_it_works_locked_and_asks_nobody() {
    let env = TestEnv::new();
    let ghcr = r#"{"ServerURL":"ghcr.io","Username":"bob","Secret":"ghcr-s3cr3t"}"#;
    assert!(call(&env, "store", ghcr).status.success());
    // Every secret asks a person now, and none is running; the agent is locked.
    env.write_config("[policy]\nsecret = \"always\"\n");
    env.ok(&["daemon", "stop"]);
    env.ok(&["lock"]);
    let out = call(&env, "list", "");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "{\"ghcr.io\":\"bob\"}\n");
    // A get does need the value: refused while locked, with the reason on stdout.
    let out = call(&env, "get", "ghcr.io");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("locked"), "{}", stdout(&out));
}
