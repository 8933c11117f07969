//! The state file: every non-secret fact (entry names, OTP parameters, HOTP counters).
//!
//! Changes are made on a copy, written atomically, and only then adopted, so a failed write
//! (disk full) leaves both disk and memory as they were.

use crate::atomic::write_atomic;
use crate::otp::OtpParams;
use keyfob_proto::methods::VaultKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const STATE_VERSION: u32 = 1;

/// One OTP entry's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpRecord {
    /// Parameters (and the HOTP counter).
    #[serde(flatten)]
    pub params: OtpParams,
    /// Unused recovery codes stored in the vault for this entry.
    #[serde(default)]
    pub recovery_unused: usize,
    /// Unix seconds.
    pub created: u64,
}

/// One static secret's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRecord {
    /// Unix seconds of the last `secret set`.
    pub updated: u64,
    /// A description that is not secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One account's record (no secrets: those live in the vault).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRecord {
    /// The plugin id.
    pub provider: String,
    /// The resolved issuer, for OIDC providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The client id.
    pub client_id: String,
    /// User sign-in or client credentials.
    #[serde(default)]
    pub grant: keyfob_proto::methods::AccountGrant,
    /// Whether a client secret is in the vault.
    pub confidential: bool,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Audience to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Plugin parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Sign-in state.
    pub state: keyfob_proto::methods::AccountState,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The validated claims of the latest ID token (a refresh without one keeps these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
    /// A refresh-in-flight mark as earlier versions kept it here: still read, and reported,
    /// at start-up, never written (marks are files of their own now: [`crate::marks`]).
    #[serde(default, skip_serializing)]
    pub refresh_in_flight: Option<u64>,
    /// Unix seconds.
    pub created: u64,
}

/// A person's remembered decision: this client may do this operation on this account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRecord {
    /// Short id for `approvals revoke`.
    pub id: String,
    /// The client's stable identity.
    pub client: String,
    /// The client as people read it.
    pub label: String,
    /// The account or entry.
    pub account: String,
    /// The operation.
    pub operation: keyfob_proto::methods::Operation,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; none means until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

impl ApprovalRecord {
    /// Whether it allows `client` to do `op` on `account` at `now`.
    pub fn allows(
        &self,
        client: &str,
        account: &str,
        op: keyfob_proto::methods::Operation,
        now: u64,
    ) -> bool {
        self.client == client
            && self.account == account
            && self.operation == op
            && self.expires.is_none_or(|e| now < e)
    }
}

/// Everything in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// File format version.
    pub version: u32,
    /// The store `vault = "auto"` chose on first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultKind>,
    /// OTP entries by name.
    #[serde(default)]
    pub otp: BTreeMap<String, OtpRecord>,
    /// Static secrets by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRecord>,
    /// Accounts by name.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountRecord>,
    /// Remembered approvals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
    /// Agent keys (hashes and scopes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<crate::policy::keys::KeyRecord>,
    /// SHA-256 of the policy and lock settings last started with, to audit changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            vault: None,
            otp: BTreeMap::new(),
            secrets: BTreeMap::new(),
            accounts: BTreeMap::new(),
            approvals: Vec::new(),
            keys: Vec::new(),
            policy_sha256: None,
        }
    }
}

/// The state and the file it lives in. Changes are serialised by the agent's lock on this;
/// reads go through a [`StateView`] and never queue behind them.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    state: Arc<State>,
    view: StateView,
}

/// The last durable state, for reading without the agent's state lock. Under load, readers
/// queued on that (fair, async) lock were served one per scheduler turn, so a read could
/// wait seconds behind a thousand busy connections; this lock is held only to clone an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct StateView(Arc<std::sync::RwLock<Arc<State>>>);

impl StateView {
    /// The state as last written.
    pub fn current(&self) -> Arc<State> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, state: Arc<State>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }
}

impl StateFile {
    /// Loads the file, or starts empty when it does not exist. A damaged file is an error and
    /// is left untouched.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let path_buf = || path.to_owned();
        let state = match std::fs::read(path) {
            Ok(bytes) => {
                let s: State =
                    serde_json::from_slice(&bytes).map_err(|source| StateError::Damaged {
                        path: path_buf(),
                        source,
                    })?;
                if s.version != STATE_VERSION {
                    return Err(StateError::Version {
                        path: path_buf(),
                        found: s.version,
                    });
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(StateError::Read {
                    path: path_buf(),
                    source,
                });
            }
        };
        let state = Arc::new(state);
        Ok(Self {
            path: path.to_owned(),
            view: StateView(Arc::new(std::sync::RwLock::new(state.clone()))),
            state,
        })
    }

    /// The folder the state file is in (the daemon's data folder).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The current state.
    pub fn get(&self) -> &State {
        &self.state
    }

    /// A view that follows every change made here.
    pub fn view(&self) -> StateView {
        self.view.clone()
    }

    /// Applies `change` to a copy, writes it durably, then adopts it.
    pub async fn update<R>(
        &mut self,
        change: impl FnOnce(&mut State) -> R,
    ) -> Result<R, StateError> {
        let mut next = State::clone(&self.state);
        let out = change(&mut next);
        let bytes = serde_json::to_vec_pretty(&next).map_err(StateError::Encode)?;
        let path = self.path.clone();
        let write = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes, 0o600))
            .await
            .map_err(|e| write(std::io::Error::other(e)))?
            .map_err(write)?;
        self.state = Arc::new(next);
        self.view.publish(self.state.clone());
        Ok(out)
    }
}

/// Why the state file could not be read or written; each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is not valid state JSON.
    #[error(
        "the state file {} is damaged ({source}); it has been left untouched: restore it from a backup or move it aside",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// Written by another version of Keyfob.
    #[error(
        "the state file {} has version {found}, this keyfobd reads version {STATE_VERSION}: use a matching keyfob",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
    },
    /// Reading failed.
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing failed; memory and disk are as they were.
    #[error(
        "cannot save {}: {source}; nothing was changed (free some disk space and retry)",
        path.display()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state could not be encoded (a bug).
    #[error("cannot encode the state: {0}")]
    Encode(serde_json::Error),
}
