//! Static secrets: API keys and other values stored as they are.

use super::{Agent, AgentError, names, now_secs, vault_key};
use crate::state::SecretRecord;
use keyfob_proto::Sensitive;
use keyfob_proto::events::{Change, Event};
use keyfob_proto::methods::*;
use zeroize::Zeroizing;

const SECRET: &str = "secret";

fn not_found(name: &str) -> AgentError {
    AgentError::NotFound {
        what: "secret",
        cmd: "secret",
        name: name.to_owned(),
    }
}

impl Agent {
    /// `secret.set`.
    pub async fn secret_set(&self, p: SecretSetParams) -> Result<SecretSetResult, AgentError> {
        names::validate("secret", &p.name).map_err(AgentError::Invalid)?;
        if p.value.expose().is_empty() {
            return Err(AgentError::Invalid(
                "the secret value is empty (it is read from stdin)".into(),
            ));
        }
        let mut st = self.state.lock().await;
        let replaced = st.get().secrets.contains_key(&p.name);
        let value = Zeroizing::new(p.value.expose().as_bytes().to_vec());
        if p.label.as_ref().is_some_and(|l| l.len() > 1024) {
            return Err(AgentError::Invalid(
                "the label is longer than 1024 bytes".into(),
            ));
        }
        let name = p.name.clone();
        let label = p.label.clone();
        self.set_then_record(
            &vault_key(SECRET, &p.name),
            value,
            st.update(|s| {
                s.secrets.insert(
                    name,
                    SecretRecord {
                        updated: now_secs(),
                        label,
                    },
                );
            }),
        )
        .await?;
        drop(st);
        self.emit(Event::SecretChanged {
            name: p.name,
            change: if replaced {
                Change::Updated
            } else {
                Change::Added
            },
        });
        Ok(SecretSetResult { replaced })
    }

    /// `secret.get`.
    pub async fn secret_get(&self, p: NameParams) -> Result<SecretGetResult, AgentError> {
        // The state lock is not held across the vault read: every other request would queue
        // behind it.
        if !self.secret_exists(&p.name).await {
            return Err(not_found(&p.name));
        }
        let bytes = match self.vault.get(&vault_key(SECRET, &p.name)).await? {
            Some(b) => b,
            // Removed in between: as if asked a moment later.
            None if !self.secret_exists(&p.name).await => return Err(not_found(&p.name)),
            None => {
                return Err(AgentError::Inconsistent(format!(
                    "the value of secret {:?} is missing from the vault: set it again with `keyfob secret set {}`",
                    p.name, p.name
                )));
            }
        };
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| AgentError::Inconsistent("the stored secret is not UTF-8".into()))?;
        Ok(SecretGetResult {
            value: Sensitive::new(text),
        })
    }

    async fn secret_exists(&self, name: &str) -> bool {
        self.view.current().secrets.contains_key(name)
    }

    /// `secret.list`.
    pub async fn secret_list(&self) -> Vec<SecretInfo> {
        self.view
            .current()
            .secrets
            .iter()
            .map(|(n, r)| SecretInfo {
                name: n.clone(),
                updated: r.updated,
                label: r.label.clone(),
            })
            .collect()
    }

    /// `secret.rm`.
    pub async fn secret_remove(&self, p: NameParams) -> Result<Empty, AgentError> {
        let mut st = self.state.lock().await;
        if !st.get().secrets.contains_key(&p.name) {
            return Err(not_found(&p.name));
        }
        st.update(|s| {
            s.secrets.remove(&p.name);
        })
        .await
        .map_err(AgentError::State)?;
        if let Err(e) = self.vault.delete(&vault_key(SECRET, &p.name)).await {
            tracing::warn!(secret = %p.name, error = %e, "could not delete a removed secret's vault item");
        }
        drop(st);
        self.emit(Event::SecretChanged {
            name: p.name,
            change: Change::Removed,
        });
        Ok(Empty {})
    }
}
