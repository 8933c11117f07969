//! SIGKILL at random moments of refreshes with rotation against the real OpenID provider
//! (which revokes the grant when a rotated-away refresh token comes back), then a plain
//! `keyfob token`: every grant is either kept, or its loss surfaces as "needs sign-in" naming
//! `keyfob login` (never a hang, never an internal error). A loss is only possible when the
//! kill lands between the provider's answer and the durable write; the daemon logs that
//! window for every rotation, and the report gives its median and maximum.
//!
//! Rounds: `KEYFOB_SOAK_ROUNDS` per vault kind (default 10, the short form in scripts/test);
//! `scripts/soak N` runs N.

use keyfob_e2e::TestEnv;
use keyfob_e2e::idp::Idp;
use keyfob_e2e::secret_service::SecretService;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn rounds() -> usize {
    std::env::var("KEYFOB_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// A cheap, seedless pseudo-random number (the kill moments need spread, not secrecy).
fn jitter(round: usize, max_us: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    (nanos ^ (round as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % max_us
}

#[derive(Default, Debug)]
struct Report {
    kept: usize,
    lost: usize,
    windows_us: Vec<u64>,
}

fn soak(env: &TestEnv, idp: &Idp, label: &str) -> Report {
    env.add_account("work", &idp.issuer);
    env.device_login("work", idp);
    let marks = env.data_dir().join("refreshing");
    let mut report = Report::default();
    for round in 0..rounds() {
        let log_before = std::fs::metadata(env.log_path()).map_or(0, |m| m.len() as usize);
        // A fresh daemon has no cached token: this call refreshes (and the provider rotates).
        let mut caller = env
            .keyfob_cmd(&["token", "work"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn keyfob");
        // The mark lives only while the request is out: a caller already done means the
        // refresh was quicker than this look, and the kill lands after the write.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let marked = std::fs::read_dir(&marks).is_ok_and(|mut d| d.next().is_some());
            if marked || caller.try_wait().expect("try_wait").is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no refresh started"
            );
            std::thread::sleep(Duration::from_micros(300));
        }
        // Somewhere in the next few milliseconds: before the answer, in the write window, or
        // after the write.
        std::thread::sleep(Duration::from_micros(jitter(round, 30_000)));
        if let Some(pid) = env.daemon_pid().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = caller.wait_with_output();
        // What the killed daemon logged: whether it had finished storing the rotated token.
        let killed_log = std::fs::read(env.log_path()).unwrap_or_default();
        let stored_before_kill =
            String::from_utf8_lossy(&killed_log[log_before.min(killed_log.len())..])
                .contains("rotated refresh token stored");
        let out = env.keyfob(&["token", "work"]);
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => report.kept += 1,
            Some(7) if err.contains("keyfob login work") => {
                assert!(
                    !stored_before_kill,
                    "round {round}: the rotated token was stored, and still the grant was lost"
                );
                report.lost += 1;
                env.device_login("work", idp);
            }
            other => panic!(
                "round {round}: neither kept nor reported as needs sign-in ({other:?}): {err}"
            ),
        }
        env.ok(&["daemon", "stop"]);
    }
    for line in env.logs().lines() {
        if line.contains("rotated refresh token stored")
            && let Some(v) = line
                .split("window_us=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        {
            report.windows_us.push(v);
        }
    }
    report.windows_us.sort_unstable();
    let median = report.windows_us.get(report.windows_us.len() / 2).copied();
    let max = report.windows_us.last().copied();
    println!(
        "soak {label}: {} rounds, grants kept {}, lost {} (each reported as needs sign-in); write window over {} rotations: median {} µs, max {} µs",
        rounds(),
        report.kept,
        report.lost,
        report.windows_us.len(),
        median.map_or("-".into(), |m| m.to_string()),
        max.map_or("-".into(), |m| m.to_string()),
    );
    report
}

#[test]
fn sigkill_during_refreshes_never_loses_a_grant_silently_file_vault() {
    let idp = Idp::start(300);
    let env = TestEnv::new();
    let r = soak(&env, &idp, "file vault");
    assert_eq!(r.kept + r.lost, rounds());
    assert!(!r.windows_us.is_empty(), "no rotation was measured");
}

#[test]
fn sigkill_during_refreshes_never_loses_a_grant_silently_keychain() {
    let idp = Idp::start(300);
    let mut env = TestEnv::new();
    let ss = SecretService::start(env.root(), &env.root().join("home"), true, "pw");
    env.set("DBUS_SESSION_BUS_ADDRESS", ss.address.clone());
    env.set("KEYFOB_VAULT", "keychain");
    let r = soak(&env, &idp, "keychain");
    assert_eq!(r.kept + r.lost, rounds());
    assert!(!r.windows_us.is_empty(), "no rotation was measured");
}
