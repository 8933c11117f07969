//! `keyfob-bench`: the IPC-level measurements of `bench/run`, against a running `keyfobd`
//! (the one the package installs) or against a bare echo server on the same kind of socket.
//! Each subcommand prints one JSON line of figures; `bench/run` turns them into RESULTS.md.

use clap::{Parser, Subcommand};
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::{Listener as _, Stream as _};
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use keyfob_proto::Sensitive;
use keyfob_proto::async_client::AsyncClient;
use keyfob_proto::codec::response_line;
use keyfob_proto::methods::{Empty, Method as _, Status, TokenGet, TokenParams, TokenResult};
use keyfob_proto::wire::IncomingRequest;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(about = "IPC measurements for bench/run")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serves a bare line echo on SOCKET (the floor): tokio on one thread, as keyfobd runs.
    Echo {
        socket: PathBuf,
        /// Answer each line as keyfobd would if it were only the protocol: the request
        /// decoded (envelope, then params), a fixed token reply encoded. No policy, cache,
        /// audit or wiping: what speaking JSON-RPC alone costs (the "JSON floor").
        #[arg(long)]
        json: bool,
        /// No tokio: a plain blocking loop that serves one connection at a time (a floor for
        /// one-shot clients such as bench/floor-client.c only), to see what the event loop
        /// itself adds.
        #[arg(long)]
        blocking: bool,
    },
    /// One client, one request at a time: round-trip median and p99.
    Rtt {
        socket: PathBuf,
        /// The account whose cached token is asked for.
        #[arg(long)]
        account: String,
        #[arg(long, default_value_t = 20_000)]
        n: usize,
    },
    /// Requests per second with CONNS connections, each one request at a time.
    Rps {
        socket: PathBuf,
        #[arg(long)]
        conns: usize,
        #[arg(long, default_value_t = 3)]
        secs: u64,
        /// Ask keyfobd for this account's cached token (otherwise: echo a line of that size).
        #[arg(long)]
        account: Option<String>,
    },
    /// N callers, connected and waiting, ask for ACCOUNT's token the moment it has expired:
    /// per round, the time from letting them go until the first and the last is served.
    Callers {
        socket: PathBuf,
        #[arg(long)]
        account: String,
        #[arg(long, default_value_t = 500)]
        n: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// The provider's own latency for a refresh: POSTs to TOKEN_URL, rotating the refresh
    /// token read from stdin; over a new connection each time, or (--pause-ms) over one
    /// kept-alive connection with that pause before each request, as the agent's client
    /// talks to it.
    ProviderRefresh {
        token_url: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        client_secret: String,
        #[arg(long, default_value_t = 30)]
        n: usize,
        #[arg(long)]
        pause_ms: Option<u64>,
    },
    /// Stores a secret in the keychain N times, each after PAUSE_MS, the way keyfobd stores a
    /// rotated refresh token (one store: one D-Bus connection and encrypted session, an item
    /// that already exists replaced): what the keychain alone takes for that store here.
    KeychainStore {
        #[arg(long, default_value_t = 8)]
        n: usize,
        #[arg(long, default_value_t = 3000)]
        pause_ms: u64,
    },
    /// What touching memory costs after a quiet while: MB of memory, each page touched once
    /// back to back and once after PAUSE_MS untouched, N times; the cost per page.
    Pages {
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
        mb: u16,
        #[arg(long, default_value_t = 3000)]
        pause_ms: u64,
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        n: u16,
    },
    /// Holds N connections open (each past `hello`) until stdin closes.
    Idle {
        socket: PathBuf,
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// N token requests spread over the given accounts, over 10 connections.
    Requests {
        socket: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        accounts: Vec<String>,
    },
}

fn main() -> Result<(), String> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Echo {
            socket,
            json,
            blocking: true,
        } => return blocking_echo(&socket, json),
        Cmd::KeychainStore { n, pause_ms } => {
            println!("{}", keychain_store(n, Duration::from_millis(pause_ms))?);
            return Ok(());
        }
        Cmd::Pages { mb, pause_ms, n } => {
            let (mb, n) = (usize::from(mb), usize::from(n));
            println!("{}", pages(mb, Duration::from_millis(pause_ms), n));
            return Ok(());
        }
        _ => {}
    }
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let out = rt.block_on(async {
        match cli.cmd {
            Cmd::Echo { socket, json, .. } => echo(socket, json).await,
            Cmd::Rtt { socket, account, n } => rtt(&socket, &account, n).await,
            Cmd::Rps {
                socket,
                conns,
                secs,
                account,
            } => rps(&socket, conns, secs, account).await,
            Cmd::Callers {
                socket,
                account,
                n,
                rounds,
            } => callers(&socket, &account, n, rounds).await,
            Cmd::ProviderRefresh {
                token_url,
                client_id,
                client_secret,
                n,
                pause_ms,
            } => provider_refresh(&token_url, &client_id, &client_secret, n, pause_ms).await,
            Cmd::Idle { socket, n } => idle(&socket, n).await,
            Cmd::KeychainStore { .. } | Cmd::Pages { .. } => {
                unreachable!("run before the runtime starts")
            }
            Cmd::Requests {
                socket,
                n,
                accounts,
            } => requests(&socket, n, accounts).await,
        }
    })?;
    println!("{out}");
    Ok(())
}

