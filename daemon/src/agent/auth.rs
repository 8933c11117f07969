//! The runtime side of accounts: the HTTP client, provider plugins, resolved endpoints, the
//! in-memory access-token cache, per-account refresh locks and sign-ins in progress.

use crate::flows::Endpoints;
use crate::plugins::Manifest;
use keyfob_proto::RpcError;
use keyfob_proto::methods::{AccountInfo, LoginStarted};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::watch;

/// Separates the parts of a cache key (`account`, scopes, audience); never in a name.
pub const KEY_SEP: char = '\u{1f}';

/// A cached access token.
#[derive(Clone)]
pub struct CachedToken {
    /// The token.
    pub access: SecretString,
    /// Usually "Bearer".
    pub token_type: String,
    /// When it expires; `None` when the provider gave no lifetime.
    pub expires_at: Option<SystemTime>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The latest validated ID token, if the provider sent one.
    pub id_token: Option<SecretString>,
    /// When it was obtained (its lifetime is `expires_at - obtained_at`).
    pub obtained_at: SystemTime,
}

/// A sign-in in progress: what was shown, and where its outcome will appear.
pub struct LoginSlot {
    /// The account it is for.
    pub account: String,
    /// What `login.start` answered.
    pub started: LoginStarted,
    /// `None` until done.
    pub outcome: watch::Receiver<Option<Result<AccountInfo, RpcError>>>,
}

/// Per-account refresh coordination: the lock that makes refresh single-flight, and a
/// generation that tells a waiter "someone refreshed while you waited".
#[derive(Default)]
pub struct RefreshGate {
    /// Held for the duration of one refresh.
    pub lock: tokio::sync::Mutex<()>,
    /// Bumped after every completed refresh or sign-in.
    pub generation: std::sync::atomic::AtomicU64,
    /// Held while a sign-in is being started, so two callers cannot both start one.
    pub starting: tokio::sync::Mutex<()>,
}

/// Account runtime state, shared by every connection.
pub struct Auth {
    /// For provider requests.
    pub http: reqwest::Client,
    /// Bundled and user plugins.
    pub plugins: Vec<Manifest>,
    /// Resolved endpoints per account.
    pub endpoints: Mutex<HashMap<String, Endpoints>>,
    /// Access tokens per account.
    pub tokens: Mutex<HashMap<String, CachedToken>>,
    /// Refresh gates per account.
    pub gates: Mutex<HashMap<String, Arc<RefreshGate>>>,
    /// Sign-ins by login id.
    pub logins: Mutex<HashMap<String, Arc<LoginSlot>>>,
    /// Provider signing keys.
    pub jwks: crate::flows::id_token::JwksCache,
    /// When each account's token was last asked for: accounts in use are refreshed ahead.
    pub used: Mutex<HashMap<String, std::time::Instant>>,
}

impl Auth {
    /// A runtime with `plugins`.
    pub fn new(http: reqwest::Client, plugins: Vec<Manifest>) -> Self {
        Self {
            http,
            plugins,
            endpoints: Mutex::default(),
            tokens: Mutex::default(),
            gates: Mutex::default(),
            logins: Mutex::default(),
            jwks: crate::flows::id_token::JwksCache::default(),
            used: Mutex::default(),
        }
    }

    /// The plugin with `id`.
    pub fn plugin(&self, id: &str) -> Option<&Manifest> {
        self.plugins.iter().find(|m| m.id == id)
    }

    /// The account's refresh gate.
    pub fn gate(&self, account: &str) -> Arc<RefreshGate> {
        let mut g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(g.entry(account.to_owned()).or_default())
    }

    /// Every account's refresh gate.
    pub fn all_gates(&self) -> Vec<Arc<RefreshGate>> {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A cached token, if any.
    pub fn cached(&self, account: &str) -> Option<CachedToken> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .cloned()
    }

    /// Caches a token.
    pub fn cache(&self, account: &str, t: CachedToken) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.to_owned(), t);
    }

    /// Notes that an account's token was asked for now.
    pub fn touch(&self, account: &str) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.to_owned(), std::time::Instant::now());
    }

    /// Forgets everything held in memory for an account.
    pub fn forget(&self, account: &str) {
        let prefix = format!("{account}{KEY_SEP}");
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k != account && !k.starts_with(&prefix));
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }

    /// Forgets every cached access token (the lock).
    pub fn forget_all(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.used.lock().unwrap_or_else(|e| e.into_inner()).clear();
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
