//! OpenID Connect discovery (`/.well-known/openid-configuration`).

use super::{Endpoints, FlowError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    authorization_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

/// Whether `stated` is `asked` with one path segment (the tenant) replaced by a tenant id.
fn names_the_tenant_by_id(asked: &str, stated: &str) -> bool {
    let (a, s): (Vec<&str>, Vec<&str>) = (asked.split('/').collect(), stated.split('/').collect());
    if a.len() != s.len() {
        return false;
    }
    let differing: Vec<usize> = (0..a.len()).filter(|&i| a[i] != s[i]).collect();
    matches!(differing.as_slice(), [i] if super::id_token::is_tenant_id(s[*i]))
}

/// Entra ID's multi-tenant aliases: their discovery names the issuer as a template,
/// `https://login.microsoftonline.com/{tenantid}/v2.0`.
pub const TENANT_ALIASES: [&str; 3] = ["organizations", "common", "consumers"];

/// A multi-tenant issuer: which template, for which alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantIssuer {
    /// The issuer with a `{tenantid}` slot.
    pub template: String,
    /// `organizations`, `common` or `consumers`.
    pub alias: String,
}

/// Fetches the issuer's metadata; the `issuer` it states must be the one asked for. With
/// `per_tenant` (the manifest's `issuer_varies_by_tenant`), a template issuer is accepted
/// when the one asked for is that template at a multi-tenant alias; each ID token is then
/// checked against the template filled with its own tenant.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    per_tenant: bool,
) -> Result<Endpoints, FlowError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| FlowError::Transient(format!("discovery at {url}: {e}")))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(FlowError::Transient(format!(
            "discovery at {url}: HTTP {status}"
        )));
    }
    if !status.is_success() {
        return Err(FlowError::Config(format!(
            "discovery at {url} answered HTTP {status}: check the issuer URL"
        )));
    }
    let m: Metadata = super::http::json_bounded(resp)
        .await
        .map_err(|e| FlowError::Config(format!("discovery at {url} is not valid metadata: {e}")))?;
    let asked = issuer.trim_end_matches('/');
    let stated = m.issuer.trim_end_matches('/');
    let tenant = per_tenant
        .then(|| {
            TENANT_ALIASES
                .iter()
                .find(|alias| stated.replace("{tenantid}", alias) == asked)
        })
        .flatten()
        .filter(|_| stated.contains("{tenantid}"))
        .map(|alias| TenantIssuer {
            template: stated.to_owned(),
            alias: (*alias).to_owned(),
        });
    // `consumers`, or a tenant named by its domain, publishes that tenant's id in place of the
    // name asked for: the one issuer its ID tokens must then name exactly.
    let by_id = per_tenant && tenant.is_none() && names_the_tenant_by_id(asked, stated);
    if stated != asked && tenant.is_none() && !by_id {
        return Err(FlowError::Config(format!(
            "discovery at {url} names issuer {:?}, not {issuer:?}: refusing a mismatched provider",
            m.issuer
        )));
    }
    Ok(Endpoints {
        issuer: Some(m.issuer),
        token: m.token_endpoint,
        device_authorization: m.device_authorization_endpoint,
        authorization: m.authorization_endpoint,
        revocation: m.revocation_endpoint,
        introspection: m.introspection_endpoint,
        jwks_uri: m.jwks_uri,
        id_token_algs: m.id_token_signing_alg_values_supported,
        tenant,
    })
}
