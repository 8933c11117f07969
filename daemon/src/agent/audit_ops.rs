//! Reading the audit log over the protocol: tail and verify.

use super::{Agent, AgentError};
use keyfob_proto::methods::*;

impl Agent {
    fn audit_dir(&self) -> Result<std::path::PathBuf, AgentError> {
        self.audit
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .ok_or_else(|| AgentError::Inconsistent("the audit log has no directory".into()))
    }

    /// `audit.tail`.
    pub async fn audit_tail(
        &self,
        p: AuditTailParams,
    ) -> Result<Vec<serde_json::Value>, AgentError> {
        self.audit.flush_async().await;
        let dir = self.audit_dir()?;
        let n = p.lines.unwrap_or(50);
        let lines = tokio::task::spawn_blocking(move || crate::audit::tail(&dir, usize::MAX))
            .await
            .map_err(|e| AgentError::Inconsistent(e.to_string()))?
            .map_err(|e| AgentError::Storage(format!("cannot read the audit log: {e}")))?;
        let mut out: Vec<serde_json::Value> = lines
            .into_iter()
            .filter(|l| p.after_seq.is_none_or(|s| l.seq > s))
            .filter_map(|l| serde_json::to_value(l).ok())
            .collect();
        let skip = out.len().saturating_sub(n);
        Ok(out.split_off(skip))
    }

    /// `audit.verify`.
    pub async fn audit_verify(&self) -> Result<AuditVerifyResult, AgentError> {
        self.audit.flush_async().await;
        let dir = self.audit_dir()?;
        let v = tokio::task::spawn_blocking(move || crate::audit::verify(&dir))
            .await
            .map_err(|e| AgentError::Inconsistent(e.to_string()))?
            .map_err(|e| AgentError::Storage(format!("cannot read the audit log: {e}")))?;
        let (file, line, reason) = match v.problem {
            Some((f, l, r)) => (Some(f), Some(l), Some(r)),
            None => (None, None, None),
        };
        Ok(AuditVerifyResult {
            lines: v.lines,
            intact: file.is_none(),
            file,
            line,
            reason,
        })
    }
}
