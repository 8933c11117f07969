//! `token.get`: a fresh access token from the cache, or from one refresh shared by every
//! waiting caller. The rotated refresh token reaches the vault before anyone sees the new
//! access token.

use super::account_ops::REFRESH;
use super::login_ops::cached_from;
use super::{Agent, AgentError, now_secs, vault_key};
use crate::flows::{FlowError, refresh};
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;
use oauth2::TokenResponse as _;
use secrecy::ExposeSecret;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Default minimum remaining lifetime of a served token.
const DEFAULT_MIN_TTL: u64 = 60;
/// How often the refresh-ahead loop looks.
const AHEAD_TICK: Duration = Duration::from_secs(2);
/// Accounts asked for within this time count as in use.
const IN_USE: Duration = Duration::from_secs(15 * 60);
/// Tokens living less than this are not refreshed ahead.
const MIN_AHEAD_LIFETIME: Duration = Duration::from_secs(20);
/// Tokens of accounts in use are refreshed when this much lifetime is left.
const AHEAD: Duration = Duration::from_secs(75);
/// How long `token --wait` waits for a person to sign in.
const SIGNIN_WAIT: Duration = Duration::from_secs(600);
/// Served tokens also keep this margin, for clock skew and time in flight.
const SKEW: Duration = Duration::from_secs(10);

fn usable(t: &super::auth::CachedToken, min_ttl: Duration) -> bool {
    match t.expires_at {
        None => true,
        Some(exp) => exp
            .duration_since(SystemTime::now())
            .is_ok_and(|left| left >= min_ttl + SKEW),
    }
}

