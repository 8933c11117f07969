//! What the token broker asks of the agent: the lock and account checks, the vault, the
//! provider calls and the state file. Nothing here keeps a token: the broker does.

use super::{Agent, AgentError, now_secs, vault_key};
use crate::flows::{FlowError, refresh, token::TokenResponse};
use crate::tokens::{Backend, BrokerError, CacheKey, Credential, Grant, Issued, Refusal};
use keyfob_proto::methods::{AccountGrant, AccountState};
use oauth2::TokenResponse as _;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Vault key prefix of an account's refresh token: only the broker, through this backend,
/// reads or writes it.
const REFRESH: &str = "refresh";
/// Vault key prefix of an account's lasting access token (a provider that issues tokens
/// without expiry and no refresh token): the grant itself.
const LASTING: &str = "lasting";

impl From<BrokerError> for AgentError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Stopping => AgentError::Stopping(e.to_string()),
            BrokerError::NoRefreshToken { .. } => AgentError::NeedsLogin(e.to_string()),
            BrokerError::NotNarrowable { .. } => AgentError::Invalid(e.to_string()),
            BrokerError::Unsaved { .. } => AgentError::Storage(e.to_string()),
        }
    }
}

/// The message of an account that needs a sign-in.
fn needs_login(name: &str, why: &str) -> AgentError {
    AgentError::NeedsLogin(format!(
        "account {name:?} needs a new sign-in ({why}): run `keyfob login {name}`"
    ))
}

/// A provider's error text with the refresh token it was sent taken out: a hostile provider
/// may echo it, and the text reaches the state file, the logs and the caller.
fn scrub(e: FlowError, token: &str) -> FlowError {
    let clean = |m: String| {
        if token.is_empty() {
            m
        } else {
            m.replace(token, "[redacted]")
        }
    };
    match e {
        FlowError::InvalidGrant(m) => FlowError::InvalidGrant(clean(m)),
        FlowError::Provider(m) => FlowError::Provider(clean(m)),
        FlowError::Transient(m) => FlowError::Transient(clean(m)),
        FlowError::Config(m) => FlowError::Config(clean(m)),
        other => other,
    }
}

/// What the broker keeps of a token response.
pub(super) fn issued(tr: &TokenResponse, id_token: Option<SecretString>) -> Issued {
    Issued {
        access: SecretString::from(tr.access_token().secret().clone()),
        token_type: "Bearer".into(),
        expires_in: tr.expires_in(),
        scopes: tr
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
        id_token,
        claims: None,
        refresh_token: tr
            .refresh_token()
            .map(|r| SecretString::from(r.secret().clone())),
        fields: Default::default(),
    }
}

impl Backend for Agent {
    type Error = AgentError;

    async fn prepare(&self, account: &str) -> Result<Grant, AgentError> {
        // Locked while this request waited: no provider call now, since a rotated refresh
        // token could not be stored and the grant would be lost.
        if self.access.lock.locked() {
            return Err(AgentError::Vault(crate::vault::VaultError::Locked));
        }
        let record = self.account_record(account).await?;
        if record.grant == AccountGrant::ClientCredentials {
            return Ok(Grant::ClientCredentials);
        }
        // An exchanged credential holds no grant of its own: its source account's is used.
        if self.exchanges(&record) {
            return Ok(Grant::Exchange);
        }
        match record.state {
            AccountState::SignedIn => Ok(Grant::RefreshToken),
            AccountState::SignedOut => Err(needs_login(account, "not signed in")),
            AccountState::NeedsLogin => Err(needs_login(
                account,
                record.detail.as_deref().unwrap_or("the grant ended"),
            )),
        }
    }

    async fn load(&self, account: &str) -> Result<Option<SecretString>, AgentError> {
        let bytes = self.vault.get(&vault_key(REFRESH, account)).await?;
        Ok(bytes.map(|b| SecretString::from(String::from_utf8_lossy(&b).into_owned())))
    }

    async fn request(
        &self,
        key: &CacheKey,
        with: Credential<'_>,
    ) -> Result<Issued, Refusal<AgentError>> {
        let name = key.account.as_str();
        let failed = Refusal::Failed;
        let record = self.account_record(name).await.map_err(failed)?;
        if self.exec_plugin(&record.provider).is_some() {
            if matches!(with, Credential::Refresh(_)) {
                self.mark_refresh(name, now_secs()).map_err(failed)?;
            }
            let outcome = self.exec_request(key, &record, with).await;
            if matches!(outcome, Err(Refusal::Failed(_))) {
                self.clear_mark(name);
            }
            return outcome;
        }
        let (ep, creds) = self.provider_for(name).await.map_err(failed)?;
        let rt = match with {
            Credential::ClientCredentials => {
                let scopes = if key.scopes.is_empty() {
                    &record.scopes
                } else {
                    &key.scopes
                };
                let tr =
                    crate::flows::service::client_credentials(&self.auth.http, &ep, &creds, scopes)
                        .await
                        .map_err(|e| failed(e.into()))?;
                if record.state != AccountState::SignedIn {
                    self.update_account(name, |a| a.state = AccountState::SignedIn)
                        .await
                        .map_err(failed)?;
                }
                return Ok(issued(&tr, None));
            }
            Credential::Refresh(rt) => rt,
            Credential::Exchange => {
                return Err(failed(AgentError::Invalid(format!(
                    "account {name:?} is not an exchanging plugin's account"
                ))));
            }
        };
        // Mark the refresh as in flight, so a crash before its result is stored is noticed.
        self.mark_refresh(name, now_secs()).map_err(failed)?;
        let audience = key.audience.as_deref().or(record.audience.as_deref());
        let rt = Zeroizing::new(rt.expose_secret().to_owned());
        // No new attempt once the daemon is stopping: the stop waits for this one only.
        let shutdown = self.shutdown_signal();
        let may_retry = move || !*shutdown.borrow();
        let outcome = refresh::refresh(
            &self.auth.http,
            &ep,
            &creds,
            &rt,
            &key.scopes,
            audience,
            &may_retry,
        )
        .await
        .map_err(|e| scrub(e, &rt));
        match outcome {
            Ok(tr) => {
                tracing::info!(account = %name, rotated = tr.refresh_token().is_some(), "refreshed");
                // The ID token is validated in `settled`, once the rotated refresh token is
                // stored: a JWKS fetch must not widen the window in which a crash loses it.
                let raw = tr.extra_fields().id_token.clone().map(SecretString::from);
                Ok(issued(&tr, raw))
            }
            Err(FlowError::InvalidGrant(why)) => Err(Refusal::GrantEnded(why)),
            Err(e) => {
                self.clear_mark(name);
                Err(failed(AgentError::from(e)))
            }
        }
    }

