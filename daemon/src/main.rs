//! `keyfobd`: the credential agent daemon. All logic lives in the library.

use clap::Parser;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Keyfob's credential agent. Usually started by `keyfob daemon start` or on demand by any
/// `keyfob` command.
#[derive(Parser, Debug)]
#[command(name = "keyfobd", version)]
struct Args {
    /// Print READY/ERROR on stdout once listening (for the process that starts the daemon).
    #[arg(long)]
    notify_ready: bool,
    /// Read the vault-file passphrase from the first line of stdin.
    #[arg(long)]
    passphrase_stdin: bool,
    /// Config file (default: $KEYFOB_CONFIG, else $XDG_CONFIG_HOME/keyfob/config.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print "RUNNING <pid> <socket>" if a keyfobd serves this data directory, else "NONE";
    /// start nothing (`keyfob daemon status` and `stop` ask this).
    #[arg(long, hide = true)]
    find_running: bool,
    /// Print the manual page, keyfobd(8), and exit (the packaging step runs it).
    #[arg(long, hide = true)]
    man_page: bool,
}

fn main() -> ExitCode {
    keyfob_daemon::memory::keep_large_blocks_mapped();
    let args = Args::parse();
    if args.man_page {
        use clap::CommandFactory;
        let page = clap_mangen::Man::new(Args::command()).section("8");
        return match page.render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keyfobd: cannot write the manual page: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.find_running {
        return match keyfob_daemon::find_running(args.config) {
            Ok(Some(h)) => {
                println!("RUNNING {} {}", h.pid, h.socket.display());
                ExitCode::SUCCESS
            }
            Ok(None) => {
                println!("NONE");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("keyfobd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYFOB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    keyfob_daemon::harden_process();
    let passphrase = if args.passphrase_stdin {
        let mut line = Zeroizing::new(String::new());
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            eprintln!("keyfobd: cannot read the passphrase from stdin");
            return ExitCode::FAILURE;
        }
        let trimmed = line.trim_end_matches(['\n', '\r']);
        Some(Zeroizing::new(trimmed.as_bytes().to_vec()))
    } else {
        None
    };
    let opts = keyfob_daemon::Options {
        notify_ready: args.notify_ready,
        passphrase,
        config: args.config,
        socket: None,
        kdf: None,
    };
    let notify = opts.notify_ready;
    // One thread serves every connection: an IPC round trip is cheaper without cross-thread
    // wake-ups, and the blocking work (keychain, fsync) runs on its own threads anyway.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyfobd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(keyfob_daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            keyfob_daemon::report_start_error(&e, notify);
            eprintln!("keyfobd: {e}");
            ExitCode::FAILURE
        }
    }
}
