//! `plugin.toml`: what a provider plugin declares, and the checks that make a bad manifest
//! fail with the offending key named.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the provider is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Plain OAuth 2.0 with explicit endpoints.
    Oauth2,
    /// OpenID Connect: endpoints found by discovery from the issuer.
    Oidc,
    /// An executable speaking JSON-RPC on stdin/stdout.
    Exec,
}

/// A sign-in flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// RFC 8628 device authorization.
    Device,
    /// Authorization code + PKCE on a loopback redirect (RFC 8252, RFC 7636).
    Browser,
    /// Client credentials (service accounts).
    ClientCredentials,
}

/// Explicit endpoints (`kind = "oauth2"`, or overrides for `oidc`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// The authorization endpoint (browser flow).
    pub authorization: Option<String>,
    /// The token endpoint.
    pub token: Option<String>,
    /// The device authorization endpoint (device flow).
    pub device_authorization: Option<String>,
    /// RFC 7009 revocation.
    pub revocation: Option<String>,
    /// RFC 7662 introspection.
    pub introspection: Option<String>,
}

/// A template parameter (`{tenant}`) that accounts fill in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The value when the account gives none; without one the account must give it.
    pub default: Option<String>,
    /// What it is, for error messages and docs.
    pub description: String,
}

/// Provider peculiarities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quirks {
    /// Extra parameters for the authorization request (e.g. Google's `access_type`).
    #[serde(default)]
    pub auth_params: BTreeMap<String, String>,
    /// The ID token's `iss` names the user's tenant rather than the configured issuer.
    #[serde(default)]
    pub issuer_varies_by_tenant: bool,
    /// For a provider with no revocation endpoint: the page where a person revokes the
    /// app's access, named by `keyfob logout`.
    #[serde(default)]
    pub revoke_page: Option<String>,
    /// The provider issues access tokens that do not expire, without a refresh token (GitHub
    /// OAuth apps): such a token is kept as the grant. Elsewhere a token without `expires_in`
    /// and without a refresh token lives in memory only.
    #[serde(default)]
    pub lasting_tokens: bool,
    /// Client credentials go in the form body, not HTTP Basic (GitHub).
    #[serde(default)]
    pub client_secret_in_body: bool,
    /// The provider needs the client secret even from desktop and device clients (Google):
    /// `keyfob account add` asks for it, and it is kept in the vault like any secret.
    #[serde(default)]
    pub client_secret_required: bool,
    /// The only scopes the device flow accepts (Google); empty: any.
    #[serde(default)]
    pub device_scopes: Vec<String>,
}

/// How the provider maps onto local tools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrations {
    /// Hosts whose git credentials come from this provider.
    #[serde(default)]
    pub git_hosts: Vec<String>,
    /// Environment variables tools read the token from.
    #[serde(default)]
    pub env: Vec<String>,
}

/// What an exchanging exec plugin takes from its source account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exchanges {
    /// The source account's ID token (AWS AssumeRoleWithWebIdentity, GCP workload identity).
    IdToken,
}

/// The longest `[exec] timeout_secs` a manifest may ask for.
pub const MAX_EXEC_TIMEOUT_SECS: u64 = 600;

/// `kind = "exec"`: the program to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Path, relative to the plugin's folder (for a bundled plugin: the folder holding
    /// keyfobd), or absolute.
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// How long one call may take before the plugin is stopped (default 30 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Set for a plugin that turns another account's token into its credential: the
    /// account names that source account in its `source` parameter.
    #[serde(default)]
    pub exchanges: Option<Exchanges>,
}

/// A whole `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable id (the folder name), used by `--provider`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How it is reached.
    pub kind: Kind,
    /// Issuer URL for `oidc`; may hold `{param}` placeholders.
    pub issuer: Option<String>,
    /// Supported sign-in flows, the first being the default.
    #[serde(default)]
    pub flows: Vec<Flow>,
    /// Default scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Explicit endpoints.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// Template parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// Peculiarities.
    #[serde(default)]
    pub quirks: Quirks,
    /// Local tool mappings.
    #[serde(default)]
    pub integrations: Integrations,
    /// For `kind = "exec"`.
    pub exec: Option<ExecSpec>,
    /// The folder the manifest was loaded from (`None` for a bundled one).
    #[serde(skip)]
    pub dir: Option<std::path::PathBuf>,
}