fn result(t: super::auth::CachedToken) -> TokenResult {
    TokenResult {
        access_token: Sensitive::new(t.access.expose_secret().to_owned()),
        token_type: t.token_type,
        expires_at: t
            .expires_at
            .and_then(|e| e.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        scopes: t.scopes,
        id_token: None,
        claims: None,
        claims_unverified: false,
    }
}

/// The payload of a JWT, decoded without verifying anything (for `--claims` on a JWT access
/// token, which is meant for the resource server, not for Keyfob to verify).
fn jwt_payload(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The cache key of a request: the account's name, plus scopes and audience when asked for.
fn cache_key(p: &TokenParams) -> String {
    if p.scopes.is_empty() && p.audience.is_none() {
        return p.name.clone();
    }
    let mut scopes = p.scopes.clone();
    scopes.sort();
    scopes.dedup();
    format!(
        "{}{}{}{}{}",
        p.name,
        super::auth::KEY_SEP,
        scopes.join(" "),
        super::auth::KEY_SEP,
        p.audience.as_deref().unwrap_or("")
    )
}

fn needs_login(name: &str, why: &str) -> AgentError {
    AgentError::NeedsLogin(format!(
        "account {name:?} needs a new sign-in ({why}): run `keyfob login {name}`"
    ))
}

impl Agent {
    /// `token.get`.
    pub async fn token_get(&self, p: TokenParams) -> Result<TokenResult, AgentError> {
        // Only callers mark an account in use (the refresh-ahead loop must not keep itself going).
        self.auth.touch(&p.name);
        // Subscribe before trying, so a sign-in finishing in between is not missed.
        let mut events = p.wait.then(|| self.subscribe());
        let t = match self.fresh_token(&p).await {
            Err(AgentError::NeedsLogin(why)) if p.wait => {
                tracing::info!(account = %p.name, "a token request waits for a sign-in");
                let rx = events
                    .as_mut()
                    .ok_or_else(|| AgentError::NeedsLogin(why.clone()))?;
                self.wait_for_signin(&p.name, rx, &why).await?;
                self.fresh_token(&p).await?
            }
            other => other?,
        };
        let id_token = if p.id_token {
            Some(t.id_token.clone().map(|s| Sensitive::new(s.expose_secret().to_owned())).ok_or_else(|| {
                AgentError::Invalid(format!(
                    "no ID token is held for {:?}: the provider sent none (an OAuth-only provider, or a scope without openid); after a daemon restart one arrives with the next refresh or sign-in",
                    p.name
                ))
            })?)
        } else {
            None
        };
        let (claims, claims_unverified) = if p.claims {
            let stored = {
                let st = self.state.lock().await;
                st.get()
                    .accounts
                    .get(&p.name)
                    .and_then(|a| a.claims.clone())
            };
            match stored {
                Some(c) => (Some(c), false),
                None => (jwt_payload(t.access.expose_secret()), true),
            }
        } else {
            (None, false)
        };
        if p.claims && claims.is_none() {
            return Err(AgentError::Invalid(format!(
                "no claims for {:?}: there is no ID token, and the access token is not a JWT",
                p.name
            )));
        }
        let mut r = result(t);
        r.id_token = id_token;
        r.claims = claims;
        r.claims_unverified = claims_unverified && r.claims.is_some();
        Ok(r)
    }

    async fn wait_for_signin(
        &self,
        name: &str,
        rx: &mut tokio::sync::broadcast::Receiver<keyfob_proto::Event>,
        why: &str,
    ) -> Result<(), AgentError> {
        let timed_out = || {
            AgentError::NeedsLogin(format!(
                "{why}; waited {} s and nobody signed in",
                SIGNIN_WAIT.as_secs()
            ))
        };
        tokio::time::timeout(SIGNIN_WAIT, async {
            loop {
                match rx.recv().await {
                    Ok(keyfob_proto::Event::SigninFinished {
                        account, ok: true, ..
                    }) if account == name => {
                        return Ok(());
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Err(timed_out());
                    }
                }
            }
        })
        .await
        .map_err(|_| timed_out())?
    }

    /// Refreshes, ahead of time, the tokens of accounts used in the last [`IN_USE`] that
    /// will soon run low, so callers rarely wait for a refresh. Runs until the daemon stops.
    pub async fn refresh_ahead_loop(self: std::sync::Arc<Self>) {
        let mut shutdown = self.shutdown_signal();
        let mut tick = tokio::time::interval(AHEAD_TICK);
        loop {
            tokio::select! {
                _ = super::stopped(&mut shutdown) => return,
                _ = tick.tick() => {}
            }
            let in_use: Vec<String> = self
                .auth
                .used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(_, at)| at.elapsed() < IN_USE)
                .map(|(n, _)| n.clone())
                .collect();
            for name in in_use {
                let Some(t) = self.auth.cached(&name) else {
                    continue;
                };
                let (Some(exp), now) = (t.expires_at, SystemTime::now()) else {
                    continue;
                };
                let lifetime = exp.duration_since(t.obtained_at).unwrap_or_default();
                let left = exp.duration_since(now).unwrap_or_default();
                // Refresh at 75 s left, or at half-life for tokens shorter-lived than that.
                // Very short-lived tokens are refreshed on demand only: ahead of time it would
                // be a refresh every tick.
                if lifetime < MIN_AHEAD_LIFETIME || left > AHEAD.min(lifetime / 2) {
                    continue;
                }
                let p = TokenParams {
                    name: name.clone(),
                    min_ttl: Some(left.as_secs() + 1),
                    ..Default::default()
                };
                match self.fresh_token(&p).await {
                    Ok(_) => tracing::debug!(account = %name, "refreshed ahead of expiry"),
                    Err(e) => {
                        tracing::debug!(account = %name, error = %e, "refresh ahead did not happen")
                    }
                }
            }
        }
    }

    async fn fresh_token(&self, p: &TokenParams) -> Result<super::auth::CachedToken, AgentError> {
        let min_ttl = Duration::from_secs(p.min_ttl.unwrap_or(DEFAULT_MIN_TTL));
        // Downscoped or other-audience tokens are cached apart from the account's own.
        let key = cache_key(p);
        if let Some(t) = self.auth.cached(&key).filter(|t| usable(t, min_ttl)) {
            return Ok(t);
        }
        let gate = self.auth.gate(&p.name);
        let seen = gate.generation.load(Ordering::SeqCst);
        let _turn = gate.lock.lock().await;
        // Locked while this request waited: no provider call now, since a rotated refresh
        // token could not be stored and the grant would be lost.
        if self.access.locked() {
            return Err(AgentError::Vault(crate::vault::VaultError::Locked));
        }
        // Someone refreshed while we waited: theirs is the freshest token there is, even if
        // the provider's lifetime is shorter than min_ttl.
        if gate.generation.load(Ordering::SeqCst) != seen
            && let Some(t) = self.auth.cached(&key)
        {
            return Ok(t);
        }
        if let Some(t) = self.auth.cached(&key).filter(|t| usable(t, min_ttl)) {
            return Ok(t);
        }
        let record = self.account_record(&p.name).await?;
        if record.grant == AccountGrant::ClientCredentials {
            return self
                .client_credentials_token(
                    &p.name,
                    &key,
                    if p.scopes.is_empty() {
                        &record.scopes
                    } else {
                        &p.scopes
                    },
                    &gate,
                )
                .await;
        }
        match record.state {
            AccountState::SignedIn => {}
            AccountState::SignedOut => return Err(needs_login(&p.name, "not signed in")),
            AccountState::NeedsLogin => {
                return Err(needs_login(
                    &p.name,
                    record.detail.as_deref().unwrap_or("the grant ended"),
                ));
            }
        }
        let old = self
            .vault
            .get(&vault_key(REFRESH, &p.name))
            .await?
            .ok_or_else(|| needs_login(&p.name, "no refresh token is stored"))?;
        let old = Zeroizing::new(String::from_utf8_lossy(&old).into_owned());
        let (ep, creds) = self.provider_for(&p.name).await?;

        // Mark the refresh as in flight, so a crash before its result is stored is noticed.
        self.mark_refresh(&p.name, Some(now_secs())).await?;
        let audience = p.audience.as_deref().or(record.audience.as_deref());
        let outcome =
            refresh::refresh(&self.auth.http, &ep, &creds, &old, &p.scopes, audience).await;
        match outcome {
            Ok(tr) => {
                if let Some(new) = tr.refresh_token()
                    && new.secret().as_str() != old.as_str()
                {
                    // The rotated token must be durable before any caller holds the new
                    // access token: losing it would lose the grant.
                    self.vault
                        .set(
                            &vault_key(REFRESH, &p.name),
                            Zeroizing::new(new.secret().as_bytes().to_vec()),
                        )
                        .await?;
                }
                // A refresh without an ID token keeps the previous one and its claims; one that
                // fails validation is dropped (the new refresh token is already stored).
                let previous = self.auth.cached(&p.name).and_then(|t| t.id_token);
                let mut new_claims = None;
                let id_token = match &tr.extra_fields().id_token {
                    None => previous,
                    Some(raw) => match self.check_id_token(&p.name, raw, None).await {
                        Ok(c) => {
                            new_claims = Some(c);
                            Some(secrecy::SecretString::from(raw.clone()))
                        }
                        Err(e) => {
                            tracing::warn!(account = %p.name, error = %e, "a refresh returned an invalid ID token; kept the previous claims");
                            previous
                        }
                    },
                };
                self.update_account(&p.name, |a| {
                    a.refresh_in_flight = None;
                    if let Some(c) = new_claims {
                        a.claims = Some(c);
                    }
                })
                .await?;
                let cached = cached_from(&tr, id_token);
                self.auth.cache(&key, cached.clone());
                gate.generation.fetch_add(1, Ordering::SeqCst);
                tracing::info!(account = %p.name, rotated = tr.refresh_token().is_some(), "refreshed");
                Ok(cached)
            }
            Err(FlowError::InvalidGrant(why)) => {
                self.auth.forget(&p.name);
                let detail = format!("the provider refused the refresh token: {why}");
                let d2 = detail.clone();
                self.update_account(&p.name, |a| {
                    a.state = AccountState::NeedsLogin;
                    a.detail = Some(d2);
                    a.refresh_in_flight = None;
                })
                .await?;
                tracing::warn!(account = %p.name, "grant refused; the account needs a new sign-in");
                Err(needs_login(&p.name, &detail))
            }
            Err(e) => {
                self.mark_refresh(&p.name, None).await?;
                Err(AgentError::from(e))
            }
        }
    }

    /// A new client-credentials token (the caller holds the account's gate).
    async fn client_credentials_token(
        &self,
        name: &str,
        key: &str,
        scopes: &[String],
        gate: &super::auth::RefreshGate,
    ) -> Result<super::auth::CachedToken, AgentError> {
        let (ep, creds) = self.provider_for(name).await?;
        let tr =
            crate::flows::service::client_credentials(&self.auth.http, &ep, &creds, scopes).await?;
        let cached = cached_from(&tr, None);
        self.auth.cache(key, cached.clone());
        gate.generation.fetch_add(1, Ordering::SeqCst);
        self.update_account(name, |a| {
            a.state = AccountState::SignedIn;
        })
        .await?;
        Ok(cached)
    }

    async fn mark_refresh(&self, name: &str, at: Option<u64>) -> Result<(), AgentError> {
        self.update_account(name, |a| {
            a.refresh_in_flight = at;
        })
        .await
    }

    /// At start-up: reports accounts whose refresh was cut short by a crash.
    pub async fn report_interrupted_refreshes(&self) -> Result<(), AgentError> {
        let mut st = self.state.lock().await;
        let hit: Vec<(String, u64)> = st
            .get()
            .accounts
            .iter()
            .filter_map(|(n, a)| a.refresh_in_flight.map(|t| (n.clone(), t)))
            .collect();
        if hit.is_empty() {
            return Ok(());
        }
        st.update(|s| {
            for (n, t) in &hit {
                if let Some(a) = s.accounts.get_mut(n) {
                    a.refresh_in_flight = None;
                    a.detail = Some(format!(
                        "a refresh was interrupted by a daemon crash at {t} (Unix time); if the provider rotated the refresh token then, the next refresh fails and `keyfob login {n}` is needed"
                    ));
                }
            }
        })
        .await
        .map_err(AgentError::Storage)?;
        for (n, _) in hit {
            tracing::warn!(account = %n, "a refresh was interrupted by a crash; see `keyfob account show`");
        }
        Ok(())
    }
}
