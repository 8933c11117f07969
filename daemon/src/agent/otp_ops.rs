//! OTP operations: add, import, code, list, remove, export, recovery codes.

use super::{Agent, AgentError, names, now_secs, vault_key};
use crate::otp::{self, NewEntry, OtpParams, migration, uri};
use crate::state::OtpRecord;
use keyfob_proto::Sensitive;
use keyfob_proto::events::{Change, Event};
use keyfob_proto::methods::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const OTP: &str = "otp";
const RECOVERY: &str = "recovery";

fn not_found(name: &str) -> AgentError {
    AgentError::NotFound {
        what: "OTP entry",
        cmd: "otp",
        name: name.to_owned(),
    }
}

fn info(name: &str, r: &OtpRecord) -> OtpInfo {
    let p = &r.params;
    OtpInfo {
        name: name.to_owned(),
        kind: p.kind,
        algorithm: p.algorithm,
        digits: p.digits,
        period: (p.kind == OtpKind::Totp).then_some(p.period),
        counter: (p.kind == OtpKind::Hotp).then_some(p.counter),
        issuer: p.issuer.clone(),
        account: p.account.clone(),
        recovery_codes_left: r.recovery_unused,
    }
}

/// A recovery code as kept (JSON) in the vault.
#[derive(Serialize, Deserialize)]
struct RecoveryCode {
    code: Zeroizing<String>,
    used: bool,
}

impl Agent {
    /// `otp.add`.
    pub async fn otp_add(&self, p: OtpAddParams) -> Result<OtpInfo, AgentError> {
        names::validate("OTP entry", &p.name).map_err(AgentError::Invalid)?;
        let entry = match (&p.uri, &p.secret) {
            (Some(u), None) => {
                let mut e =
                    uri::parse(u.expose()).map_err(|e| AgentError::Invalid(e.to_string()))?;
                // Explicit flags win over what the URI says.
                override_params(&mut e.params, &p);
                e
            }
            (None, Some(s)) => {
                let secret = otp::decode_secret(s.expose())
                    .map_err(|e| AgentError::Invalid(e.to_string()))?;
                let mut params = OtpParams::default();
                override_params(&mut params, &p);
                NewEntry {
                    suggested_name: None,
                    params,
                    secret,
                }
            }
            _ => {
                return Err(AgentError::Invalid(
                    "give exactly one of a secret (--secret) or an otpauth URI (--uri)".into(),
                ));
            }
        };
        otp::validate(&entry.params).map_err(|e| AgentError::Invalid(e.to_string()))?;
        self.store_otp(&p.name, entry, p.replace).await
    }

    async fn store_otp(
        &self,
        name: &str,
        entry: NewEntry,
        replace: bool,
    ) -> Result<OtpInfo, AgentError> {
        let mut st = self.state.lock().await;
        let previous = st.get().otp.get(name).cloned();
        if previous.is_some() && !replace {
            return Err(AgentError::AlreadyExists {
                what: "OTP entry",
                cmd: "otp",
                name: name.to_owned(),
            });
        }
        let record = OtpRecord {
            params: entry.params,
            recovery_unused: previous.as_ref().map_or(0, |r| r.recovery_unused),
            created: now_secs(),
        };
        let r2 = record.clone();
        // Secret first: an acknowledged entry always has its secret; a crash in between
        // leaves at worst an unreferenced vault item, which the next add overwrites.
        self.set_then_record(
            &vault_key(OTP, name),
            entry.secret,
            st.update(|s| {
                s.otp.insert(name.to_owned(), r2);
            }),
        )
        .await?;
        drop(st);
        self.emit(Event::OtpChanged {
            name: name.to_owned(),
            change: if previous.is_some() {
                Change::Updated
            } else {
                Change::Added
            },
        });
        Ok(info(name, &record))
    }

