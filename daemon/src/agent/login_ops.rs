//! Sign-in: start a flow, let a person approve it, store the grant. At most one sign-in per
//! account runs at a time; asking again returns the one in progress.

use super::account_ops::{CLIENT_SECRET, not_found};
use super::auth::LoginSlot;
use super::{Agent, AgentError, vault_key};
use crate::flows::token::{ClientCreds, TokenResponse};
use crate::flows::{self, Endpoints, FlowError, browser, device};
use keyfob_proto::methods::*;
use keyfob_proto::{ErrorKind, RpcError};
use oauth2::TokenResponse as _;
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::watch;

/// What a finished sign-in brought.
enum Won {
    /// A token response from an OAuth provider.
    Oauth(TokenResponse),
    /// An exec plugin's answer to `login`.
    Plugin(crate::plugins::exec::Obtained),
}

/// A flow's second half, run in the background.
type BoxFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Won, AgentError>> + Send>>;

/// What an ID token is checked against, for one account.
pub(super) struct IdCheck {
    pub(super) issuer: String,
    pub(super) client_id: String,
    pub(super) jwks_uri: String,
    pub(super) algs: Vec<String>,
    pub(super) tenant: Option<crate::flows::discovery::TenantIssuer>,
}

impl From<FlowError> for AgentError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Config(m) => AgentError::Invalid(m),
            FlowError::RateLimited(secs) => AgentError::RateLimited(format!(
                "the provider is rate limiting token requests: retry after {secs} s"
            )),
            other => AgentError::Provider(other.to_string()),
        }
    }
}

