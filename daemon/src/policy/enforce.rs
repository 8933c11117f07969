//! Enforcement: the one check in front of every request. It reads what the method declared
//! in the protocol's registry ([`Need`]) for the decoded params, and applies, in order, the
//! agent key's scope, the lock, approver trust and the policy (which may ask a person).

use super::approval::{Approvals, AskError, Subject};
use super::keys::{self, KeyRecord};
use super::lock::{LockMachine, Locked};
use crate::audit::{Audit, Record};
use crate::config::Config;
use crate::state::StateFile;
use keyfob_proto::methods::{Approval, ClientInfo, Need, Operation};
use keyfob_proto::{ErrorKind, Event, RpcError};
use std::sync::Arc;
use tokio::sync::{Mutex, broadcast};

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

/// What enforcement reads and writes outside itself: the state file (agent keys, remembered
/// decisions, OTP periods), the audit log, and the event stream approvers listen to.
#[derive(Clone, Copy)]
pub struct Ledger<'a> {
    /// The state file.
    pub state: &'a Mutex<StateFile>,
    /// The state as last written, for reads.
    pub view: &'a crate::state::StateView,
    /// The audit log.
    pub audit: &'a Audit,
    /// Events (approval prompts).
    pub events: &'a broadcast::Sender<Event>,
}

impl Ledger<'_> {
    fn emit(&self, ev: Event) {
        // No subscriber is not an error.
        let _ = self.events.send(ev);
    }
}

/// A check with the two-step needs ([`Need::CodeAt`], [`Need::Widen`], [`Need::Derive`])
/// taken apart.
#[derive(Debug, Clone, Copy)]
enum Check<'a> {
    Open,
    Read,
    Use(Operation, &'a str),
    /// An admin change; `while_locked` for the ones that narrow access.
    Admin {
        name: Option<&'a str>,
        while_locked: bool,
    },
    /// Creating access (a new agent key): an admin operation; an admin key provisions only
    /// within what it holds itself (checked with the new key's scope).
    Provision,
    Approver,
    Unlock,
}

/// The scope of access being created.
#[derive(Debug, Clone, Copy)]
struct Provisioned<'a> {
    accounts: &'a [String],
    ops: &'a [Operation],
    ttl_secs: Option<u64>,
}

