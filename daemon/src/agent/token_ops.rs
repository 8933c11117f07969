//! `token.get`: a fresh access token from the cache, or from one refresh shared by every
//! waiting caller. The rotated refresh token reaches the vault before anyone sees the new
//! access token.

use super::{Agent, AgentError};
use crate::flows::id_token::unverified_payload;
use crate::tokens::{CacheKey, CachedToken, Freshness};
use keyfob_proto::Sensitive;
use keyfob_proto::methods::*;
use secrecy::ExposeSecret;
use std::time::{Duration, UNIX_EPOCH};

/// Default minimum remaining lifetime of a served token.
const DEFAULT_MIN_TTL: u64 = 60;
/// How often the refresh-ahead loop looks.
const AHEAD_TICK: Duration = Duration::from_secs(2);
/// How long `token --wait` waits for a person to sign in.
const SIGNIN_WAIT: Duration = Duration::from_secs(600);

fn result(t: CachedToken) -> TokenResult {
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
        fields: t
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Sensitive::new(v.expose_secret().to_owned())))
            .collect(),
    }
}

impl Agent {
    /// `token.get`.
    pub async fn token_get(&self, p: TokenParams) -> Result<TokenResult, AgentError> {
        // Only callers mark an account in use (the refresh-ahead loop must not keep itself going).
        self.tokens.touch(&p.name);
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
            // A refresh's checked claims, else those recorded at the sign-in.
            let checked = t.claims.as_deref().cloned().or_else(|| {
                self.view
                    .current()
                    .accounts
                    .get(&p.name)
                    .and_then(|a| a.claims.clone())
            });
            match checked {
                Some(c) => (Some(c), false),
                None => (unverified_payload(t.access.expose_secret()), true),
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

    /// Refreshes, ahead of time, the tokens of accounts in use that will soon run low, so
    /// callers rarely wait for a refresh; stores kept rotated tokens again. Runs until the
    /// daemon stops.
    pub async fn refresh_ahead_loop(self: std::sync::Arc<Self>) {
        let mut shutdown = self.shutdown_signal();
        let mut tick = tokio::time::interval(AHEAD_TICK);
        loop {
            tokio::select! {
                _ = super::stopped(&mut shutdown) => return,
                _ = tick.tick() => {}
            }
            // Locked: no provider call, and no store the locked vault would refuse.
            if self.access.lock.locked() {
                continue;
            }
            self.tokens.refresh_ahead(&*self).await;
        }
    }

    async fn fresh_token(&self, p: &TokenParams) -> Result<CachedToken, AgentError> {
        let min_ttl = Duration::from_secs(p.min_ttl.unwrap_or(DEFAULT_MIN_TTL));
        let key = CacheKey::new(&p.name, &p.scopes, p.audience.as_deref());
        // A server refused the cached token: replace it (once; a caller that comes after the
        // replacement gets the new one without another refresh; and not again within
        // seconds, see `Broker::after_refusal`).
        let usual = Freshness::MinTtl(min_ttl);
        let want = match &p.rejected {
            Some(bad) => self.tokens.after_refusal(&key, bad.expose(), usual),
            None => usual,
        };
        self.tokens.token(&key, want, self).await
    }

    /// Records `name`'s refresh as in flight since `at`. Failing fails the refresh: a crash
    /// must not go unnoticed.
    pub(super) fn mark_refresh(&self, name: &str, at: u64) -> Result<(), AgentError> {
        self.marks.set(name, at).map_err(|e| {
            AgentError::Storage(format!(
                "cannot record the refresh of {name:?} as in flight in {}: {e}; free disk space or fix that folder's permissions, then run the command again",
                self.marks.folder().display()
            ))
        })
    }

    /// Clears `name`'s mark, where failing only costs a wrong report at the next start.
    pub(super) fn clear_mark(&self, name: &str) {
        if let Err(e) = self.marks.clear(name) {
            tracing::warn!(account = %name, error = %e, "cannot clear the in-flight mark");
        }
    }

    /// At start-up: reports accounts whose refresh was cut short by a crash.
    pub async fn report_interrupted_refreshes(&self) -> Result<(), AgentError> {
        let marked = self.marks.list().map_err(|e| {
            AgentError::Storage(format!(
                "cannot read the refresh marks in {}: {e}; fix that folder's permissions",
                self.marks.folder().display()
            ))
        })?;
        let mut st = self.state.lock().await;
        let accounts = &st.get().accounts;
        // Marks of this version, then any an earlier version left in the state file.
        let mut hit: Vec<(String, u64)> = Vec::new();
        for (name, at) in marked {
            match name {
                Some(n) if accounts.contains_key(&n) => hit.push((n, at)),
                Some(_) => {}
                None => tracing::warn!(
                    "a refresh was interrupted by a crash, and a power cut took which account's; the next refresh of each account tells whether its grant survived"
                ),
            }
        }
        for (n, a) in accounts {
            if let Some(t) = a.refresh_in_flight
                && !hit.iter().any(|(h, _)| h == n)
            {
                hit.push((n.clone(), t));
            }
        }
        if !hit.is_empty() {
            st.update(|s| {
                for (n, t) in &hit {
                    if let Some(a) = s.accounts.get_mut(n) {
                        a.refresh_in_flight = None;
                        let when = if *t == 0 {
                            "at a time not recorded".to_owned()
                        } else {
                            format!("at {t} (Unix time)")
                        };
                        a.detail = Some(format!(
                            "a refresh was interrupted by a daemon crash {when}; if the provider rotated the refresh token then, the next refresh fails and `keyfob login {n}` is needed"
                        ));
                    }
                }
            })
            .await
            .map_err(AgentError::State)?;
        }
        drop(st);
        for (n, _) in &hit {
            tracing::warn!(account = %n, "a refresh was interrupted by a crash; see `keyfob account show`");
        }
        // Reported (or of an account that is gone): the marks have told what they knew.
        if let Err(e) = self.marks.clear_all() {
            tracing::warn!(error = %e, "cannot clear the refresh marks");
        }
        Ok(())
    }
}
