//! Harness for Keyfob's end-to-end tests: a private home, the real `keyfob` and `keyfobd`
//! binaries, and (for keychain tests) a private D-Bus session bus with a real gnome-keyring.
//!
//! Nothing here touches the real user's home, keychain or agent: every path and the session
//! bus are per-test.

pub mod approver;
pub mod idp;
pub mod scripted;
pub mod secret_service;
pub mod shaped;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where cargo put the binaries under test (beside this test executable's `deps/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the binaries first (`cargo build --bins`, as scripts/test does)",
        p.display()
    );
    p
}

/// The policy most tests run with: no approval prompts. The access tests (and the full-run
/// secrets test) use the built-in policy, which asks.
pub const NO_PROMPTS: &str =
    "[policy]\ntoken = \"never\"\nid_token = \"never\"\nsecret = \"never\"\n";

/// A throw-away home for one test: HOME, XDG dirs and the socket all live in a temp dir.
pub struct TestEnv {
    /// The temp dir (deleted on drop).
    pub dir: tempfile::TempDir,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A file-vault environment with a known passphrase.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keyfob-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        for sub in ["home", "run", "config", "data", "state"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        set_mode(&root.join("run"), 0o700);
        let p = |s: &str| root.join(s).display().to_string();
        let env = vec![
            ("HOME".into(), p("home")),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_DATA_HOME".into(), p("data")),
            ("XDG_STATE_HOME".into(), p("state")),
            ("KEYFOB_VAULT".into(), "file".into()),
            ("KEYFOB_PASSPHRASE".into(), "e2e passphrase".into()),
            ("KEYFOB_LOG".into(), "debug".into()),
            // Never the machine's real system bus: logind tests bring their own.
            (
                "DBUS_SYSTEM_BUS_ADDRESS".into(),
                format!("unix:path={}", p("no-system-bus")),
            ),
        ];
        let this = Self { dir, env };
        this.write_config(NO_PROMPTS);
        this
    }

    /// The config file the daemon reads.
    pub fn config_path(&self) -> PathBuf {
        self.root().join("config/keyfob/config.toml")
    }

