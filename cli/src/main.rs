//! `keyfob`: the command line of the Keyfob credential agent.

// It starts once per credential request, so it starts from C's `main` (see `main` below).
#![cfg_attr(not(test), no_main)]

mod cmd;
mod ctx;
mod exit;
mod fast;
mod input;
mod spawn;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    /// Accounts at identity providers.
    Account {
        #[command(subcommand)]
        action: cmd::account::AccountCmd,
    },
    /// Sign an account in (device code or browser).
    Login {
        /// The account's name.
        name: String,
        /// Use the device flow: a code to enter on any device.
        #[arg(long, conflicts_with = "browser")]
        device: bool,
        /// Use the browser flow on this machine.
        #[arg(long)]
        browser: bool,
    },
    /// Sign an account out: revoke at the provider when possible, then delete local tokens.
    Logout {
        /// The account's name.
        name: String,
    },
    /// Print a fresh access token for an account.
    Token {
        /// The account's name.
        name: String,
        /// The token must stay valid at least this many seconds (default 60).
        #[arg(long, value_name = "SECONDS")]
        min_ttl: Option<u64>,
        /// Print the account's validated ID token instead.
        #[arg(long, conflicts_with = "claims")]
        id_token: bool,
        /// Print claims: the validated ID token's, or a JWT access token's (marked unverified).
        #[arg(long)]
        claims: bool,
        /// Ask for fewer scopes than the account has (repeat, or space-separate).
        #[arg(long = "scope", num_args = 1..)]
        scopes: Vec<String>,
        /// Ask for a token for another audience.
        #[arg(long)]
        audience: Option<String>,
        /// If the account needs a sign-in, wait for someone to complete one (`keyfob login`,
        /// or the tray) instead of failing. Never opens a browser.
        #[arg(long)]
        wait: bool,
    },
    /// git's credential helper (in gitconfig: `helper = "!keyfob git-credential --account
    /// NAME"` for a host): a bearer token for git 2.46+, a username and token for older git.
    GitCredential {
        /// The account whose token this host takes.
        #[arg(long)]
        account: Option<String>,
        /// What git asks: get, store or erase.
        action: String,
    },
    /// Run a command with `keyfob://token/ACCOUNT`, `keyfob://secret/NAME` and
    /// `keyfob://otp/NAME` references in its environment (or an env file) resolved for it alone.
    Run {
        /// Also read `KEY=VALUE` lines from this file.
        #[arg(long, value_name = "FILE")]
        env_file: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Run a command with accounts' tokens in the variables their tools read (GITHUB_TOKEN…),
    /// or in the one named: `--account gh`, `--account work=TOKEN`.
    Exec {
        /// NAME or NAME=VARIABLE; repeat for more accounts.
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Write a tool's configuration so it asks Keyfob: git, docker or kube.
    Setup {
        #[command(subcommand)]
        action: cmd::setup::SetupCmd,
    },
    /// kubectl's exec credential plugin: prints an ExecCredential with the account's token
    /// (in a kubeconfig user: `exec: {command: keyfob, args: [kube-credential, NAME]}`).
    KubeCredential {
        /// The account's name.
        name: String,
    },
    /// The AWS CLI's and SDKs' credential_process: prints the account's AWS credentials
    /// (in ~/.aws/config: `credential_process = keyfob aws-credential-process NAME`).
    AwsCredentialProcess {
        /// The account's name (provider aws-sts).
        name: String,
    },
    /// Static secrets (API keys and the like).
    Secret {
        #[command(subcommand)]
        action: cmd::secret::SecretCmd,
    },
    /// Show the audit log (who got what, when), or verify it.
    Audit {
        #[command(subcommand)]
        action: Option<cmd::audit::AuditCmd>,
        /// How many of the latest records.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
        /// Keep printing new records as they come.
        #[arg(long)]
        follow: bool,
    },
    /// Answer approval requests on this terminal (and see sign-ins started by scripts).
    Approve,
    /// Remembered approval decisions: list, revoke.
    Approvals {
        #[command(subcommand)]
        action: cmd::access::ApprovalsCmd,
    },
    /// Scoped agent keys for scripts, CI jobs and containers: create, list, revoke.
    Key {
        #[command(subcommand)]
        action: cmd::access::KeyCmd,
    },
    /// Lock the agent: cached tokens and decrypted secrets leave memory.
    Lock,
    /// Unlock the agent: the vault passphrase, or an approver's confirmation.
    Unlock {
        /// Read the vault passphrase from stdin instead of prompting.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write what a package installs besides the binaries into a directory: the manual pages
    /// (man/: keyfob(1) and one per subcommand), shell completions (completions/) and the
    /// systemd user units for /usr/bin/keyfobd (systemd/). scripts/package runs it.
    #[command(hide = true)]
    PackageFiles {
        /// Where to write them.
        dir: std::path::PathBuf,
    },
}

/// The process entry point, C's `main`.
///
/// Rust's own start-up (a stack-overflow guard that reads /proc/self/maps, an alternate
/// signal stack) costs ~40 µs of the ~0.35 ms `keyfob token` adds to a process start
/// (bench/RESULTS.md), and buys a message on stack overflow. What of it matters is done here:
/// SIGPIPE ignored (a closed stdout is an error, not death; children still start with it at
/// its default, as std resets it), closed standard fds opened on /dev/null, a panic's exit
/// code 101, stdout flushed at exit. The arguments still come from `std::env::args_os`: on
/// glibc and macOS std reads them itself, without its start-up (on musl it would not).
#[cfg(not(test))] // The test harness brings its own `main`.
#[allow(unsafe_code)] // `no_mangle` names the C entry point; `signal` is C's.
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread starts, as std's
    // own start-up does.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    keep_standard_fds_open();
    let code = std::panic::catch_unwind(run).unwrap_or(exit::code::PANIC);
    // Unlike returning from C's main, `exit` flushes Rust's stdout first.
    std::process::exit(code.into())
}

/// Opens /dev/null on any of the standard fds 0–2 that is closed, as std's start-up does:
/// otherwise the agent's socket could become stdout (and the token be written into the
/// protocol) or stdin. The lowest free fd is what `open` returns.
#[cfg(not(test))]
fn keep_standard_fds_open() {
    use std::os::fd::{AsRawFd as _, IntoRawFd as _};
    while let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        if null.as_raw_fd() > 2 {
            break;
        }
        // Now a standard fd: kept open for the process's life.
        let _ = null.into_raw_fd();
    }
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> u8 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Run as `docker-credential-keyfob` (a link to keyfob), it speaks docker's protocol.
    let program = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if program.as_deref() == Some(cmd::docker::PROGRAM) {
        let ctx = ctx::Ctx::new(None, false);
        return cmd::docker::run(&ctx, args.get(1).and_then(|a| a.to_str()));
    }
    if let Some(fast) = fast::otp_code(&args) {
        let ctx = ctx::Ctx::new(None, fast.json);
        return finish(cmd::otp::code(&ctx, fast.name, fast.at));
    }
    if let Some(fast) = fast::token(&args) {
        let ctx = ctx::Ctx::new(None, fast.json);
        return finish(cmd::token::run(
            &ctx,
            fast.name,
            fast.at,
            Default::default(),
        ));
    }
    let cli = Cli::parse_from(args);
    let ctx = ctx::Ctx::new(cli.socket.clone(), cli.json);
    let result = match cli.command {
        Command::Run { env_file, command } => {
            return cmd::run::run(&ctx, env_file, command).unwrap_or_else(|e| finish(Err(e)));
        }
        Command::Exec { accounts, command } => {
            return cmd::run::exec(&ctx, accounts, command).unwrap_or_else(|e| finish(Err(e)));
        }
        Command::Daemon { action } => cmd::daemon::run(&ctx, action),
        Command::Otp { action } => cmd::otp::run(&ctx, action),
        Command::Secret { action } => cmd::secret::run(&ctx, action),
        Command::Account { action } => cmd::account::run(&ctx, action),
        Command::Login {
            name,
            device,
            browser,
        } => cmd::login::run(&ctx, name, device, browser),
        Command::KubeCredential { name } => cmd::kube::run(&ctx, name),
        Command::AwsCredentialProcess { name } => cmd::aws::run(&ctx, name),
        Command::Setup { action } => cmd::setup::run(&ctx, action),
        Command::GitCredential { account, action } => cmd::git::run(&ctx, account, &action),
        Command::Token {
            name,
            min_ttl,
            id_token,
            claims,
            wait,
            scopes,
            audience,
        } => cmd::token::run(
            &ctx,
            name,
            min_ttl,
            cmd::token::Show {
                id_token,
                claims,
                wait,
                scopes: scopes
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_owned)
                    .collect(),
                audience,
            },
        ),
        Command::Logout { name } => cmd::login::logout(&ctx, name),
        Command::Audit {
            action,
            lines,
            follow,
        } => cmd::audit::run(&ctx, action, lines, follow),
        Command::Approve => cmd::access::approve(&ctx),
        Command::Approvals { action } => cmd::access::approvals(&ctx, action),
        Command::Key { action } => cmd::access::key(&ctx, action),
        Command::Lock => cmd::access::lock(&ctx),
        Command::Unlock { passphrase_stdin } => cmd::access::unlock(&ctx, passphrase_stdin),
        Command::Completions { shell } => {
            cmd::completions::run(shell);
            Ok(())
        }
        Command::PackageFiles { dir } => cmd::completions::package_files(&dir),
    };
    finish(result)
}

fn finish(result: exit::CliResult) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keyfob: {e}");
            e.exit_code()
        }
    }
}
