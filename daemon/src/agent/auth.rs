//! The runtime side of accounts: the HTTP client, provider plugins, resolved endpoints and
//! sign-ins in progress. Tokens are the broker's (crate::tokens).

use crate::flows::Endpoints;
use crate::plugins::Manifest;
use keyfob_proto::RpcError;
use keyfob_proto::methods::{AccountInfo, LoginStarted};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A sign-in in progress: what was shown, and where its outcome will appear.
pub struct LoginSlot {
    /// The account it is for.
    pub account: String,
    /// What `login.start` answered.
    pub started: LoginStarted,
    /// `None` until done.
    pub outcome: watch::Receiver<Option<Result<AccountInfo, RpcError>>>,
}

/// Account runtime state, shared by every connection.
pub struct Auth {
    /// For provider requests.
    pub http: reqwest::Client,
    /// Bundled and user plugins.
    pub plugins: Vec<Manifest>,
    /// Resolved endpoints per account.
    pub endpoints: Mutex<HashMap<String, Endpoints>>,
    /// Held per account while a sign-in is being started, so two callers cannot both
    /// start one.
    pub starting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Sign-ins by login id.
    pub logins: Mutex<HashMap<String, Arc<LoginSlot>>>,
    /// Provider signing keys.
    pub jwks: crate::flows::id_token::JwksCache,
}

impl Auth {
    /// A runtime with `plugins`.
    pub fn new(http: reqwest::Client, plugins: Vec<Manifest>) -> Self {
        Self {
            http,
            plugins,
            endpoints: Mutex::default(),
            starting: Mutex::default(),
            logins: Mutex::default(),
            jwks: crate::flows::id_token::JwksCache::default(),
        }
    }

    /// The plugin with `id`.
    pub fn plugin(&self, id: &str) -> Option<&Manifest> {
        self.plugins.iter().find(|m| m.id == id)
    }

    /// The lock held while a sign-in for `account` is being started.
    pub fn starting(&self, account: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut g = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(g.entry(account.to_owned()).or_default())
    }

    /// Forgets an account's resolved endpoints (it was removed or signed out).
    pub fn forget(&self, account: &str) {
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }

    /// The sign-in in progress for an account, if any.
    pub fn active_login(&self, account: &str) -> Option<Arc<LoginSlot>> {
        self.logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|s| s.account == account && s.outcome.borrow().is_none())
            .cloned()
    }
}
