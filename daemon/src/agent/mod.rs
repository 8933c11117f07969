//! The agent: state, vault and events, and the operations the protocol exposes.

mod account_ops;
mod approval_ops;
mod audit_ops;
pub mod auth;
mod error;
mod key_ops;
mod lock_ops;
mod login_ops;
pub mod names;
mod otp_ops;
mod plugin_ops;
mod secret_ops;
mod token_backend;
mod token_ops;

pub use error::AgentError;

use crate::policy::enforce::{self, Caller, Ledger};
use crate::state::StateFile;
use crate::vault::VaultHandle;
use keyfob_proto::Event;
use keyfob_proto::RpcError;
use keyfob_proto::methods::Need;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, broadcast, watch};

/// The running agent, shared by every connection.
pub struct Agent {
    state: Mutex<StateFile>,
    /// The state as last written, for reads (see [`crate::state::StateView`]).
    view: crate::state::StateView,
    vault: VaultHandle,
    vault_detail: String,
    events: broadcast::Sender<Event>,
    started: Instant,
    connections: AtomicUsize,
    /// The most connections open at once since the memory loop last looked.
    peak_connections: AtomicUsize,
    socket: PathBuf,
    shutdown: watch::Sender<bool>,
    closing: watch::Sender<bool>,
    auth: auth::Auth,
    /// The one owner of access and refresh tokens.
    tokens: crate::tokens::Broker,
    /// Refreshes out at a provider, noticed after a crash.
    marks: crate::marks::RefreshMarks,
    /// The audit log.
    pub audit: crate::audit::Audit,
    /// Per-client request limits.
    pub limiter: crate::policy::rate::RateLimiter,
    /// Policy, approvals and the lock.
    pub access: crate::policy::enforce::Access,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

fn vault_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:{name}")
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Agent {
    /// Builds the agent around an opened state file and vault.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: StateFile,
        vault: VaultHandle,
        vault_detail: String,
        socket: PathBuf,
        auth: auth::Auth,
        audit: crate::audit::Audit,
        limiter: crate::policy::rate::RateLimiter,
        access: crate::policy::enforce::Access,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        let (shutdown, _) = watch::channel(false);
        let (closing, _) = watch::channel(false);
        Self {
            marks: crate::marks::RefreshMarks::new(state.dir()),
            view: state.view(),
            state: Mutex::new(state),
            vault,
            vault_detail,
            events,
            started: Instant::now(),
            connections: AtomicUsize::new(0),
            peak_connections: AtomicUsize::new(0),
            socket,
            shutdown,
            closing,
            auth,
            tokens: crate::tokens::Broker::new(std::sync::Arc::new(crate::tokens::SystemClock)),
            audit,
            limiter,
            access,
        }
    }

    /// Stores `value` under `key`, runs `record` (the state-file half of the change), and if
    /// that fails puts the previous value back, so a failed operation changes nothing.
    async fn set_then_record(
        &self,
        key: &str,
        value: zeroize::Zeroizing<Vec<u8>>,
        record: impl std::future::Future<Output = Result<(), crate::state::StateError>>,
    ) -> Result<(), AgentError> {
        let previous = self.vault.get(key).await?;
        self.vault.set(key, value).await?;
        if let Err(e) = record.await {
            let restored = match previous {
                Some(old) => self.vault.set(key, old).await,
                None => self.vault.delete(key).await.map(|_| ()),
            };
            if let Err(re) = restored {
                tracing::warn!(key, error = %re, "could not roll back a vault item after a failed state write");
            }
            return Err(AgentError::State(e));
        }
        Ok(())
    }

    /// What enforcement reads and writes outside itself.
    fn ledger(&self) -> Ledger<'_> {
        Ledger {
            state: &self.state,
            view: &self.view,
            audit: &self.audit,
            events: &self.events,
        }
    }

    /// Checks what a method declared it needs for this call; `Ok` means it may run.
    pub async fn authorize(
        &self,
        caller: &Caller,
        method: &str,
        need: Need<'_>,
    ) -> Result<(), RpcError> {
        self.access
            .authorize(self.ledger(), caller, method, need)
            .await
    }

    /// Checks a key presented in `hello`; returns its hash for later requests.
    pub async fn present_key(&self, presented: &str) -> Result<String, RpcError> {
        enforce::present_key(self.ledger(), presented).await
    }

    /// The accounts whose events a key's connection may hear: its own, admin keys included.
    pub async fn key_event_scope(&self, hash: &str) -> Result<Option<Vec<String>>, RpcError> {
        let key = enforce::key_in_force(self.ledger(), hash).await?;
        Ok(Some(key.info.accounts.clone()))
    }

    /// Subscribes to events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sends an event to subscribers.
    pub fn emit(&self, ev: Event) {
        // No subscriber is not an error.
        let _ = self.events.send(ev);
    }

    /// A receiver that turns true when the daemon should stop.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Asks every part of the daemon to stop.
    pub fn request_shutdown(&self) {
        self.emit(Event::DaemonStopping);
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns true when open connections should close: after the listener is
    /// gone, so a client that sees its connection close finds no half-dead socket.
    pub fn closing_signal(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells every connection to close.
    pub fn close_connections(&self) {
        self.closing.send_replace(true);
    }

    /// Counts a connection in; the guard counts it out.
    pub fn connection_opened(&self) -> ConnectionGuard<'_> {
        let now = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_connections.fetch_max(now, Ordering::Relaxed);
        ConnectionGuard(self)
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The most connections open at once since the last call (which starts counting anew).
    pub fn take_peak_connections(&self) -> usize {
        self.peak_connections.swap(0, Ordering::Relaxed)
    }

    /// `daemon.status`.
    pub async fn status(&self) -> keyfob_proto::methods::StatusResult {
        let st = self.view.current();
        keyfob_proto::methods::StatusResult {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: keyfob_proto::PROTOCOL_VERSION,
            socket: self.socket.display().to_string(),
            vault: self.vault.kind(),
            vault_detail: self.vault_detail.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
            connections: self.connections.load(Ordering::Relaxed),
            otp_entries: st.otp.len(),
            secrets: st.secrets.len(),
            locked: self.access.lock.locked(),
            approvers: self.access.approvals.approvers(),
            approvals_waiting: self.access.approvals.waiting_total(),
            unsaved: self
                .tokens
                .unsaved()
                .into_iter()
                .map(|(account, cause)| keyfob_proto::methods::UnsavedGrant { account, cause })
                .collect(),
        }
    }

    /// At a stop: waits for refreshes in flight (bounded by the provider timeout) and starts
    /// no new ones, so a rotated refresh token the provider already issued is stored.
    pub async fn finish_refreshes(&self) {
        // Endpoint discovery and the one request in flight (no retry starts once stopping).
        let bound = crate::flows::HTTP_TIMEOUT * 2 + std::time::Duration::from_secs(5);
        if tokio::time::timeout(bound, self.tokens.stop(self))
            .await
            .is_err()
        {
            tracing::warn!("a refresh did not finish in time; stopping anyway");
        }
    }
}

/// Resolves once shutdown is requested (or the agent is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Decrements the connection count when a connection ends.
pub struct ConnectionGuard<'a>(&'a Agent);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}