    fn ready_to_store(&self, account: &str) {
        self.vault.warm(&vault_key(REFRESH, account));
    }

    async fn rotate(&self, account: &str, refresh_token: &SecretString) -> Result<(), AgentError> {
        // Only the refresh token: a grant that refreshes holds no lasting token to replace
        // (a sign-in's `store` deleted it), and each keychain call is a D-Bus round trip
        // while the rotated token is not yet safe.
        let bytes = Zeroizing::new(refresh_token.expose_secret().as_bytes().to_vec());
        self.vault.set(&vault_key(REFRESH, account), bytes).await?;
        // The refresh's result is stored: what the mark warned of can no longer happen (also
        // when this is the retry of a rotated token kept unsaved).
        self.clear_mark(account);
        Ok(())
    }

    async fn store(&self, account: &str, refresh_token: &SecretString) -> Result<(), AgentError> {
        self.rotate(account, refresh_token).await?;
        // A grant with a refresh token replaces a lasting one (new first, then the old). The
        // new one is stored: failing to delete the old must not report it unsaved.
        if let Err(e) = self.vault.delete(&vault_key(LASTING, account)).await {
            tracing::warn!(account, error = %e, "could not delete a replaced lasting token");
        }
        Ok(())
    }

    async fn delete(&self, account: &str) -> Result<(), AgentError> {
        self.vault.delete(&vault_key(REFRESH, account)).await?;
        self.vault.delete(&vault_key(LASTING, account)).await?;
        self.clear_mark(account);
        Ok(())
    }

    async fn load_lasting(&self, account: &str) -> Result<Option<SecretString>, AgentError> {
        let bytes = self.vault.get(&vault_key(LASTING, account)).await?;
        Ok(bytes.map(|b| SecretString::from(String::from_utf8_lossy(&b).into_owned())))
    }

    async fn store_lasting(&self, account: &str, token: &SecretString) -> Result<(), AgentError> {
        let bytes = Zeroizing::new(token.expose_secret().as_bytes().to_vec());
        self.vault.set(&vault_key(LASTING, account), bytes).await?;
        if let Err(e) = self.vault.delete(&vault_key(REFRESH, account)).await {
            tracing::warn!(account, error = %e, "could not delete a replaced refresh token");
        }
        Ok(())
    }

    fn unsaved(&self, account: &str, cause: &str) {
        self.audit.record(crate::audit::Record {
            event: "grant.unsaved".into(),
            subject: Some(account.to_owned()),
            outcome: "error".into(),
            detail: Some(cause.to_owned()),
            ..Default::default()
        });
    }

    async fn settled(&self, account: &str, issued: &mut Issued) {
        // The refresh is over (one without rotation stored nothing, and needs no mark).
        self.clear_mark(account);
        // A refresh whose ID token fails validation keeps the previous one and its claims.
        // The claims ride with the cached token and are not written to the state file: a
        // durable write here cost every refresh milliseconds, and after a restart the next
        // refresh brings them again (until then, the sign-in's recorded claims answer).
        if let Some(raw) = issued.id_token.take() {
            match self
                .check_id_token(account, raw.expose_secret(), None)
                .await
            {
                Ok(c) => {
                    issued.id_token = Some(raw);
                    issued.claims = Some(c);
                }
                Err(e) => {
                    tracing::warn!(account, error = %e, "a refresh returned an invalid ID token; kept the previous claims");
                }
            }
        }
    }

    async fn ended(&self, account: &str, why: &str) -> AgentError {
        let detail = format!("the provider refused the refresh token: {why}");
        let d2 = detail.clone();
        let res = self
            .update_account(account, |a| {
                a.state = AccountState::NeedsLogin;
                a.detail = Some(d2);
            })
            .await;
        // The provider answered: the account's detail now says what ended the grant.
        self.clear_mark(account);
        if let Err(e) = res {
            return e;
        }
        self.drop_derived(account).await;
        tracing::warn!(account, "grant refused; the account needs a new sign-in");
        needs_login(account, &detail)
    }
}
