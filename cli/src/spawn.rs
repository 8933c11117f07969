//! Starting keyfobd in the background and waiting until it is ready (or says why not).

use crate::exit::{CliError, CliResult, code};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long start-up may take (opening a keychain over D-Bus, an Argon2id key derivation).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon binary: `$KEYFOB_DAEMON`, else `keyfobd` beside this executable, else on PATH.
fn daemon_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYFOB_DAEMON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(me) = std::env::current_exe() {
        let sibling = me.with_file_name("keyfobd");
        if sibling.is_file() {
            return sibling;
        }
    }
    PathBuf::from("keyfobd")
}

/// The socket of the keyfobd serving this data directory, asked of keyfobd itself (it knows
/// the config) without starting one; `None` when none runs or it cannot tell.
pub fn find_running() -> Option<PathBuf> {
    let out = Command::new(daemon_binary())
        .arg("--find-running")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    running_at(text.trim_end())
}

/// The socket in keyfobd's "RUNNING <pid> <socket>" report, if `line` is one (an empty
/// socket is none).
fn running_at(line: &str) -> Option<PathBuf> {
    let rest = line.strip_prefix("RUNNING ")?;
    let at = rest.split_once(' ').map(|(_, s)| s).unwrap_or_default();
    (!at.is_empty()).then(|| PathBuf::from(at))
}

/// Where a background daemon's log goes: `$XDG_STATE_HOME/keyfob/keyfobd.log`.
pub fn log_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("keyfob").join("keyfobd.log"))
}

enum Outcome {
    Ready(PathBuf),
    NeedsPassphrase,
}

/// Starts the daemon for `socket` and waits for it; returns the socket it listens on, which
/// differs from `socket` when a daemon already serves this data directory elsewhere.
pub fn start(socket: &Path) -> CliResult<PathBuf> {
    match start_once(socket, None)? {
        Outcome::Ready(at) => Ok(at),
        Outcome::NeedsPassphrase => {
            if !crate::input::stdin_is_terminal() {
                return Err(CliError::new(
                    code::AGENT,
                    "keyfobd could not start: the vault file needs a passphrase. Set KEYFOB_PASSPHRASE, set key_file under [file_vault] in the config, or run `keyfob daemon start` in a terminal",
                ));
            }
            let pass = crate::input::prompt_hidden("Vault passphrase: ")?;
            match start_once(socket, Some(pass))? {
                Outcome::Ready(at) => Ok(at),
                Outcome::NeedsPassphrase => Err(CliError::new(
                    code::AGENT,
                    "keyfobd did not accept the passphrase",
                )),
            }
        }
    }
}

fn start_once(socket: &Path, passphrase: Option<Zeroizing<String>>) -> CliResult<Outcome> {
    let bin = daemon_binary();
    let log = log_path();
    let stderr = match &log {
        Some(p) => {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null())
        }
        None => Stdio::null(),
    };
    let mut cmd = Command::new(&bin);
    cmd.arg("--notify-ready")
        .env(keyfob_proto::paths::SOCKET_ENV, socket)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .stdin(if passphrase.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        // Its own process group: Ctrl-C in this terminal must not stop the agent.
        .process_group(0);
    if passphrase.is_some() {
        cmd.arg("--passphrase-stdin");
    }
    let mut child = cmd.spawn().map_err(|e| {
        CliError::new(
            code::AGENT,
            format!("cannot start the agent ({}): {e}; install keyfobd next to keyfob or set KEYFOB_DAEMON", bin.display()),
        )
    })?;
    if let (Some(pass), Some(mut stdin)) = (passphrase, child.stdin.take()) {
        let mut line = Zeroizing::new(pass.as_bytes().to_vec());
        line.push(b'\n');
        stdin.write_all(&line)?;
    }
    let Some(stdout) = child.stdout.take() else {
        return Err(CliError::new(
            code::AGENT,
            "cannot read the agent's start-up report",
        ));
    };
    // Read the report on a thread so a daemon stuck in start-up cannot hang this command.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let res = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(res);
    });
    let log_hint = log
        .as_ref()
        .map(|p| format!("; its log is {}", p.display()))
        .unwrap_or_default();
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => {
            return Err(CliError::new(
                code::AGENT,
                format!("cannot read the agent's start-up report: {e}"),
            ));
        }
        Err(_) => {
            let _ = child.kill();
            return Err(CliError::new(
                code::AGENT,
                format!(
                    "keyfobd did not become ready within {} s{log_hint}",
                    START_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    let line = line.trim_end();
    if line.starts_with("READY ") {
        return Ok(Outcome::Ready(socket.to_owned()));
    }
    let _ = child.wait();
    if line == "NEEDS-PASSPHRASE" {
        return Ok(Outcome::NeedsPassphrase);
    }
    // A daemon already serves this data directory (another start won the race, or it
    // listens on another socket): "RUNNING <pid> <socket>". That is success for us.
    if line.starts_with("RUNNING ") {
        return Ok(Outcome::Ready(
            running_at(line).unwrap_or_else(|| socket.to_owned()),
        ));
    }
    if let Some(msg) = line.strip_prefix("ERROR ") {
        return Err(CliError::new(
            code::AGENT,
            format!("keyfobd could not start: {msg}"),
        ));
    }
    Err(CliError::new(
        code::AGENT,
        format!("keyfobd exited during start-up{log_hint}"),
    ))
}