impl Agent {
    /// The account's endpoints (resolved once, then cached) and client credentials.
    pub(super) async fn provider_for(
        &self,
        name: &str,
    ) -> Result<(Endpoints, ClientCreds), AgentError> {
        let record = self
            .view
            .current()
            .accounts
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        let secret = if record.confidential {
            let bytes = self.vault.get(&vault_key(CLIENT_SECRET, name)).await?.ok_or_else(|| {
                AgentError::Inconsistent(format!(
                    "the client secret of account {name:?} is missing from the vault: remove and add the account again"
                ))
            })?;
            Some(SecretString::from(
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        } else {
            None
        };
        let secret_in_body = self
            .auth
            .plugin(&record.provider)
            .is_some_and(|m| m.quirks.client_secret_in_body);
        let creds = ClientCreds {
            id: record.client_id.clone(),
            secret,
            secret_in_body,
        };
        let cached = self
            .auth
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        let ep = match cached {
            Some(ep) => ep,
            None => {
                let manifest = self.auth.plugin(&record.provider).ok_or_else(|| {
                    AgentError::Invalid(format!(
                        "account {name:?} uses provider {:?}, which is no longer installed",
                        record.provider
                    ))
                })?;
                let ep = flows::resolve(&self.auth.http, manifest, &record.params).await?;
                self.auth
                    .endpoints
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_owned(), ep.clone());
                ep
            }
        };
        Ok((ep, creds))
    }

    /// `login.start`.
    pub async fn login_start(
        self: &Arc<Self>,
        p: LoginStartParams,
    ) -> Result<LoginStarted, AgentError> {
        let record = self.account_record(&p.name).await?;
        if record.grant == AccountGrant::ClientCredentials {
            return Err(AgentError::Invalid(format!(
                "{:?} is a client-credentials account and needs no sign-in: `keyfob token {}` gets its token",
                p.name, p.name
            )));
        }
        let starting = self.auth.starting(&p.name);
        let _starting = starting.lock().await;
        if let Some(active) = self.auth.active_login(&p.name) {
            return Ok(active.started.clone());
        }
        // A random, unguessable id (128 bits).
        let login_id = crate::ids::random_hex(16);
        let (info, nonce, task) = if self.exec_plugin(&record.provider).is_some() {
            let login = self.exec_login(&p.name, &record)?;
            let info = LoginStarted {
                login_id: login_id.clone(),
                flow: LoginFlow::Plugin,
                user_code: None,
                verification_uri: None,
                verification_uri_complete: None,
                authorize_url: None,
                expires_in: crate::plugins::exec::DEFAULT_TIMEOUT.as_secs(),
            };
            let task: BoxFuture = Box::pin(async move { Ok(Won::Plugin(login.await?)) });
            (info, None, task)
        } else {
            self.oauth_start(&p, &record, login_id.clone()).await?
        };
        self.begin_login(p.name.clone(), login_id, info, nonce, task)
    }

    /// Starts an OAuth sign-in (device or browser): what to show, the nonce, and the task
    /// that finishes it.
    async fn oauth_start(
        &self,
        p: &LoginStartParams,
        record: &crate::state::AccountRecord,
        login_id: String,
    ) -> Result<(LoginStarted, Option<String>, BoxFuture), AgentError> {
        let manifest_flows = self
            .auth
            .plugin(&record.provider)
            .map(|m| m.flows.clone())
            .unwrap_or_default();
        let flow = p.flow.unwrap_or(match manifest_flows.first() {
            Some(crate::plugins::Flow::Browser) => LoginFlow::Browser,
            _ => LoginFlow::Device,
        });
        // Some providers take only a few scopes in the device flow (Google): say so before
        // the person is sent to a page that will refuse.
        let device_scopes = self
            .auth
            .plugin(&record.provider)
            .map(|m| m.quirks.device_scopes.clone())
            .unwrap_or_default();
        if flow == LoginFlow::Device
            && !device_scopes.is_empty()
            && let Some(bad) = record.scopes.iter().find(|s| !device_scopes.contains(s))
        {
            return Err(AgentError::Invalid(format!(
                "{} accepts only {} in the device flow, and account {:?} asks for {bad:?}: sign in with `keyfob login {} --browser`, or add the account with --scopes among those",
                record.provider,
                device_scopes.join(", "),
                p.name,
                p.name
            )));
        }
        let (ep, creds) = self.provider_for(&p.name).await?;
        let http = self.auth.http.clone();
        Ok(match flow {
            LoginFlow::Device => {
                let started = device::start(
                    &http,
                    &ep,
                    &creds,
                    &record.scopes,
                    record.audience.as_deref(),
                )
                .await?;
                let d = &started.details;
                let info = LoginStarted {
                    login_id: login_id.clone(),
                    flow,
                    user_code: Some(d.user_code().secret().clone()),
                    verification_uri: Some(d.verification_uri().to_string()),
                    verification_uri_complete: d
                        .verification_uri_complete()
                        .map(|u| u.secret().clone()),
                    authorize_url: None,
                    expires_in: d.expires_in().as_secs(),
                };
                let task: BoxFuture = Box::pin(async move {
                    Ok(Won::Oauth(
                        device::finish(&http, &ep, &creds, &started).await?,
                    ))
                });
                (info, None, task)
            }
            LoginFlow::Browser => {
                let extra = self
                    .auth
                    .plugin(&record.provider)
                    .map(|m| m.quirks.auth_params.clone())
                    .unwrap_or_default();
                let mut extra = extra;
                if let Some(a) = &record.audience {
                    extra.insert("audience".into(), a.clone());
                }
                let started = browser::start(&ep, &creds, &record.scopes, &extra).await?;
                let info = LoginStarted {
                    login_id: login_id.clone(),
                    flow,
                    user_code: None,
                    verification_uri: None,
                    verification_uri_complete: None,
                    authorize_url: Some(started.authorize_url.clone()),
                    expires_in: browser::TIMEOUT.as_secs(),
                };
                let nonce = started.nonce.clone();
                let task: BoxFuture = Box::pin(async move {
                    Ok(Won::Oauth(
                        browser::finish(&http, &ep, &creds, started).await?,
                    ))
                });
                (info, nonce, task)
            }
            LoginFlow::Plugin => {
                return Err(AgentError::Invalid(format!(
                    "account {:?} signs in with the device code or the browser; the plugin flow is for exec plugins",
                    p.name
                )));
            }
        })
    }

    /// Registers a started sign-in and runs its second half in the background.
    fn begin_login(
        self: &Arc<Self>,
        name: String,
        login_id: String,
        info: LoginStarted,
        nonce: Option<String>,
        task: BoxFuture,
    ) -> Result<LoginStarted, AgentError> {
        let (tx, rx) = watch::channel(None);
        let agent = Arc::clone(self);
        self.auth
            .logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                login_id.clone(),
                Arc::new(LoginSlot {
                    account: name.clone(),
                    started: info.clone(),
                    outcome: rx,
                }),
            );
        tracing::info!(account = %name, flow = ?info.flow, "sign-in started");
        self.emit(keyfob_proto::Event::SigninStarted {
            account: name.clone(),
            flow: info.flow,
            user_code: info.user_code.clone(),
            verification_uri: info.verification_uri.clone(),
            verification_uri_complete: info.verification_uri_complete.clone(),
            authorize_url: info.authorize_url.clone(),
        });
        tokio::spawn(async move {
            let outcome = match task.await {
                Ok(Won::Oauth(tr)) => agent.store_grant(&name, tr, nonce.as_deref()).await,
                Ok(Won::Plugin(o)) => agent.store_exec_grant(&name, o).await,
                Err(e) => Err(e),
            };
            match &outcome {
                Ok(_) => tracing::info!(account = %name, "signed in"),
                Err(e) => tracing::warn!(account = %name, error = %e, "sign-in failed"),
            }
            agent.audit.record(crate::audit::Record {
                event: "signin.finished".into(),
                subject: Some(name.clone()),
                outcome: if outcome.is_ok() { "ok" } else { "error" }.into(),
                detail: outcome.as_ref().err().map(|e| e.to_string()),
                ..Default::default()
            });
            agent.emit(keyfob_proto::Event::SigninFinished {
                account: name.clone(),
                ok: outcome.is_ok(),
                error: outcome.as_ref().err().map(|e| e.to_string()),
            });
            let _ = tx.send(Some(outcome.map_err(RpcError::from)));
        });
        Ok(info)
    }

