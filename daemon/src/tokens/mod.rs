//! The token broker: the one owner of access tokens and refresh tokens for every account.
//!
//! It keeps the access-token cache per (account, scopes, audience), a rotation gate per
//! account (one provider call at a time, shared by every waiting caller), freshness per
//! cache key, and a rotated refresh token that was received but could not be stored yet.
//! Sign-in, sign-out and removal take the same gate through a [`Turn`], so they never
//! interleave with a refresh. The provider call, the storage and the clock are injected
//! (a [`Backend`] per call, as oauth2-rs takes its HTTP client), so the rules below are
//! unit-tested without a network:
//!
//! - a rotated refresh token, once received, is the only one used from then on: it is stored
//!   before any caller gets the new access token; if the store fails it is kept here, the
//!   write is retried before anything else, and callers get an error naming the cause;
//! - every caller gets a token that satisfies its own cache key's [`Freshness`];
//! - a provider whose tokens live less than a caller's `min_ttl` gets at most one refresh
//!   per token lifetime;
//! - a stop waits for refreshes in flight and starts no new ones.

mod fresh;
#[cfg(test)]
mod tests;

pub use fresh::{CacheKey, CachedToken, Freshness, SKEW, serves};

use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, OwnedMutexGuard};

/// Accounts asked for within this time count as in use, and are refreshed ahead.
const IN_USE: Duration = Duration::from_secs(15 * 60);
/// Tokens living less than this are not refreshed ahead: it would be a refresh every tick.
const MIN_AHEAD_LIFETIME: Duration = Duration::from_secs(20);
/// The longest lifetime believed: a provider or plugin claiming more (or an absurd value that
/// would overflow the clock) gets this.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Tokens of accounts in use are refreshed when this much lifetime is left (or a quarter of
/// their life, for shorter-lived ones).
const AHEAD: Duration = Duration::from_secs(75);

/// The time, injectable for tests.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How an account gets new tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// With its refresh token.
    RefreshToken,
    /// With the client's own credentials (no refresh token).
    ClientCredentials,
    /// By exchanging another account's token (an exec plugin; no refresh token).
    Exchange,
}

/// What one provider call is made with.
pub enum Credential<'a> {
    /// The refresh token to present.
    Refresh(&'a SecretString),
    /// The client's credentials.
    ClientCredentials,
    /// Another account's token, exchanged.
    Exchange,
}

/// A provider's answer.
pub struct Issued {
    /// The access token.
    pub access: SecretString,
    /// Usually "Bearer".
    pub token_type: String,
    /// Its lifetime, when the provider said.
    pub expires_in: Option<Duration>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The ID token, if one came (from a refresh: validated by [`Backend::settled`], after
    /// the rotated refresh token is stored).
    pub id_token: Option<SecretString>,
    /// The ID token's validated claims (set by [`Backend::settled`]).
    pub claims: Option<serde_json::Value>,
    /// A new refresh token, if the provider sent one (it rotated).
    pub refresh_token: Option<SecretString>,
    /// Further named parts of a credential that is more than one token (an exec plugin's
    /// AWS keys); empty for OAuth.
    pub fields: BTreeMap<String, SecretString>,
}

/// Why a provider call gave no token.
#[derive(Debug)]
pub enum Refusal<E> {
    /// The grant is dead (`invalid_grant`, `bad_refresh_token`): a new sign-in is needed.
    GrantEnded(String),
    /// Any other failure; the grant may still work.
    Failed(E),
}

/// Errors of the broker's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The daemon is stopping and starts no provider call.
    #[error("keyfobd is stopping and starts no new refresh: run the command again")]
    Stopping,
    /// The account has no refresh token stored.
    #[error(
        "account {account:?} needs a new sign-in (no refresh token is stored): run `keyfob login {account}`"
    )]
    NoRefreshToken {
        /// The account.
        account: String,
    },
    /// The account's grant is one lasting access token, which cannot be narrowed.
    #[error(
        "account {account:?} holds one access token that does not expire and no refresh token (its provider issues no other), so it cannot get a token for other scopes or an audience: ask without --scope and --audience"
    )]
    NotNarrowable {
        /// The account.
        account: String,
    },
    /// A rotated refresh token is held in memory only.
    #[error(
        "the provider rotated the refresh token of {account:?}, and it could not be stored: {cause}. keyfobd keeps the new token in memory and retries the write on every request; fix the cause, and do not stop keyfobd until `keyfob daemon status` shows no unsaved grant, or `keyfob login {account}` will be needed"
    )]
    Unsaved {
        /// The account.
        account: String,
        /// Why the store failed.
        cause: String,
    },
}

