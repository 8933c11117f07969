//! `keyfob daemon start|stop|status`.

use crate::ctx::{CLIENT, Ctx};
use crate::exit::{CliError, CliResult, code};
use clap::Subcommand;
use keyfob_proto::methods::{Empty, Status, Stop};
use keyfob_proto::{Client, ClientError};

/// Daemon actions.
#[derive(Subcommand, Debug)]
pub enum DaemonCmd {
    /// Start the agent in the background (no-op if it is running).
    Start,
    /// Stop the agent.
    Stop,
    /// Show whether the agent runs, its pid, socket and vault.
    Status,
    /// Run keyfobd as a user service: a systemd socket unit that starts it on the first
    /// request (macOS: a launchd agent). Idempotent.
    Install {
        /// Print what would be written, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove what `install` wrote, stopping the service. Idempotent.
    Uninstall {
        /// Print what would be removed, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a daemon action.
pub fn run(ctx: &Ctx, action: DaemonCmd) -> CliResult {
    match action {
        DaemonCmd::Start => start(ctx),
        DaemonCmd::Stop => stop(ctx),
        DaemonCmd::Status => status(ctx),
        DaemonCmd::Install { dry_run } => super::service::install(ctx, dry_run),
        DaemonCmd::Uninstall { dry_run } => super::service::uninstall(ctx, dry_run),
    }
}

fn start(ctx: &Ctx) -> CliResult {
    let state = match Client::connect(&ctx.socket, CLIENT) {
        Ok(c) => {
            report(ctx, "already_running", c.hello().pid);
            return Ok(());
        }
        Err(ClientError::NotRunning { .. } | ClientError::Dropped(_)) => "started",
        Err(e) => return Err(e.into()),
    };
    // Ask the daemon itself, so the pid is right even if another start won the race (or the
    // agent for this data directory was found on another socket).
    let c = ctx.connect()?;
    let state = if ctx.agent_socket() == ctx.socket {
        state
    } else {
        "already_running"
    };
    report(ctx, state, c.hello().pid);
    Ok(())
}

fn report(ctx: &Ctx, state: &str, pid: u32) {
    let socket = ctx.agent_socket();
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"state": state, "pid": pid, "socket": socket})
        );
    } else if state == "started" {
        println!("keyfobd started (pid {pid}) on {}", socket.display());
    } else {
        println!(
            "keyfobd is already running (pid {pid}) on {}",
            socket.display()
        );
    }
}

fn stop(ctx: &Ctx) -> CliResult {
    let mut client = match ctx.with_running_agent(|at| Client::connect(at, CLIENT)) {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => {
            if ctx.json {
                println!("{}", serde_json::json!({"state": "not_running"}));
            } else {
                println!("keyfobd is not running");
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let pid = client.hello().pid;
    client.call::<Stop>(&Empty {})?;
    // The daemon closes every connection as it stops: wait for ours to close.
    loop {
        match client.next_event() {
            Ok(_) => continue,
            Err(ClientError::Closed | ClientError::Io(_)) => break,
            Err(e) => return Err(e.into()),
        }
    }
    wait_for_exit(ctx, pid)?;
    if ctx.json {
        println!("{}", serde_json::json!({"state": "stopped", "pid": pid}));
    } else {
        println!("keyfobd stopped (pid {pid})");
    }
    Ok(())
}

fn status(ctx: &Ctx) -> CliResult {
    // Status reports; it does not start the agent.
    let st = match ctx
        .with_running_agent(|at| Client::connect_and_call::<Status>(at, CLIENT, &Empty {}))
    {
        Ok((_, st)) => st,
        Err(ClientError::NotRunning { .. }) => {
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"running": false, "socket": ctx.socket})
                );
            }
            return Err(CliError::new(
                code::AGENT,
                format!(
                    "keyfobd is not running (socket {}): start it with `keyfob daemon start`",
                    ctx.socket.display()
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if ctx.json {
        let mut v =
            serde_json::to_value(&st).map_err(|e| CliError::new(code::FAILURE, e.to_string()))?;
        v["running"] = true.into();
        println!("{v}");
    } else {
        println!(
            "keyfobd is running (pid {}, version {}, protocol {})",
            st.pid, st.version, st.protocol
        );
        println!("socket:      {}", st.socket);
        let kind = serde_json::to_value(st.vault).unwrap_or_default();
        println!(
            "vault:       {}: {}",
            kind.as_str().unwrap_or("?"),
            st.vault_detail
        );
        println!("uptime:      {} s", st.uptime_secs);
        println!("connections: {}", st.connections);
        println!(
            "entries:     {} OTP, {} secrets",
            st.otp_entries, st.secrets
        );
        println!(
            "access:      {}; {} approver(s) connected, {} request(s) waiting for approval",
            if st.locked {
                "locked (`keyfob unlock`)"
            } else {
                "unlocked"
            },
            st.approvers,
            st.approvals_waiting
        );
        for u in &st.unsaved {
            println!(
                "unsaved:     {}: its rotated refresh token is held in memory only ({}); keyfobd retries the write: fix the cause and keep keyfobd running until this line is gone",
                u.account, u.cause
            );
        }
    }
    Ok(())
}

/// Waits until the daemon `pid` has released its single-instance lock, i.e. it has exited,
/// so a command right after `stop` starts a fresh daemon instead of meeting the old one.
fn wait_for_exit(ctx: &Ctx, pid: u32) -> CliResult {
    let mut name = ctx.socket.clone().into_os_string();
    name.push(".lock");
    let Ok(lock) = std::fs::File::open(&name) else {
        return Ok(());
    };
    // A client that found no socket may have started the next daemon already; it takes the
    // lock the moment the old one lets go, so a held lock with another pid also means "gone".
    let held_by_old = || {
        std::fs::read_to_string(&name)
            .map(|t| t.trim() == pid.to_string())
            .unwrap_or(false)
    };
    // An orderly stop first lets refreshes in flight finish (bounded by the HTTP timeout).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        match lock.try_lock_shared() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if !held_by_old() => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CliError::new(
                    code::AGENT,
                    "keyfobd closed its connections but has not exited after 90 s; see its log",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}
