//! Approval prompts: one pending prompt per client, account and operation, however many
//! requests wait on it; a per-client limit on how many prompts a program may cause; and the
//! count of approvers connected, so a request fails at once when nobody could answer.

use super::rate::RateLimiter;
use keyfob_proto::Event;
use keyfob_proto::events::Resolution;
use keyfob_proto::methods::{Approval, ApprovalRequest, ClientInfo, Decision, Operation};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Why a request that needed approval did not get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskError {
    /// No approver is connected.
    NoApprover,
    /// Nobody decided in time.
    TimedOut(Duration),
    /// This client caused too many prompts; retry after the wait.
    RateLimited(Duration),
    /// A person said no.
    Denied,
}

/// What one prompt is about: the remembered-decision key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The client's stable identity.
    pub client: String,
    /// The account or entry.
    pub account: String,
    /// The operation.
    pub operation: Operation,
    /// Exactly what is asked (a new key's scope): two different asks never share a prompt.
    pub detail: Option<String>,
}

struct Pending {
    request: ApprovalRequest,
    subject: Subject,
    deadline: Instant,
    decided: watch::Sender<Option<Decision>>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    approvers: usize,
    pending: HashMap<u64, Pending>,
    by_subject: HashMap<Subject, u64>,
}

/// The prompts in flight.
pub struct Approvals {
    inner: Mutex<Inner>,
    prompts: RateLimiter,
    timeout: Duration,
}

/// Counts an approver in while it lives.
pub struct ApproverGuard(Arc<Approvals>);

impl Drop for ApproverGuard {
    fn drop(&mut self) {
        self.0.lock().approvers -= 1;
    }
}

