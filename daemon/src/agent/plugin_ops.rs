//! Accounts of exec plugins: the checks when one is added, its sign-in, refresh, exchange and
//! revocation through the plugin. The daemon keeps the account's material (its refresh
//! token, to the broker) and hands the plugin only what one call of that account needs.

use super::{Agent, AgentError, now_secs};
use crate::plugins::Manifest;
use crate::plugins::exec::{Described, Host, Obtained, PluginError};
use crate::state::AccountRecord;
use crate::tokens::{CacheKey, CachedToken, Credential, Freshness, Issued, Refusal};
use keyfob_proto::methods::ProviderCheck;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The parameter of an exchanging plugin's account that names its source account.
pub(super) const SOURCE: &str = "source";
/// A source's ID token must be valid this much longer to be exchanged.
const SUBJECT_MIN_TTL: u64 = 60;
/// RFC 8693's name for an ID token.
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

impl From<PluginError> for AgentError {
    fn from(e: PluginError) -> Self {
        AgentError::Provider(e.to_string())
    }
}

/// The account's settings as the plugin sees them: its parameters, defaults filled in.
fn settings(m: &Manifest, given: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = m
        .params
        .iter()
        .filter_map(|(k, p)| p.default.clone().map(|d| (k.clone(), d)))
        .collect();
    out.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// The `exp` claim of a JWT, read without verifying (the token was verified on receipt).
fn jwt_exp(token: &str) -> Option<u64> {
    crate::flows::id_token::unverified_payload(token)?
        .get("exp")?
        .as_u64()
}

/// What the broker keeps of a plugin's answer.
fn issued(o: Obtained) -> Issued {
    let expires_in = o.credential.lifetime(now_secs());
    Issued {
        access: o.credential.token,
        token_type: o.credential.token_type.unwrap_or_else(|| "Bearer".into()),
        expires_in,
        scopes: Vec::new(),
        id_token: None,
        claims: None,
        refresh_token: o.material,
        fields: o.credential.fields,
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, AgentError>> + Send + 'a>>;

impl Agent {
    /// The exec plugin of `provider` with its host, if it is one.
    pub(super) fn exec_plugin(&self, provider: &str) -> Option<(&Manifest, Host)> {
        let m = self.auth.plugin(provider)?;
        Some((m, Host::of(m)?))
    }

    /// Whether `record`'s provider is an exec plugin that exchanges a source account's token.
    pub(super) fn exchanges(&self, record: &AccountRecord) -> bool {
        self.auth
            .plugin(&record.provider)
            .is_some_and(Manifest::exchanges)
    }

    /// Checks an exec plugin's account before it is stored: its parameters, its source
    /// account, and that the plugin runs and answers `describe`.
    pub(super) async fn check_exec(
        &self,
        name: &str,
        m: &Manifest,
        host: &Host,
        params: &BTreeMap<String, String>,
    ) -> Result<ProviderCheck, AgentError> {
        if let Some(unknown) = params.keys().find(|k| !m.params.contains_key(*k)) {
            let known: Vec<&str> = m.params.keys().map(String::as_str).collect();
            return Err(AgentError::Invalid(format!(
                "provider {} has no parameter {unknown:?}: use {}",
                m.id,
                known.join(", ")
            )));
        }
        if let Some((missing, p)) = m
            .params
            .iter()
            .find(|(k, p)| p.default.is_none() && !params.contains_key(*k))
        {
            return Err(AgentError::Invalid(format!(
                "provider {} needs --param {missing}=…: {}",
                m.id, p.description
            )));
        }
        if m.exchanges() {
            let source = params.get(SOURCE).map(String::as_str).unwrap_or_default();
            if source == name {
                return Err(AgentError::Invalid(format!(
                    "account {name:?} cannot exchange its own token: --param source= names another account, one that signs in at an OpenID provider"
                )));
            }
            let record = self.account_record(source).await.map_err(|_| {
                AgentError::Invalid(format!(
                    "--param source={source}: there is no account {source:?}; add and sign in to the account whose ID token is exchanged first (`keyfob account list`)"
                ))
            })?;
            if self.exchanges(&record) || record.issuer.is_none() {
                return Err(AgentError::Invalid(format!(
                    "--param source={source}: {source:?} has no ID tokens to exchange (it is not an OpenID Connect account); name an account that signs in at an OpenID provider"
                )));
            }
        }
        let d: Described = host.call("describe", &serde_json::json!({}), &[]).await?;
        tracing::info!(plugin = %m.id, name = ?d.name, methods = ?d.methods, "exec plugin described itself");
        Ok(ProviderCheck {
            issuer: None,
            flows: Vec::new(),
            revocation: d.methods.iter().any(|x| x == "revoke"),
            unreachable: None,
        })
    }

    /// One provider call for an exec plugin's account: `refresh` with its material, or
    /// `exchange` with its source account's ID token.
    pub(super) async fn exec_request(
        &self,
        key: &CacheKey,
        record: &AccountRecord,
        with: Credential<'_>,
    ) -> Result<Issued, Refusal<AgentError>> {
        let failed = Refusal::Failed;
        let name = key.account.as_str();
        let Some((m, host)) = self.exec_plugin(&record.provider) else {
            return Err(failed(AgentError::Invalid(format!(
                "account {name:?} uses provider {:?}, which is no longer installed",
                record.provider
            ))));
        };
        if !key.is_default() {
            return Err(failed(AgentError::Invalid(format!(
                "account {name:?} gets its credential from plugin {}, which takes no --scope or --audience",
                m.id
            ))));
        }
        let params = settings(m, &record.params);
        let exchange = matches!(with, Credential::Exchange);
        let obtained: Result<Obtained, PluginError> = match with {
            Credential::Refresh(material) => {
                let body = serde_json::json!({
                    "account": name,
                    "params": params,
                    "material": material.expose_secret(),
                });
                host.call("refresh", &body, &[material]).await
            }
            Credential::Exchange => {
                let source = params.get(SOURCE).cloned().unwrap_or_default();
                // Checked again here: a source removed and added again as an exchanged
                // credential would otherwise make two accounts wait on each other.
                let src = self.account_record(&source).await.map_err(|_| {
                    failed(AgentError::NeedsLogin(format!(
                        "account {name:?} exchanges the ID token of {source:?}, which no longer exists: add it again, or remove {name:?}"
                    )))
                })?;
                if self.exchanges(&src) {
                    return Err(failed(AgentError::Invalid(format!(
                        "account {name:?} exchanges the ID token of {source:?}, which is itself an exchanged credential: remove {name:?} and add it with an OpenID Connect source"
                    ))));
                }
                let subject = self.subject_token(&source).await.map_err(failed)?;
                let body = serde_json::json!({
                    "account": name,
                    "params": params,
                    "subject_token": subject.expose_secret(),
                    "subject_token_type": ID_TOKEN_TYPE,
                });
                host.call("exchange", &body, &[&subject]).await
            }
            Credential::ClientCredentials => {
                return Err(failed(AgentError::Invalid(format!(
                    "account {name:?} uses exec plugin {}, which has no client-credentials grant",
                    m.id
                ))));
            }
        };
        match obtained {
            Ok(o) => {
                tracing::info!(account = %name, plugin = %m.id, rotated = o.material.is_some(), "credential obtained from plugin");
                Ok(issued(o))
            }
            // An exchanged credential holds no grant to end: its source's sign-in is what counts.
            Err(e) if e.grant_ended() && !exchange => Err(Refusal::GrantEnded(e.to_string())),
            Err(e) => Err(failed(e.into())),
        }
    }

    /// A current ID token of `source`, to exchange: the cached one while it has a minute
    /// left, else the one a refresh brings.
    /// (Boxed, not `async fn`: it runs inside the broker's call for the exchanging account,
    /// and the broker's future cannot contain itself.)
    fn subject_token<'a>(&'a self, source: &'a str) -> Boxed<'a, SecretString> {
        Box::pin(async move {
            let key = CacheKey::account(source);
            let current = |t: &CachedToken| {
                t.id_token
                    .as_ref()
                    .filter(|id| {
                        jwt_exp(id.expose_secret())
                            .is_some_and(|e| e > now_secs() + SUBJECT_MIN_TTL)
                    })
                    .map(|id| SecretString::from(id.expose_secret()))
            };
            let want = Freshness::MinTtl(Duration::from_secs(SUBJECT_MIN_TTL));
            let t = self.tokens.token(&key, want, self).await?;
            if let Some(id) = current(&t) {
                return Ok(id);
            }
            // A refresh for the ID token alone, at most once a minute: a provider that sends
            // none with its refreshes must not get a refresh (and a rotation) per call.
            let age = std::time::SystemTime::now()
                .duration_since(t.obtained_at)
                .unwrap_or_default();
            let t = if age >= Duration::from_secs(SUBJECT_MIN_TTL) {
                let want = Freshness::Replacing(t.obtained_at);
                self.tokens.token(&key, want, self).await?
            } else {
                t
            };
            current(&t).ok_or_else(|| {
                AgentError::Invalid(format!(
                    "account {source:?} holds no current ID token to exchange: its provider sent none with its last refresh (an OAuth-only provider, or scopes without openid)"
                ))
            })
        })
    }

    /// The sign-in of an exec plugin's account: its `login` method, non-interactive.
    pub(super) fn exec_login(
        &self,
        name: &str,
        record: &AccountRecord,
    ) -> Result<impl Future<Output = Result<Obtained, AgentError>> + Send + 'static, AgentError>
    {
        let (m, host) = self.exec_plugin(&record.provider).ok_or_else(|| {
            AgentError::Invalid(format!(
                "account {name:?} uses provider {:?}, which is no longer installed",
                record.provider
            ))
        })?;
        if self.exchanges(record) {
            let source = record.params.get(SOURCE).cloned().unwrap_or_default();
            return Err(AgentError::Invalid(format!(
                "{name:?} needs no sign-in of its own: it exchanges the ID token of account {source:?} (`keyfob login {source}` if that one needs it)"
            )));
        }
        let body = serde_json::json!({
            "account": name,
            "params": settings(m, &record.params),
        });
        Ok(async move { Ok(host.call::<Obtained>("login", &body, &[]).await?) })
    }

    /// Drops the cached credentials of every account made from `source`'s ID token (it signed
    /// out, was removed, or needs a new sign-in).
    pub(super) async fn drop_derived(&self, source: &str) {
        let derived: Vec<String> = {
            let st = self.view.current();
            st.accounts
                .iter()
                .filter(|(_, r)| {
                    r.params.get(SOURCE).is_some_and(|s| s == source) && self.exchanges(r)
                })
                .map(|(n, _)| n.clone())
                .collect()
        };
        for name in derived {
            self.tokens.drop_cached(&name);
            tracing::info!(account = %name, source, "dropped credentials made from a source that signed out");
        }
    }

    /// Revokes `material` through the plugin: whether it did, and why not.
    pub(super) async fn exec_revoke(
        &self,
        name: &str,
        record: &AccountRecord,
        material: &SecretString,
    ) -> (bool, Option<String>) {
        let Some((m, host)) = self.exec_plugin(&record.provider) else {
            return (false, Some("the plugin is no longer installed".into()));
        };
        let body = serde_json::json!({
            "account": name,
            "params": settings(m, &record.params),
            "material": material.expose_secret(),
        });
        match host
            .call::<serde_json::Value>("revoke", &body, &[material])
            .await
        {
            Ok(_) => (true, None),
            Err(e) if e.not_implemented() => (
                false,
                Some(format!(
                    "plugin {} cannot revoke, so only what this machine held was deleted",
                    m.id
                )),
            ),
            Err(e) => (false, Some(e.to_string())),
        }
    }

    /// A finished exec sign-in: its material stored as the grant (through the broker), its
    /// credential cached.
    pub(super) async fn store_exec_grant(
        &self,
        name: &str,
        o: Obtained,
    ) -> Result<keyfob_proto::methods::AccountInfo, AgentError> {
        let mut turn = self.tokens.turn(name).await;
        let mut st = self.state.lock().await;
        match &o.material {
            Some(material) => turn.store(self, material).await?,
            None => turn.remove(self).await?,
        }
        let mut i = issued(o);
        i.refresh_token = None;
        self.signed_in(&mut st, turn, name, None, |t| t.install(i))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_fill_defaults_and_keep_what_the_account_gave() {
        let m = crate::plugins::Manifest::parse(
            "t",
            "id = \"p\"\nname = \"P\"\nkind = \"exec\"\n[exec]\ncommand = \"p\"\n[params.a]\ndefault = \"1\"\ndescription = \"a\"\n[params.b]\ndefault = \"2\"\ndescription = \"b\"\n",
        )
        .unwrap();
        let given = BTreeMap::from([("b".to_owned(), "x".to_owned())]);
        let s = settings(&m, &given);
        assert_eq!(s.get("a").map(String::as_str), Some("1"));
        assert_eq!(s.get("b").map(String::as_str), Some("x"));
    }
}