/// What the broker asks of the rest of the daemon. Each method concerns one account.
pub trait Backend: Sync {
    /// The error callers get.
    type Error: From<BrokerError> + std::fmt::Display + Send;

    /// Whether a provider call may be made for `account` now, and with what grant. MUST fail
    /// when the agent is locked, or the account is unknown, signed out or needs a sign-in.
    fn prepare(&self, account: &str) -> impl Future<Output = Result<Grant, Self::Error>> + Send;

    /// The stored refresh token, if any.
    fn load(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Option<SecretString>, Self::Error>> + Send;

    /// One token request at the provider for `key`. MUST NOT send the same refresh token
    /// twice when the provider may have acted on the first request (a timeout, a connection
    /// lost after sending).
    fn request(
        &self,
        key: &CacheKey,
        with: Credential<'_>,
    ) -> impl Future<Output = Result<Issued, Refusal<Self::Error>>> + Send;

    /// A refresh token is about to be presented at the provider, and a rotated one may have
    /// to be stored the moment the provider answers: let the store get ready meanwhile.
    /// Returns at once; nothing waits for it, and a failure shows only in the store.
    fn ready_to_store(&self, _account: &str) {}

    /// Stores a new grant's refresh token durably (a sign-in: it replaces a lasting token).
    fn store(
        &self,
        account: &str,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stores a rotated refresh token durably, in place of the one it replaces.
    fn rotate(
        &self,
        account: &str,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.store(account, refresh_token)
    }

    /// Deletes the stored refresh token and lasting access token (none stored is not an
    /// error).
    fn delete(&self, account: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The stored access token that does not expire, for providers that issue such a token
    /// and no refresh token (GitHub OAuth apps): the grant itself.
    fn load_lasting(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Option<SecretString>, Self::Error>> + Send;

    /// Stores a lasting access token as the account's grant (replacing a refresh token).
    fn store_lasting(
        &self,
        account: &str,
        access_token: &SecretString,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A rotated refresh token could not be stored and is kept in memory: for the audit log.
    fn unsaved(&self, account: &str, cause: &str);

    /// A refresh completed and its refresh token is stored: validate its ID token (drop it
    /// when invalid), record its claims, clear marks. Nothing here may delay the store.
    fn settled(&self, account: &str, issued: &mut Issued) -> impl Future<Output = ()> + Send;

    /// The grant ended: record that the account needs a sign-in; the caller's error.
    fn ended(&self, account: &str, why: &str) -> impl Future<Output = Self::Error> + Send;
}

/// A server's refusal replaces a key's token at most this often.
pub const REFUSED_EVERY: Duration = Duration::from_secs(10);

/// Per-account gate: held for each provider call, sign-in, sign-out and removal.
#[derive(Default)]
struct Gate {
    /// A rotated refresh token received but not stored yet: the only valid one.
    pending: Option<SecretString>,
    /// The account's last refresh rotated its refresh token (providers that rotate do so
    /// every time), so the next one will have a store to make.
    rotates: bool,
}

/// An account's gate, and the news that a token of the account was cached: callers waiting
/// for the gate also listen for the news (see [`Broker::token`]).
#[derive(Default, Clone)]
struct Slot {
    gate: Arc<tokio::sync::Mutex<Gate>>,
    news: Arc<Notify>,
}

/// The token broker.
pub struct Broker {
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<CacheKey, CachedToken>>,
    gates: Mutex<HashMap<String, Slot>>,
    /// When a server's refusal last replaced each key's token (see [`Broker::after_refusal`]).
    refused: Mutex<HashMap<CacheKey, SystemTime>>,
    unsaved: Mutex<BTreeMap<String, String>>,
    used: Mutex<HashMap<String, SystemTime>>,
    stopping: AtomicBool,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

/// An account's gate, held: no refresh runs for the account until it is dropped.
pub struct Turn<'a> {
    broker: &'a Broker,
    account: String,
    gate: OwnedMutexGuard<Gate>,
}

impl Turn<'_> {
    /// The account's current refresh token: a kept unsaved one, else the stored one.
    pub async fn refresh_token<B: Backend>(
        &self,
        backend: &B,
    ) -> Result<Option<SecretString>, B::Error> {
        match &self.gate.pending {
            Some(p) => Ok(Some(p.clone())),
            None => backend.load(&self.account).await,
        }
    }

    /// Stores a new grant's refresh token (a sign-in). Until [`Turn::install`], nothing else
    /// changes: a failed sign-in leaves the old grant as it was.
    pub async fn store<B: Backend>(
        &mut self,
        backend: &B,
        refresh_token: &SecretString,
    ) -> Result<(), B::Error> {
        backend.store(&self.account, refresh_token).await
    }

    /// Stores a new grant that is one access token without expiry and no refresh token (a
    /// sign-in at GitHub with an OAuth app). Like [`Turn::store`], nothing else changes until
    /// [`Turn::install`].
    pub async fn store_lasting<B: Backend>(
        &mut self,
        backend: &B,
        access_token: &SecretString,
    ) -> Result<(), B::Error> {
        backend.store_lasting(&self.account, access_token).await
    }

    /// Deletes the stored refresh token and forgets the account's tokens (sign-out,
    /// removal).
    pub async fn remove<B: Backend>(&mut self, backend: &B) -> Result<(), B::Error> {
        backend.delete(&self.account).await?;
        self.gate.pending = None;
        self.broker.forget(&self.account);
        Ok(())
    }

    /// A sign-in stored a new grant: forget the old one's tokens (and a rotated token of
    /// the old grant not stored yet), cache the new access token.
    pub fn install(mut self, issued: Issued) {
        self.gate.pending = None;
        self.broker.forget(&self.account);
        let key = CacheKey::account(&self.account);
        self.broker.cache_issued(&key, issued);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    /// A broker reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            cache: Mutex::default(),
            gates: Mutex::default(),
            refused: Mutex::default(),
            unsaved: Mutex::default(),
            used: Mutex::default(),
            stopping: AtomicBool::new(false),
        }
    }

    fn slot(&self, account: &str) -> Slot {
        lock(&self.gates)
            .entry(account.to_owned())
            .or_default()
            .clone()
    }

    fn gate(&self, account: &str) -> Arc<tokio::sync::Mutex<Gate>> {
        self.slot(account).gate
    }

    /// The cached token for `key`, whatever its age.
    pub fn cached(&self, key: &CacheKey) -> Option<CachedToken> {
        lock(&self.cache).get(key).cloned()
    }

    fn fresh(&self, key: &CacheKey, want: Freshness) -> Option<CachedToken> {
        self.cached(key)
            .filter(|t| serves(t, want, self.clock.now()))
    }

    /// What a caller whose server refused the token `bad` needs: a replacement when `bad` is
    /// `key`'s cached token, at most once per [`REFUSED_EVERY`]; else `otherwise`. A token
    /// refused again right after its replacement is not refused for its age (scopes, rights,
    /// a revoked app), and replacing it on every refusal would let one looping client make
    /// a provider call, with a rotation, per request.
    pub fn after_refusal(&self, key: &CacheKey, bad: &str, otherwise: Freshness) -> Freshness {
        let Some(t) = self.cached(key).filter(|t| t.access.expose_secret() == bad) else {
            return otherwise;
        };
        let now = self.clock.now();
        let mut refused = lock(&self.refused);
        if let Some(at) = refused.get(key)
            && now.duration_since(*at).unwrap_or_default() < REFUSED_EVERY
        {
            tracing::info!(account = %key.account, "a server refused a token replaced moments ago: not replacing it again yet");
            return otherwise;
        }
        refused.insert(key.clone(), now);
        Freshness::Replacing(t.obtained_at)
    }

    /// Notes that a caller asked for `account`'s token now (accounts in use are refreshed
    /// ahead of expiry).
    pub fn touch(&self, account: &str) {
        let now = self.clock.now();
        let mut used = lock(&self.used);
        // Every token request passes here: no new key (an allocation) unless the account is new.
        match used.get_mut(account) {
            Some(at) => *at = now,
            None => {
                used.insert(account.to_owned(), now);
            }
        }
    }

    /// Accounts whose rotated refresh token is held in memory only, with why.
    pub fn unsaved(&self) -> Vec<(String, String)> {
        lock(&self.unsaved)
            .iter()
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect()
    }

    /// Takes `account`'s gate: waits for a refresh in flight, and holds off new ones.
    pub async fn turn(&self, account: &str) -> Turn<'_> {
        Turn {
            broker: self,
            account: account.to_owned(),
            gate: self.gate(account).lock_owned().await,
        }
    }

    /// A token for `key` that satisfies `want`: from the cache, or from one provider call
    /// shared by every caller of the account waiting meanwhile.
    pub async fn token<B: Backend>(
        &self,
        key: &CacheKey,
        want: Freshness,
        backend: &B,
    ) -> Result<CachedToken, B::Error> {
        if let Some(t) = self.fresh(key, want) {
            return Ok(t);
        }
        let Slot { gate, news } = self.slot(&key.account);
        // One place in the gate's queue for the whole wait: news that does not serve this
        // key must not send the caller to the back.
        let turn = gate.lock();
        tokio::pin!(turn);
        loop {
            // Callers wait for the gate, and also for news of a newly cached token: when the
            // refresh they waited for is done, all of them are told at once. Through the gate
            // alone they would leave one at a time, each handing it to the next, and under
            // load every hand-over waits a full turn of a busy scheduler (the last of a few
            // hundred callers waited seconds after the token was there).
            let notified = news.notified();
            tokio::pin!(notified);
            // Registered before the look at the cache, so news in between is not missed.
            notified.as_mut().enable();
            if let Some(t) = self.fresh(key, want) {
                return Ok(t);
            }
            tokio::select! {
                // The gate first: a caller handed it uses it rather than queueing again.
                biased;
                mut g = &mut turn => {
                    // Someone may have refreshed this key while we waited: theirs serves if
                    // it is fresh enough for us, by our own key's rule.
                    if let Some(t) = self.fresh(key, want) {
                        return Ok(t);
                    }
                    // Boxed: the refresh's future (an HTTP exchange, a keychain write) is
                    // ~10 KB, and every connection's task is sized for the largest request it
                    // might run, so unboxed it made each idle connection that much larger.
                    // Boxed only here, under the gate: one allocation per refresh, not one per
                    // caller waiting for it.
                    return Box::pin(self.obtain(key, &mut g, backend)).await;
                }
                () = &mut notified => {}
            }
        }
    }

    /// The slow path of [`Self::token`]: refresh (or obtain), with the account's gate held.
    async fn obtain<B: Backend>(
        &self,
        key: &CacheKey,
        g: &mut Gate,
        backend: &B,
    ) -> Result<CachedToken, B::Error> {
        let account = key.account.as_str();
        if self.stopping.load(Ordering::SeqCst) {
            return Err(BrokerError::Stopping.into());
        }
        let grant = backend.prepare(account).await?;
        // Each phase is timed for the log: on a machine where idle processes answer slowly,
        // a slow refresh is told apart by where it waited (keychain or provider).
        let began = std::time::Instant::now();
        let presented: Option<SecretString> = match grant {
            Grant::ClientCredentials | Grant::Exchange => None,
            Grant::RefreshToken => Some(match g.pending.clone() {
                // The unsaved rotated token is the only valid one: store it before anything
                // else, and call no provider while it is held in memory only.
                Some(pending) => {
                    self.store(account, g, pending.clone(), backend)
                        .await
                        .map_err(B::Error::from)?;
                    pending
                }
                None => match backend.load(account).await? {
                    Some(rt) => rt,
                    None => return self.lasting(key, backend).await,
                },
            }),
        };
        let with = match (&presented, grant) {
            (Some(t), _) => Credential::Refresh(t),
            (None, Grant::Exchange) => Credential::Exchange,
            (None, _) => Credential::ClientCredentials,
        };
        if matches!(with, Credential::Refresh(_)) && g.rotates {
            // A rotated token must be stored before anyone is served, and a keychain daemon
            // idle for seconds answers its first call several times more slowly (bench/README.md):
            // it is woken while the provider answers, not after. Only for accounts whose
            // refreshes rotate: waking a locked keychain may ask the person to unlock it, which
            // a refresh that stores nothing must not.
            backend.ready_to_store(account);
        }
        let asked = std::time::Instant::now();
        match backend.request(key, with).await {
            Ok(mut issued) => {
                // From here until the store completes, a crash loses the grant: nothing else
                // happens in between.
                let answered = std::time::Instant::now();
                let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
                let rotated = issued.refresh_token.take().filter(|new| {
                    presented
                        .as_ref()
                        .is_some_and(|old| old.expose_secret() != new.expose_secret())
                });
                g.rotates = rotated.is_some();
                let mut stored = None;
                if let Some(new) = rotated {
                    self.store(account, g, new, backend)
                        .await
                        .map_err(B::Error::from)?;
                    stored = Some(std::time::Instant::now());
                }
                backend.settled(account, &mut issued).await;
                if let Some(stored) = stored {
                    tracing::info!(
                        account,
                        load_us = us(asked - began),
                        provider_us = us(answered - asked),
                        window_us = us(stored - answered),
                        settle_us = us(stored.elapsed()),
                        "rotated refresh token stored"
                    );
                }
                Ok(self.cache_issued(key, issued))
            }
            Err(Refusal::GrantEnded(why)) => {
                g.pending = None;
                self.forget(account);
                Err(backend.ended(account, &why).await)
            }
            Err(Refusal::Failed(e)) => Err(e),
        }
    }

    /// No refresh token: the account's grant may be a lasting access token, served as it is
    /// for the account's own key (it cannot be narrowed). Called with the gate held.
    async fn lasting<B: Backend>(
        &self,
        key: &CacheKey,
        backend: &B,
    ) -> Result<CachedToken, B::Error> {
        let account = key.account.clone();
        let Some(access) = backend.load_lasting(&account).await? else {
            return Err(BrokerError::NoRefreshToken { account }.into());
        };
        if !key.scopes.is_empty() || key.audience.is_some() {
            return Err(BrokerError::NotNarrowable { account }.into());
        }
        let issued = Issued {
            access,
            token_type: "Bearer".into(),
            expires_in: None,
            scopes: Vec::new(),
            id_token: None,
            claims: None,
            refresh_token: None,
            fields: BTreeMap::new(),
        };
        Ok(self.cache_issued(key, issued))
    }

    /// Stores `token` as the account's refresh token. It is held in the gate first, so if the
    /// store fails it is still the one used next.
    async fn store<B: Backend>(
        &self,
        account: &str,
        g: &mut Gate,
        token: SecretString,
        backend: &B,
    ) -> Result<(), BrokerError> {
        g.pending = Some(token.clone());
        match backend.rotate(account, &token).await {
            Ok(()) => {
                g.pending = None;
                if lock(&self.unsaved).remove(account).is_some() {
                    tracing::info!(account, "the kept rotated refresh token is stored now");
                }
                Ok(())
            }
            Err(e) => {
                let cause = e.to_string();
                tracing::error!(account, cause = %cause, "a rotated refresh token could not be stored; it is kept in memory");
                backend.unsaved(account, &cause);
                lock(&self.unsaved).insert(account.to_owned(), cause.clone());
                Err(BrokerError::Unsaved {
                    account: account.to_owned(),
                    cause,
                })
            }
        }
    }

    fn cache_issued(&self, key: &CacheKey, issued: Issued) -> CachedToken {
        let now = self.clock.now();
        // A refresh without an ID token keeps the previous one, and its claims.
        let previous = || self.cached(&CacheKey::account(&key.account));
        let (id_token, claims) = match issued.id_token {
            Some(t) => (Some(Arc::new(t)), issued.claims.map(Arc::new)),
            None => previous().map_or((None, None), |p| (p.id_token, p.claims)),
        };
        let t = CachedToken {
            access: Arc::new(issued.access),
            token_type: issued.token_type,
            expires_at: issued.expires_in.map(|d| now + d.min(MAX_LIFETIME)),
            scopes: issued.scopes,
            id_token,
            claims,
            obtained_at: now,
            fields: Arc::new(issued.fields),
        };
        lock(&self.cache).insert(key.clone(), t.clone());
        // Only an account someone has waited for has a slot to tell.
        let news = lock(&self.gates)
            .get(&key.account)
            .map(|s| Arc::clone(&s.news));
        if let Some(news) = news {
            news.notify_waiters();
        }
        t
    }

    /// Drops the cached tokens of `account` (credentials made from another account's token,
    /// when that account signs out or is removed); its grant is untouched.
    pub fn drop_cached(&self, account: &str) {
        lock(&self.cache).retain(|k, _| k.account != account);
    }

    /// Forgets every cached token of `account`.
    fn forget(&self, account: &str) {
        lock(&self.cache).retain(|k, _| k.account != account);
        lock(&self.unsaved).remove(account);
    }

    /// One pass of refresh ahead of expiry: the own tokens of accounts in use that will soon
    /// run low are replaced, so callers rarely wait for a provider; kept rotated tokens are
    /// stored again.
    pub async fn refresh_ahead<B: Backend>(&self, backend: &B) {
        let now = self.clock.now();
        let in_use: Vec<String> = lock(&self.used)
            .iter()
            .filter(|(_, at)| now.duration_since(**at).unwrap_or_default() < IN_USE)
            .map(|(a, _)| a.clone())
            .collect();
        for account in in_use {
            let key = CacheKey::account(&account);
            let Some(t) = self.cached(&key) else {
                continue;
            };
            let Some(exp) = t.expires_at else {
                continue;
            };
            let life = exp.duration_since(t.obtained_at).unwrap_or_default();
            let left = exp.duration_since(now).unwrap_or_default();
            if life < MIN_AHEAD_LIFETIME || left > AHEAD.min(life / 4) {
                continue;
            }
            match self
                .token(&key, Freshness::Replacing(t.obtained_at), backend)
                .await
            {
                Ok(_) => tracing::debug!(account, "refreshed ahead of expiry"),
                Err(_) => tracing::debug!(account, "refresh ahead did not happen"),
            }
        }
        let unsaved: Vec<String> = lock(&self.unsaved).keys().cloned().collect();
        for account in unsaved {
            let _ = self
                .store_kept(&account, &self.gate(&account), backend)
                .await;
        }
    }

    /// Every account's gate.
    fn all_gates(&self) -> Vec<(String, Arc<tokio::sync::Mutex<Gate>>)> {
        lock(&self.gates)
            .iter()
            .map(|(a, s)| (a.clone(), Arc::clone(&s.gate)))
            .collect()
    }

    /// Takes `account`'s gate (so whatever runs under it finishes first) and stores its kept
    /// rotated refresh token, if any.
    async fn store_kept<B: Backend>(
        &self,
        account: &str,
        gate: &tokio::sync::Mutex<Gate>,
        backend: &B,
    ) -> Result<(), BrokerError> {
        let mut g = gate.lock().await;
        match g.pending.clone() {
            Some(p) => self.store(account, &mut g, p, backend).await,
            None => Ok(()),
        }
    }

    /// Waits for every refresh, sign-in or removal in flight, tries once more to store kept
    /// rotated tokens (the vault locks next), then drops all access tokens (the lock). Kept
    /// rotated refresh tokens that still cannot be stored stay: they are grants, not caches.
    pub async fn quiesce<B: Backend>(&self, backend: &B) {
        for (account, gate) in self.all_gates() {
            let _ = self.store_kept(&account, &gate, backend).await;
        }
        lock(&self.cache).clear();
        lock(&self.used).clear();
    }

    /// Stops: no new provider call starts; waits for those in flight (their rotated tokens
    /// are stored), and tries once more to store any kept rotated token.
    pub async fn stop<B: Backend>(&self, backend: &B) {
        self.stopping.store(true, Ordering::SeqCst);
        let gates = self.all_gates();
        let busy = gates.iter().filter(|(_, g)| g.try_lock().is_err()).count();
        if busy > 0 {
            tracing::info!(busy, "waiting for refreshes in flight before stopping");
        }
        for (account, gate) in gates {
            if self.store_kept(&account, &gate, backend).await.is_err() {
                tracing::error!(account = %account, "stopping with a rotated refresh token that could not be stored: the grant is lost; `keyfob login {account}` will be needed");
            }
        }
    }
}