impl Approvals {
    /// Prompts time out after `timeout`; one client may cause `prompts_per_minute` prompts.
    pub fn new(timeout: Duration, prompts_per_minute: u32) -> Self {
        Self {
            inner: Mutex::default(),
            prompts: RateLimiter::per_minute(prompts_per_minute),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an approver until the guard drops.
    pub fn join(self: &Arc<Self>) -> ApproverGuard {
        self.lock().approvers += 1;
        ApproverGuard(self.clone())
    }

    /// Approvers connected now.
    pub fn approvers(&self) -> usize {
        self.lock().approvers
    }

    /// Requests waiting, oldest first, with their time left.
    pub fn pending(&self) -> Vec<ApprovalRequest> {
        let now = Instant::now();
        let inner = self.lock();
        let mut list: Vec<ApprovalRequest> = inner
            .pending
            .values()
            .map(|p| ApprovalRequest {
                expires_in_secs: p.deadline.saturating_duration_since(now).as_secs(),
                ..p.request.clone()
            })
            .collect();
        list.sort_by_key(|r| r.id);
        list
    }

    /// The subject and request of pending prompt `id`.
    pub fn subject_of(&self, id: u64) -> Option<(Subject, ApprovalRequest)> {
        self.lock()
            .pending
            .get(&id)
            .map(|p| (p.subject.clone(), p.request.clone()))
    }

    /// Asks approvers about `subject`, or joins the prompt already asking about it, and waits
    /// for the decision. `emit` sends the event when a new prompt starts.
    pub async fn ask(
        &self,
        client: &ClientInfo,
        subject: Subject,
        method: &str,
        policy: Approval,
        emit: impl Fn(Event),
    ) -> Result<Decision, AskError> {
        let (id, deadline, mut rx) = {
            let mut inner = self.lock();
            if inner.approvers == 0 {
                return Err(AskError::NoApprover);
            }
            if let Some(id) = inner.by_subject.get(&subject).copied()
                && let Some(p) = inner.pending.get(&id)
            {
                (id, p.deadline, p.decided.subscribe())
            } else {
                self.prompts
                    .check(&subject.client)
                    .map_err(AskError::RateLimited)?;
                inner.next_id += 1;
                let id = inner.next_id;
                let deadline = Instant::now() + self.timeout;
                let (tx, rx) = watch::channel(None);
                let request = ApprovalRequest {
                    id,
                    client: client.clone(),
                    account: subject.account.clone(),
                    operation: subject.operation,
                    method: method.to_owned(),
                    policy,
                    expires_in_secs: self.timeout.as_secs(),
                    detail: subject.detail.clone(),
                };
                emit(Event::ApprovalRequested(request.clone()));
                inner.by_subject.insert(subject.clone(), id);
                inner.pending.insert(
                    id,
                    Pending {
                        request,
                        subject,
                        deadline,
                        decided: tx,
                    },
                );
                (id, deadline, rx)
            }
        };
        let decision = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
        match decision {
            Ok(Ok(d)) => match *d {
                Some(Decision::Deny) | None => Err(AskError::Denied),
                Some(d) => Ok(d),
            },
            // Timed out (or the prompt was dropped by another waiter's time-out).
            _ => {
                if self.remove(id).is_some() {
                    emit(Event::ApprovalResolved {
                        id,
                        outcome: Resolution::TimedOut,
                    });
                }
                Err(AskError::TimedOut(self.timeout))
            }
        }
    }

    /// How many requests wait on any prompt.
    pub fn waiting_total(&self) -> usize {
        self.lock()
            .pending
            .values()
            .map(|p| p.decided.receiver_count())
            .sum()
    }

    /// How many requests wait on prompt `id`.
    pub fn waiting(&self, id: u64) -> usize {
        self.lock()
            .pending
            .get(&id)
            .map_or(0, |p| p.decided.receiver_count())
    }

    fn remove(&self, id: u64) -> Option<Pending> {
        let mut inner = self.lock();
        let p = inner.pending.remove(&id)?;
        inner.by_subject.remove(&p.subject);
        Some(p)
    }

    /// Delivers a decision to everyone waiting on prompt `id`; false if it is not pending.
    pub fn resolve(&self, id: u64, decision: Decision, emit: impl Fn(Event)) -> bool {
        let Some(p) = self.remove(id) else {
            return false;
        };
        p.decided.send_replace(Some(decision));
        emit(Event::ApprovalResolved {
            id,
            outcome: if decision == Decision::Deny {
                Resolution::Denied
            } else {
                Resolution::Allowed
            },
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            client: "c".into(),
            account: "a".into(),
            operation: Operation::Token,
            detail: None,
        }
    }

    #[tokio::test]
    async fn concurrent_asks_share_one_prompt_and_one_decision() {
        let a = Arc::new(Approvals::new(Duration::from_secs(30), 10));
        let _approver = a.join();
        let prompts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut waiters = Vec::new();
        for _ in 0..50 {
            let a = a.clone();
            let prompts = prompts.clone();
            waiters.push(tokio::spawn(async move {
                a.ask(
                    &ClientInfo::default(),
                    subject(),
                    "token.get",
                    Approval::NewClient,
                    |ev| {
                        if matches!(ev, Event::ApprovalRequested(_)) {
                            prompts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    },
                )
                .await
            }));
        }
        // Let every waiter reach the prompt.
        while a.pending().first().map(|r| a.waiting(r.id)) != Some(50) {
            tokio::task::yield_now().await;
        }
        let id = a.pending()[0].id;
        assert!(a.resolve(id, Decision::AllowOnce, |_| {}));
        for w in waiters {
            assert_eq!(w.await.unwrap(), Ok(Decision::AllowOnce));
        }
        assert_eq!(prompts.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!a.resolve(id, Decision::Deny, |_| {}), "decided twice");
    }

    #[tokio::test]
    async fn no_approver_fails_at_once_and_prompts_are_rate_limited() {
        let a = Arc::new(Approvals::new(Duration::from_millis(1), 2));
        let client = ClientInfo::default();
        let ask = || a.ask(&client, subject(), "token.get", Approval::Always, |_| {});
        assert_eq!(ask().await, Err(AskError::NoApprover));
        let _approver = a.join();
        assert!(matches!(ask().await, Err(AskError::TimedOut(_))));
        assert!(matches!(ask().await, Err(AskError::TimedOut(_))));
        assert!(matches!(ask().await, Err(AskError::RateLimited(_))));
    }
}
