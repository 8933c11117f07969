//! How refresh copes with a provider that rate-limits or fails, and with broken plugins.

use keyfob_e2e::TestEnv;
use keyfob_e2e::scripted::Scripted;
use std::time::Duration;

fn env_with(s: &Scripted) -> TestEnv {
    let env = TestEnv::new();
    // A broken user plugin next to it is skipped, with the offending key named in the log.
    let bad = env.root().join("config/keyfob/plugins/broken");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("plugin.toml"),
        "id = \"broken\"\nname = \"B\"\nkind = \"oauth2\"\nflows = [\"device\"]\ncolour = \"red\"\n",
    )
    .unwrap();
    let env = env.with_scripted_in_place(s);
    // The sign-in's access token lives 1 s: once it has expired, each call refreshes.
    env.wait_for_token_expiry("s");
    env
}

fn answer(status: u16, headers: &[(&str, &str)]) -> keyfob_e2e::scripted::Answer {
    (
        status,
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        r#"{"error":"slow_down"}"#.into(),
    )
}

#[test]
fn a_429_is_waited_out_as_the_provider_asks() {
    let s = Scripted::start();
    let env = env_with(&s);
    s.script
        .lock()
        .unwrap()
        .push_back(answer(429, &[("Retry-After", "1")]));
    assert_eq!(env.ok(&["token", "s"]).trim(), "scripted-access-2");
    let r = s.refreshes.lock().unwrap().clone();
    assert_eq!(r.len(), 2);
    assert!(
        r[1] - r[0] >= Duration::from_secs(1),
        "Retry-After was not honoured: {:?}",
        r[1] - r[0]
    );
}

#[test]
fn a_long_retry_after_is_reported_not_waited_for() {
    let s = Scripted::start();
    let env = env_with(&s);
    s.script
        .lock()
        .unwrap()
        .push_back(answer(429, &[("Retry-After", "120")]));
    let out = env.keyfob(&["token", "s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("rate limiting") && err.contains("retry after 120 s"),
        "{err}"
    );
    assert_eq!(s.refreshes.lock().unwrap().len(), 1);
    // The account is not broken by it: the next try succeeds.
    assert_eq!(env.ok(&["token", "s"]).trim(), "scripted-access-2");
}

#[test]
fn server_errors_are_retried_with_backoff_then_reported() {
    let s = Scripted::start();
    let env = env_with(&s);
    s.script
        .lock()
        .unwrap()
        .extend([answer(503, &[]), answer(503, &[])]);
    assert_eq!(env.ok(&["token", "s"]).trim(), "scripted-access-3");
    assert_eq!(s.refreshes.lock().unwrap().len(), 3);
    env.wait_for_token_expiry("s");
    s.script
        .lock()
        .unwrap()
        .extend([answer(503, &[]), answer(503, &[]), answer(503, &[])]);
    let out = env.keyfob(&["token", "s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 503"), "{err}");
    let show: serde_json::Value =
        serde_json::from_str(&env.ok(&["account", "show", "s", "--json"])).unwrap();
    assert_eq!(
        show["state"], "signed_in",
        "a provider outage does not end the sign-in"
    );
}

#[test]
fn a_broken_user_plugin_is_skipped_with_its_key_named() {
    let s = Scripted::start();
    let env = env_with(&s);
    let out = env.keyfob(&[
        "account",
        "add",
        "b",
        "--provider",
        "broken",
        "--client-id",
        "c",
    ]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown provider \"broken\""));
    let logs = env.logs();
    assert!(
        logs.contains("colour") && logs.contains("broken/plugin.toml"),
        "{logs}"
    );
}

#[test]
fn a_gateway_error_or_a_huge_answer_is_reported_and_the_refresh_token_not_sent_again() {
    let s = Scripted::start();
    let env = env_with(&s);
    // A 502 may follow a refresh the provider completed: no retry now.
    s.script.lock().unwrap().push_back(answer(502, &[]));
    let out = env.keyfob(&["token", "s"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not sent again"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.refreshes.lock().unwrap().len(), 1);
    // A hostile provider answering with 2 MiB: not read, not retried, the daemon unharmed.
    let huge = format!(r#"{{"access_token":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    s.script.lock().unwrap().push_back((200, Vec::new(), huge));
    let out = env.keyfob(&["token", "s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("larger than"), "{err}");
    assert_eq!(s.refreshes.lock().unwrap().len(), 2);
    // The grant still works.
    assert!(env.keyfob(&["token", "s"]).status.success());
}
