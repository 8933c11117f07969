//! keyfobd, Keyfob's credential agent: the library behind the `keyfobd` binary, so tests can
//! boot the daemon in-process.

pub mod agent;
pub mod atomic;
pub mod audit;
pub mod config;
pub mod flows;
pub mod ids;
pub mod instance;
#[cfg(target_os = "linux")]
pub mod logind;
pub mod marks;
pub mod memory;
pub mod otp;
pub mod plugins;
pub mod policy;
pub mod server;
pub mod state;
pub mod tokens;
pub mod vault;

use agent::Agent;
use config::{Config, VaultChoice};
use server::listener::Claim;
use state::StateFile;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use vault::file::KdfParams;
use vault::{VaultError, VaultHandle};
use zeroize::Zeroizing;

/// How the daemon was started.
#[derive(Debug, Default)]
pub struct Options {
    /// Print `READY <pid>` (or `ERROR <message>`) on stdout once listening, for the CLI that
    /// started it in the background.
    pub notify_ready: bool,
    /// The vault-file passphrase, read by `main` from stdin when asked to.
    pub passphrase: Option<Zeroizing<Vec<u8>>>,
    /// Config file to use instead of the default.
    pub config: Option<PathBuf>,
    /// Socket path to use instead of the default.
    pub socket: Option<PathBuf>,
    /// Argon2id cost for a new vault file (default: [`KdfParams::default`]).
    pub kdf: Option<KdfParams>,
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The socket or its lock.
    #[error(transparent)]
    Claim(#[from] server::listener::ClaimError),
    /// The vault.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The state file.
    #[error("{0}")]
    State(String),
    /// The state file.
    #[error(transparent)]
    StateFile(#[from] state::StateError),
}

/// Readiness lines for the CLI that spawned the daemon.
pub mod ready {
    /// Listening.
    pub const READY: &str = "READY";
    /// Failed; the rest of the line is the message.
    pub const ERROR: &str = "ERROR";
    /// The vault file needs a passphrase that nobody gave.
    pub const NEEDS_PASSPHRASE: &str = "NEEDS-PASSPHRASE";
    /// Another daemon serves this data directory; the rest of the line is its pid and socket.
    pub const RUNNING: &str = "RUNNING";
}

/// The daemon serving the data directory of the config at `config` (default: the usual
/// one), whatever socket it listens on; for `keyfob daemon status` and `stop`, which must not
/// start one to find out.
pub fn find_running(config: Option<PathBuf>) -> Result<Option<instance::Holder>, StartError> {
    let data_dir = Config::load(&config_path(config)?)?.data_dir()?;
    Ok(instance::running(&data_dir))
}

/// The config file given, else the default one.
fn config_path(given: Option<PathBuf>) -> Result<PathBuf, StartError> {
    match given {
        Some(p) => Ok(p),
        None => Ok(config::default_config_path()?),
    }
}

/// Starts the daemon and serves until stopped. Call inside a tokio runtime.
pub async fn run(opts: Options) -> Result<(), StartError> {
    let config_path = config_path(opts.config.clone())?;
    let config = Config::load(&config_path)?;
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(keyfob_proto::paths::socket_path);
    let data_dir = config.data_dir()?;
    atomic::ensure_private_dir(&data_dir)
        .map_err(|e| StartError::State(format!("cannot create {}: {e}", data_dir.display())))?;
    // The locks come first, so a second instance fails fast and touches nothing: one agent
    // per data directory (whatever socket it was asked to use), one per socket.
    let instance = instance::InstanceLock::acquire(&data_dir, &socket)?;
    let claim = Claim::acquire(&socket)?;
    let mut state = StateFile::load(&data_dir.join("state.json"))?;

    let remembered = state.get().vault;
    let cfg = config.clone();
    let given = opts.passphrase;
    let kdf = opts.kdf.unwrap_or_default();
    let opened = tokio::task::spawn_blocking(move || {
        vault::open_vault(
            &cfg,
            remembered,
            || match given {
                Some(p) => Ok(p),
                None => vault::passphrase_from_env_or_file(&cfg),
            },
            kdf,
        )
    })
    .await
    .map_err(|e| StartError::State(e.to_string()))??;
    let kind = opened.vault.kind();
    if config.vault == VaultChoice::Auto && remembered.is_none() {
        state.update(|s| s.vault = Some(kind)).await?;
    }
    tracing::info!(vault = ?kind, detail = %opened.detail, "vault open");
    let vault = VaultHandle::spawn(opened.vault)
        .map_err(|e| StartError::State(format!("cannot start the vault thread: {e}")))?;

    // Handlers go in before anyone can see us ready, so an early SIGTERM is a clean stop.
    let signals = Signals::install()
        .map_err(|e| StartError::State(format!("cannot install signal handlers: {e}")))?;
    // A socket the service manager passed (systemd socket activation), else our own.
    let listener = match server::activation::inherited(claim.socket())? {
        Some(l) => l,
        None => claim.bind()?,
    };
    let auth = agent::auth::Auth::new(
        flows::http_client().map_err(|e| StartError::State(e.to_string()))?,
        load_plugins(&config_path),
    );
    let audit_dir = config.state_dir()?;
    let audit = audit::Audit::start(&audit_dir).map_err(|e| {
        StartError::State(format!(
            "cannot open the audit log in {}: {e}",
            audit_dir.display()
        ))
    })?;
    audit.record(audit::Record {
        event: "daemon.started".into(),
        outcome: "ok".into(),
        detail: Some(format!("vault: {:?}", kind)),
        ..Default::default()
    });
    let agent = Arc::new(Agent::new(
        state,
        vault,
        opened.detail,
        socket.clone(),
        auth,
        audit.clone(),
        policy::rate::RateLimiter::new(config.limits.requests_per_second, config.limits.burst),
        policy::enforce::Access::new(&config),
    ));
    agent
        .report_interrupted_refreshes()
        .await
        .map_err(|e| StartError::State(e.to_string()))?;
    if let Err(e) = agent.note_policy().await {
        tracing::warn!(error = %e, "cannot record the policy in the state file");
    }
    tracing::info!(socket = %socket.display(), pid = std::process::id(), "keyfobd ready");
    if opts.notify_ready {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {}", ready::READY, std::process::id());
        let _ = out.flush();
    }
    tokio::spawn(signals.forward_to(Arc::clone(&agent)));
    let ahead = tokio::spawn(Arc::clone(&agent).refresh_ahead_loop());
    tokio::spawn(Arc::clone(&agent).auto_lock_loop());
    tokio::spawn(memory::after_bursts(Arc::clone(&agent)));
    #[cfg(target_os = "linux")]
    if agent.access.lock.on_session_lock() {
        tokio::spawn(logind::watch(Arc::clone(&agent)));
    }
    server::serve(Arc::clone(&agent), listener).await;
    // The refresh-ahead loop ends at the stop; any refresh it had started finished above.
    let _ = ahead.await;
    audit.record(audit::Record {
        event: "daemon.stopped".into(),
        outcome: "ok".into(),
        ..Default::default()
    });
    audit.flush();
    drop(claim);
    drop(instance);
    tracing::info!("keyfobd stopped");
    Ok(())
}

/// Bundled plugins plus those in `plugins/` beside the config file; a broken user plugin is
/// logged with the offending key and left out, never fatal.
fn load_plugins(config_path: &std::path::Path) -> Vec<plugins::Manifest> {
    let mut all = plugins::bundled();
    if let Some(dir) = config_path.parent() {
        let (user, bad) = plugins::load_dir(&dir.join("plugins"));
        for e in bad {
            tracing::warn!(error = %e, "skipping a plugin");
        }
        for m in user {
            all.retain(|b| b.id != m.id);
            all.push(m);
        }
    }
    all
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn forward_to(mut self, agent: Arc<Agent>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => break,
                _ = self.int.recv() => break,
                // A closed terminal must not stop a background agent.
                _ = self.hup.recv() => continue,
            }
        }
        tracing::info!("signal received; stopping");
        agent.request_shutdown();
    }
}

/// Hardening that applies to the whole process: no core dumps or ptrace attach by other
/// same-uid processes (Linux), and room for many idle connections.
pub fn harden_process() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!(error = %e, "cannot mark the process non-dumpable");
    }
    // Each idle client holds a descriptor; the usual soft limit of 1024 is too low.
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let max = lim.maximum.unwrap_or(65_536);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(max.min(65_536)),
            maximum: lim.maximum,
        },
    );
}

/// Reports a start-up failure on the readiness channel.
pub fn report_start_error(err: &StartError, notify_ready: bool) {
    if notify_ready {
        let line = match err {
            StartError::Vault(VaultError::NeedsPassphrase) => ready::NEEDS_PASSPHRASE.to_owned(),
            StartError::Claim(server::listener::ClaimError::AlreadyRunning { pid, socket }) => {
                format!("{} {pid} {}", ready::RUNNING, socket.display())
            }
            other => format!("{} {}", ready::ERROR, other.to_string().replace('\n', " ")),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