    /// What the account's ID tokens must satisfy; `None` for providers without ID tokens.
    pub(super) async fn id_check(&self, name: &str) -> Result<Option<IdCheck>, AgentError> {
        let (ep, creds) = self.provider_for(name).await?;
        Ok(match (ep.issuer, ep.jwks_uri) {
            (Some(issuer), Some(jwks_uri)) => Some(IdCheck {
                issuer,
                client_id: creds.id,
                jwks_uri,
                algs: ep.id_token_algs,
                tenant: ep.tenant,
            }),
            _ => None,
        })
    }

    /// Validates an ID token for an account and returns its claims.
    pub(super) async fn check_id_token(
        &self,
        name: &str,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<serde_json::Value, AgentError> {
        let Some(c) = self.id_check(name).await? else {
            return Err(AgentError::Provider(
                "the provider sent an ID token but publishes no issuer or keys to check it with"
                    .into(),
            ));
        };
        let algs = crate::flows::id_token::allowed_algs(&c.algs);
        let expect = crate::flows::id_token::Expect {
            issuer: &c.issuer,
            tenant: c.tenant.as_ref(),
            client_id: &c.client_id,
            nonce,
            algs: &algs,
        };
        let http = &self.auth.http;
        let uri = c.jwks_uri.clone();
        self.auth
            .jwks
            .verify(&c.jwks_uri, raw, &expect, || {
                crate::flows::id_token::fetch_jwks(http, &uri)
            })
            .await
            .map_err(|e| AgentError::Provider(format!("sign-in refused: {e}")))
    }

    /// `login.wait`.
    pub async fn login_wait(&self, p: LoginWaitParams) -> Result<AccountInfo, RpcError> {
        let slot = self
            .auth
            .logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&p.login_id)
            .cloned()
            .ok_or_else(|| {
                RpcError::new(
                    ErrorKind::NotFound,
                    "no such sign-in: start one with `keyfob login NAME`",
                )
            })?;
        let mut rx = slot.outcome.clone();
        let done = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| {
                RpcError::new(
                    ErrorKind::Internal,
                    "the sign-in task ended without an outcome",
                )
            })?
            .clone();
        done.unwrap_or_else(|| Err(RpcError::new(ErrorKind::Internal, "no outcome")))
    }

    /// Stores a new grant: refresh token into the vault first, then the state, then the
    /// access token into the cache.
    pub(super) async fn store_grant(
        &self,
        name: &str,
        tr: TokenResponse,
        nonce: Option<&str>,
    ) -> Result<AccountInfo, AgentError> {
        // A sign-in whose ID token fails validation is refused before anything is stored.
        let lasting = self
            .account_record(name)
            .await
            .ok()
            .and_then(|r| {
                self.auth
                    .plugin(&r.provider)
                    .map(|m| m.quirks.lasting_tokens)
            })
            .unwrap_or(false);
        let claims = match &tr.extra_fields().id_token {
            Some(raw) => Some(self.check_id_token(name, raw, nonce).await?),
            None => None,
        };
        let id_token = tr.extra_fields().id_token.clone().map(SecretString::from);
        // The account's turn: a refresh of the old grant still in flight finishes (and stores
        // its rotation) first, so it can never write over this sign-in.
        let mut turn = self.tokens.turn(name).await;
        let mut st = self.state.lock().await;
        match tr.refresh_token() {
            Some(rt) => {
                turn.store(self, &SecretString::from(rt.secret().clone()))
                    .await?
            }
            // An access token that does not expire, and no refresh token (GitHub OAuth apps):
            // the token is the grant, kept like a refresh token.
            None if lasting && tr.expires_in().is_none() => {
                let access = SecretString::from(tr.access_token().secret().clone());
                turn.store_lasting(self, &access).await?
            }
            // A grant that ends with its access token: an older grant's token must not
            // outlive it.
            None => turn.remove(self).await?,
        }
        self.signed_in(&mut st, turn, name, claims, |t| {
            t.install(super::token_backend::issued(&tr, id_token))
        })
        .await
    }

    /// The end of every sign-in, with the new grant stored: the account is signed in (with the
    /// new ID token's claims, if any), the first access token is cached, and its info returned.
    pub(super) async fn signed_in(
        &self,
        st: &mut tokio::sync::MutexGuard<'_, crate::state::StateFile>,
        turn: crate::tokens::Turn<'_>,
        name: &str,
        claims: Option<serde_json::Value>,
        install: impl FnOnce(crate::tokens::Turn<'_>),
    ) -> Result<AccountInfo, AgentError> {
        let n = name.to_owned();
        st.update(|s| {
            if let Some(a) = s.accounts.get_mut(&n) {
                a.state = AccountState::SignedIn;
                a.detail = None;
                // A new grant's claims, or none: never an older grant's.
                a.claims = claims;
            }
        })
        .await
        .map_err(AgentError::State)?;
        // A new grant: no mark of the old one's refresh may later report it as interrupted.
        self.clear_mark(name);
        install(turn);
        let r = st
            .get()
            .accounts
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        Ok(self.account_info(name, &r))
    }
}