    /// `otp.import`.
    pub async fn otp_import(&self, p: OtpImportParams) -> Result<OtpImportResult, AgentError> {
        let mut added = Vec::new();
        let mut skipped = Vec::new();
        for (i, line) in p.lines.iter().enumerate() {
            let lineno = i + 1;
            let text = line.expose().trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let parsed: Vec<Result<NewEntry, otp::OtpError>> = if migration::is_migration(text) {
                match migration::parse(text) {
                    Ok(v) => v,
                    Err(e) => {
                        skipped.push(ImportProblem {
                            line: lineno,
                            reason: e.to_string(),
                        });
                        continue;
                    }
                }
            } else {
                vec![uri::parse(text)]
            };
            for entry in parsed {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        skipped.push(ImportProblem {
                            line: lineno,
                            reason: e.to_string(),
                        });
                        continue;
                    }
                };
                let name = entry
                    .suggested_name
                    .clone()
                    .unwrap_or_else(|| format!("imported-{lineno}"));
                if let Err(e) = names::validate("OTP entry", &name) {
                    skipped.push(ImportProblem {
                        line: lineno,
                        reason: e,
                    });
                    continue;
                }
                match self.store_otp(&name, entry, p.replace).await {
                    Ok(_) => added.push(name),
                    Err(e @ AgentError::AlreadyExists { .. }) | Err(e @ AgentError::Invalid(_)) => {
                        skipped.push(ImportProblem {
                            line: lineno,
                            reason: e.to_string(),
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(OtpImportResult { added, skipped })
    }

    /// `otp.code`; for HOTP the advanced counter is saved before the code is returned.
    pub async fn otp_code(&self, p: OtpCodeParams) -> Result<OtpCodeResult, AgentError> {
        let find = |st: &crate::state::State| {
            st.otp
                .get(&p.name)
                .cloned()
                .ok_or_else(|| not_found(&p.name))
        };
        // A TOTP code changes nothing stored: it reads the state without its lock (every
        // other request would queue behind it). HOTP takes the lock and reads its counter
        // under it, to advance it.
        let mut record = find(&self.view.current())?;
        let mut st = match record.params.kind {
            OtpKind::Totp => None,
            OtpKind::Hotp => {
                let st = self.state.lock().await;
                record = find(st.get())?;
                Some(st)
            }
        };
        let secret = self.vault.get(&vault_key(OTP, &p.name)).await?.ok_or_else(|| {
            AgentError::Inconsistent(format!(
                "the secret of OTP entry {:?} is missing from the vault: add it again with `keyfob otp add {} --replace`",
                p.name, p.name
            ))
        })?;
        let prm = &record.params;
        match prm.kind {
            OtpKind::Totp => {
                let t = p.at.unwrap_or_else(now_secs);
                Ok(OtpCodeResult {
                    code: Sensitive::new(otp::totp_at(
                        &secret,
                        prm.algorithm,
                        prm.digits,
                        prm.period,
                        t,
                    )),
                    seconds_left: Some(otp::seconds_left(prm.period, t)),
                    period: Some(prm.period),
                    counter: None,
                })
            }
            OtpKind::Hotp => {
                let counter = prm.counter;
                let next = counter.checked_add(1).ok_or_else(|| {
                    AgentError::Exhausted("the HOTP counter is at its maximum".into())
                })?;
                let name = p.name.clone();
                let st = st.as_mut().ok_or_else(|| {
                    AgentError::Inconsistent("the HOTP counter was read without its lock".into())
                })?;
                st.update(|s| {
                    if let Some(r) = s.otp.get_mut(&name) {
                        r.params.counter = next;
                    }
                })
                .await
                .map_err(AgentError::State)?;
                Ok(OtpCodeResult {
                    code: Sensitive::new(otp::hotp(&secret, prm.algorithm, prm.digits, counter)),
                    seconds_left: None,
                    period: None,
                    counter: Some(counter),
                })
            }
        }
    }

    /// `otp.list`.
    pub async fn otp_list(&self) -> Vec<OtpInfo> {
        let st = self.view.current();
        st.otp.iter().map(|(n, r)| info(n, r)).collect()
    }

    /// `otp.rm`: the state forgets the entry first, so an acknowledged removal never comes back.
    pub async fn otp_remove(&self, p: NameParams) -> Result<Empty, AgentError> {
        let mut st = self.state.lock().await;
        if !st.get().otp.contains_key(&p.name) {
            return Err(not_found(&p.name));
        }
        st.update(|s| {
            s.otp.remove(&p.name);
        })
        .await
        .map_err(AgentError::State)?;
        for key in [vault_key(OTP, &p.name), vault_key(RECOVERY, &p.name)] {
            if let Err(e) = self.vault.delete(&key).await {
                // The entry is gone from the state; the orphaned item is overwritten on re-add.
                tracing::warn!(entry = %p.name, error = %e, "could not delete a removed entry's vault item");
            }
        }
        drop(st);
        self.emit(Event::OtpChanged {
            name: p.name,
            change: Change::Removed,
        });
        Ok(Empty {})
    }

    /// `otp.uri`.
    pub async fn otp_uri(&self, p: NameParams) -> Result<OtpUriResult, AgentError> {
        let record = self
            .view
            .current()
            .otp
            .get(&p.name)
            .cloned()
            .ok_or_else(|| not_found(&p.name))?;
        let secret = self
            .vault
            .get(&vault_key(OTP, &p.name))
            .await?
            .ok_or_else(|| {
                AgentError::Inconsistent(format!(
                    "the secret of {:?} is missing from the vault",
                    p.name
                ))
            })?;
        let uri = uri::format(&p.name, &record.params, &secret);
        Ok(OtpUriResult {
            uri: Sensitive::new(uri.to_string()),
        })
    }

    async fn recovery_codes(&self, name: &str) -> Result<Vec<RecoveryCode>, AgentError> {
        match self.vault.get(&vault_key(RECOVERY, name)).await? {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
                AgentError::Inconsistent(format!(
                    "the recovery codes of {name:?} in the vault are unreadable"
                ))
            }),
        }
    }

    async fn save_recovery(&self, name: &str, codes: &[RecoveryCode]) -> Result<usize, AgentError> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(codes).map_err(|e| AgentError::Inconsistent(e.to_string()))?,
        );
        self.vault.set(&vault_key(RECOVERY, name), bytes).await?;
        Ok(codes.iter().filter(|c| !c.used).count())
    }

