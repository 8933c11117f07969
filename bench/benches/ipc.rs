//! IPC round trip: an in-process keyfobd on a real Unix socket, and the blocking client
//! (the one the CLI uses) calling it.

use criterion::{Criterion, criterion_group, criterion_main};
use keyfob_daemon::vault::file::KdfParams;
use keyfob_proto::Client;
use keyfob_proto::methods::*;
use std::path::{Path, PathBuf};

fn options(dir: &Path) -> keyfob_daemon::Options {
    let socket = dir.join("run/agent.sock");
    let config = dir.join("config.toml");
    std::fs::write(dir.join("key"), "bench passphrase").unwrap();
    std::fs::write(
        &config,
        format!(
            // The rate limiter still runs on every request (its cost is measured); it is set
            // high enough never to refuse one.
            "vault = \"file\"\ndata_dir = \"{}\"\n[file_vault]\nkey_file = \"{}\"\n[limits]\nrequests_per_second = 1000000000\nburst = 1000000000\n",
            dir.join("data").display(),
            dir.join("key").display()
        ),
    )
    .unwrap();
    keyfob_daemon::Options {
        config: Some(config),
        socket: Some(socket),
        kdf: Some(KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        }),
        ..Default::default()
    }
}

fn start_daemon(dir: &Path) -> PathBuf {
    let opts = options(dir);
    let socket = opts.socket.clone().unwrap();
    // The same runtime flavour keyfobd's main uses, on its own thread.
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
            replace: true,
            ..Default::default()
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

/// The floor: a bare line echo over the same kind of socket and runtime, no JSON.
fn bare_echo(c: &mut Criterion) {
    use interprocess::local_socket::traits::tokio::Listener as _;
    use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
    use std::io::{BufRead, BufReader, Write};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let name = path
        .clone()
        .to_fs_name::<GenericFilePath>()
        .unwrap()
        .into_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = ListenerOptions::new().name(name).create_tokio().unwrap();
            loop {
                let s = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (r, mut w) = tokio::io::split(s);
                    let mut r = tokio::io::BufReader::new(r);
                    let mut line = Vec::new();
                    while r.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                        w.write_all(&line).await.unwrap();
                        line.clear();
                    }
                });
            }
        });
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stream = loop {
        if let Ok(s) = keyfob_proto::client::connect_stream(&path) {
            break s;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut r = BufReader::new(stream);
    let mut line = Vec::new();
    c.bench_function("ipc_round_trip/bare_echo", |b| {
        b.iter(|| {
            r.get_mut()
                .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1}\n")
                .unwrap();
            line.clear();
            r.read_until(b'\n', &mut line).unwrap();
        })
    });
}

/// Client and daemon on one current-thread runtime: the round trip without the cost of
/// waking another thread (which dominates on this VM).
fn same_runtime(c: &mut Criterion) {
    use keyfob_proto::async_client::AsyncClient;
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let socket = opts.socket.clone().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move { keyfob_daemon::run(opts).await.unwrap() });
    let client = rt.block_on(async {
        loop {
            if let Ok(c) = AsyncClient::connect(&socket, "bench").await {
                break c;
            }
            tokio::task::yield_now().await;
        }
    });
    let client = std::rc::Rc::new(std::cell::RefCell::new(Some(client)));
    c.bench_function("ipc_round_trip/daemon.status_same_runtime", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            async move {
                let mut c = client.borrow_mut().take().unwrap();
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    c.call::<Status>(&Empty {}).await.unwrap();
                }
                let took = start.elapsed();
                *client.borrow_mut() = Some(c);
                took
            }
        })
    });
}

criterion_group!(benches, ipc, bare_echo, same_runtime);
criterion_main!(benches);
