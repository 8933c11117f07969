//! Accounts: add, list, show, remove. Non-secret facts in the state file; the client secret
//! and refresh token in the vault.

use super::{Agent, AgentError, names, now_secs, vault_key};
use crate::state::AccountRecord;
use keyfob_proto::methods::*;
use secrecy::ExposeSecret;
use std::time::UNIX_EPOCH;
use zeroize::Zeroizing;

/// Vault key prefix of an account's client secret (its refresh token is the broker's).
pub(super) const CLIENT_SECRET: &str = "client-secret";

pub(super) fn not_found(name: &str) -> AgentError {
    AgentError::NotFound {
        what: "account",
        cmd: "account",
        name: name.to_owned(),
    }
}

impl Agent {
    /// A copy of an account's record, or NotFound.
    /// The page where a person revokes the app's access, for providers without revocation.
    async fn revoke_page(&self, name: &str) -> Option<String> {
        let record = self.account_record(name).await.ok()?;
        self.auth
            .plugin(&record.provider)?
            .quirks
            .revoke_page
            .clone()
    }

    pub(super) async fn account_record(&self, name: &str) -> Result<AccountRecord, AgentError> {
        self.view
            .current()
            .accounts
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    /// Changes one account's record durably (a no-op if it was removed meanwhile).
    pub(super) async fn update_account(
        &self,
        name: &str,
        change: impl FnOnce(&mut AccountRecord) + Send,
    ) -> Result<(), AgentError> {
        let n = name.to_owned();
        let changed = self
            .state
            .lock()
            .await
            .update(move |s| {
                let a = s.accounts.get_mut(&n)?;
                let before = a.state;
                change(a);
                (a.state != before).then_some(a.state)
            })
            .await
            .map_err(AgentError::State)?;
        if let Some(state) = changed {
            self.emit(keyfob_proto::Event::AccountChanged {
                name: name.to_owned(),
                change: keyfob_proto::events::Change::Updated,
                state: Some(state),
            });
        }
        Ok(())
    }

    pub(super) fn account_info(&self, name: &str, r: &AccountRecord) -> AccountInfo {
        let expires = self
            .tokens
            .cached(&crate::tokens::CacheKey::account(name))
            .and_then(|t| t.expires_at)
            .and_then(|e| e.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let integrations = self
            .auth
            .plugin(&r.provider)
            .map(|m| m.integrations.clone())
            .unwrap_or_default();
        AccountInfo {
            name: name.to_owned(),
            provider: r.provider.clone(),
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            grant: r.grant,
            confidential: r.confidential,
            scopes: r.scopes.clone(),
            audience: r.audience.clone(),
            state: r.state,
            detail: r.detail.clone(),
            access_expires_at: expires,
            check: None,
            env: integrations.env,
            git_hosts: integrations.git_hosts,
        }
    }

    /// Checks the provider before an account is stored: discovery reachable and naming the
    /// issuer asked for, and which sign-in flows it offers. A provider that answers wrongly
    /// refuses the account; one that cannot be reached now does not.
    async fn check_provider(
        &self,
        manifest: &crate::plugins::Manifest,
        params: &std::collections::BTreeMap<String, String>,
        grant: AccountGrant,
    ) -> Result<(Option<crate::flows::Endpoints>, ProviderCheck), AgentError> {
        use crate::flows::FlowError;
        use crate::plugins::Flow;
        let ep = match crate::flows::resolve(&self.auth.http, manifest, params).await {
            Ok(ep) => ep,
            Err(e @ FlowError::Transient(_)) => {
                let check = ProviderCheck {
                    issuer: None,
                    flows: Vec::new(),
                    revocation: false,
                    unreachable: Some(e.to_string()),
                };
                return Ok((None, check));
            }
            Err(e) => {
                return Err(AgentError::Invalid(format!(
                    "the provider does not answer as {} should, so the account was not added: {e}",
                    manifest.name
                )));
            }
        };
        let flows: Vec<LoginFlow> = manifest
            .flows
            .iter()
            .filter_map(|f| match f {
                Flow::Device if ep.device_authorization.is_some() => Some(LoginFlow::Device),
                Flow::Browser if ep.authorization.is_some() => Some(LoginFlow::Browser),
                _ => None,
            })
            .collect();
        if grant == AccountGrant::User && flows.is_empty() {
            return Err(AgentError::Invalid(format!(
                "the provider offers no sign-in flow {} supports (no device authorization or authorization endpoint): check the issuer, or add the account with --grant client-credentials",
                manifest.name
            )));
        }
        let check = ProviderCheck {
            issuer: ep
                .tenant
                .as_ref()
                .map(|t| t.template.clone())
                .or(ep.issuer.clone()),
            flows,
            revocation: ep.revocation.is_some(),
            unreachable: None,
        };
        Ok((Some(ep), check))
    }

    /// The issuer, parameters and endpoints of an OAuth or OIDC account, checked at the
    /// provider.
    async fn check_oauth(
        &self,
        p: &AccountAddParams,
        manifest: &crate::plugins::Manifest,
    ) -> Result<
        (
            Option<String>,
            std::collections::BTreeMap<String, String>,
            Option<crate::flows::Endpoints>,
            ProviderCheck,
        ),
        AgentError,
    > {
        if p.client_id.trim().is_empty() {
            return Err(AgentError::Invalid("--client-id is empty".into()));
        }
        let mut params = p.params.clone();
        if let Some(issuer) = &p.issuer {
            // --issuer fills the issuer template's one parameter ({issuer}, {host}).
            let template = manifest.issuer.clone().unwrap_or_default();
            let slot = template
                .split('{')
                .nth(1)
                .and_then(|r| r.split('}').next())
                .map(str::to_owned);
            match slot {
                Some(slot) => {
                    params.insert(slot, issuer.trim_end_matches('/').to_owned());
                }
                None => {
                    return Err(AgentError::Invalid(format!(
                        "provider {} has a fixed issuer; --issuer applies to providers like \"oidc\"",
                        manifest.id
                    )));
                }
            }
        }
        let issuer = manifest.issuer_for(&params).map_err(AgentError::Invalid)?;
        let (endpoints, check) = self.check_provider(manifest, &params, p.grant).await?;
        Ok((issuer, params, endpoints, check))
    }

    /// `account.add`.
    pub async fn account_add(&self, p: AccountAddParams) -> Result<AccountInfo, AgentError> {
        names::validate("account", &p.name).map_err(AgentError::Invalid)?;
        let manifest = self.auth.plugin(&p.provider).ok_or_else(|| {
            let known: Vec<&str> = self.auth.plugins.iter().map(|m| m.id.as_str()).collect();
            AgentError::Invalid(format!(
                "unknown provider {:?}: use one of {}",
                p.provider,
                known.join(", ")
            ))
        })?;
        if p.grant == AccountGrant::ClientCredentials && p.client_secret.is_none() {
            return Err(AgentError::Invalid(
                "a client-credentials account needs a client secret: pass --client-secret - and give it on stdin".into(),
            ));
        }
        if manifest.quirks.client_secret_required && p.client_secret.is_none() {
            return Err(AgentError::Invalid(format!(
                "{} needs the client secret even for desktop and device clients: pass --client-secret - and give it on stdin (Keyfob keeps it in the vault, like any secret)",
                manifest.name
            )));
        }
        let exec = self.exec_plugin(&manifest.id).map(|(_, h)| h);
        let (issuer, params, endpoints, check) = match &exec {
            Some(host) => {
                if p.issuer.is_some() || p.grant != AccountGrant::User || p.audience.is_some() {
                    return Err(AgentError::Invalid(format!(
                        "provider {} is an exec plugin: it takes --param settings only (no --issuer, --grant or --audience)",
                        manifest.id
                    )));
                }
                let check = self.check_exec(&p.name, manifest, host, &p.params).await?;
                (None, p.params.clone(), None, check)
            }
            None => self.check_oauth(&p, manifest).await?,
        };
        let scopes = if p.scopes.is_empty() {
            manifest.scopes.clone()
        } else {
            p.scopes.clone()
        };
        let mut st = self.state.lock().await;
        if st.get().accounts.contains_key(&p.name) {
            return Err(AgentError::AlreadyExists {
                what: "account",
                cmd: "account",
                name: p.name.clone(),
            });
        }
        if let Some(secret) = &p.client_secret {
            self.vault
                .set(
                    &vault_key(CLIENT_SECRET, &p.name),
                    Zeroizing::new(secret.expose().as_bytes().to_vec()),
                )
                .await?;
        }
        let record = AccountRecord {
            provider: manifest.id.clone(),
            issuer,
            client_id: p.client_id.clone(),
            grant: p.grant,
            confidential: p.client_secret.is_some(),
            scopes,
            audience: p.audience.clone(),
            params,
            // An exchanged credential holds no grant of its own: it is ready when its source is.
            state: if manifest.exchanges() {
                AccountState::SignedIn
            } else {
                AccountState::SignedOut
            },
            detail: None,
            claims: None,
            refresh_in_flight: None,
            created: now_secs(),
        };
        let r2 = record.clone();
        let name = p.name.clone();
        st.update(|s| {
            s.accounts.insert(name, r2);
        })
        .await
        .map_err(AgentError::State)?;
        self.emit(keyfob_proto::Event::AccountChanged {
            name: p.name.clone(),
            change: keyfob_proto::events::Change::Added,
            state: Some(record.state),
        });
        if let Some(ep) = endpoints {
            self.auth
                .endpoints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(p.name.clone(), ep);
        }
        let mut info = self.account_info(&p.name, &record);
        info.check = Some(check);
        Ok(info)
    }

    /// `account.list`.
    pub async fn account_list(&self) -> Vec<AccountInfo> {
        self.view
            .current()
            .accounts
            .iter()
            .map(|(n, r)| self.account_info(n, r))
            .collect()
    }

    /// `account.show`.
    pub async fn account_show(&self, p: NameParams) -> Result<AccountInfo, AgentError> {
        let st = self.view.current();
        let r = st.accounts.get(&p.name).ok_or_else(|| not_found(&p.name))?;
        Ok(self.account_info(&p.name, r))
    }

    /// `account.rm`: forgets the account locally (the grant is not revoked).
    pub async fn account_remove(&self, p: NameParams) -> Result<Empty, AgentError> {
        // The account's turn: a refresh in flight finishes first, so it cannot recreate the
        // removed refresh token afterwards.
        let mut turn = self.tokens.turn(&p.name).await;
        let mut st = self.state.lock().await;
        if !st.get().accounts.contains_key(&p.name) {
            return Err(not_found(&p.name));
        }
        st.update(|s| {
            s.accounts.remove(&p.name);
        })
        .await
        .map_err(AgentError::State)?;
        drop(st);
        self.emit(keyfob_proto::Event::AccountChanged {
            name: p.name.clone(),
            change: keyfob_proto::events::Change::Removed,
            state: None,
        });
        self.auth.forget(&p.name);
        if let Err(e) = turn.remove(self).await {
            tracing::warn!(account = %p.name, error = %e, "could not delete a removed account's refresh token");
        }
        self.drop_derived(&p.name).await;
        if let Err(e) = self.vault.delete(&vault_key(CLIENT_SECRET, &p.name)).await {
            tracing::warn!(account = %p.name, error = %e, "could not delete a removed account's client secret");
        }
        Ok(Empty {})
    }
}

impl Agent {
    /// `logout`: revoke at the provider when possible, then delete the local grant. Local
    /// deletion happens even when revocation fails, and the result says which happened.
    pub async fn logout(&self, p: NameParams) -> Result<LogoutResult, AgentError> {
        let record = self.account_record(&p.name).await?;
        let mut turn = self.tokens.turn(&p.name).await;
        // An exchanged credential holds no grant of its own: only its cached credentials go,
        // and it stays usable while its source is signed in.
        if self.exchanges(&record) {
            turn.remove(self).await?;
            let source = record
                .params
                .get(super::plugin_ops::SOURCE)
                .cloned()
                .unwrap_or_default();
            return Ok(LogoutResult {
                revoked: false,
                revocation_detail: Some(format!(
                    "{:?} holds no grant of its own, only credentials made from the ID token of {source:?}: those were deleted; sign out of {source:?} (`keyfob logout {source}`) or remove this account to stop it",
                    p.name
                )),
                deleted_local: true,
            });
        }
        // The grant: a refresh token, or a lasting access token (providers without refresh).
        let grant = match turn.refresh_token(self).await? {
            Some(rt) => Some((rt, "refresh_token")),
            None => crate::tokens::Backend::load_lasting(self, &p.name)
                .await?
                .map(|t| (t, "access_token")),
        };
        let exec = self.exec_plugin(&record.provider).is_some();
        let (revoked, revocation_detail) = match &grant {
            None => (false, Some("no token was stored".to_owned())),
            Some((token, _)) if exec => self.exec_revoke(&p.name, &record, token).await,
            Some((token, hint)) => match self.provider_for(&p.name).await {
                Ok((ep, _)) if ep.revocation.is_none() => {
                    let page = self.revoke_page(&p.name).await;
                    (
                        false,
                        Some(format!(
                            "the provider offers no token revocation to this app, so only the tokens on this machine were deleted{}",
                            page.map(|u| format!("; revoke the app's access at {u}"))
                                .unwrap_or_default()
                        )),
                    )
                }
                Ok((ep, creds)) => {
                    let t = Zeroizing::new(token.expose_secret().to_owned());
                    let http = &self.auth.http;
                    match crate::flows::service::revoke(http, &ep, &creds, &t, hint).await {
                        Ok(()) => (true, None),
                        Err(e) => (false, Some(e.to_string())),
                    }
                }
                Err(e) => (false, Some(e.to_string())),
            },
        };
        turn.remove(self).await?;
        self.auth.forget(&p.name);
        self.drop_derived(&p.name).await;
        self.update_account(&p.name, |a| {
            a.state = AccountState::SignedOut;
            a.detail = None;
        })
        .await?;
        drop(turn);
        tracing::info!(account = %p.name, revoked, "signed out");
        Ok(LogoutResult {
            revoked,
            revocation_detail,
            deleted_local: true,
        })
    }
}