/// 1,000 connections need more descriptors than a shell's usual soft limit of 1,024.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(max) = l.maximum {
        l.current = Some(max.min(65_536));
        let _ = setrlimit(Resource::Nofile, l);
    }
}

fn token_params(account: &str) -> TokenParams {
    TokenParams {
        name: account.to_owned(),
        // A token with any life left, so the cached one is served (the broker's rule for
        // tokens shorter-lived than the default minimum).
        min_ttl: Some(0),
        ..Default::default()
    }
}

async fn connect(socket: &Path) -> Result<AsyncClient, String> {
    AsyncClient::connect(socket, "keyfob-bench")
        .await
        .map_err(|e| format!("cannot reach keyfobd at {}: {e}", socket.display()))
}

async fn echo(socket: PathBuf, json: bool) -> Result<serde_json::Value, String> {
    let name = socket
        .clone()
        .to_fs_name::<GenericFilePath>()
        .map_err(|e| e.to_string())?;
    let listener = ListenerOptions::new()
        .name(name)
        .create_tokio()
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    println!("ready");
    loop {
        let Ok(s) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(s);
            let mut r = BufReader::new(r);
            let mut line = Vec::new();
            while r.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                let Some(a) = answer(&line, json) else { break };
                if w.write_all(a.bytes()).await.is_err() {
                    break;
                }
                line.clear();
            }
        });
    }
}

/// A floor server's answer to one line: the line itself (the echo), or a token reply (the
/// JSON floor).
enum Answer<'a> {
    Echo(&'a [u8]),
    Json(keyfob_proto::codec::LineBuf),
}

impl Answer<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Answer::Echo(line) => line,
            Answer::Json(reply) => reply.as_slice(),
        }
    }
}

/// What the echo (`json` false) or the JSON floor answers to `line`; `None` ends the
/// connection (a line that is not a request, for the JSON floor).
fn answer(line: &[u8], json: bool) -> Option<Answer<'_>> {
    if json {
        json_reply(line).map(Answer::Json)
    } else {
        Some(Answer::Echo(line))
    }
}

/// The echo (or JSON) floor without tokio: accept, then read and answer line by line with
/// blocking calls, one reply per write as keyfobd writes them, until the client leaves.
fn blocking_echo(socket: &Path, json: bool) -> Result<(), String> {
    use std::io::{BufRead as _, Write as _};
    let listener = std::os::unix::net::UnixListener::bind(socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    println!("ready");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Ok(mut w) = stream.try_clone() else {
            continue;
        };
        let mut r = std::io::BufReader::new(stream);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let Some(a) = answer(&line, json) else { break };
            if w.write_all(a.bytes()).is_err() {
                break;
            }
            line.clear();
        }
    }
    Ok(())
}

/// Reads one byte of each page of `mb` MB, `n` times back to back and after `pause`: the
/// cost per page (µs) of touching memory again after a quiet while.
fn pages(mb: usize, pause: Duration, n: usize) -> serde_json::Value {
    const PAGE: usize = 4096;
    let mut mem = vec![1u8; mb << 20];
    // One byte read per page; black_box makes the memory opaque to the optimiser, so every
    // round reads it again rather than reusing what an earlier round read.
    let touch = |mem: &mut [u8]| {
        let mem = std::hint::black_box(mem);
        let start = Instant::now();
        let mut sum = 0u64;
        for i in (0..mem.len()).step_by(PAGE) {
            sum += u64::from(mem[i]);
        }
        std::hint::black_box(sum);
        start.elapsed().as_secs_f64() * 1e6 / (mem.len() / PAGE) as f64
    };
    touch(&mut mem);
    let (mut busy, mut quiet) = (Vec::new(), Vec::new());
    for _ in 0..n {
        busy.push(touch(&mut mem));
        std::thread::sleep(pause);
        quiet.push(touch(&mut mem));
    }
    json!({"pages": (mb << 20) / PAGE, "pause_ms": pause.as_millis() as u64,
           "back_to_back_us_per_page": busy, "after_pause_us_per_page": quiet})
}