/// Policy, prompts in flight, and the lock.
pub struct Access {
    /// Prompts in flight.
    pub approvals: Arc<Approvals>,
    /// Locked or not.
    pub lock: LockMachine,
    /// `[policy]`, `[lock]`, and where to find the vault passphrase on an approved unlock.
    pub config: Config,
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

/// Unix seconds now.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

impl Access {
    /// Policy, lock and prompt settings from `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            approvals: Arc::new(Approvals::new(
                std::time::Duration::from_secs(config.policy.approval_timeout_secs.max(1)),
                config.policy.prompts_per_minute,
            )),
            lock: LockMachine::new(&config.lock),
            config: config.clone(),
        }
    }

    /// Checks what `method` declared it needs for this call. `Ok` means the request may run.
    pub async fn authorize(
        &self,
        l: Ledger<'_>,
        caller: &Caller,
        method: &str,
        need: Need<'_>,
    ) -> Result<(), RpcError> {
        match need {
            Need::Open => self.check(l, caller, method, Check::Open).await,
            Need::Read => self.check(l, caller, method, Check::Read).await,
            Need::Use(op, name) => self.check(l, caller, method, Check::Use(op, name)).await,
            Need::Admin(name) => {
                let admin = Check::Admin {
                    name,
                    while_locked: false,
                };
                self.check(l, caller, method, admin).await
            }
            Need::Narrow => {
                let admin = Check::Admin {
                    name: None,
                    while_locked: true,
                };
                self.check(l, caller, method, admin).await
            }
            Need::Approver => self.check(l, caller, method, Check::Approver).await,
            Need::Unlock => self.check(l, caller, method, Check::Unlock).await,
            // A code for later is an admin operation on top of the otp rule: one allowed
            // request must not mint codes to be used once the person has looked away.
            Need::CodeAt(name, at) => {
                let code = Check::Use(Operation::Otp, name);
                self.check(l, caller, method, code).await?;
                let period = l
                    .state
                    .lock()
                    .await
                    .get()
                    .otp
                    .get(name)
                    .map(|r| r.params.period);
                if period.is_some_and(|p| at > now_secs().saturating_add(p)) {
                    let admin = Check::Admin {
                        name: Some(name),
                        while_locked: false,
                    };
                    self.check(l, caller, method, admin).await?;
                }
                Ok(())
            }
            // Admin on the new account, then a widening to the source's ID token: a person's
            // yes every time, never remembered.
            Need::Derive {
                account,
                source,
                detail,
            } => {
                let admin = Check::Admin {
                    name: Some(account),
                    while_locked: false,
                };
                self.check(l, caller, method, admin).await?;
                self.check(l, caller, method, Check::Provision).await?;
                let sources = [source.to_owned()];
                let asked = Provisioned {
                    accounts: &sources,
                    ops: &[Operation::IdToken],
                    ttl_secs: None,
                };
                Box::pin(self.widening(l, caller, method, asked, detail)).await
            }
            Need::Widen {
                subject: _,
                accounts,
                ops,
                ttl_secs,
                detail,
            } => {
                self.check(l, caller, method, Check::Provision).await?;
                let asked = Provisioned {
                    accounts,
                    ops,
                    ttl_secs,
                };
                Box::pin(self.widening(l, caller, method, asked, detail)).await
            }
        }
    }

    /// Agent key scope, lock, approver trust, then policy (which may ask a person and wait).
    async fn check(
        &self,
        l: Ledger<'_>,
        caller: &Caller,
        method: &str,
        check: Check<'_>,
    ) -> Result<(), RpcError> {
        if let Some(hash) = &caller.key {
            // Boxed, like `ask` below: it reads the state file's lock, and inline it would
            // size every request's check (and so every connection's task) for itself.
            let key = Box::pin(key_in_force(l, hash)).await?;
            let admin_key = key.info.ops.contains(&Operation::Admin);
            let scope = || {
                format!(
                    "the agent key {:?} allows only {} on {}",
                    key.info.name,
                    list(&key.info.ops),
                    list(&key.info.accounts)
                )
            };
            match check {
                Check::Open => {}
                Check::Use(op, account) if !key.allows(op, account) => {
                    return Err(forbidden(format!(
                        "{}: not {op} on {account:?} (create a key with that scope, or ask without KEYFOB_KEY)",
                        scope()
                    )));
                }
                Check::Use(..) => {}
                // An admin key administers its own accounts, not every account.
                Check::Admin {
                    name: Some(account),
                    ..
                } if admin_key && !key.info.accounts.iter().any(|a| a == account) => {
                    return Err(forbidden(format!(
                        "{}: not admin on {account:?} (create a key with that scope, or run it without KEYFOB_KEY)",
                        scope()
                    )));
                }
                // A change to the whole agent (importing entries, revoking others' keys or
                // remembered decisions) is not any one account's: a person does it.
                Check::Admin {
                    name: None,
                    while_locked: false,
                } => {
                    return Err(forbidden(format!(
                        "{}: {method} concerns the whole agent, not the key's accounts (run it without KEYFOB_KEY)",
                        scope()
                    )));
                }
                _ if admin_key => {}
                _ => {
                    return Err(forbidden(format!(
                        "{}: it cannot call {method} (that needs an admin key, or run it without KEYFOB_KEY)",
                        scope()
                    )));
                }
            }
        }
        let gated = match check {
            Check::Use(..) => Some(true),
            Check::Admin { while_locked, .. } => (!while_locked).then_some(false),
            Check::Provision => Some(false),
            _ => None,
        };
        if let Some(use_) = gated
            && self.lock.pass(use_) == Err(Locked)
        {
            return Err(RpcError::new(
                ErrorKind::Locked,
                "the agent is locked: run `keyfob unlock` (or unlock it in the tray)",
            ));
        }
        // Prompts are a person's: only the tray or `keyfob approve` answers them, never a key.
        if matches!(check, Check::Approver) && caller.key.is_some() {
            return Err(forbidden(
                "an agent key never answers approval prompts: a person answers them in the tray or in `keyfob approve`, run without KEYFOB_KEY".into(),
            ));
        }
        if matches!(check, Check::Approver) && !caller.frontend {
            return Err(forbidden(format!(
                "only Keyfob's own CLI or tray (installed beside keyfobd) may answer approvals; {} is neither",
                caller.info.label
            )));
        }
        if caller.key.is_some() {
            return Ok(());
        }
        let (op, account) = match check {
            Check::Use(op, account) => (op, account),
            Check::Admin { name, .. } => (Operation::Admin, name.unwrap_or("*")),
            Check::Provision => (Operation::Admin, "*"),
            Check::Open | Check::Read | Check::Approver | Check::Unlock => return Ok(()),
        };
        let rule = self.config.policy.rule(account, op);
        match rule {
            Approval::Never => return Ok(()),
            Approval::NewClient => {
                let now = now_secs();
                if l.view
                    .current()
                    .approvals
                    .iter()
                    .any(|a| a.allows(&caller.stable_id, account, op, now))
                {
                    return Ok(());
                }
            }
            Approval::Always => {}
        }
        // Boxed: asking a person waits seconds and is rare, and inline its future would
        // size every connection's task for it (on this machine each page a request touches
        // after a quiet while costs tens of µs; bench/README.md).
        Box::pin(self.ask(l, caller, account, op, method, rule, None)).await
    }

    /// After the admin check: an operation that widens access (`detail` says exactly what)
    /// needs a person's yes every time, unless an admin agent key asks (provisioning, within
    /// its own accounts) or `[policy] widen_access = "never"`.
    async fn widening(
        &self,
        l: Ledger<'_>,
        caller: &Caller,
        method: &str,
        asked: Provisioned<'_>,
        detail: String,
    ) -> Result<(), RpcError> {
        // A non-admin key was refused before this point; an admin key provisions unattended,
        // but hands out nothing it does not hold: no other account, no other operation, no
        // longer life.
        if let Some(hash) = &caller.key {
            let key = key_in_force(l, hash).await?;
            let name = &key.info.name;
            let beyond = |what: String| {
                Err(forbidden(format!(
                    "the agent key {name:?} holds {} on {}{}: it cannot provision {what} (a person creates that key)",
                    list(&key.info.ops),
                    list(&key.info.accounts),
                    key.info
                        .expires
                        .map(|e| format!(" until {e}"))
                        .unwrap_or_default()
                )))
            };
            if let Some(a) = asked
                .accounts
                .iter()
                .find(|a| !key.info.accounts.contains(a))
            {
                return beyond(format!("access to {a:?}"));
            }
            if let Some(op) = asked.ops.iter().find(|o| !key.info.ops.contains(o)) {
                return beyond(format!("{op}"));
            }
            if let Some(until) = key.info.expires {
                let ends = asked.ttl_secs.map(|t| now_secs().saturating_add(t));
                if ends.is_none_or(|e| e > until) {
                    return beyond("a key that outlives it (give --ttl)".into());
                }
            }
            return Ok(());
        }
        match self.config.policy.widen_access.unwrap_or(Approval::Always) {
            Approval::Never => Ok(()),
            _ => {
                let op = Operation::Admin;
                let rule = Approval::Always;
                Box::pin(self.ask(l, caller, "agent", op, method, rule, Some(detail))).await
            }
        }
    }

    /// Asks approvers and waits; audits the outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn ask(
        &self,
        l: Ledger<'_>,
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
        // A client known only by its own command line shares no prompt with others that
        // look alike: each process waits on its own.
        let client = if caller.info.is_remembered() {
            caller.stable_id.clone()
        } else {
            format!("{}#pid-{}", caller.stable_id, caller.info.pid)
        };
        let subject = Subject {
            client,
            account: account.to_owned(),
            operation: op,
            detail,
        };
        let result = self
            .approvals
            .ask(&caller.info, subject, method, rule, |ev| l.emit(ev))
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
        l.audit.record(Record {
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
}

/// The key with SHA-256 `hash`, if it is still in force; records its use.
pub async fn key_in_force(l: Ledger<'_>, hash: &str) -> Result<KeyRecord, RpcError> {
    let mut st = l.state.lock().await;
    let Some(i) = st.get().keys.iter().position(|k| k.sha256 == hash) else {
        return Err(forbidden(
            "this agent key has been revoked: ask for a new one (`keyfob key create`)".into(),
        ));
    };
    use_key(&mut st, i).await
}

/// Checks a key presented in `hello`; returns its hash for later requests.
pub async fn present_key(l: Ledger<'_>, presented: &str) -> Result<String, RpcError> {
    let key = {
        let mut st = l.state.lock().await;
        let Some(i) = keys::find(&st.get().keys, presented) else {
            return Err(forbidden(
                "this agent key is not known (revoked, or never created here): ask for a new one (`keyfob key create`)".into(),
            ));
        };
        use_key(&mut st, i).await?
    };
    l.audit.record(Record {
        event: "key.used".into(),
        subject: Some(key.info.name),
        outcome: "ok".into(),
        ..Default::default()
    });
    Ok(key.sha256)
}
