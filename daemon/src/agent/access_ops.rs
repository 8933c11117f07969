//! Who may have what: the policy check in front of every request, approvals and remembered
//! decisions, scoped agent keys, and the lock.

use super::state::StateFile;
use super::{Agent, AgentError, now_secs};
use crate::audit::Record;
use crate::config::{LockConfig, Policy};
use crate::policy::approval::{Approvals, AskError, Subject};
use crate::policy::keys::{self, KeyRecord};
use keyfob_proto::methods::*;
use keyfob_proto::{ErrorKind, Event, RpcError};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The caller of a request, as the daemon identified it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// For approvers and the audit log.
    pub info: ClientInfo,
    /// What remembered decisions and rate limits key on.
    pub stable_id: String,
    /// Keyfob's own CLI or tray: may answer approval prompts.
    pub frontend: bool,
    /// The SHA-256 of the agent key presented in `hello`, if any.
    pub key: Option<String>,
}

/// What a method needs before it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Nothing: the handshake, status, events.
    Open,
    /// Reading names and metadata (never a secret value).
    Read,
    /// A credential: `op` on the named account or entry.
    Use(Operation, &'a str),
    /// A change to the agent, on the named item if any.
    Admin(Option<&'a str>),
    /// Answering approval prompts.
    Approver,
    /// Unlocking.
    Unlock,
}

/// What `method` with `params` needs.
pub fn need<'a>(method: &str, params: &'a Value) -> Need<'a> {
    let name = params.get("name").and_then(Value::as_str);
    let flag = |k: &str| params.get(k).and_then(Value::as_bool).unwrap_or(false);
    let named = |op| Need::Use(op, name.unwrap_or(""));
    match method {
        TokenGet::NAME if flag("id_token") || flag("claims") => named(Operation::IdToken),
        TokenGet::NAME => named(Operation::Token),
        OtpCode::NAME => named(Operation::Otp),
        // Recovery codes are secrets: each one signs in without the second factor.
        SecretGet::NAME | OtpUri::NAME | RecoveryTake::NAME => named(Operation::Secret),
        OtpList::NAME
        | SecretList::NAME
        | AccountList::NAME
        | AccountShow::NAME
        | LoginWait::NAME
        | AuditTail::NAME
        | AuditVerify::NAME
        | ApprovalList::NAME
        | KeyList::NAME => Need::Read,
        OtpAdd::NAME
        | OtpImport::NAME
        | OtpRemove::NAME
        | RecoveryAdd::NAME
        | SecretSet::NAME
        | SecretRemove::NAME
        | AccountAdd::NAME
        | AccountRemove::NAME
        | LoginStart::NAME
        | Logout::NAME
        | KeyCreate::NAME
        | KeyRevoke::NAME
        | ApprovalRevoke::NAME
        | Lock::NAME
        | Stop::NAME => Need::Admin(name),
        ApprovalListen::NAME | ApprovalDecide::NAME => Need::Approver,
        Unlock::NAME => Need::Unlock,
        _ => Need::Open,
    }
}

#[derive(Debug)]
struct LockState {
    locked: bool,
    last_use: Instant,
    unlocked_at: Instant,
}

/// Policy, approvals and lock state.
pub struct Access {
    /// Prompts in flight.
    pub approvals: Arc<Approvals>,
    state: Mutex<LockState>,
    /// Wakes the auto-lock loop when the lock state changes.
    wake: Notify,
    /// `[policy]`, `[lock]`, and where to find the vault passphrase on an approved unlock.
    config: crate::config::Config,
}