/// Times `n` keychain stores, each after `pause`, through one store as keyfobd's vault does.
fn keychain_store(n: usize, pause: Duration) -> Result<serde_json::Value, String> {
    use keyring_core::api::CredentialStoreApi as _;
    let store =
        zbus_secret_service_keyring_store::Store::new().map_err(|e| format!("no keychain: {e}"))?;
    let entry = |value: &[u8]| {
        store
            .build("keyfob-bench", "store-floor", None)
            .and_then(|e| e.set_secret(value))
            .map_err(|e| format!("the keychain store failed: {e}"))
    };
    let timed = || -> Result<Vec<Duration>, String> {
        // The item exists before the first timed store, as a signed-in account's does.
        entry(b"first")?;
        let mut t = Vec::with_capacity(n);
        for i in 0..n {
            std::thread::sleep(pause);
            let value = format!("rotated-{i:032}");
            let start = Instant::now();
            entry(value.as_bytes())?;
            t.push(start.elapsed());
        }
        Ok(t)
    };
    let result = timed();
    // The item goes whatever happened, so a run by hand leaves nothing in the keychain.
    if let Ok(e) = store.build("keyfob-bench", "store-floor", None) {
        let _ = e.delete_credential();
    }
    let mut t = result?;
    t.sort();
    let (Some(min), Some(max)) = (t.first(), t.last()) else {
        return Err("--n must be at least 1".into());
    };
    Ok(
        json!({"median_ms": percentile(&t, 0.5) / 1e3, "min_ms": min.as_secs_f64() * 1e3,
        "max_ms": max.as_secs_f64() * 1e3, "n": n, "pause_ms": pause.as_millis() as u64}),
    )
}

/// The JSON floor's answer to one request line, decoded as keyfobd decodes it: a `token.get`
/// is answered with a token reply the size of the test provider's, any other method (the
/// `hello` a whole `keyfob token` process sends first) with an empty result. `None` for a
/// line that is not a request.
fn json_reply(line: &[u8]) -> Option<keyfob_proto::codec::LineBuf> {
    let text = std::str::from_utf8(line).ok()?;
    let req: IncomingRequest = serde_json::from_str(text).ok()?;
    let id = req.id.unwrap_or(serde_json::Value::Null);
    let params = req.params.map_or("{}", |p| p.get());
    if req.method.as_deref() != Some(TokenGet::NAME) {
        let _: serde_json::Value = serde_json::from_str(params).ok()?;
        return Some(response_line(&id, Ok(&Empty {})));
    }
    let params: TokenParams = serde_json::from_str(params).ok()?;
    let expires = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() + 3600;
    let result = TokenResult {
        access_token: Sensitive::new("a".repeat(43)),
        token_type: "Bearer".into(),
        expires_at: Some(expires),
        scopes: vec!["openid".into(), "offline_access".into()],
        id_token: None,
        claims: None,
        claims_unverified: false,
        fields: Default::default(),
    };
    (!params.name.is_empty()).then(|| response_line(&id, Ok(&result)))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

async fn rtt(socket: &Path, account: &str, n: usize) -> Result<serde_json::Value, String> {
    let mut c = connect(socket).await?;
    let p = token_params(account);
    let mut t = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        c.call::<TokenGet>(&p).await.map_err(|e| e.to_string())?;
        // The first tenth warms up.
        if i >= n / 10 {
            t.push(start.elapsed());
        }
    }
    t.sort();
    Ok(json!({"median_us": percentile(&t, 0.5), "p99_us": percentile(&t, 0.99), "n": n}))
}

/// The request line keyfob's client writes for a cached token of `account`.
fn token_line(account: &str) -> Vec<u8> {
    let mut l = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "method": "token.get",
        "params": token_params(account)}))
    .unwrap_or_default();
    l.push(b'\n');
    l
}

/// One connection of the rps measurement. Against keyfobd and against the echo server alike
/// the client only writes a line and reads one back, so the two differ only on the server's
/// side; keyfobd's first answer is checked to be a token.
struct Conn {
    stream: BufReader<Stream>,
    line: Vec<u8>,
}

