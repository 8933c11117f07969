//! Locking and unlocking the agent, by command, by timer, or by the desktop session: what the
//! agent does on each transition of the lock state machine (policy/lock.rs).

use super::{Agent, AgentError};
use crate::audit::Record;
use crate::policy::enforce::Caller;
use keyfob_proto::events::LockReason;
use keyfob_proto::methods::*;
use keyfob_proto::{ErrorKind, Event, RpcError};
use std::sync::Arc;
use tokio::time::Instant;

impl Agent {
    /// Locks: access tokens and decrypted secrets leave memory; credential requests fail with
    /// "locked" until an unlock.
    pub async fn lock(&self, reason: LockReason) {
        if !self.access.lock.lock() {
            return;
        }
        // Let refreshes already talking to a provider finish and store their rotated refresh
        // token; later ones see the lock before calling out.
        self.tokens.quiesce(self).await;
        self.vault.lock().await;
        tracing::info!(reason = reason.as_str(), "agent locked");
        self.audit.record(Record {
            event: "agent.locked".into(),
            outcome: "ok".into(),
            detail: Some(reason.as_str().to_owned()),
            ..Default::default()
        });
        self.emit(Event::LockChanged {
            locked: true,
            reason,
        });
    }

    /// `agent.unlock`: with the vault-file passphrase, or with an approver's confirmation.
    pub async fn unlock(&self, caller: &Caller, p: UnlockParams) -> Result<Empty, RpcError> {
        if !self.access.lock.locked() {
            return Ok(Empty {});
        }
        let needs_passphrase = self.vault.unlock_needs_passphrase().await;
        let passphrase = match p.passphrase {
            Some(_) if !needs_passphrase => {
                return Err(RpcError::new(
                    ErrorKind::InvalidInput,
                    "the secrets are in the keychain, which has no Keyfob passphrase: run `keyfob unlock` without one and confirm in `keyfob approve` or the tray",
                ));
            }
            Some(pw) => Some(zeroize::Zeroizing::new(pw.expose().as_bytes().to_vec())),
            None => {
                let (op, rule) = (Operation::Admin, Approval::Always);
                self.access
                    // Its own prompt: never shared with an admin ask about an item named
                    // "agent", never remembered.
                    .ask(
                        self.ledger(),
                        caller,
                        "agent",
                        op,
                        Unlock::NAME,
                        rule,
                        Some("unlock the agent".into()),
                    )
                    .await?;
                if needs_passphrase {
                    Some(
                        crate::vault::passphrase_from_env_or_file(&self.access.config).map_err(
                            |_| {
                                RpcError::new(
                                    ErrorKind::Locked,
                                    "approved, but the vault file needs its passphrase to unlock: run `keyfob unlock` in a terminal to type it (or `keyfob unlock --passphrase-stdin`)",
                                )
                            },
                        )?,
                    )
                } else {
                    None
                }
            }
        };
        self.vault.unlock(passphrase).await.map_err(|e| match e {
            crate::vault::VaultError::Integrity(_) => RpcError::new(
                ErrorKind::Denied,
                "wrong passphrase for the vault file: the agent stays locked",
            ),
            other => RpcError::from(AgentError::Vault(other)),
        })?;
        self.access.lock.unlock();
        tracing::info!("agent unlocked");
        self.emit(Event::LockChanged {
            locked: false,
            reason: LockReason::Unlock,
        });
        Ok(Empty {})
    }

    /// Records in the audit log that the policy or lock settings differ from the last start.
    pub async fn note_policy(&self) -> Result<(), crate::state::StateError> {
        let both = serde_json::json!({
            "policy": &self.access.config.policy,
            "lock": &self.access.config.lock,
        });
        let text = serde_json::to_string(&both).map_err(crate::state::StateError::Encode)?;
        let hex = crate::ids::sha256_hex(text.as_bytes());
        let mut st = self.state.lock().await;
        if st.get().policy_sha256.as_deref() == Some(hex.as_str()) {
            return Ok(());
        }
        self.audit.record(Record {
            event: "policy.changed".into(),
            outcome: "ok".into(),
            detail: Some(text),
            ..Default::default()
        });
        st.update(|s| s.policy_sha256 = Some(hex)).await.map(|_| ())
    }

    /// Locks the agent when the idle timeout or the maximum unlocked age passes.
    pub async fn auto_lock_loop(self: Arc<Self>) {
        let mut shutdown = self.shutdown_signal();
        loop {
            let woken = self.access.lock.wake().notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next = self.access.lock.next_auto_lock();
            let sleep = async {
                match next {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = super::stopped(&mut shutdown) => return,
                _ = &mut woken => {}
                _ = sleep => {
                    // Activity may have moved the deadline: lock only if it is still due.
                    if let Some((at, reason)) = self.access.lock.next_auto_lock()
                        && at <= Instant::now()
                    {
                        self.lock(reason).await;
                    }
                }
            }
        }
    }
}
