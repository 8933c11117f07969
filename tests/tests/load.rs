//! Load: a thousand concurrent connections with mixed requests (token, otp, secret, status,
//! and event subscribers) against one daemon, with a lock and an unlock in the middle. Every
//! request gets an answer, the only errors are "locked" while the agent is locked, subscribers
//! hear the lock and the unlock, and the daemon's memory comes back near where it was.
//!
//! The short form runs in scripts/test; `scripts/soak` runs the long one
//! (KEYFOB_LOAD_SECS=60). KEYFOB_LOAD_CONNECTIONS changes the number of connections.

use keyfob_e2e::idp::Idp;
use keyfob_e2e::{NO_PROMPTS, TestEnv, raise_fd_limit};
use keyfob_proto::async_client::AsyncClient;
use keyfob_proto::methods::*;
use keyfob_proto::{ErrorKind, Event};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A request that takes longer than this has starved.
const DEADLINE: Duration = Duration::from_secs(10);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// What one connection saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    /// Errors other than "locked" while locked, with what was asked.
    unexpected: Vec<String>,
    locked: usize,
    /// The slowest request: how long, which kind, when it started (ms into the run).
    slowest: (Duration, usize, u64),
}

/// The lock window: from just before `agent.lock` was sent to just after `agent.unlock`
/// answered (microseconds since the start; 0 = not yet).
struct Window {
    start: Instant,
    lock_sent: AtomicU64,
    unlock_done: AtomicU64,
    stop: AtomicBool,
}