impl Conn {
    async fn open(socket: &Path, account: &Option<String>) -> Result<Self, String> {
        let name = socket
            .to_fs_name::<GenericFilePath>()
            .map_err(|e| e.to_string())?;
        let s = Stream::connect(name)
            .await
            .map_err(|e| format!("cannot reach {}: {e}", socket.display()))?;
        let mut c = Conn {
            stream: BufReader::new(s),
            line: token_line(account.as_deref().unwrap_or("bench")),
        };
        if account.is_some() {
            let mut buf = Vec::new();
            let hello = br#"{"jsonrpc":"2.0","id":0,"method":"hello","params":{"version":1,"client":"keyfob-bench"}}
"#;
            c.stream
                .get_mut()
                .write_all(hello)
                .await
                .map_err(|e| e.to_string())?;
            c.stream
                .read_until(b'\n', &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            c.one(&mut buf).await?;
            if !buf.windows(14).any(|w| w == b"\"access_token\"") {
                return Err(format!(
                    "keyfobd did not answer with a token: {}",
                    String::from_utf8_lossy(&buf)
                ));
            }
        }
        Ok(c)
    }

    async fn one(&mut self, buf: &mut Vec<u8>) -> Result<(), String> {
        self.stream
            .get_mut()
            .write_all(&self.line)
            .await
            .map_err(|e| e.to_string())?;
        buf.clear();
        self.stream
            .read_until(b'\n', buf)
            .await
            .map_err(|e| e.to_string())?;
        if buf.is_empty() {
            return Err("the server closed the connection".into());
        }
        Ok(())
    }
}

async fn rps(
    socket: &Path,
    conns: usize,
    secs: u64,
    account: Option<String>,
) -> Result<serde_json::Value, String> {
    let mut open = Vec::with_capacity(conns);
    for _ in 0..conns {
        open.push(Conn::open(socket, &account).await?);
    }
    // Every connection is open before the clock starts; a short warm-up runs first.
    let warm = Instant::now() + Duration::from_millis(500);
    let end = warm + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in open {
        tasks.spawn(async move {
            let mut buf = Vec::new();
            let mut counted = 0u64;
            loop {
                c.one(&mut buf).await?;
                let now = Instant::now();
                if now >= end {
                    return Ok::<_, String>(counted);
                }
                if now >= warm {
                    counted += 1;
                }
            }
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.map_err(|e| e.to_string())??;
    }
    Ok(json!({"conns": conns, "rps": total as f64 / secs as f64}))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// How long one round of waiting callers may take before the bench fails loudly.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

async fn callers(
    socket: &Path,
    account: &str,
    n: usize,
    rounds: usize,
) -> Result<serde_json::Value, String> {
    let mut probe = connect(socket).await?;
    let p = token_params(account);
    // The callers are tasks parked on a signal before each round, each with its connection,
    // the way waiting callers are: the clock starts when they are let go, not before 500 tasks
    // are made (on this machine that alone took ~20 ms after a pause, before any request).
    let (go, _) = tokio::sync::watch::channel(None::<Instant>);
    let (done, mut served) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let mut c = connect(socket).await?;
        let mut go = go.subscribe();
        let done = done.clone();
        let p = p.clone();
        tasks.spawn(async move {
            while go.changed().await.is_ok() {
                let Some(start) = *go.borrow_and_update() else {
                    continue;
                };
                let asked = start.elapsed();
                let r = c.call::<TokenGet>(&p).await.map_err(|e| e.to_string());
                let r = r.map(|t| t.access_token.expose().to_owned());
                if done.send((r, start.elapsed(), asked)).is_err() {
                    return;
                }
            }
        });
    }
    drop(done);
    let mut took = Vec::new();
    let mut firsts = Vec::new();
    // When the last caller's task began its request (before writing it): the callers' own
    // share of the time.
    let mut asks = Vec::new();
    for _ in 0..rounds {
        let current = probe
            .call::<TokenGet>(&p)
            .await
            .map_err(|e| e.to_string())?;
        let exp = current
            .expires_at
            .ok_or("the provider gave the token no lifetime")?;
        // Wait until the cached token has expired (expires_at is in whole seconds, rounded
        // either way: a second more is past it in both cases).
        let wait = (exp as f64 + 1.05 - unix_now()).max(0.0);
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        go.send_replace(Some(Instant::now()));
        let deadline = tokio::time::Instant::now() + ROUND_LIMIT;
        let mut first = Duration::MAX;
        let mut last = Duration::ZERO;
        let mut last_asked = Duration::ZERO;
        let mut tokens = std::collections::HashSet::new();
        for _ in 0..n {
            let got = tokio::select! {
                got = served.recv() => got,
                // A task that ends (a panic) would otherwise leave this waiting for ever: the
                // others still hold their senders.
                Some(j) = tasks.join_next() => {
                    return Err(match j {
                        Err(e) => format!("a caller's task failed: {e}"),
                        Ok(()) => "a caller's task ended before it was served".into(),
                    });
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(format!("not all {n} callers were served within {ROUND_LIMIT:?}"));
                }
            };
            let (r, t, a) = got.ok_or("the callers' tasks ended before all were served")?;
            tokens.insert(r?);
            first = first.min(t);
            last = last.max(t);
            last_asked = last_asked.max(a);
        }
        if tokens.len() != 1 || tokens.contains(current.access_token.expose()) {
            return Err(format!(
                "expected all {n} callers to get one new token, got {} distinct",
                tokens.len()
            ));
        }
        took.push(last.as_secs_f64() * 1e3);
        firsts.push(first.as_secs_f64() * 1e3);
        asks.push(last_asked.as_secs_f64() * 1e3);
    }
    drop(go);
    while tasks.join_next().await.is_some() {}
    Ok(json!({"n": n, "all_served_ms": took, "first_served_ms": firsts, "last_asked_ms": asks}))
}

async fn provider_refresh(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    n: usize,
    pause_ms: Option<u64>,
) -> Result<serde_json::Value, String> {
    let mut rt = String::new();
    std::io::stdin()
        .read_line(&mut rt)
        .map_err(|e| e.to_string())?;
    let mut rt = rt.trim().to_owned();
    let url = token_url
        .strip_prefix("http://")
        .ok_or("the provider must be http on loopback")?;
    let (host, path) = url.split_once('/').ok_or("no path in the token URL")?;
    let keep = pause_ms.is_some();
    let mut conn: Option<BufReader<tokio::net::TcpStream>> = None;
    let mut t = Vec::new();
    for _ in 0..n {
        if let Some(ms) = pause_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let body = format!(
            "grant_type=refresh_token&refresh_token={rt}&client_id={client_id}&client_secret={client_secret}"
        );
        let req = format!(
            "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
            body.len(),
            if keep { "keep-alive" } else { "close" }
        );
        let start = Instant::now();
        if conn.is_none() {
            let s = tokio::net::TcpStream::connect(host)
                .await
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            conn = Some(BufReader::new(s));
        }
        let c = conn.as_mut().ok_or("no connection")?;
        c.get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // The status line and headers, then a body of Content-Length bytes.
        let mut len = 0usize;
        let mut status = String::new();
        loop {
            let mut line = String::new();
            c.read_line(&mut line).await.map_err(|e| e.to_string())?;
            if status.is_empty() {
                status = line.clone();
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().map_err(|_| "a bad Content-Length")?;
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0; len];
        tokio::io::AsyncReadExt::read_exact(c, &mut body)
            .await
            .map_err(|e| e.to_string())?;
        t.push(start.elapsed());
        if !keep {
            conn = None;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            format!(
                "the provider's answer is not JSON: {status} {}",
                String::from_utf8_lossy(&body)
            )
        })?;
        rt = v["refresh_token"]
            .as_str()
            .ok_or_else(|| format!("no refresh token in the provider's answer: {v}"))?
            .to_owned();
    }
    t.sort();
    Ok(
        json!({"median_ms": percentile(&t, 0.5) / 1e3, "min_ms": t[0].as_secs_f64() * 1e3,
              "max_ms": t[t.len() - 1].as_secs_f64() * 1e3, "n": n, "pause_ms": pause_ms}),
    )
}

async fn idle(socket: &Path, n: usize) -> Result<serde_json::Value, String> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(connect(socket).await?);
    }
    // The last one is known to be served: every one before it was accepted.
    held[n - 1]
        .call::<Status>(&Empty {})
        .await
        .map_err(|e| e.to_string())?;
    println!("ready");
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    drop(held);
    Ok(json!({"held": n}))
}

async fn requests(
    socket: &Path,
    n: usize,
    accounts: Vec<String>,
) -> Result<serde_json::Value, String> {
    if accounts.is_empty() {
        return Err("name at least one account".into());
    }
    let accounts = Arc::new(accounts);
    let mut tasks = tokio::task::JoinSet::new();
    let conns = 10;
    for k in 0..conns {
        let accounts = accounts.clone();
        let mut c = connect(socket).await?;
        tasks.spawn(async move {
            for i in (k..n).step_by(conns) {
                c.call::<TokenGet>(&token_params(&accounts[i % accounts.len()]))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(json!({"requests": n, "accounts": accounts.len()}))
}
