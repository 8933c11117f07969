//! Agent key administration: creating, listing and revoking scoped keys. Who may call these
//! is enforcement's business (policy/enforce.rs); this is what they do.

use super::{Agent, AgentError, now_secs};
use crate::policy::keys;
use keyfob_proto::methods::*;

impl Agent {
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
            .map_err(AgentError::State)?;
        Ok(KeyCreateResult { key, info })
    }

    /// `key.list`.
    pub async fn key_list(&self) -> KeyListResult {
        KeyListResult {
            keys: self
                .view
                .current()
                .keys
                .iter()
                .map(|k| k.info.clone())
                .collect(),
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
            .map_err(AgentError::State)?;
        Ok(Empty {})
    }
}