    /// `otp.recovery.add`.
    pub async fn recovery_add(
        &self,
        p: RecoveryAddParams,
    ) -> Result<RecoveryAddResult, AgentError> {
        let mut st = self.state.lock().await;
        if !st.get().otp.contains_key(&p.name) {
            return Err(not_found(&p.name));
        }
        let mut codes = self.recovery_codes(&p.name).await?;
        let mut added = 0;
        for c in &p.codes {
            let c = c.expose().trim();
            if c.is_empty() || codes.iter().any(|x| x.code.as_str() == c) {
                continue;
            }
            codes.push(RecoveryCode {
                code: Zeroizing::new(c.to_owned()),
                used: false,
            });
            added += 1;
        }
        if added == 0 {
            return Err(AgentError::Invalid(
                "no new recovery codes were given (one per line on stdin)".into(),
            ));
        }
        let unused = self.save_recovery(&p.name, &codes).await?;
        st.update(|s| {
            if let Some(r) = s.otp.get_mut(&p.name) {
                r.recovery_unused = unused;
            }
        })
        .await
        .map_err(AgentError::State)?;
        Ok(RecoveryAddResult { added, unused })
    }

    /// `otp.recovery.take`: marks the code used in the vault before handing it out.
    pub async fn recovery_take(&self, p: NameParams) -> Result<RecoveryTakeResult, AgentError> {
        let mut st = self.state.lock().await;
        if !st.get().otp.contains_key(&p.name) {
            return Err(not_found(&p.name));
        }
        let mut codes = self.recovery_codes(&p.name).await?;
        let Some(pick) = codes.iter_mut().find(|c| !c.used) else {
            return Err(AgentError::Exhausted(format!(
                "every recovery code of {:?} is used: get new ones from the site and add them with `keyfob otp recovery {} --add -`",
                p.name, p.name
            )));
        };
        pick.used = true;
        let code = Sensitive::new(pick.code.to_string());
        let unused = self.save_recovery(&p.name, &codes).await?;
        st.update(|s| {
            if let Some(r) = s.otp.get_mut(&p.name) {
                r.recovery_unused = unused;
            }
        })
        .await
        .map_err(AgentError::State)?;
        Ok(RecoveryTakeResult { code, unused })
    }
}

fn override_params(params: &mut OtpParams, p: &OtpAddParams) {
    if let Some(k) = p.kind {
        params.kind = k;
    }
    if let Some(d) = p.digits {
        params.digits = d;
    }
    if let Some(x) = p.period {
        params.period = x;
    }
    if let Some(a) = p.algorithm {
        params.algorithm = a;
    }
    if let Some(c) = p.counter {
        params.counter = c;
    }
}
