//! `keyfob`: the command line of the Keyfob credential agent.

mod cmd;
mod ctx;
mod exit;
mod fast;
mod input;
mod spawn;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Keyfob: your credentials, one local agent away.
#[derive(Parser, Debug)]
#[command(name = "keyfob", version, about, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The agent's socket (default: $KEYFOB_SOCKET, else $XDG_RUNTIME_DIR/keyfob/agent.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start, stop or inspect the background agent (keyfobd).
    Daemon {
        #[command(subcommand)]
        action: cmd::daemon::DaemonCmd,
    },
    /// One-time passwords (TOTP/HOTP): add, import, codes, recovery codes.
    Otp {
        #[command(subcommand)]
        action: cmd::otp::OtpCmd,
    },
    /// Static secrets (API keys and the like).
    Secret {
        #[command(subcommand)]
        action: cmd::secret::SecretCmd,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(fast) = fast::otp_code(&args) {
        let ctx = ctx::Ctx::new(None, fast.json);
        return finish(cmd::otp::code(&ctx, fast.name, fast.at));
    }
    let cli = Cli::parse_from(args);
    let ctx = ctx::Ctx::new(cli.socket.clone(), cli.json);
    let result = match cli.command {
        Command::Daemon { action } => cmd::daemon::run(&ctx, action),
        Command::Otp { action } => cmd::otp::run(&ctx, action),
        Command::Secret { action } => cmd::secret::run(&ctx, action),
        Command::Completions { shell } => {
            cmd::completions::run(shell);
            Ok(())
        }
    };
    finish(result)
}

fn finish(result: exit::CliResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyfob: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
