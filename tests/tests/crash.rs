//! SIGKILL in the middle of 1000 `otp add`/`otp rm` operations: every acknowledged write is
//! readable afterwards and the vault opens intact.

use keyfob_e2e::{TestEnv, base32, wait_until};
use keyfob_proto::Client;
use keyfob_proto::methods::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WORKERS: usize = 4;
const OPS_PER_WORKER: usize = 250;

fn secret_for(name: &str) -> String {
    let mut seed = [0u8; 20];
    for (i, b) in name.bytes().cycle().take(20).enumerate() {
        seed[i] = b.wrapping_mul(31).wrapping_add(i as u8);
    }
    base32(&seed)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Acked {
    Present,
    Absent,
}

#[test]
fn sigkill_during_writes_loses_no_acknowledged_write() {
    let env = TestEnv::new();
    let daemon = env.spawn_daemon();
    let acked: Arc<Mutex<BTreeMap<String, Acked>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (socket, acked, done) = (env.socket(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = Client::connect(&socket, "crash-test") else {
                    return;
                };
                let mut live: Vec<String> = Vec::new();
                for i in 0..OPS_PER_WORKER {
                    // Two adds for every remove, so the set keeps growing.
                    let res = if i % 3 == 2 && !live.is_empty() {
                        let name = live.remove(0);
                        c.call::<OtpRemove>(&NameParams { name: name.clone() })
                            .map(|_| (name, Acked::Absent))
                    } else {
                        let name = format!("w{w}-e{i}");
                        c.call::<OtpAdd>(&OtpAddParams {
                            name: name.clone(),
                            secret: Some(secret_for(&name).into()),
                            ..Default::default()
                        })
                        .map(|_| {
                            live.push(name.clone());
                            (name, Acked::Present)
                        })
                    };
                    match res {
                        Ok((name, state)) => {
                            acked.lock().unwrap().insert(name, state);
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => return, // the daemon died under us
                    }
                }
            })
        })
        .collect();

    wait_until(
        Duration::from_secs(60),
        "300 acknowledged operations",
        || done.load(Ordering::SeqCst) >= 300,
    );
    daemon.kill9();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "only {} names were touched",
        acked.len()
    );
    assert!(
        done.load(Ordering::SeqCst) < WORKERS * OPS_PER_WORKER,
        "the kill came too late to test anything"
    );

    // A new daemon opens the vault (a damaged one would refuse) and has every acked write.
    let _d2 = env.spawn_daemon();
    let mut c = Client::connect(&env.socket(), "verify").unwrap();
    let listed: Vec<String> = c
        .call::<OtpList>(&Empty {})
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for (name, state) in &acked {
        match state {
            Acked::Present => {
                assert!(listed.contains(name), "acknowledged add of {name} was lost");
                let uri = c
                    .call::<OtpUri>(&NameParams { name: name.clone() })
                    .unwrap();
                assert!(
                    uri.uri.expose().contains(&secret_for(name)),
                    "secret of {name} is wrong"
                );
            }
            Acked::Absent => assert!(
                !listed.contains(name),
                "acknowledged removal of {name} came back"
            ),
        }
    }
}
