//! Approvers and remembered decisions: joining as an approver, answering a prompt, listing and
//! revoking what was remembered.

use super::{Agent, AgentError, now_secs};
use keyfob_proto::methods::*;

impl Agent {
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
        if let Some(approver) = cli_approver {
            approver_is_a_person(approver, &request)?;
        }
        let expires = match p.decision {
            Decision::AllowFor { secs } => Some(Some(now_secs().saturating_add(secs))),
            Decision::AllowAlways => Some(None),
            _ => None,
        };
        // Remember first, so a request that arrives while the others wake finds the decision.
        // An unlock or a widening ask (a new key) is decided each time, never remembered; so
        // is a client known only by what its own command line says (a script, inline code),
        // which another program of the user can imitate.
        if let Some(expires) = expires
            && request.method != Unlock::NAME
            && request.detail.is_none()
            && request.client.is_remembered()
        {
            let rec = crate::state::ApprovalRecord {
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
                .map_err(AgentError::State)?;
        }
        self.access
            .approvals
            .resolve(p.id, p.decision, |ev| self.emit(ev));
        Ok(Empty {})
    }

    /// `approval.list`.
    pub async fn approval_list(&self) -> ApprovalListResult {
        let now = now_secs();
        ApprovalListResult {
            approvals: self
                .view
                .current()
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
            .map_err(AgentError::State)?;
        Ok(Empty {})
    }
}

/// A `keyfob approve` counts as a person only when it reads a terminal and stands apart from
/// the requester: a script must not answer its own prompt, whether through an approver it
/// started (`printf 'a\n' | keyfob approve & keyfob token work`), one fed from a pipe, or one
/// left behind in its own terminal session.
fn approver_is_a_person(approver: i32, request: &ApprovalRequest) -> Result<(), AgentError> {
    use crate::server::identity::{related, session_of, stdin_is_terminal, stdin_of};
    let who = &request.client.label;
    let id = request.id;
    if related(approver, request.client.pid) {
        return Err(AgentError::Forbidden(format!(
            "request {id} was made by {who}, which started this `keyfob approve` or was started by it: a program cannot answer its own prompt. Answer it in the tray app, or in `keyfob approve` run by a person in another terminal"
        )));
    }
    if !stdin_is_terminal(approver) {
        return Err(AgentError::Forbidden(format!(
            "this `keyfob approve` reads its answers from {}, not a terminal: only a person answers prompts. Run `keyfob approve` in a terminal, or answer in the tray app",
            stdin_of(approver)
        )));
    }
    match (session_of(approver), session_of(request.client.pid)) {
        (Some(a), Some(r)) if a != r => Ok(()),
        (Some(_), Some(_)) => Err(AgentError::Forbidden(format!(
            "this `keyfob approve` runs in the terminal session of {who}, which made request {id}: a program cannot answer its own prompt. Answer it in the tray app, or in `keyfob approve` in another terminal"
        ))),
        _ => Err(AgentError::Forbidden(format!(
            "cannot tell whether this `keyfob approve` stands apart from {who} (request {id}), so it does not count: answer in the tray app, or in `keyfob approve` in another terminal"
        ))),
    }
}
