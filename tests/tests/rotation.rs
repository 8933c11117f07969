//! A signed-in grant is never lost or replayed: the token broker's rules, tested through the
//! real daemon and CLI against the real OpenID provider (tests/idp, which rotates refresh
//! tokens and revokes the grant on a replay) and a scripted token endpoint for the faults.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::scripted::{CLOSE, Scripted};
use keyfob_e2e::{SmallDisk, TestEnv, wait_until};
use keyfob_proto::Client;
use keyfob_proto::methods::{TokenGet, TokenParams};
use std::process::Child;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn finish(child: Child) -> (bool, String, String) {
    let out = child.wait_with_output().expect("wait keyfob");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn account_state(env: &TestEnv, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["account", "show", name, "--json"])).expect("json");
    v["state"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn twenty_calls_with_sixty_second_tokens_make_at_most_one_refresh() {
    let idp = Idp::start(60);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    for _ in 0..20 {
        assert!(!env.ok(&["token", "work"]).trim().is_empty());
    }
    let refreshes = idp.grants("refresh_token");
    assert!(
        refreshes <= 1,
        "{refreshes} refreshes (and rotations) for 20 calls"
    );
}

#[test]
fn three_hundred_callers_at_expiry_of_four_second_tokens_share_one_refresh() {
    keyfob_e2e::raise_fd_limit();
    let idp = Idp::start(4);
    let env = TestEnv::new();
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    env.wait_for_token_expiry("work");
    let before = idp.grants("refresh_token");
    const CALLERS: usize = 300;
    let barrier = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (socket, barrier) = (env.socket(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (_, t) = Client::connect_and_call::<TokenGet>(
                    &socket,
                    "caller",
                    &TokenParams {
                        name: "work".into(),
                        ..Default::default()
                    },
                )
                .expect("token");
                t
            })
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for c in callers {
        let t = c.join().expect("caller");
        let exp = t.expires_at.expect("expires_at");
        assert!(exp >= now, "a caller got an expired token");
    }
    assert_eq!(idp.grants("refresh_token") - before, 1);
}

#[test]
fn a_rotated_refresh_token_is_kept_when_the_disk_fills_before_it_is_stored() {
    let s = Scripted::start();
    let env = TestEnv::new();
    let disk = SmallDisk::mount(&env.data_dir(), "512k");
    let env = env.with_scripted_in_place(&s);
    env.wait_for_token_expiry("s");
    let held = s.hold_next_refresh();
    let caller = env.spawn_keyfob(&["token", "s"]);
    held.wait_arrived();
    // The in-flight mark is on disk; now the disk fills before the rotated token is stored.
    let filler = disk.fill();
    held.release();
    let (ok, _, err) = finish(caller);
    assert!(
        !ok,
        "the caller got a token whose refresh token was not stored"
    );
    assert!(
        err.contains("rotated") && err.contains("No space left on device"),
        "the error does not name the cause: {err}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).expect("status");
    assert_eq!(status["unsaved"][0]["account"], "s", "{status}");
    let audit = std::fs::read_to_string(env.audit_path()).unwrap_or_default();
    assert!(audit.contains("grant.unsaved"), "not audited: {audit}");

    // Room again: the next call stores the kept token and refreshes with it, never the old.
    std::fs::remove_file(filler).unwrap();
    assert!(!env.ok(&["token", "s"]).trim().is_empty());
    let used = s.used.lock().unwrap().clone();
    assert_eq!(
        used.last().map(String::as_str),
        Some("scripted-refresh-1"),
        "{used:?}"
    );
    assert!(
        !used[1..].contains(&"scripted-refresh-0".to_owned()),
        "the old token was replayed: {used:?}"
    );
    // And it is durable: a new daemon refreshes with the latest rotation.
    env.ok(&["daemon", "stop"]);
    assert!(!env.ok(&["token", "s"]).trim().is_empty());
    let last = s.last_used();
    assert_eq!(
        last,
        format!("scripted-refresh-{}", s.used.lock().unwrap().len() - 1)
    );
}

#[test]
fn an_orderly_stop_waits_for_a_slow_refresh_and_keeps_its_rotation() {
    let s = Scripted::start();
    let env = TestEnv::with_scripted(&s);
    let (held, caller, stop) = env.stop_during_a_held_refresh(&s);
    held.release();
    let (ok, _, err) = finish(stop);
    assert!(ok, "{err}");
    let (ok, out, err) = finish(caller);
    assert!(ok, "the caller lost its answer to the stop: {err}");
    assert_eq!(out.trim(), "scripted-access-1");
    // A new daemon refreshes with the rotated token the stopping one stored.
    assert!(!env.ok(&["token", "s"]).trim().is_empty());
    assert_eq!(s.last_used(), "scripted-refresh-1");
}

#[test]
fn a_refresh_error_with_http_200_makes_the_account_need_sign_in_without_retries() {
    let s = Scripted::start();
    let env = TestEnv::with_scripted(&s);
    env.wait_for_token_expiry("s");
    s.script.lock().unwrap().push_back((
        200,
        vec![],
        r#"{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}"#.into(),
    ));
    let out = env.keyfob(&["token", "s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("keyfob login s"), "{err}");
    assert!(err.contains("bad_refresh_token"), "{err}");
    assert_eq!(
        s.refreshes.lock().unwrap().len(),
        1,
        "a final error was retried"
    );
    assert_eq!(account_state(&env, "s"), "needs_login");
}

#[test]
fn a_provider_that_closes_the_connection_after_reading_the_refresh_gets_no_replay() {
    let s = Scripted::start();
    let env = TestEnv::with_scripted(&s);
    env.wait_for_token_expiry("s");
    s.script
        .lock()
        .unwrap()
        .push_back((CLOSE, vec![], String::new()));
    let out = env.keyfob(&["token", "s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the refresh was sent twice");
    assert!(err.contains("outcome is unknown"), "{err}");
    assert_eq!(
        s.refreshes.lock().unwrap().len(),
        1,
        "the same refresh token was sent again"
    );
    // The grant is not declared dead: the next call tries once more.
    assert_eq!(account_state(&env, "s"), "signed_in");
    assert!(!env.ok(&["token", "s"]).trim().is_empty());
}

#[test]
fn a_sign_in_during_a_refresh_is_not_overwritten_by_the_old_grant() {
    let s = Scripted::start();
    let env = TestEnv::with_scripted(&s);
    env.wait_for_token_expiry("s");
    let held = s.hold_next_refresh();
    let caller = env.spawn_keyfob(&["token", "s"]);
    held.wait_arrived();
    let signins = s.device_grants();
    let login = env.spawn_keyfob(&["login", "s", "--device", "--json"]);
    wait_until(
        Duration::from_secs(30),
        "the new sign-in's token request",
        || s.device_grants() > signins,
    );
    held.release();
    let (ok, _, err) = finish(caller);
    assert!(ok, "{err}");
    let (ok, _, err) = finish(login);
    assert!(ok, "{err}");
    // The new sign-in's refresh token (scripted-refresh-0) is the one kept, not the old
    // grant's rotation (scripted-refresh-1) that finished after it.
    env.ok(&["daemon", "stop"]);
    assert!(!env.ok(&["token", "s"]).trim().is_empty());
    assert_eq!(s.last_used(), "scripted-refresh-0");
}
