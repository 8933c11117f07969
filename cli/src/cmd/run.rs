//! `keyfob run [--env-file FILE] -- COMMAND ARGS…` and `keyfob exec --account NAME[=VAR]… --
//! COMMAND ARGS…`: a command gets credentials in its environment, and nothing else does.
//!
//! `run` resolves references written as values (`keyfob://token/ACCOUNT`,
//! `keyfob://secret/NAME`, `keyfob://otp/NAME`), in this environment or an env file; `exec`
//! puts an account's token in the variables its provider's tools read (GITHUB_TOKEN and
//! GH_TOKEN for GitHub) or the one named. The child keeps the terminal (nothing is piped),
//! gets SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to keyfob, and its exit code is
//! keyfob's. Values never appear on a command line.

use crate::ctx::Ctx;
use crate::exit::{CliError, CliResult, code};
use keyfob_proto::methods::*;
use std::collections::BTreeMap;

const SCHEME: &str = "keyfob://";

/// Resolves one `keyfob://KIND/NAME` reference.
fn resolve(ctx: &Ctx, var: &str, reference: &str) -> CliResult<String> {
    let rest = &reference[SCHEME.len()..];
    let (kind, name) = rest.split_once('/').ok_or_else(|| {
        CliError::new(
            code::USAGE,
            format!("{var}={reference}: write keyfob://token/ACCOUNT, keyfob://secret/NAME or keyfob://otp/NAME"),
        )
    })?;
    let name = name.to_owned();
    Ok(match kind {
        "token" => ctx
            .call::<TokenGet>(&TokenParams {
                name,
                ..Default::default()
            })?
            .access_token
            .expose()
            .to_owned(),
        "secret" => ctx
            .call::<SecretGet>(&NameParams { name })?
            .value
            .expose()
            .to_owned(),
        "otp" => ctx
            .call::<OtpCode>(&OtpCodeParams { name, at: None })?
            .code
            .expose()
            .to_owned(),
        other => {
            return Err(CliError::new(
                code::USAGE,
                format!("{var}: unknown reference kind {other:?}: use token, secret or otp"),
            ));
        }
    })
}

/// `KEY=VALUE` lines (blank lines and `#` comments skipped; one pair of quotes taken off).
fn read_env_file(path: &str) -> CliResult<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(code::USAGE, format!("cannot read the env file {path}: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line.split_once('=').ok_or_else(|| {
            CliError::new(code::USAGE, format!("{path}:{}: expected KEY=VALUE", i + 1))
        })?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.push((k.trim().to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// `keyfob run`.
pub fn run(ctx: &Ctx, env_file: Option<String>, command: Vec<String>) -> CliResult<u8> {
    let mut set: BTreeMap<String, String> = BTreeMap::new();
    // Only values that are text can be references; others pass through untouched.
    let mut pairs: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    if let Some(f) = &env_file {
        pairs.extend(read_env_file(f)?);
    }
    for (k, v) in pairs {
        if v.starts_with(SCHEME) {
            let value = resolve(ctx, &k, &v)?;
            set.insert(k, value);
        } else if env_file.is_some() && std::env::var(&k).ok().as_deref() != Some(&v) {
            set.insert(k, v);
        }
    }
    spawn(command, set)
}

/// `keyfob exec`.
pub fn exec(ctx: &Ctx, accounts: Vec<String>, command: Vec<String>) -> CliResult<u8> {
    let mut set = BTreeMap::new();
    for a in accounts {
        let (name, var) = match a.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let vars = match var {
            Some(v) => vec![v],
            None => {
                let info = ctx.call::<AccountShow>(&NameParams { name: name.clone() })?;
                if info.env.is_empty() {
                    return Err(CliError::new(
                        code::USAGE,
                        format!(
                            "provider {} names no variable for its token: write --account {name}=VARIABLE",
                            info.provider
                        ),
                    ));
                }
                info.env
            }
        };
        let token = resolve(ctx, &vars[0], &format!("{SCHEME}token/{name}"))?;
        for v in vars {
            set.insert(v, token.clone());
        }
    }
    spawn(command, set)
}

/// Runs the command with `set` added to its environment, on this terminal, forwarding
/// signals; returns its exit code (128 + the signal when a signal ended it).
fn spawn(command: Vec<String>, set: BTreeMap<String, String>) -> CliResult<u8> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let (program, args) = command.split_first().ok_or_else(|| {
        CliError::new(
            code::USAGE,
            "name the command after --: keyfob run -- COMMAND ARGS",
        )
    })?;
    // Registered before the child starts, so no signal falls in between.
    // SIGINT too, but only so keyfob outlives a Ctrl-C: the terminal sends it to the child.
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGINT])?;
    let handle = signals.handle();
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(set)
        .spawn()
        .map_err(|e| CliError::new(code::USAGE, format!("cannot run {program}: {e}")))?;
    let pid = rustix::process::Pid::from_child(&child);
    let forward = std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGINT {
                continue;
            }
            if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                let _ = rustix::process::kill_process(pid, s);
            }
        }
    });
    // Ctrl-C reaches the child from the terminal itself; keyfob only waits for it.
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    };
    handle.close();
    let _ = forward.join();
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(u8::try_from(code).unwrap_or(1))
}