/// A manifest problem; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin manifest {source_name}: {message}")]
pub struct ManifestError {
    /// Which file (or bundled id).
    pub source_name: String,
    /// What is wrong, naming the key.
    pub message: String,
}

/// Whether `url` may be used: HTTPS, or plain HTTP to a loopback host only.
pub fn check_url(key: &str, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{key} = {url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{key} = {url:?} must use https (plain http is allowed only for 127.0.0.1, [::1] and localhost)"
                ))
            }
        }
        other => Err(format!("{key} = {url:?} has scheme {other:?}; use https")),
    }
}

fn placeholders(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        out.push(rest[i + 1..i + j].to_owned());
        rest = &rest[i + j + 1..];
    }
    out
}

impl Manifest {
    /// The exec spec, for an exec plugin.
    pub fn exec_spec(&self) -> Option<&ExecSpec> {
        self.exec.as_ref().filter(|_| self.kind == Kind::Exec)
    }

    /// Whether this is an exec plugin that exchanges a source account's token.
    pub fn exchanges(&self) -> bool {
        self.exec_spec().is_some_and(|e| e.exchanges.is_some())
    }

    /// Parses and validates `text`; `source_name` is used in messages.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, ManifestError> {
        let err = |message: String| ManifestError {
            source_name: source_name.to_owned(),
            message,
        };
        let m: Manifest = toml::from_str(text).map_err(|e| err(e.message().trim().to_owned()))?;
        m.validate().map_err(err)?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), String> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "id = {:?} must be lowercase letters, digits and '-'",
                self.id
            ));
        }
        if self.flows.is_empty() && self.kind != Kind::Exec {
            return Err(
                "flows must name at least one of \"device\", \"browser\", \"client_credentials\""
                    .into(),
            );
        }
        let e = &self.endpoints;
        let endpoints = [
            ("endpoints.authorization", &e.authorization),
            ("endpoints.token", &e.token),
            ("endpoints.device_authorization", &e.device_authorization),
            ("endpoints.revocation", &e.revocation),
            ("endpoints.introspection", &e.introspection),
        ];
        for (key, v) in endpoints {
            if let Some(url) = v {
                check_url(key, url)?;
            }
        }
        match self.kind {
            Kind::Oauth2 => {
                if e.token.is_none() {
                    return Err("kind = \"oauth2\" needs endpoints.token".into());
                }
                if self.flows.contains(&Flow::Browser) && e.authorization.is_none() {
                    return Err("flow \"browser\" needs endpoints.authorization".into());
                }
                if self.flows.contains(&Flow::Device) && e.device_authorization.is_none() {
                    return Err("flow \"device\" needs endpoints.device_authorization".into());
                }
                if self.issuer.is_some() {
                    return Err(
                        "issuer is for kind = \"oidc\"; an oauth2 plugin lists endpoints".into(),
                    );
                }
            }
            Kind::Oidc => {
                let Some(issuer) = &self.issuer else {
                    return Err("kind = \"oidc\" needs issuer".into());
                };
                for p in placeholders(issuer) {
                    if !self.params.contains_key(&p) {
                        return Err(format!("issuer uses {{{p}}} but there is no [params.{p}]"));
                    }
                }
                if placeholders(issuer).is_empty() {
                    check_url("issuer", issuer)?;
                }
            }
            Kind::Exec => {
                let Some(exec) = &self.exec else {
                    return Err("kind = \"exec\" needs an [exec] table with command".into());
                };
                if exec.command.trim().is_empty() {
                    return Err("exec.command is empty".into());
                }
                if exec
                    .timeout_secs
                    .is_some_and(|t| t == 0 || t > MAX_EXEC_TIMEOUT_SECS)
                {
                    return Err(format!(
                        "exec.timeout_secs must be between 1 and {MAX_EXEC_TIMEOUT_SECS}"
                    ));
                }
                if exec.exchanges.is_some() && !self.params.contains_key("source") {
                    return Err(
                        "exec.exchanges needs a [params.source] (the account whose token is exchanged)"
                            .into(),
                    );
                }
                if !self.flows.is_empty() {
                    return Err(
                        "flows are for oauth2 and oidc; an exec plugin signs in through its own login method"
                            .into(),
                    );
                }
            }
        }
        if self.kind != Kind::Exec && self.exec.is_some() {
            return Err("[exec] is only for kind = \"exec\"".into());
        }
        Ok(())
    }

    /// The issuer with `{param}`s filled from `values` (else their defaults).
    pub fn issuer_for(&self, values: &BTreeMap<String, String>) -> Result<Option<String>, String> {
        let Some(template) = &self.issuer else {
            return Ok(None);
        };
        let mut out = template.clone();
        for p in placeholders(template) {
            let v = values
                .get(&p)
                .cloned()
                .or_else(|| self.params.get(&p).and_then(|x| x.default.clone()))
                .ok_or_else(|| {
                    let desc = self
                        .params
                        .get(&p)
                        .map(|x| x.description.as_str())
                        .unwrap_or("");
                    format!("provider {} needs {p}: {desc}", self.id)
                })?;
            out = out.replace(&format!("{{{p}}}"), &v);
        }
        check_url("issuer", &out)?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> String {
        Manifest::parse("test.toml", text).unwrap_err().to_string()
    }

    const OK: &str = "id = \"x\"\nname = \"X\"\nkind = \"oauth2\"\nflows = [\"device\"]\n[endpoints]\ntoken = \"https://x.test/token\"\ndevice_authorization = \"https://x.test/device\"\n";

    #[test]
    fn a_valid_manifest_parses() {
        Manifest::parse("t", OK).unwrap();
    }

    #[test]
    fn errors_name_the_offending_key() {
        assert!(bad(&format!("{OK}colour = 1\n")).contains("colour"));
        assert!(bad(&OK.replace("token = ", "tokn = ")).contains("tokn"));
        let e = bad(&OK.replace("token = \"https://x.test/token\"\n", ""));
        assert!(e.contains("endpoints.token"), "{e}");
        let e = bad(&OK.replace("https://x.test/token", "http://x.test/token"));
        assert!(e.contains("endpoints.token") && e.contains("https"), "{e}");
        let e = bad(&OK.replace("flows = [\"device\"]", "flows = [\"device\", \"browser\"]"));
        assert!(e.contains("endpoints.authorization"), "{e}");
        let e = bad(&OK.replace("flows = [\"device\"]", "flows = [\"teleport\"]"));
        assert!(e.contains("teleport"), "{e}");
        let e = bad(
            "id = \"o\"\nname = \"O\"\nkind = \"oidc\"\nflows = [\"device\"]\nissuer = \"{tenant}\"\n",
        );
        assert!(e.contains("params.tenant"), "{e}");
    }

    #[test]
    fn loopback_http_is_allowed_and_nothing_else() {
        assert!(check_url("k", "http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("k", "http://localhost/x").is_ok());
        assert!(check_url("k", "http://[::1]/x").is_ok());
        assert!(check_url("k", "http://127.0.0.1.evil.test/x").is_err());
        assert!(check_url("k", "ftp://x.test/").is_err());
    }

    #[test]
    fn issuer_templates_fill_from_params() {
        let m = super::super::bundled()
            .into_iter()
            .find(|m| m.id == "microsoft")
            .unwrap();
        let mut v = BTreeMap::new();
        assert_eq!(
            m.issuer_for(&v).unwrap().unwrap(),
            "https://login.microsoftonline.com/organizations/v2.0"
        );
        v.insert("tenant".into(), "contoso.example".into());
        assert!(
            m.issuer_for(&v)
                .unwrap()
                .unwrap()
                .contains("contoso.example")
        );
        let generic = super::super::bundled()
            .into_iter()
            .find(|m| m.id == "oidc")
            .unwrap();
        assert!(
            generic
                .issuer_for(&BTreeMap::new())
                .unwrap_err()
                .contains("issuer")
        );
    }
}
