//! IPC round trip: an in-process keyfobd on a real Unix socket, and the blocking client
//! (the one the CLI uses) calling it.

use criterion::{Criterion, criterion_group, criterion_main};
use keyfob_daemon::vault::file::KdfParams;
use keyfob_proto::Client;
use keyfob_proto::methods::*;
use std::path::{Path, PathBuf};

fn start_daemon(dir: &Path) -> PathBuf {
    let socket = dir.join("run/agent.sock");
    let config = dir.join("config.toml");
    std::fs::write(dir.join("key"), "bench passphrase").unwrap();
    std::fs::write(
        &config,
        format!(
            "vault = \"file\"\ndata_dir = \"{}\"\n[file_vault]\nkey_file = \"{}\"\n",
            dir.join("data").display(),
            dir.join("key").display()
        ),
    )
    .unwrap();
    let opts = keyfob_daemon::Options {
        config: Some(config),
        socket: Some(socket.clone()),
        kdf: Some(KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        }),
        ..Default::default()
    };
    // The same runtime flavour keyfobd's main uses.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(keyfob_daemon::run(opts)).unwrap();
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Client::connect(&socket, "bench").is_err() {
        assert!(std::time::Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    socket
}

fn ipc(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let socket = start_daemon(dir.path());
    let mut client = Client::connect(&socket, "bench").unwrap();
    client
        .call::<OtpAdd>(&OtpAddParams {
            name: "bench".into(),
            secret: Some("JBSWY3DPEHPK3PXP".into()),
            uri: None,
            kind: None,
            digits: None,
            period: None,
            algorithm: None,
            counter: None,
            replace: true,
        })
        .unwrap();

    let mut g = c.benchmark_group("ipc_round_trip");
    g.bench_function("daemon.status", |b| {
        b.iter(|| client.call::<Status>(&Empty {}).unwrap())
    });
    g.bench_function("otp.code", |b| {
        b.iter(|| {
            client
                .call::<OtpCode>(&OtpCodeParams {
                    name: "bench".into(),
                    at: None,
                })
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, ipc);
criterion_main!(benches);