    /// Replaces the config file with `text` (the next daemon start reads it).
    pub fn write_config(&self, text: &str) {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().expect("config dir")).expect("mkdir config");
        std::fs::write(path, text).expect("write config");
    }

    /// Sets (or replaces) an environment variable for every later command.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Removes an environment variable.
    pub fn unset(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The root of the temp dir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The agent's socket.
    pub fn socket(&self) -> PathBuf {
        self.root().join("run/keyfob/agent.sock")
    }

    /// The daemon's data dir (state.json, vault.kfv).
    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data/keyfob")
    }

    /// The background daemon's log.
    pub fn log_path(&self) -> PathBuf {
        self.root().join("state/keyfob/keyfobd.log")
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut c = Command::new(program);
        c.env_clear();
        c.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `PROGRAM ARGS` (found on PATH) in this environment, ready to run.
    pub fn command_of(&self, program: &str, args: &[&str]) -> Command {
        let mut c = self.command(PathBuf::from(program));
        c.args(args);
        c
    }

    /// `keyfob ARGS`, ready to run.
    pub fn keyfob_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command(bin("keyfob"));
        c.args(args);
        c
    }

    /// Runs `keyfob ARGS` with `stdin`.
    pub fn keyfob_in(&self, args: &[&str], stdin: &str) -> Output {
        let mut c = self.keyfob_cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn keyfob");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait keyfob")
    }

    /// `keyfob ARGS` in the background (stdin empty, stdout and stderr piped), for a
    /// request that waits on a person or a provider.
    pub fn spawn_keyfob(&self, args: &[&str]) -> Child {
        self.keyfob_cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyfob")
    }

    /// Runs `keyfob ARGS` presenting the agent key `key` (empty stdin).
    pub fn keyfob_with_key(&self, key: &str, args: &[&str]) -> Output {
        self.keyfob_cmd(args)
            .env("KEYFOB_KEY", key)
            .stdin(Stdio::null())
            .output()
            .expect("keyfob")
    }

    /// Runs `keyfob ARGS` with empty stdin.
    pub fn keyfob(&self, args: &[&str]) -> Output {
        self.keyfob_in(args, "")
    }

    /// Runs `keyfob ARGS` and returns stdout, failing the test with stderr if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, "")
    }

    /// Like [`TestEnv::ok`] with stdin.
    pub fn ok_in(&self, args: &[&str], stdin: &str) -> String {
        let out = self.keyfob_in(args, stdin);
        assert!(
            out.status.success(),
            "keyfob {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8 stdout")
    }

    /// Starts `keyfobd` directly (not detached), waiting until it reports ready.
    pub fn spawn_daemon(&self) -> Daemon {
        self.try_spawn_daemon()
            .unwrap_or_else(|e| panic!("keyfobd did not start: {e}"))
    }

    /// Starts `keyfobd`; `Err` carries its start-up report.
    pub fn try_spawn_daemon(&self) -> Result<Daemon, String> {
        let mut c = self.command(bin("keyfobd"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root().join("daemon.log"))
            .expect("log file");
        c.arg("--notify-ready")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = c.spawn().expect("spawn keyfobd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read ready line");
        if line.starts_with("READY ") {
            Ok(Daemon { child })
        } else {
            let _ = child.wait();
            Err(line.trim().to_owned())
        }
    }

    /// Stops a CLI-started daemon, then starts one owned by the test.
    pub fn spawn_daemon_after_stop(&self) -> Daemon {
        self.ok(&["daemon", "stop"]);
        self.spawn_daemon()
    }

    /// Adds account `name` at `issuer` with the provider's public native client.
    pub fn add_account(&self, name: &str, issuer: &str) {
        self.ok(&[
            "account",
            "add",
            name,
            "--provider",
            "oidc",
            "--issuer",
            issuer,
            "--client-id",
            "keyfob-native",
            "--scope",
            "openid offline_access",
        ]);
    }

    /// `keyfob login NAME --device --json`, approved by `idp`'s browser stand-in.
    pub fn device_login(&self, name: &str, idp: &idp::Idp) -> serde_json::Value {
        let mut child = self
            .keyfob_cmd(&["login", name, "--device", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyfob login");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next().expect("first line").expect("read")).expect("json");
        for key in ["user_code", "verification_uri", "verification_uri_complete"] {
            assert!(first[key].is_string(), "missing {key}: {first}");
        }
        idp.approve(first["verification_uri_complete"].as_str().expect("uri"));
        let last: serde_json::Value =
            serde_json::from_str(&lines.next().expect("last line").expect("read")).expect("json");
        assert!(child.wait().expect("wait").success());
        last
    }

    /// The audit log.
    pub fn audit_path(&self) -> PathBuf {
        self.root().join("state/keyfob/audit.jsonl")
    }

    /// Everything the daemons of this env logged, audit log included.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(self.root().join("daemon.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.log_path()).unwrap_or_default());
        s.push_str(&std::fs::read_to_string(self.audit_path()).unwrap_or_default());
        s
    }

    /// Fails if any daemon log of this env contains one of `secrets`.
    pub fn assert_logs_free_of(&self, secrets: &[&str]) {
        let logs = self.logs();
        assert!(!logs.is_empty(), "no daemon log was written");
        for s in secrets {
            assert!(!logs.contains(s), "a secret appears in the daemon log");
        }
    }

    /// Waits until the cached access token of account `name` has expired (its
    /// `access_expires_at` has passed), so the next `keyfob token` must refresh.
    pub fn wait_for_token_expiry(&self, name: &str) {
        wait_until(
            Duration::from_secs(30),
            "the access token to expire",
            || {
                let v: serde_json::Value =
                    serde_json::from_str(&self.ok(&["account", "show", name, "--json"]))
                        .expect("account show json");
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs();
                v["access_expires_at"].as_u64().is_none_or(|e| e < now)
            },
        );
    }

    /// Installs the scripted endpoint as plugin "scripted", adds account "s" with it and signs
    /// it in (its refresh token is then `scripted-refresh-0`).
    pub fn with_scripted(s: &scripted::Scripted) -> Self {
        Self::new().with_scripted_in_place(s)
    }

    /// Like [`TestEnv::with_scripted`], in this environment (after a test has prepared its
    /// directories).
    pub fn with_scripted_in_place(self, s: &scripted::Scripted) -> Self {
        let env = self;
        let dir = env.root().join("config/keyfob/plugins/scripted");
        std::fs::create_dir_all(&dir).expect("mkdir plugin");
        std::fs::write(dir.join("plugin.toml"), s.manifest("scripted")).expect("plugin");
        env.ok(&[
            "account",
            "add",
            "s",
            "--provider",
            "scripted",
            "--client-id",
            "c",
        ]);
        env.ok(&["login", "s", "--device", "--json"]);
        env
    }

    /// Account "s" of [`TestEnv::with_scripted`]: once its token has expired, a `keyfob token s`
    /// whose refresh the endpoint holds, and a `keyfob daemon stop` issued meanwhile, once the
    /// daemon says it waits for that refresh. Returns the hold, the caller and the stop.
    pub fn stop_during_a_held_refresh(
        &self,
        s: &scripted::Scripted,
    ) -> (scripted::Held, Child, Child) {
        self.wait_for_token_expiry("s");
        let held = s.hold_next_refresh();
        let caller = self.spawn_keyfob(&["token", "s"]);
        held.wait_arrived();
        let stop = self.spawn_keyfob(&["daemon", "stop"]);
        wait_until(
            Duration::from_secs(30),
            "the daemon to wait for the refresh in flight",
            || self.logs().contains("waiting for refreshes in flight"),
        );
        (held, caller, stop)
    }

    /// The pid in the daemon's lock file, if a daemon holds it.
    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.root().join("run/keyfob/agent.sock.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Stop a daemon the CLI started in the background for this env.
        if let Some(pid) = self.daemon_pid()
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A `keyfobd` started by the test.
pub struct Daemon {
    /// The process.
    pub child: Child,
}

impl Daemon {
    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
        self.child.wait().expect("wait").code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mounts a small tmpfs at `dir`; unmounted on drop.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts it (needs root).
    pub fn mount(dir: &Path, size: &str) -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test mounts a small tmpfs to fill it and must run as root (CI does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_owned())
    }

    /// Writes a filler file until the disk is full.
    pub fn fill(&self) -> PathBuf {
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8]);
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The second Unix user the multi-user tests run as.
pub const OTHER: &str = "keyfob-e2e-other";

/// Creates (once) an unprivileged user and returns its uid and gid.
pub fn other_user() -> (u32, u32) {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test creates a second user and must run as root (CI does); run scripts/test as root"
    );
    let id = |flag: &str| {
        std::process::Command::new("id")
            .args([flag, OTHER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        let out = tool("useradd", "passwd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                OTHER,
            ])
            .output()
            .unwrap();
        // Another test process may have created it meanwhile.
        assert!(
            out.status.success() || id("-u").is_some(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

/// Lifts this process's soft open-files limit to the hard one, for tests holding many sockets.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
}

/// Sets a path's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; for waiting on another
/// process's state, not for timing.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Base32 (RFC 4648, unpadded) of `bytes`, for feeding RFC seeds to the CLI.
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Runs a tool that the test needs, failing loudly with the install hint when it is missing.
pub fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: `apt-get install {package}` (scripts/test installs it)"
    );
    Command::new(name)
}

/// Whether process `pid` runs (gone, or a zombie nobody reaped yet, does not).
pub fn running(pid: impl std::fmt::Display) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(") ")
            .is_some_and(|at| !s[at + 2..].starts_with('Z'))
    })
}

/// Runs `cmd` with `input` on its stdin; its whole output.
pub fn output_with_input(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}