impl Access {
    /// Policy and lock settings from `config`.
    pub fn new(config: &crate::config::Config) -> Self {
        let now = Instant::now();
        Self {
            approvals: Arc::new(Approvals::new(
                std::time::Duration::from_secs(config.policy.approval_timeout_secs.max(1)),
                config.policy.prompts_per_minute,
            )),
            state: Mutex::new(LockState {
                locked: false,
                last_use: now,
                unlocked_at: now,
            }),
            wake: Notify::new(),
            config: config.clone(),
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, LockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the agent is locked.
    pub fn locked(&self) -> bool {
        self.lock_state().locked
    }

    /// Whether logind's session-lock and suspend signals should lock the agent.
    pub fn lock_on_session_lock(&self) -> bool {
        self.config.lock.on_session_lock.unwrap_or(true)
    }

    /// When the agent should lock by itself next, and why.
    fn next_auto_lock(&self) -> Option<(Instant, &'static str)> {
        let st = self.lock_state();
        if st.locked {
            return None;
        }
        let secs = std::time::Duration::from_secs;
        let idle = self
            .config
            .lock
            .idle_timeout_secs
            .map(|s| (st.last_use + secs(s), "idle"));
        let age = self
            .config
            .lock
            .max_unlocked_secs
            .map(|s| (st.unlocked_at + secs(s), "max_age"));
        match (idle, age) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

fn json_policy(policy: &Policy, lock: &LockConfig) -> Value {
    serde_json::json!({ "policy": policy, "lock": lock })
}

fn forbidden(msg: String) -> RpcError {
    RpcError::new(ErrorKind::Forbidden, msg)
}

fn list(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Key `i` if it has not expired, noting its use (saved at most once a minute: a key used in a
/// loop must not mean a disk write each time).
async fn use_key(st: &mut StateFile, i: usize) -> Result<KeyRecord, RpcError> {
    let now = now_secs();
    let key = st.get().keys[i].clone();
    if key.expired(now) {
        return Err(forbidden(format!(
            "the agent key {:?} has expired: ask for a new one (`keyfob key create`)",
            key.info.name
        )));
    }
    if key.info.last_used.is_none_or(|t| now >= t + 60)
        && let Err(e) = st.update(|s| s.keys[i].info.last_used = Some(now)).await
    {
        tracing::warn!(error = %e, "cannot save an agent key's last use");
    }
    Ok(key)
}

impl Agent {
    /// Checks `need` for `caller`: agent key scope, lock, approver trust, then policy (which
    /// may ask a person and wait). `Ok` means the request may run.
    pub async fn authorize(
        &self,
        caller: &Caller,
        method: &str,
        need: Need<'_>,
    ) -> Result<(), RpcError> {
        let mut admin_key = false;
        if let Some(hash) = &caller.key {
            let key = self.key_in_force(hash).await?;
            admin_key = key.info.ops.contains(&Operation::Admin);
            let scope = || {
                format!(
                    "the agent key {:?} allows only {} on {}",
                    key.info.name,
                    list(&key.info.ops),
                    list(&key.info.accounts)
                )
            };
            match need {
                Need::Open => {}
                Need::Use(op, account) if !key.allows(op, account) => {
                    return Err(forbidden(format!(
                        "{}: not {op} on {account:?} (create a key with that scope, or ask without KEYFOB_KEY)",
                        scope()
                    )));
                }
                Need::Use(..) => {}
                _ if admin_key => {}
                _ => {
                    return Err(forbidden(format!(
                        "{}: it cannot call {method} (that needs an admin key, or run it without KEYFOB_KEY)",
                        scope()
                    )));
                }
            }
        }
        if matches!(need, Need::Use(..) | Need::Admin(_))
            && method != Lock::NAME
            && method != Stop::NAME
        {
            let mut st = self.access.lock_state();
            if st.locked {
                return Err(RpcError::new(
                    ErrorKind::Locked,
                    "the agent is locked: run `keyfob unlock` (or unlock it in the tray)",
                ));
            }
            if matches!(need, Need::Use(..)) {
                st.last_use = Instant::now();
            }
        }
        if need == Need::Approver && !caller.frontend && !admin_key {
            return Err(forbidden(format!(
                "only Keyfob's own CLI or tray (installed beside keyfobd) or an admin agent key may answer approvals; {} is neither",
                caller.info.label
            )));
        }
        if caller.key.is_some() {
            return Ok(());
        }
        let (op, account) = match need {
            Need::Use(op, account) => (op, account),
            Need::Admin(name) => (Operation::Admin, name.unwrap_or("*")),
            _ => return Ok(()),
        };
        let rule = self.access.config.policy.rule(account, op);
        match rule {
            Approval::Never => return Ok(()),
            Approval::NewClient => {
                let now = now_secs();
                let st = self.state.lock().await;
                if st
                    .get()
                    .approvals
                    .iter()
                    .any(|a| a.allows(&caller.stable_id, account, op, now))
                {
                    return Ok(());
                }
            }
            Approval::Always => {}
        }
        self.ask(caller, account, op, method, rule, None).await
    }

    /// After [`Access`]'s usual checks: an operation that widens access (`detail` says exactly
    /// what) needs a person's yes every time, unless an admin agent key asks (provisioning)
    /// or `[policy] widen_access = "never"`. A requester can never answer its own prompt.
    pub async fn authorize_widening(
        &self,
        caller: &Caller,
        method: &str,
        detail: String,
    ) -> Result<(), RpcError> {
        // A non-admin key was refused before this point; an admin key provisions unattended.
        if caller.key.is_some() {
            return Ok(());
        }
        match self
            .access
            .config
            .policy
            .widen_access
            .unwrap_or(Approval::Always)
        {
            Approval::Never => Ok(()),
            _ => {
                self.ask(
                    caller,
                    "agent",
                    Operation::Admin,
                    method,
                    Approval::Always,
                    Some(detail),
                )
                .await
            }
        }
    }

    /// Asks approvers and waits; audits the outcome.
    async fn ask(
        &self,
        caller: &Caller,
        account: &str,
        op: Operation,
        method: &str,
        rule: Approval,
        detail: Option<String>,
    ) -> Result<(), RpcError> {
        let widening = detail.is_some();
        let asked = detail
            .clone()
            .unwrap_or_else(|| format!("{op} on {account:?}"));
        let subject = Subject {
            client: caller.stable_id.clone(),
            account: account.to_owned(),
            operation: op,
            detail,
        };
        let result = self
            .access
            .approvals
            .ask(&caller.info, subject, method, rule, |ev| self.emit(ev))
            .await;
        let who = &caller.info.label;
        let err = match result {
            Ok(_) => None,
            Err(AskError::NoApprover) if widening => Some(RpcError::new(
                ErrorKind::ApprovalRequired,
                format!(
                    "{who} asks to {asked}: that widens access and needs a person's yes, and no approver is running. A person creates agent keys: run `keyfob key create` in your own terminal with `keyfob approve` (or the tray app) open to confirm, and hand the key to the script; provisioning tools may use an admin agent key"
                ),
            )),
            Err(AskError::NoApprover) => Some(RpcError::new(
                ErrorKind::ApprovalRequired,
                format!(
                    "{who} needs a person's approval for {op} on {account:?}, and no approver is running: run `keyfob approve` in a terminal (or open the tray app) and retry; for scripts and CI, a person creates a scoped key with `keyfob key create`"
                ),
            )),
            Err(AskError::TimedOut(t)) => Some(RpcError::new(
                ErrorKind::ApprovalRequired,
                format!(
                    "nobody approved {asked} for {who} within {} s: answer the prompt in `keyfob approve` or the tray, then retry",
                    t.as_secs()
                ),
            )),
            Err(AskError::RateLimited(wait)) => Some(RpcError::new(
                ErrorKind::RateLimited,
                format!(
                    "this program asked for approval too often: retry after {} s (prompts_per_minute under [policy])",
                    wait.as_secs().max(1)
                ),
            )),
            Err(AskError::Denied) => Some(RpcError::new(
                ErrorKind::Denied,
                format!("a person denied {asked} to {who}"),
            )),
        };
        self.audit.record(Record {
            event: "approval".into(),
            subject: Some(account.to_owned()),
            client: None,
            outcome: if err.is_none() { "ok" } else { "error" }.into(),
            detail: Some(format!(
                "{op} via {method} for {}: {}",
                caller.stable_id,
                err.as_ref()
                    .and_then(RpcError::kind)
                    .map_or("allowed".into(), |k| format!("{k:?}"))
            )),
        });
        err.map_or(Ok(()), Err)
    }

    /// The key with SHA-256 `hash`, if it is still in force; records its use.
    /// The accounts whose events a key's connection may hear: `None` (all) for an admin key.
    pub async fn key_event_scope(&self, hash: &str) -> Result<Option<Vec<String>>, RpcError> {
        let key = self.key_in_force(hash).await?;
        Ok((!key.info.ops.contains(&Operation::Admin)).then(|| key.info.accounts.clone()))
    }

    async fn key_in_force(&self, hash: &str) -> Result<KeyRecord, RpcError> {
        let mut st = self.state.lock().await;
        let Some(i) = st.get().keys.iter().position(|k| k.sha256 == hash) else {
            return Err(forbidden(
                "this agent key has been revoked: ask for a new one (`keyfob key create`)".into(),
            ));
        };
        use_key(&mut st, i).await
    }

    /// Checks a key presented in `hello`; returns its hash for later requests.
    pub async fn present_key(&self, presented: &str) -> Result<String, RpcError> {
        let key = {
            let mut st = self.state.lock().await;
            let Some(i) = keys::find(&st.get().keys, presented) else {
                return Err(forbidden(
                    "this agent key is not known (revoked, or never created here): ask for a new one (`keyfob key create`)".into(),
                ));
            };
            use_key(&mut st, i).await?
        };
        self.audit.record(Record {
            event: "key.used".into(),
            subject: Some(key.info.name),
            outcome: "ok".into(),
            ..Default::default()
        });
        Ok(key.sha256)
    }

    /// `approval.listen` bookkeeping: the guard counts this connection as an approver.
    pub fn approver_joined(&self) -> (crate::policy::approval::ApproverGuard, ListenResult) {
        let guard = self.access.approvals.join();
        let pending = self.access.approvals.pending();
        (guard, ListenResult { pending })
    }

    /// `approval.decide`.
    /// `cli_approver`: the pid of the `keyfob approve` answering (none for the tray).
    pub async fn approval_decide(
        &self,
        p: DecideParams,
        cli_approver: Option<i32>,
    ) -> Result<Empty, AgentError> {
        let Some((subject, request)) = self.access.approvals.subject_of(p.id) else {
            return Err(AgentError::Missing(format!(
                "no pending approval request {}: it was already answered, or it timed out",
                p.id
            )));
        };
        // A requester must never answer its own prompt: not by a `keyfob approve` it started
        // (`printf 'a\n' | keyfob approve & keyfob token work`), nor one that started it.
        if let Some(approver) = cli_approver
            && crate::server::identity::related(approver, request.client.pid)
        {
            return Err(AgentError::Forbidden(format!(
                "request {} was made by {}, which started this `keyfob approve` or was started by it: a program cannot answer its own prompt. Answer it in the tray app, or in `keyfob approve` run by a person in another terminal",
                p.id, request.client.label
            )));
        }
        let expires = match p.decision {
            Decision::AllowFor { secs } => Some(Some(now_secs().saturating_add(secs))),
            Decision::AllowAlways => Some(None),
            _ => None,
        };
        // Remember first, so a request that arrives while the others wake finds the decision.
        // An unlock or a widening ask (a new key) is decided each time, never remembered.
        if let Some(expires) = expires
            && request.method != Unlock::NAME
            && request.detail.is_none()
        {
            let rec = super::state::ApprovalRecord {
                id: crate::ids::random_hex(4),
                client: subject.client.clone(),
                label: request.client.label.clone(),
                account: subject.account.clone(),
                operation: subject.operation,
                created: now_secs(),
                expires,
            };
            self.state
                .lock()
                .await
                .update(|s| s.approvals.push(rec))
                .await
                .map_err(AgentError::Storage)?;
        }
        self.access
            .approvals
            .resolve(p.id, p.decision, |ev| self.emit(ev));
        Ok(Empty {})
    }

    /// `approval.list`.
    pub async fn approval_list(&self) -> ApprovalListResult {
        let now = now_secs();
        let st = self.state.lock().await;
        ApprovalListResult {
            approvals: st
                .get()
                .approvals
                .iter()
                .filter(|a| a.expires.is_none_or(|e| now < e))
                .map(|a| RememberedApproval {
                    id: a.id.clone(),
                    client: a.label.clone(),
                    account: a.account.clone(),
                    operation: a.operation,
                    created: a.created,
                    expires: a.expires,
                })
                .collect(),
        }
    }

    /// `approval.revoke`.
    pub async fn approval_revoke(&self, p: IdParams) -> Result<Empty, AgentError> {
        let mut st = self.state.lock().await;
        if !st.get().approvals.iter().any(|a| a.id == p.id) {
            return Err(AgentError::Missing(format!(
                "no remembered approval {:?}: see `keyfob approvals list`",
                p.id
            )));
        }
        st.update(|s| s.approvals.retain(|a| a.id != p.id))
            .await
            .map_err(AgentError::Storage)?;
        Ok(Empty {})
    }

    /// `key.create`.
    pub async fn key_create(&self, p: KeyCreateParams) -> Result<KeyCreateResult, AgentError> {
        super::names::validate("agent key", &p.name).map_err(AgentError::Invalid)?;
        if p.accounts.is_empty() || p.ops.is_empty() {
            return Err(AgentError::Invalid(
                "a key needs at least one account (--account) and one operation (--ops)".into(),
            ));
        }
        for a in &p.accounts {
            super::names::validate("account", a).map_err(AgentError::Invalid)?;
        }
        let now = now_secs();
        let expires = match p.ttl_secs {
            Some(0) => return Err(AgentError::Invalid("--ttl must be more than 0".into())),
            Some(t) => Some(now.saturating_add(t)),
            None => None,
        };
        let mut st = self.state.lock().await;
        if st.get().keys.iter().any(|k| k.info.name == p.name) {
            return Err(AgentError::Invalid(format!(
                "an agent key named {:?} already exists: pick another name, or `keyfob key revoke {}` first",
                p.name, p.name
            )));
        }
        let (key, record) = keys::generate(&p.name, p.accounts, p.ops, now, expires)
            .map_err(AgentError::Storage)?;
        let info = record.info.clone();
        st.update(|s| s.keys.push(record))
            .await
            .map_err(AgentError::Storage)?;
        Ok(KeyCreateResult { key, info })
    }

    /// `key.list`.
    pub async fn key_list(&self) -> KeyListResult {
        let st = self.state.lock().await;
        KeyListResult {
            keys: st.get().keys.iter().map(|k| k.info.clone()).collect(),
        }
    }

    /// `key.revoke`: the key stops working at once, on open connections too (every request
    /// looks the key up again).
    pub async fn key_revoke(&self, p: IdParams) -> Result<Empty, AgentError> {
        let mut st = self.state.lock().await;
        if !st.get().keys.iter().any(|k| k.info.name == p.id) {
            return Err(AgentError::Missing(format!(
                "no agent key named {:?}: see `keyfob key list`",
                p.id
            )));
        }
        st.update(|s| s.keys.retain(|k| k.info.name != p.id))
            .await
            .map_err(AgentError::Storage)?;
        Ok(Empty {})
    }

    /// Locks: access tokens and decrypted secrets leave memory; credential requests fail with
    /// "locked" until an unlock.
    pub async fn lock(&self, reason: &str) {
        {
            let mut st = self.access.lock_state();
            if st.locked {
                return;
            }
            st.locked = true;
        }
        // Let refreshes already talking to a provider finish and store their rotated refresh
        // token; later ones see the lock before calling out.
        self.tokens.quiesce(self).await;
        self.vault.lock().await;
        self.access.wake.notify_one();
        tracing::info!(reason, "agent locked");
        self.audit.record(Record {
            event: "agent.locked".into(),
            outcome: "ok".into(),
            detail: Some(reason.to_owned()),
            ..Default::default()
        });
        self.emit(Event::LockChanged {
            locked: true,
            reason: reason.to_owned(),
        });
    }

    /// `agent.unlock`: with the vault-file passphrase, or with an approver's confirmation.
    pub async fn unlock(&self, caller: &Caller, p: UnlockParams) -> Result<Empty, RpcError> {
        if !self.access.locked() {
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
                self.ask(
                    caller,
                    "agent",
                    Operation::Admin,
                    Unlock::NAME,
                    Approval::Always,
                    None,
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
        {
            let mut st = self.access.lock_state();
            st.locked = false;
            st.unlocked_at = Instant::now();
            st.last_use = Instant::now();
        }
        self.access.wake.notify_one();
        tracing::info!("agent unlocked");
        self.emit(Event::LockChanged {
            locked: false,
            reason: "unlock".into(),
        });
        Ok(Empty {})
    }

    /// Records in the audit log that the policy or lock settings differ from the last start.
    pub async fn note_policy(&self) -> Result<(), String> {
        let text = serde_json::to_string(&json_policy(
            &self.access.config.policy,
            &self.access.config.lock,
        ))
        .map_err(|e| e.to_string())?;
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
            let woken = self.access.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let next = self.access.next_auto_lock();
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
                    if let Some((at, reason)) = self.access.next_auto_lock()
                        && at <= Instant::now()
                    {
                        self.lock(reason).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn next(cfg: &str) -> Option<&'static str> {
        let a = Access::new(&Config::parse(cfg).unwrap_or_default());
        a.next_auto_lock().map(|(_, why)| why)
    }

    #[test]
    fn the_earlier_of_idle_timeout_and_maximum_age_locks_first() {
        assert_eq!(next(""), None);
        assert_eq!(
            next("[lock]\nidle_timeout_secs = 60\nmax_unlocked_secs = 30\n"),
            Some("max_age")
        );
        assert_eq!(
            next("[lock]\nidle_timeout_secs = 10\nmax_unlocked_secs = 30\n"),
            Some("idle")
        );
    }

    #[test]
    fn methods_map_to_operations() {
        let p = serde_json::json!({"name": "gh", "id_token": true});
        assert_eq!(
            need(TokenGet::NAME, &p),
            Need::Use(Operation::IdToken, "gh")
        );
        let p = serde_json::json!({"name": "gh"});
        assert_eq!(need(TokenGet::NAME, &p), Need::Use(Operation::Token, "gh"));
        assert_eq!(need(OtpUri::NAME, &p), Need::Use(Operation::Secret, "gh"));
        assert_eq!(
            need(RecoveryTake::NAME, &p),
            Need::Use(Operation::Secret, "gh")
        );
        assert_eq!(need(OtpCode::NAME, &p), Need::Use(Operation::Otp, "gh"));
        assert_eq!(need(KeyCreate::NAME, &p), Need::Admin(Some("gh")));
        assert_eq!(need(ApprovalDecide::NAME, &p), Need::Approver);
        assert_eq!(need(Status::NAME, &p), Need::Open);
    }
}