impl Window {
    fn at(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether a request from `from` to `to` overlapped the lock.
    fn overlaps(&self, from: Instant, to: Instant) -> bool {
        let sent = self.lock_sent.load(Ordering::SeqCst);
        let done = self.unlock_done.load(Ordering::SeqCst);
        sent != 0 && self.at(to) >= sent && (done == 0 || self.at(from) <= done)
    }
}

async fn client(socket: PathBuf, n: usize, w: Arc<Window>) -> Seen {
    let mut seen = Seen::default();
    let mut c = match AsyncClient::connect(&socket, "load").await {
        Ok(c) => c,
        Err(e) => {
            seen.unexpected.push(format!("connect: {e}"));
            return seen;
        }
    };
    while !w.stop.load(Ordering::SeqCst) {
        let from = Instant::now();
        let outcome = tokio::time::timeout(DEADLINE, async {
            match n % 4 {
                0 => c
                    .call::<TokenGet>(&TokenParams {
                        name: "work".into(),
                        ..Default::default()
                    })
                    .await
                    .map(drop),
                1 => c
                    .call::<OtpCode>(&OtpCodeParams {
                        name: "o".into(),
                        at: None,
                    })
                    .await
                    .map(drop),
                2 => c
                    .call::<SecretGet>(&NameParams { name: "s".into() })
                    .await
                    .map(drop),
                _ => c.call::<Status>(&Empty {}).await.map(drop),
            }
        })
        .await;
        let to = Instant::now();
        seen.latencies.push(to - from);
        if to - from > seen.slowest.0 {
            seen.slowest = (to - from, n % 4, w.at(from) / 1000);
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == Some(ErrorKind::Locked) && w.overlaps(from, to) => {
                seen.locked += 1;
            }
            Ok(Err(e)) => seen.unexpected.push(format!("request {}: {e}", n % 4)),
            Err(_) => {
                seen.unexpected
                    .push(format!("request {} starved past {DEADLINE:?}", n % 4));
                return seen;
            }
        }
    }
    seen
}

/// A subscriber: whether it heard the agent locked and then unlocked.
async fn subscriber(socket: PathBuf, w: Arc<Window>) -> Result<(), String> {
    let mut c = AsyncClient::connect(&socket, "load-events")
        .await
        .map_err(|e| e.to_string())?;
    c.call::<Subscribe>(&SubscribeParams { events: Vec::new() })
        .await
        .map_err(|e| e.to_string())?;
    let mut heard = Vec::new();
    while heard.len() < 2 && !w.stop.load(Ordering::SeqCst) {
        match tokio::time::timeout(Duration::from_millis(200), c.next_event()).await {
            Ok(Ok(Event::LockChanged { locked, .. })) => heard.push(locked),
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
    if heard == [true, false] {
        Ok(())
    } else {
        Err(format!("heard {heard:?} instead of locked, unlocked"))
    }
}

#[test]
fn a_thousand_clients_with_mixed_requests_and_a_lock_in_the_middle_are_all_served() {
    let connections = setting("KEYFOB_LOAD_CONNECTIONS", 1000) as usize;
    let secs = setting("KEYFOB_LOAD_SECS", 6);
    raise_fd_limit();
    let idp = Idp::start(3600);
    let env = TestEnv::new();
    // One program makes every request here: its rate limit must not be what is measured.
    env.write_config(&format!(
        "{NO_PROMPTS}[limits]\nrequests_per_second = 10000000\nburst = 10000000\n"
    ));
    env.add_account("work", &idp.issuer);
    env.device_login("work", &idp);
    env.ok_in(&["otp", "add", "o", "--secret", "-"], "JBSWY3DPEHPK3PXP");
    env.ok_in(&["secret", "set", "s"], "v");
    env.ok(&["token", "work"]);
    let pid = env.daemon_pid().unwrap();
    let idle = rss_kib(pid);

    // Two rounds: the second must not grow the daemon beyond the first (nothing leaks per
    // connection or request), and after each the memory goes back near idle.
    let (seen, heard, peak) = round(&env, pid, connections, secs);
    check(&seen, &heard, connections, secs);
    let after = settle(&env, pid, idle, peak);
    let (seen2, heard2, peak2) = round(&env, pid, connections, secs);
    check(&seen2, &heard2, connections, secs);
    let after2 = settle(&env, pid, idle, peak2);
    eprintln!(
        "load: daemon RSS idle {idle} KiB; round 1 peak {peak} KiB, after {after} KiB; round 2 peak {peak2} KiB, after {after2} KiB"
    );
    for p in [peak, peak2] {
        assert!(
            p < idle + 64 * 1024,
            "the daemon grew from {idle} to {p} KiB under load"
        );
    }
    assert!(
        peak2 < peak + 8 * 1024,
        "the second round grew the daemon from {peak} to {peak2} KiB"
    );
}

/// Waits until the connections closed and the daemon gave back at least half of what it
/// grew by under load; its RSS then.
fn settle(env: &TestEnv, pid: i32, idle: u64, peak: u64) -> u64 {
    let bound = idle + peak.saturating_sub(idle) / 2 + 4 * 1024;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&env.ok(&["daemon", "status", "--json"])).unwrap();
        let after = rss_kib(pid);
        let open = st["connections"].as_u64().unwrap_or(u64::MAX);
        if open <= 1 && after <= bound {
            return after;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not give memory back after the load: {open} connections open, RSS {after} KiB (idle {idle}, peak {peak}, bound {bound})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

type Round = (Vec<Seen>, Vec<Result<(), String>>, u64);

fn round(env: &TestEnv, pid: i32, connections: usize, secs: u64) -> Round {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let socket = env.socket();
    let w = Arc::new(Window {
        start: Instant::now(),
        lock_sent: AtomicU64::new(0),
        unlock_done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let (seen, heard, peak) = rt.block_on(async {
        let subscribers: Vec<_> = (0..connections / 10)
            .map(|_| tokio::spawn(subscriber(socket.clone(), w.clone())))
            .collect();
        let clients: Vec<_> = (0..connections - connections / 10)
            .map(|n| tokio::spawn(client(socket.clone(), n, w.clone())))
            .collect();
        let mut peak = 0;
        let run = Duration::from_secs(secs);
        let mut admin = AsyncClient::connect(&socket, "load-admin").await.unwrap();
        let mut locked = false;
        while w.start.elapsed() < run {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(rss_kib(pid));
            // Lock a third of the way in, unlock at half way.
            if !locked && w.start.elapsed() >= run / 3 {
                w.lock_sent
                    .store(w.at(Instant::now()).max(1), Ordering::SeqCst);
                admin.call::<Lock>(&LockParams {}).await.unwrap();
                locked = true;
            } else if locked
                && w.unlock_done.load(Ordering::SeqCst) == 0
                && w.start.elapsed() >= run / 2
            {
                admin
                    .call::<Unlock>(&UnlockParams {
                        passphrase: Some(keyfob_proto::Sensitive::new("e2e passphrase".into())),
                    })
                    .await
                    .unwrap();
                w.unlock_done
                    .store(w.at(Instant::now()).max(1), Ordering::SeqCst);
            }
        }
        w.stop.store(true, Ordering::SeqCst);
        eprintln!(
            "load: lock sent {} ms in, unlock done {} ms in",
            w.lock_sent.load(Ordering::SeqCst) / 1000,
            w.unlock_done.load(Ordering::SeqCst) / 1000
        );
        let mut seen = Vec::new();
        for c in clients {
            seen.push(c.await.unwrap());
        }
        let mut heard = Vec::new();
        for s in subscribers {
            heard.push(s.await.unwrap());
        }
        (seen, heard, peak)
    });
    drop(rt);
    (seen, heard, peak)
}

/// Every request answered in time, the only errors "locked" during the lock, every subscriber
/// heard the lock and the unlock.
fn check(seen: &[Seen], heard: &[Result<(), String>], connections: usize, secs: u64) {
    let unexpected: Vec<&String> = seen.iter().flat_map(|s| &s.unexpected).collect();
    assert!(
        unexpected.is_empty(),
        "{} unexpected errors, first: {:?}",
        unexpected.len(),
        unexpected.first()
    );
    let deaf: Vec<&String> = heard.iter().filter_map(|h| h.as_ref().err()).collect();
    assert!(
        deaf.is_empty(),
        "{} subscribers: {:?}",
        deaf.len(),
        deaf.first()
    );
    let mut all: Vec<Duration> = seen.iter().flat_map(|s| s.latencies.clone()).collect();
    all.sort();
    assert!(!all.is_empty());
    let p = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    let locked: usize = seen.iter().map(|s| s.locked).sum();
    // Every connection got answers, none starved (each answer came within the deadline).
    assert!(
        seen.iter().all(|s| !s.latencies.is_empty()),
        "a connection got no answer"
    );
    assert!(locked > 0, "no request met the lock");
    assert!(
        p(0.99) < DEADLINE / 2,
        "p99 latency {:?} under load: requests are starving",
        p(0.99)
    );

    let slowest = seen.iter().map(|s| s.slowest).max().unwrap_or_default();
    eprintln!(
        "load: slowest request: {:?}, kind {} (0 token, 1 otp, 2 secret, 3 status), started {} ms in",
        slowest.0, slowest.1, slowest.2
    );
    eprintln!(
        "load: {connections} connections, {secs} s: {} requests ({locked} refused while locked), latency p50 {:?} p99 {:?} max {:?}",
        all.len(),
        p(0.5),
        p(0.99),
        all[all.len() - 1]
    );
}
